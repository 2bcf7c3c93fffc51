// IQ4_NL, IQ4_XS, MXFP4, TQ1_0, TQ2_0 against llama.cpp's ggml (ggml_ref.h, dlopen()ed from
// node-llama-cpp): dequantization bitwise equal on random and edge blocks, activations
// identical, dot products close, and quantization byte-identical to ggml_quantize_chunk
// (what llama-quantize calls) without an importance matrix.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "ggml_ref.h"
#include "lowbit_blocks.h"
#include "quant/quant.h"
#include "quant_test_util.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

using namespace testing_quant;

int id(GgmlType t) { return static_cast<int>(t); }

// Edge blocks of type t, one per case: for fp16 scales 0, -0, the largest and smallest
// normal and subnormal halves, 1, Inf and NaN; for MXFP4 every exponent 0..255. The quant
// bytes run through every table index (nibble j and 15 - j) and, for TQ1_0, every byte value.
std::vector<uint8_t> edge_blocks(GgmlType t, int64_t* n_out) {
  const size_t bs = ggml_type_info(t).type_size;
  const int64_t be = ggml_type_info(t).block_size;
  std::vector<uint16_t> halves{0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x0400, 0x0001, 0x83FF, 0x3C00, 0x7C00, 0xFC00, 0x7E00};
  const size_t nblocks = t == GgmlType::MXFP4 ? 256 : halves.size() * 6;
  std::vector<uint8_t> b = random_lowbit_blocks(t, static_cast<int64_t>(nblocks) * be, 99);
  for (size_t k = 0; k < nblocks; ++k) {
    uint8_t* p = b.data() + k * bs;
    const size_t at = lowbit_scale_offset(t);
    if (t == GgmlType::MXFP4) {
      p[0] = static_cast<uint8_t>(k);
    } else {
      std::memcpy(p + at, &halves[k % halves.size()], 2);
    }
    // Quant bytes (everything but the scale): every nibble pair / byte value in turn.
    const size_t q0 = t == GgmlType::MXFP4 ? 1 : (at == 0 ? (t == GgmlType::IQ4_XS ? 8 : 2) : 0);
    const size_t q1 = at == 0 ? bs : at;
    for (size_t j = q0; j < q1; ++j) {
      if (t == GgmlType::TQ1_0) p[j] = static_cast<uint8_t>((k / halves.size()) * 48 + j);
      else if (k % 2 == 0) p[j] = static_cast<uint8_t>((j % 16) | ((15 - j % 16) << 4));
    }
  }
  *n_out = static_cast<int64_t>(nblocks) * be;
  return b;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(LowbitGgml, LayoutsAndActivationTypesMatch) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  for (GgmlType t : lowbit_types()) {
    EXPECT_EQ(ref->block_size(id(t)), ggml_type_info(t).block_size) << ggml_type_name(t);
    EXPECT_EQ(ref->type_size(id(t)), ggml_type_info(t).type_size) << ggml_type_name(t);
    EXPECT_EQ(ref->vec_dot_type(id(t)), id(quant_traits(t).vec_dot_type)) << ggml_type_name(t);
  }
}

TEST(LowbitGgml, DequantizeBitwiseEqualOnRandomAndEdgeBlocks) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  for (GgmlType t : lowbit_types()) {
    for (int k = 0; k < 2; ++k) {
      int64_t n = 256 * 64;
      const std::vector<uint8_t> b = k == 0 ? random_lowbit_blocks(t, n, 1234) : edge_blocks(t, &n);
      std::vector<float> theirs(static_cast<size_t>(n)), ours(static_cast<size_t>(n)), fast(static_cast<size_t>(n));
      ASSERT_TRUE(ref->to_float(id(t), b.data(), theirs.data(), n)) << ggml_type_name(t);
      quant_traits(t).to_float_ref(b.data(), ours.data(), n);
      quant_traits(t).to_float(b.data(), fast.data(), n);
      EXPECT_TRUE(same_bits(theirs, ours)) << ggml_type_name(t) << (k ? " edge" : " random");
      EXPECT_TRUE(same_bits(fast, ours)) << ggml_type_name(t) << (k ? " edge" : " random");
    }
  }
}

// ggml's vec_dot and ours both form exact integer sums per block (per 32 for IQ4_XS, whose
// scaled sub-block sums are exact int32 too) and differ only in the float work after that:
// the scale product d_w * d_a (the same single rounding in both) and the order of the
// per-block float accumulation (8 lanes here, ggml's own order there). Each of the nb block
// terms is rounded at most a few times at 2^-24 relative, so |ours - theirs| stays below
// ~nb * 2^-22 * sum |w a|; 1e-5 * sum |w a| covers the 88 blocks used here with room to
// spare while a single wrong element (>= 1/n of the magnitude) would fail.
TEST(LowbitGgml, VecDotCloseToGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  for (GgmlType t : lowbit_types()) {
    const QuantTraits& q = quant_traits(t);
    const GgmlType at = q.vec_dot_type;
    for (int64_t n : {int64_t{256}, int64_t{2816}}) {
      for (uint32_t seed = 1; seed <= 3; ++seed) {
        const auto w = random_lowbit_blocks(t, n, seed + 40);
        const auto x = gaussian(n, seed + 50, static_cast<float>(seed));
        std::vector<uint8_t> a(ggml_row_size(at, n)), a_ours(a.size());
        ASSERT_TRUE(ref->from_float(id(at), x.data(), a.data(), n));
        quant_traits(at).from_float(x.data(), a_ours.data(), n);
        EXPECT_EQ(a, a_ours) << ggml_type_name(at) << " activations differ from llama.cpp's";
        float theirs = 0;
        ASSERT_TRUE(ref->vec_dot(id(t), n, w.data(), a.data(), &theirs));
        const auto wf = dequantize(t, w, n), af = dequantize(at, a, n);
        double mag = 0;
        for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * af[i]);
        for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
          if (!cpu_supports(isa)) continue;
          const float ours = quant_traits_for(t, isa).vec_dot(n, w.data(), a.data());
          EXPECT_NEAR(ours, theirs, 1e-5 * mag) << ggml_type_name(t) << " " << isa_name(isa) << " n=" << n;
        }
      }
    }
  }
}

// Bad blocks (NaN / Inf scale, MXFP4 exponent 255 with large codes): ggml does not check
// them at run time; its dot product becomes non-finite, and so does ours.
TEST(LowbitGgml, NonFiniteScalesBehaveAsInGgml) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const int64_t n = 512;
  for (GgmlType t : lowbit_types()) {
    for (uint16_t bad : {uint16_t{0x7E00}, uint16_t{0x7C00}, uint16_t{0xFC00}}) {
      auto w = random_lowbit_blocks(t, n, 3);
      if (t == GgmlType::MXFP4) {
        for (size_t off = 0; off < w.size(); off += 17) w[off] = 255, std::memset(&w[off + 1], 0x77, 16);
      } else {
        std::memcpy(&w[lowbit_scale_offset(t)], &bad, 2);
      }
      const GgmlType at = quant_traits(t).vec_dot_type;
      const auto x = gaussian(n, 8);
      std::vector<uint8_t> a(ggml_row_size(at, n));
      ASSERT_TRUE(ref->from_float(id(at), x.data(), a.data(), n));
      float theirs = 0;
      ASSERT_TRUE(ref->vec_dot(id(t), n, w.data(), a.data(), &theirs));
      for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
        if (!cpu_supports(isa)) continue;
        const float ours = quant_traits_for(t, isa).vec_dot(n, w.data(), a.data());
        EXPECT_EQ(std::isfinite(ours), std::isfinite(theirs))
            << ggml_type_name(t) << " " << isa_name(isa) << " ours " << ours << " ggml " << theirs;
      }
    }
  }
}

// Inputs for the quantizers: Gaussian rows at several scales (weights are ~0.02), rows with
// all-zero blocks, a lone value, exact ties between table entries, tiny and huge values.
std::vector<std::vector<float>> quantizer_inputs(int64_t n) {
  std::vector<std::vector<float>> out;
  for (float s : {0.02f, 1.0f, 300.0f}) out.push_back(gaussian(n, static_cast<uint32_t>(s * 100) + 1, s));
  {
    auto v = gaussian(n, 5, 0.05f);
    std::fill(v.begin(), v.begin() + n / 4, 0.0f);  // zero blocks and sub-blocks
    for (int64_t i = n / 4; i < n / 2; i += 64) std::fill(v.begin() + i, v.begin() + i + 32, 0.0f);
    out.push_back(v);
  }
  {
    std::vector<float> v(static_cast<size_t>(n), 0.0f);
    for (int64_t i = 0; i < n; i += 37) v[static_cast<size_t>(i)] = (i % 2 ? -1.0f : 1.0f) * (1 + i % 5);
    out.push_back(v);
  }
  {
    // Integers and half-integers: ternary rounding ties (lroundf) and E2M1 midpoints.
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i % 13 - 6) * 0.5f;
    out.push_back(v);
  }
  {
    auto v = gaussian(n, 6, 1e-6f);
    for (int64_t i = 0; i < n; i += 3) v[static_cast<size_t>(i)] *= 1e-20f;  // denormals
    out.push_back(v);
  }
  return out;
}

TEST(LowbitGgml, QuantizeByteIdenticalToGgmlQuantizeChunk) {
  SWAPMOE_GGML_REF_OR_SKIP(ref);
  const int64_t rows = 3, cols = 2048;
  for (GgmlType t : lowbit_types()) {
    int k = 0;
    for (const auto& x : quantizer_inputs(rows * cols)) {
      std::vector<uint8_t> theirs(ggml_row_size(t, cols) * rows);
      ASSERT_EQ(ref->quantize(id(t), x.data(), theirs.data(), rows, cols, nullptr), theirs.size()) << ggml_type_name(t);
      const auto ours = quantize(t, x);
      size_t first = 0;
      while (first < ours.size() && ours[first] == theirs[first]) ++first;
      EXPECT_EQ(first, ours.size()) << ggml_type_name(t) << " input " << k << ": first difference at byte " << first;
      ++k;
    }
  }
}

}  // namespace
}  // namespace swapmoe
