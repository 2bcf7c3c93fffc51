// matvec against a float reference (dequantize each row, dot with the dequantized
// activation in double), for several types and thread counts.

#include <gtest/gtest.h>

#include <cmath>

#include "ops/matvec.h"
#include "quant_test_util.h"
#include "util/error.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

TEST(Matvec, MatchesFloatReferenceForAllThreadCounts) {
  const int64_t rows = 67, cols = 512;  // 67: not a multiple of the row grain
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,
                     GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                     GgmlType::Q6_K}) {
    const Matrix m = make_matrix(t, rows, cols, 100 + static_cast<uint32_t>(t));
    const auto x = gaussian(cols, 7);
    // Reference: rows dequantized, activation quantized the way matvec must do it.
    QuantizedActivation a;
    quantize_activation(x.data(), cols, quant_traits(t).vec_dot_type, a);
    std::vector<float> af(cols);
    quant_traits(a.type).to_float_ref(a.bytes.data(), af.data(), cols);
    const auto wf = dequantize(t, m.bytes, rows * cols);

    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> y(rows, -1.0f);
      matvec(m.ref(), x.data(), y.data(), pool);
      for (int64_t r = 0; r < rows; ++r) {
        double expect = 0, mag = 0;
        for (int64_t c = 0; c < cols; ++c) {
          expect += static_cast<double>(wf[r * cols + c]) * af[c];
          mag += std::fabs(static_cast<double>(wf[r * cols + c]) * af[c]);
        }
        const double tol = (t == GgmlType::Q4_1 || t == GgmlType::Q5_1) ? 2e-3 * mag : 1e-5 * mag;
        ASSERT_NEAR(y[r], expect, tol + 1e-30) << ggml_type_name(t) << " row " << r << " threads " << threads;
      }
      // Each row is one kernel call on one thread: identical results for any thread count.
      if (first.empty()) first = y;
      else EXPECT_EQ(y, first) << ggml_type_name(t) << " threads " << threads;

      // The pre-quantized entry point gives the same numbers.
      std::vector<float> y2(rows);
      matvec(m.ref(), a, y2.data(), pool);
      EXPECT_EQ(y2, y) << ggml_type_name(t);
    }
  }
}

TEST(Matvec, SingleThreadedRangeWritesOnlyItsRows) {
  const Matrix m = make_matrix(GgmlType::Q4_K, 40, 256, 3);
  const auto x = gaussian(256, 4);
  QuantizedActivation a;
  quantize_activation(x.data(), 256, GgmlType::Q8_K, a);
  std::vector<float> all(40), part(40, 123.0f);
  ThreadPool pool(1);
  matvec(m.ref(), a, all.data(), pool);
  matvec_st(m.ref(), a, part.data(), 10, 25);
  for (int r = 0; r < 40; ++r) EXPECT_EQ(part[r], (r >= 10 && r < 25) ? all[r] : 123.0f) << r;
}

TEST(Matvec, RejectsMismatchedInputs) {
  const Matrix m = make_matrix(GgmlType::Q4_K, 4, 256, 5);
  const auto x = gaussian(256, 6);
  ThreadPool pool(1);
  std::vector<float> y(4);
  QuantizedActivation wrong_type;
  quantize_activation(x.data(), 256, GgmlType::Q8_0, wrong_type);
  EXPECT_THROW(matvec(m.ref(), wrong_type, y.data(), pool), Error);
  QuantizedActivation wrong_len;
  quantize_activation(x.data(), 0, GgmlType::Q8_K, wrong_len);
  EXPECT_THROW(matvec(m.ref(), wrong_len, y.data(), pool), Error);
  QuantizedActivation ok;
  quantize_activation(x.data(), 256, GgmlType::Q8_K, ok);
  EXPECT_THROW(matvec_st(m.ref(), ok, y.data(), 0, 5), Error);
  MatrixRef no_data = m.ref();
  no_data.data = nullptr;
  EXPECT_THROW(matvec(no_data, ok, y.data(), pool), Error);
  // A column count that is not a multiple of the block size cannot be a valid row.
  MatrixRef bad_cols = m.ref();
  bad_cols.cols = 100;
  EXPECT_THROW(matvec(bad_cols, x.data(), y.data(), pool), Error);
}

}  // namespace
}  // namespace swapmoe
