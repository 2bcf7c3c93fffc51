// Scalar reference kernels for the non-linear and microscaling 4-bit formats (IQ4_NL,
// IQ4_XS, MXFP4) and the ternary formats (TQ1_0, TQ2_0). Block layouts: blocks.h.
//
// Dequantizers perform ggml's float operations (dequantize_row_*) one for one, so their
// output is bitwise equal to ggml's to_float. Quantizers follow what llama-quantize runs
// (ggml_quantize_chunk without an importance matrix: quantize_iq4_nl / quantize_iq4_xs with
// 7 extra scale trials, quantize_row_mxfp4_ref, quantize_row_tq*_ref) comparison for
// comparison, so the files we write are byte-identical to llama.cpp's. Dot products sum the
// exact per-block integer dot products and accumulate the scaled block sums in double: they
// are the yardstick the SIMD kernels are tested against.

#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/kernels.h"
#include "util/fp16.h"

namespace swapmoe::quant {
namespace {

float h2f(uint16_t h) { return fp16_to_fp32(h); }

// Index of the table entry nearest to x in the ascending 16-entry table `val`; ties go to
// the upper entry, values outside the table to its ends (ggml's best_index_int8).
int best_index_int8(const int8_t* val, float x) {
  if (x <= val[0]) return 0;
  if (x >= val[15]) return 15;
  int ml = 0, mu = 15;
  while (mu - ml > 1) {
    const int mav = (ml + mu) / 2;
    if (x < val[mav]) mu = mav;
    else ml = mav;
  }
  return x - val[mu - 1] < val[mu] - x ? mu - 1 : mu;
}

// IQ4_NL / IQ4_XS quantization of one super-block of `sb` values (sb = 32 for IQ4_NL, 256
// for IQ4_XS) in sub-blocks of 32, without an importance matrix (weights x^2), trying 7
// scales on each side of the first guess as ggml_quantize_chunk does. For sb > 32, the
// sub-block scales are then quantized to 6 bits against a super-block scale -max/32 and the
// indices recomputed with the quantized scales.
void quantize_iq4_superblock(int sb, const float* x, uint16_t* dh, uint8_t* q4, uint16_t* scales_h,
                             uint8_t* scales_l) {
  constexpr int kBlock = 32;
  constexpr int kTry = 7;
  const int8_t* values = kValuesIq4nl;
  float scales[QK_K / kBlock];
  float weight[kBlock];
  uint8_t L[QK_K];

  std::memset(q4, 0, static_cast<size_t>(sb / 2));
  *dh = fp32_to_fp16(0.f);

  float max_scale = 0, amax_scale = 0;
  for (int ib = 0; ib < sb / kBlock; ++ib) {
    const float* xb = x + ib * kBlock;
    uint8_t* Lb = L + ib * kBlock;
    for (int j = 0; j < kBlock; ++j) weight[j] = xb[j] * xb[j];
    float amax = 0, max = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (amax < 1e-15f) {  // all zero: ggml's GROUP_MAX_EPS
      scales[ib] = 0;
      continue;
    }
    float d = -max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kBlock; ++j) {
      const float al = id * xb[j];
      const int l = best_index_int8(values, al);
      Lb[j] = static_cast<uint8_t>(l);
      const float q = values[l];
      const float w = weight[j];
      sumqx += w * q * xb[j];
      sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -kTry; itry <= kTry; ++itry) {
      id = (itry + values[0]) / max;
      sumqx = sumq2 = 0;
      for (int j = 0; j < kBlock; ++j) {
        const float al = id * xb[j];
        const int l = best_index_int8(values, al);
        const float q = values[l];
        const float w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
      }
      if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
    scales[ib] = d;
    const float abs_d = std::fabs(d);
    if (abs_d > amax_scale) {
      amax_scale = abs_d;
      max_scale = d;
    }
  }

  if (sb / kBlock > 1) {
    *scales_h = 0;
    const float d = -max_scale / 32;
    *dh = fp32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    for (int ib = 0; ib < sb / kBlock; ++ib) {
      int l = nearest_int(id * scales[ib]);
      l = l < -32 ? -32 : (l > 31 ? 31 : l);
      const float dl = d * l;
      const float idl = dl ? 1 / dl : 0.f;
      uint8_t* Lb = L + ib * kBlock;
      const float* xb = x + ib * kBlock;
      for (int j = 0; j < kBlock; ++j) Lb[j] = static_cast<uint8_t>(best_index_int8(values, idl * xb[j]));
      l += 32;
      const uint8_t l_l = static_cast<uint8_t>(l & 0xf), l_h = static_cast<uint8_t>(l >> 4);
      if (ib % 2 == 0) scales_l[ib / 2] = l_l;
      else scales_l[ib / 2] |= static_cast<uint8_t>(l_l << 4);
      *scales_h |= static_cast<uint16_t>(l_h << 2 * (ib % 8));
    }
  } else {
    *dh = fp32_to_fp16(scales[0]);
    const float id = scales[0] ? 1 / scales[0] : 0;
    for (int j = 0; j < sb; ++j) L[j] = static_cast<uint8_t>(best_index_int8(values, id * x[j]));
  }

  for (int i = 0; i < sb / 32; ++i)
    for (int j = 0; j < 16; ++j) q4[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

// Sub-block ib's 6-bit IQ4_XS scale, biased by 32.
int iq4_xs_scale(const BlockIQ4_XS& b, int ib) {
  return ((b.scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((b.scales_h >> 2 * ib) & 3) << 4);
}

// Trit n (0 = most significant) of a TQ1_0 byte.
int tq1_trit(uint8_t byte, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = static_cast<uint8_t>(byte * kPow3[n]);
  return (static_cast<uint16_t>(q) * 3) >> 8;
}

// The 256 TQ1_0 trits (0..2) of a block in element order.
void tq1_unpack(const BlockTQ1_0& b, uint8_t t[QK_K]) {
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 32; ++m) t[32 * n + m] = static_cast<uint8_t>(tq1_trit(b.qs[m], n));
  for (int n = 0; n < 5; ++n)
    for (int m = 0; m < 16; ++m) t[160 + 16 * n + m] = static_cast<uint8_t>(tq1_trit(b.qs[32 + m], n));
  for (int n = 0; n < 4; ++n)
    for (int j = 0; j < 4; ++j) t[240 + 4 * n + j] = static_cast<uint8_t>(tq1_trit(b.qh[j], n));
}

// The 256 TQ2_0 codes (0..3) of a block in element order.
void tq2_unpack(const BlockTQ2_0& b, uint8_t c[QK_K]) {
  for (int k = 0; k < 2; ++k)
    for (int l = 0; l < 4; ++l)
      for (int m = 0; m < 32; ++m) c[128 * k + 32 * l + m] = static_cast<uint8_t>((b.qs[32 * k + m] >> (2 * l)) & 3);
}

// lroundf(v) + 1 as ggml's ternary quantizers compute it, for v in [-1, 1] (and whatever
// lroundf makes of NaN for broken input, as there).
int ternary_code(float v) { return static_cast<int>(std::lround(v)) + 1; }

// amax over a block as ggml's MAX macro computes it (a NaN input is kept only if it is last).
float ternary_amax(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < QK_K; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;
  }
  return amax;
}

// The E8M0 exponent quantize_row_mxfp4_ref picks: floor(log2(amax)) - 2 + 127, so amax
// lands in [4, 8) times half the scale, near the largest E2M1 magnitude 6. ggml converts
// the float to uint8_t directly; on x86 that truncates through a 32-bit integer, which is
// what the conversion below does for the values that can occur (-24 .. 252).
uint8_t mxfp4_exponent(float amax) {
  if (!(amax > 0.0f)) return 0;
  const float v = std::floor(std::log2(amax)) - 2 + 127;
  if (!std::isfinite(v)) return 0;  // an infinite input: cvttss2si's 0x80000000, low byte 0
  return static_cast<uint8_t>(static_cast<int32_t>(v));
}

int mxfp4_best_index(float x, float d) {
  int best = 0;
  float best_err = std::fabs(kValuesMxfp4[0] * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(kValuesMxfp4[i] * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

}  // namespace

// ------------------------------------------------------------------------------- IQ4_NL

void to_float_iq4_nl_ref(const void* src, float* dst, int64_t n) {
  const BlockIQ4_NL* x = static_cast<const BlockIQ4_NL*>(src);
  for (int64_t i = 0; i < n / QK4_NL; ++i, dst += QK4_NL) {
    const float d = h2f(x[i].d);
    for (int j = 0; j < QK4_NL / 2; ++j) {
      dst[j] = d * kValuesIq4nl[x[i].qs[j] & 0xf];
      dst[j + QK4_NL / 2] = d * kValuesIq4nl[x[i].qs[j] >> 4];
    }
  }
}

void from_float_iq4_nl_ref(const float* src, void* dst, int64_t n) {
  BlockIQ4_NL* y = static_cast<BlockIQ4_NL*>(dst);
  for (int64_t i = 0; i < n / QK4_NL; ++i) {
    uint16_t unused_h = 0;
    quantize_iq4_superblock(QK4_NL, src + i * QK4_NL, &y[i].d, y[i].qs, &unused_h, nullptr);
  }
}

float vec_dot_iq4_nl_ref(int64_t n, const void* w, const void* a) {
  const BlockIQ4_NL* x = static_cast<const BlockIQ4_NL*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK4_NL; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK4_NL / 2; ++j)
      sumi += kValuesIq4nl[x[i].qs[j] & 0xf] * y[i].qs[j] + kValuesIq4nl[x[i].qs[j] >> 4] * y[i].qs[j + 16];
    sum += static_cast<double>(h2f(x[i].d) * h2f(y[i].d)) * sumi;
  }
  return static_cast<float>(sum);
}

// ------------------------------------------------------------------------------- IQ4_XS

void to_float_iq4_xs_ref(const void* src, float* dst, int64_t n) {
  const BlockIQ4_XS* x = static_cast<const BlockIQ4_XS*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < QK_K / 32; ++ib, dst += 32, qs += 16) {
      const float dl = d * (iq4_xs_scale(x[i], ib) - 32);
      for (int j = 0; j < 16; ++j) {
        dst[j] = dl * kValuesIq4nl[qs[j] & 0xf];
        dst[j + 16] = dl * kValuesIq4nl[qs[j] >> 4];
      }
    }
  }
}

void from_float_iq4_xs_ref(const float* src, void* dst, int64_t n) {
  BlockIQ4_XS* y = static_cast<BlockIQ4_XS*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i)
    quantize_iq4_superblock(QK_K, src + i * QK_K, &y[i].d, y[i].qs, &y[i].scales_h, y[i].scales_l);
}

float vec_dot_iq4_xs_ref(int64_t n, const void* w, const void* a) {
  const BlockIQ4_XS* x = static_cast<const BlockIQ4_XS*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int sumi = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const uint8_t* qs = x[i].qs + 16 * ib;
      const int8_t* q8 = y[i].qs + 32 * ib;
      int s = 0;
      for (int j = 0; j < 16; ++j) s += kValuesIq4nl[qs[j] & 0xf] * q8[j] + kValuesIq4nl[qs[j] >> 4] * q8[j + 16];
      sumi += (iq4_xs_scale(x[i], ib) - 32) * s;
    }
    sum += static_cast<double>(h2f(x[i].d) * y[i].d) * sumi;
  }
  return static_cast<float>(sum);
}

// -------------------------------------------------------------------------------- MXFP4

void to_float_mxfp4_ref(const void* src, float* dst, int64_t n) {
  const BlockMXFP4* x = static_cast<const BlockMXFP4*>(src);
  for (int64_t i = 0; i < n / QK_MXFP4; ++i, dst += QK_MXFP4) {
    const float d = e8m0_half(x[i].e);
    for (int j = 0; j < QK_MXFP4 / 2; ++j) {
      dst[j] = kValuesMxfp4[x[i].qs[j] & 0x0f] * d;
      dst[j + QK_MXFP4 / 2] = kValuesMxfp4[x[i].qs[j] >> 4] * d;
    }
  }
}

void from_float_mxfp4_ref(const float* src, void* dst, int64_t n) {
  BlockMXFP4* y = static_cast<BlockMXFP4*>(dst);
  for (int64_t i = 0; i < n / QK_MXFP4; ++i) {
    const float* x = src + i * QK_MXFP4;
    float amax = 0.0f;
    for (int j = 0; j < QK_MXFP4; ++j)
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
    const uint8_t e = mxfp4_exponent(amax);
    const float d = e8m0_half(e);
    y[i].e = e;
    for (int j = 0; j < QK_MXFP4 / 2; ++j)
      y[i].qs[j] = static_cast<uint8_t>(mxfp4_best_index(x[j], d) | (mxfp4_best_index(x[j + 16], d) << 4));
  }
}

float vec_dot_mxfp4_ref(int64_t n, const void* w, const void* a) {
  const BlockMXFP4* x = static_cast<const BlockMXFP4*>(w);
  const BlockQ8_0* y = static_cast<const BlockQ8_0*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK_MXFP4; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK_MXFP4 / 2; ++j)
      sumi += kValuesMxfp4[x[i].qs[j] & 0xf] * y[i].qs[j] + kValuesMxfp4[x[i].qs[j] >> 4] * y[i].qs[j + 16];
    sum += static_cast<double>(e8m0_half(x[i].e)) * h2f(y[i].d) * sumi;
  }
  return static_cast<float>(sum);
}

// -------------------------------------------------------------------------------- TQ1_0

void to_float_tq1_0_ref(const void* src, float* dst, int64_t n) {
  const BlockTQ1_0* x = static_cast<const BlockTQ1_0*>(src);
  uint8_t t[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    const float d = h2f(x[i].d);
    tq1_unpack(x[i], t);
    for (int j = 0; j < QK_K; ++j) dst[j] = static_cast<float>(t[j] - 1) * d;
  }
}

void from_float_tq1_0_ref(const float* src, void* dst, int64_t n) {
  BlockTQ1_0* y = static_cast<BlockTQ1_0*>(dst);
  // A byte of k trits t_0..t_{k-1} (t_0 most significant, then padded to 5 trits) stores
  // ceil(value * 256 / 243), so that tq1_trit can read the trits back by multiplication.
  auto pack = [](const float* x, int stride, int k, float id) {
    uint8_t q = 0;
    for (int m = 0; m < k; ++m) q = static_cast<uint8_t>(q * 3 + ternary_code(x[m * stride] * id));
    if (k == 4) q = static_cast<uint8_t>(q * 3);
    return static_cast<uint8_t>((static_cast<uint16_t>(q) * 256 + (243 - 1)) / 243);
  };
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    const float d = ternary_amax(x);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int m = 0; m < 32; ++m) y[i].qs[m] = pack(x + m, 32, 5, id);
    for (int m = 0; m < 16; ++m) y[i].qs[32 + m] = pack(x + 160 + m, 16, 5, id);
    for (int j = 0; j < 4; ++j) y[i].qh[j] = pack(x + 240 + j, 4, 4, id);
  }
}

float vec_dot_tq1_0_ref(int64_t n, const void* w, const void* a) {
  const BlockTQ1_0* x = static_cast<const BlockTQ1_0*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  uint8_t t[QK_K];
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    tq1_unpack(x[i], t);
    int sumi = 0;
    for (int j = 0; j < QK_K; ++j) sumi += (t[j] - 1) * y[i].qs[j];
    sum += static_cast<double>(h2f(x[i].d) * y[i].d) * sumi;
  }
  return static_cast<float>(sum);
}

// -------------------------------------------------------------------------------- TQ2_0

void to_float_tq2_0_ref(const void* src, float* dst, int64_t n) {
  const BlockTQ2_0* x = static_cast<const BlockTQ2_0*>(src);
  uint8_t c[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i, dst += QK_K) {
    const float d = h2f(x[i].d);
    tq2_unpack(x[i], c);
    for (int j = 0; j < QK_K; ++j) dst[j] = static_cast<float>(c[j] - 1) * d;
  }
}

void from_float_tq2_0_ref(const float* src, void* dst, int64_t n) {
  BlockTQ2_0* y = static_cast<BlockTQ2_0*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    const float d = ternary_amax(x);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int k = 0; k < 2; ++k)
      for (int m = 0; m < 32; ++m) {
        uint8_t q = 0;
        for (int l = 0; l < 4; ++l)
          q = static_cast<uint8_t>(q + ((ternary_code(x[128 * k + 32 * l + m] * id) & 3) << (2 * l)));
        y[i].qs[32 * k + m] = q;
      }
  }
}

float vec_dot_tq2_0_ref(int64_t n, const void* w, const void* a) {
  const BlockTQ2_0* x = static_cast<const BlockTQ2_0*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  uint8_t c[QK_K];
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    tq2_unpack(x[i], c);
    int sumi = 0;
    for (int j = 0; j < QK_K; ++j) sumi += (c[j] - 1) * y[i].qs[j];
    sum += static_cast<double>(h2f(x[i].d) * y[i].d) * sumi;
  }
  return static_cast<float>(sum);
}

}  // namespace swapmoe::quant
