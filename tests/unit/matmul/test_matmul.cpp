// Batched matmul and the multi-row kernels behind it.
//  - vec_dot_multi of every ISA is bitwise equal to that ISA's vec_dot (the contract in
//    quant.h), for 1..kVecDotMultiMax (8) activation rows, odd block counts and strided rows;
//  - matmul / matmul_st / matmul_rows / matmul_multi are bitwise equal to per-token
//    matvec for every weight type (multi-kernel and vec_dot-fallback types), all token
//    counts around the group size, and several thread counts;
//  - and close to a float reference (dequantized weights and activations, double sums)
//    with the same fixed tolerance as the vec_dot tests: 1e-5 * sum |w_i a_i|.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "../quant/quant_test_util.h"
#include "ops/matmul.h"
#include "util/error.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

const std::vector<GgmlType>& multi_types() {
  static const std::vector<GgmlType> t{GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F32,
                                       GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,
                                       GgmlType::Q3_K, GgmlType::F16,  GgmlType::BF16};
  return t;
}

TEST(VecDotMulti, PresentForTheHotTypesOnSimd) {
  for (Isa isa : simd_isas())
    for (GgmlType t : multi_types())
      EXPECT_NE(quant_traits_for(t, isa).vec_dot_multi, nullptr) << ggml_type_name(t) << " " << isa_name(isa);
  for (GgmlType t : multi_types()) EXPECT_EQ(quant_traits_for(t, Isa::Scalar).vec_dot_multi, nullptr);
}

TEST(VecDotMulti, BitwiseEqualToVecDotOfTheSameIsa) {
  for (Isa isa : simd_isas()) {
    for (GgmlType t : multi_types()) {
      const QuantTraits q = quant_traits_for(t, isa);
      ASSERT_NE(q.vec_dot_multi, nullptr);
      const QuantTraits qa = quant_traits_for(q.vec_dot_type, isa);
      // 96 = 3 Q8_0 blocks: odd block count for the 512-bit pair loop's tail.
      const int64_t n = ggml_type_info(t).block_size == 32 ? 96 : 512;
      const auto w = quantize(t, gaussian(n, 5));
      const size_t arb = ggml_row_size(q.vec_dot_type, n);
      const size_t stride = arb + 64;  // rows need not be packed
      std::vector<uint8_t> acts(stride * kVecDotMultiMax);
      for (int r = 0; r < kVecDotMultiMax; ++r) {
        auto x = gaussian(n, 100 + r);
        if (r == 2) std::fill(x.begin(), x.begin() + n / 2, 0.0f);  // a zero half: zero scales
        qa.from_float(x.data(), acts.data() + r * stride, n);
      }
      for (int na = 1; na <= kVecDotMultiMax; ++na) {
        std::vector<float> out(na * 3, -1.0f);
        q.vec_dot_multi(n, w.data(), acts.data(), stride, na, out.data(), 3);
        for (int r = 0; r < na; ++r) {
          const float want = q.vec_dot(n, w.data(), acts.data() + r * stride);
          EXPECT_TRUE(same_bits(out[r * 3], want))
              << ggml_type_name(t) << " " << isa_name(isa) << " na=" << na << " r=" << r << ": " << out[r * 3]
              << " vs " << want;
          EXPECT_EQ(out[r * 3 + 1], -1.0f);  // nothing written between the strided outputs
        }
      }
    }
  }
}

// Per-token matvec results, the reference matmul must reproduce bit for bit.
std::vector<float> per_token(const Matrix& m, const std::vector<float>& x, int64_t tokens, ThreadPool& pool) {
  std::vector<float> y(tokens * m.rows);
  QuantizedActivation a;
  for (int64_t t = 0; t < tokens; ++t) {
    quantize_activation(x.data() + t * m.cols, m.cols, quant_traits(m.type).vec_dot_type, a);
    matvec(m.ref(), a, y.data() + t * m.rows, pool);
  }
  return y;
}

TEST(Matmul, BitwiseEqualToPerTokenMatvecAndCloseToFloat) {
  const int64_t rows = 37, cols = 512;  // 37: not a multiple of the row grain or chunk
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q5_K, GgmlType::Q4_0, GgmlType::Q3_K,
                     GgmlType::F16, GgmlType::F32, GgmlType::Q5_0, GgmlType::Q2_K}) {
    const Matrix m = make_matrix(t, rows, cols, 200 + static_cast<uint32_t>(t));
    const GgmlType at = quant_traits(t).vec_dot_type;
    for (int64_t tokens : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{9}, int64_t{33}}) {
      const auto x = gaussian(tokens * cols, 300 + static_cast<uint32_t>(tokens));
      const auto want = per_token(m, x, tokens, pool1);
      QuantizedActivations a;
      quantize_activations(x.data(), tokens, cols, at, a, &pool2);
      for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
        std::vector<float> y(tokens * rows, NAN);
        matmul(m.ref(), a, y.data(), *pool);
        for (int64_t i = 0; i < tokens * rows; ++i)
          ASSERT_TRUE(same_bits(y[i], want[i])) << ggml_type_name(t) << " tokens=" << tokens << " threads="
                                                << pool->size() << " i=" << i << ": " << y[i] << " vs " << want[i];
      }
      // Float reference: dequantized rows . dequantized activations, in double.
      const auto wf = dequantize(t, m.bytes, rows * cols);
      for (int64_t tok = 0; tok < tokens; ++tok) {
        std::vector<uint8_t> arow(static_cast<const uint8_t*>(a.row(tok)),
                                  static_cast<const uint8_t*>(a.row(tok)) + a.row_bytes);
        const auto af = dequantize(at, arow, cols);
        for (int64_t r = 0; r < rows; ++r) {
          double s = 0, mag = 0;
          for (int64_t i = 0; i < cols; ++i) {
            s += static_cast<double>(wf[r * cols + i]) * af[i];
            mag += std::fabs(static_cast<double>(wf[r * cols + i]) * af[i]);
          }
          EXPECT_NEAR(want[tok * rows + r], s, 1e-5 * mag + 1e-30) << ggml_type_name(t);
        }
      }
    }
  }
}

// Q4_1 / Q5_1: bitwise only. Their Q8_1 activations carry d * sum(q) rounded to fp16, so
// the float-reference tolerance above does not hold for them (nor for their matvec).
TEST(Matmul, BitwiseEqualToPerTokenMatvecQ8_1Types) {
  const int64_t rows = 37, cols = 512;
  ThreadPool pool1(1), pool2(2);
  for (GgmlType t : {GgmlType::Q4_1, GgmlType::Q5_1}) {
    const Matrix m = make_matrix(t, rows, cols, 400 + static_cast<uint32_t>(t));
    for (int64_t tokens : {int64_t{1}, int64_t{7}, int64_t{9}, int64_t{33}}) {
      const auto x = gaussian(tokens * cols, 500 + static_cast<uint32_t>(tokens));
      const auto want = per_token(m, x, tokens, pool1);
      QuantizedActivations a;
      quantize_activations(x.data(), tokens, cols, quant_traits(t).vec_dot_type, a, &pool2);
      for (ThreadPool* pool : {&pool1, &pool2}) {
        std::vector<float> y(tokens * rows, NAN);
        matmul(m.ref(), a, y.data(), *pool);
        for (int64_t i = 0; i < tokens * rows; ++i)
          ASSERT_TRUE(same_bits(y[i], want[i])) << ggml_type_name(t) << " tokens=" << tokens << " i=" << i;
      }
    }
  }
}

TEST(Matmul, FewRowsManyTokensSplitsTokens) {
  // 8 rows < 16 x threads: matmul splits tokens across threads instead of rows.
  ThreadPool pool(3);
  const Matrix m = make_matrix(GgmlType::Q4_K, 8, 256, 9);
  const int64_t tokens = 70;
  const auto x = gaussian(tokens * 256, 10);
  const auto want = per_token(m, x, tokens, pool);
  QuantizedActivations a;
  quantize_activations(x.data(), tokens, 256, GgmlType::Q8_K, a);
  std::vector<float> y(tokens * 8);
  matmul(m.ref(), a, y.data(), pool);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(same_bits(y[i], want[i])) << i;
}

TEST(Matmul, Q4KRowTilePathEqualsPerTokenMatvec) {
  // Q4_K takes the row tile (QuantTraits::mat_tile) on AVX-512 from 8 tokens on (16 for
  // rows under 2048 columns; these have 512): row counts around the tile height, token counts across the tile's token block
  // (kMatTileTokens), matmul_st ranges that start inside a tile, and matmul_multi, whose
  // row split ignores tile boundaries. Bitwise equal to matvec per token on every ISA.
  ThreadPool pool1(1), pool2(2);
  for (int64_t rows : {int64_t{1}, int64_t{17}, int64_t{35}}) {
    const Matrix m = make_matrix(GgmlType::Q4_K, rows, 512, 600 + static_cast<uint32_t>(rows));
    for (int64_t tokens : {int64_t{7}, int64_t{16}, int64_t{21}, int64_t{kMatTileTokens + 2}}) {
      const auto x = gaussian(tokens * 512, 700 + static_cast<uint32_t>(tokens));
      const auto want = per_token(m, x, tokens, pool1);
      QuantizedActivations a;
      quantize_activations(x.data(), tokens, 512, GgmlType::Q8_K, a);
      for (ThreadPool* pool : {&pool1, &pool2}) {
        std::vector<float> y(tokens * rows, NAN);
        matmul(m.ref(), a, y.data(), *pool);
        for (int64_t i = 0; i < tokens * rows; ++i)
          ASSERT_TRUE(same_bits(y[i], want[i])) << "rows=" << rows << " tokens=" << tokens << " i=" << i;
      }
      std::vector<float> y(tokens * rows, -7.0f);
      const int64_t r0 = rows / 3, r1 = rows;
      matmul_st(m.ref(), a, y.data(), r0, r1);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t r = 0; r < rows; ++r) {
          const float v = y[t * rows + r];
          if (r >= r0) ASSERT_TRUE(same_bits(v, want[t * rows + r])) << t << "," << r;
          else ASSERT_EQ(v, -7.0f) << t << "," << r;
        }
      std::vector<float> ym(tokens * rows, NAN), yl(tokens * 20, NAN);
      const Matrix lead = make_matrix(GgmlType::Q4_K, 20, 512, 650);  // shifts m's rows off the 16-row grain
      const std::vector<MatmulJob> jobs{{lead.ref(), &a, yl.data()}, {m.ref(), &a, ym.data()}};
      matmul_multi(jobs, pool2);
      for (int64_t i = 0; i < tokens * rows; ++i) ASSERT_TRUE(same_bits(ym[i], want[i])) << "multi i=" << i;
    }
  }
}

TEST(Matmul, StRowRangeWritesOnlyItsRows) {
  const Matrix m = make_matrix(GgmlType::Q6_K, 40, 256, 11);
  const auto x = gaussian(6 * 256, 12);
  ThreadPool pool(1);
  const auto want = per_token(m, x, 6, pool);
  QuantizedActivations a;
  quantize_activations(x.data(), 6, 256, GgmlType::Q8_K, a);
  std::vector<float> y(6 * 40, -7.0f);
  matmul_st(m.ref(), a, y.data(), 5, 23);
  for (int64_t t = 0; t < 6; ++t)
    for (int64_t r = 0; r < 40; ++r) {
      const float v = y[t * 40 + r];
      if (r >= 5 && r < 23) EXPECT_TRUE(same_bits(v, want[t * 40 + r])) << t << "," << r;
      else EXPECT_EQ(v, -7.0f) << t << "," << r;
    }
  EXPECT_THROW(matmul_st(m.ref(), a, y.data(), 10, 41), Error);
}

TEST(Matmul, RowsSubsetForMoe) {
  // 10 tokens; the expert got tokens 7, 2, 2 (duplicates allowed) and 9.
  ThreadPool pool(2);
  const Matrix m = make_matrix(GgmlType::Q4_K, 48, 512, 13);
  const auto x = gaussian(10 * 512, 14);
  const auto all = per_token(m, x, 10, pool);
  QuantizedActivations a;
  quantize_activations(x.data(), 10, 512, GgmlType::Q8_K, a);
  const std::vector<int32_t> ids{7, 2, 2, 9};
  std::vector<float> y(ids.size() * 48);
  matmul_rows(m.ref(), a, ids, y.data(), pool);
  for (size_t k = 0; k < ids.size(); ++k)
    for (int64_t r = 0; r < 48; ++r) EXPECT_TRUE(same_bits(y[k * 48 + r], all[ids[k] * 48 + r])) << k << "," << r;
  const std::vector<int32_t> bad{3, 10};
  EXPECT_THROW(matmul_rows(m.ref(), a, bad, y.data(), pool), Error);
  const std::vector<int32_t> none;
  matmul_rows(m.ref(), a, none, y.data(), pool);  // no tokens: nothing to do, no throw
}

TEST(Matmul, MultiJobsEqualSeparateCalls) {
  ThreadPool pool(2);
  const Matrix m0 = make_matrix(GgmlType::Q4_K, 33, 256, 15), m1 = make_matrix(GgmlType::Q6_K, 20, 512, 16);
  const Matrix m2 = make_matrix(GgmlType::Q8_0, 17, 256, 17);
  QuantizedActivations a0, a1, a2, empty;
  const auto x0 = gaussian(5 * 256, 18), x1 = gaussian(2 * 512, 19), x2 = gaussian(4 * 256, 20);
  quantize_activations(x0.data(), 5, 256, GgmlType::Q8_K, a0);
  quantize_activations(x1.data(), 2, 512, GgmlType::Q8_K, a1);
  quantize_activations(x2.data(), 4, 256, GgmlType::Q8_0, a2);
  quantize_activations(nullptr, 0, 256, GgmlType::Q8_K, empty);
  std::vector<float> y0(5 * 33), y1(2 * 20), y2(4 * 17), ye(1, 3.0f);
  const std::vector<MatmulJob> jobs{{m0.ref(), &a0, y0.data()}, {m0.ref(), &empty, ye.data()},
                                    {m1.ref(), &a1, y1.data()}, {m2.ref(), &a2, y2.data()}};
  matmul_multi(jobs, pool);
  EXPECT_EQ(ye[0], 3.0f);
  EXPECT_EQ(y0, per_token(m0, x0, 5, pool));
  EXPECT_EQ(y1, per_token(m1, x1, 2, pool));
  EXPECT_EQ(y2, per_token(m2, x2, 4, pool));
}

TEST(Matmul, RejectsMismatchedActivations) {
  ThreadPool pool(1);
  const Matrix m = make_matrix(GgmlType::Q4_K, 4, 256, 21);
  const auto x = gaussian(2 * 512, 22);
  QuantizedActivations a;
  quantize_activations(x.data(), 2, 512, GgmlType::Q8_K, a);  // 512 columns, matrix has 256
  std::vector<float> y(2 * 4);
  EXPECT_THROW(matmul(m.ref(), a, y.data(), pool), Error);
  quantize_activations(x.data(), 2, 256, GgmlType::Q8_0, a);  // wrong type
  EXPECT_THROW(matmul(m.ref(), a, y.data(), pool), Error);
  EXPECT_THROW(quantize_activations(x.data(), 2, 100, GgmlType::Q8_K, a), Error);  // not a block multiple
  a.type = GgmlType::Q8_K;
  a.n = 256;
  a.rows = 3;  // more rows than the buffer holds
  a.row_bytes = ggml_row_size(GgmlType::Q8_K, 256);
  a.bytes.resize(a.row_bytes);
  EXPECT_THROW(matmul(m.ref(), a, y.data(), pool), Error);
}

}  // namespace
}  // namespace swapmoe
