// Scalar reference kernels for the k-quants (Q2_K..Q6_K, 256-element super-blocks) and
// their activation type Q8_K.
//
// Quantizers follow ggml's quantize_row_q*_K_ref (the path llama-quantize takes without
// an importance matrix); dequantizers repeat ggml's float expressions exactly, so
// to_float matches llama.cpp bit for bit. Dot products first unpack a block to integer
// levels, then apply ggml's formula
//   sum_block  d_y * ( d_x * sum_g scale_g * <q_g, y_g>  -  dmin_x * sum_g min_g * bsum_g )
// with exact integer inner sums and a double accumulator.

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/kernels.h"
#include "quant/kquant_search.h"
#include "util/fp16.h"

namespace swapmoe::quant {
namespace {

constexpr float kGroupMaxEps = 1e-15f;

float h2f(uint16_t h) { return fp16_to_fp32(h); }

// Unpackers: integer level of element e (0..255) of one block. The scale of element e
// is always scales[e / 16] (Q2_K, Q3_K, Q6_K) or scales[e / 32] (Q4_K, Q5_K).
void levels_q2_k(const BlockQ2_K& b, int8_t q[QK_K]) {
  for (int e = 0; e < QK_K; ++e) q[e] = static_cast<int8_t>((b.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3);
}
void levels_q3_k(const BlockQ3_K& b, int8_t q[QK_K]) {
  for (int e = 0; e < QK_K; ++e) {
    const int low = (b.qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    q[e] = static_cast<int8_t>(low - ((b.hmask[e % 32] & (1 << (e / 32))) ? 0 : 4));
  }
}
void levels_q4_k(const BlockQ4_K& b, int8_t q[QK_K]) {
  for (int e = 0; e < QK_K; ++e) {
    const uint8_t byte = b.qs[(e / 64) * 32 + e % 32];
    q[e] = static_cast<int8_t>((e % 64) < 32 ? (byte & 0xF) : (byte >> 4));
  }
}
void levels_q5_k(const BlockQ5_K& b, int8_t q[QK_K]) {
  for (int e = 0; e < QK_K; ++e) {
    const uint8_t byte = b.qs[(e / 64) * 32 + e % 32];
    const int low = (e % 64) < 32 ? (byte & 0xF) : (byte >> 4);
    q[e] = static_cast<int8_t>(low + ((b.qh[e % 32] & (1 << (e / 32))) ? 16 : 0));
  }
}
void levels_q6_k(const BlockQ6_K& b, int8_t q[QK_K]) {
  for (int e = 0; e < QK_K; ++e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t lo = b.ql[64 * h + l + 32 * (k & 1)];
    const int low = (k < 2) ? (lo & 0xF) : (lo >> 4);
    const int high = (b.qh[32 * h + l] >> (2 * k)) & 3;
    q[e] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

// Packs 2-bit levels as Q2_K/Q3_K store them: byte (j/4 + l) of each 128-element half
// holds elements l, l+32, l+64, l+96 in bit pairs 0..3.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < QK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// Q4_K / Q5_K: packs 8 6-bit scales and 8 6-bit mins into 12 bytes.
void pack_k4_scales(const uint8_t ls[8], const uint8_t lm[8], uint8_t* s) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      s[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      s[j - 0] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
}

// Shared by Q4_K and Q5_K: per 32-element sub-block scale/min search, then 6-bit
// quantization of scales and mins against their maxima, then requantization of every
// element with the final (rounded) scale and min.
void quantize_k4_like(const float* x, int nmax, float rmin, int nstep, uint16_t* d_out, uint16_t* dmin_out,
                      uint8_t* scales_out, uint8_t L[QK_K]) {
  uint8_t Laux[32];
  float weights[32], mins[QK_K / 32], scales[QK_K / 32];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < QK_K / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < QK_K / 32; ++j) {
    // ggml stores nearest_int() into a uint8_t before MIN(63, .); mirror the truncation.
    ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
  }
  pack_k4_scales(ls, lm, scales_out);
  *d_out = fp32_to_fp16(max_scale / 63.f);
  *dmin_out = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < QK_K / 32; ++j) {
    uint8_t sc, m;
    get_scale_min_k4(j, scales_out, &sc, &m);
    const float d = h2f(*d_out) * sc;
    if (!d) continue;
    const float dm = h2f(*dmin_out) * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------- Q2_K

void to_float_q2_k_ref(const void* src, float* dst, int64_t n) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(src);
  int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d), min = h2f(x[i].dmin);
    levels_q2_k(x[i], q);
    for (int e = 0; e < QK_K; ++e) {
      const uint8_t sc = x[i].scales[e / 16];
      const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
      dst[i * QK_K + e] = dl * q[e] - ml;
    }
  }
}

void from_float_q2_k_ref(const float* src, void* dst, int64_t n) {
  BlockQ2_K* y = static_cast<BlockQ2_K*>(dst);
  uint8_t L[QK_K], Laux[16];
  float weights[16], mins[QK_K / 16], scales[QK_K / 16];
  const float q4scale = 15.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      y[i].d = fp32_to_fp16(max_scale / q4scale);
    } else {
      for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = 0;
      y[i].d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
      y[i].dmin = fp32_to_fp16(max_min / q4scale);
    } else {
      y[i].dmin = fp32_to_fp16(0.f);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = h2f(y[i].d) * (y[i].scales[j] & 0xF);
      if (!d) continue;
      const float dm = h2f(y[i].dmin) * (y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
      }
    }
    pack_2bit(L, y[i].qs);
  }
}

float vec_dot_q2_k_ref(int64_t n, const void* w, const void* a) {
  const BlockQ2_K* x = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  int8_t q[QK_K];
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    levels_q2_k(x[i], q);
    int sumi = 0, summ = 0;
    for (int g = 0; g < QK_K / 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * g + l] * y[i].qs[16 * g + l];
      sumi += (x[i].scales[g] & 0xF) * s;
      summ += (x[i].scales[g] >> 4) * y[i].bsums[g];
    }
    sum += static_cast<double>(y[i].d * h2f(x[i].d)) * sumi - static_cast<double>(y[i].d * h2f(x[i].dmin)) * summ;
  }
  return static_cast<float>(sum);
}

// ---------------------------------------------------------------------------------- Q3_K

void to_float_q3_k_ref(const void* src, float* dst, int64_t n) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(src);
  int8_t q[QK_K], sc[16];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d_all = h2f(x[i].d);
    levels_q3_k(x[i], q);
    unpack_q3_k_scales(x[i].scales, sc);
    for (int e = 0; e < QK_K; ++e) {
      const float dl = d_all * (sc[e / 16] - 32);
      dst[i * QK_K + e] = dl * q[e];
    }
  }
}

void from_float_q3_k_ref(const float* src, void* dst, int64_t n) {
  BlockQ3_K* y = static_cast<BlockQ3_K*>(dst);
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
      scales[j] = make_q3_quants_rmse(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    std::memset(y[i].scales, 0, 12);
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < QK_K / 16; ++j) {
        int l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
        l = std::max(-32, std::min(31, l)) + 32;
        if (j < 8) y[i].scales[j] = static_cast<uint8_t>(l & 0xF);
        else y[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        l >>= 4;
        y[i].scales[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
      }
      y[i].d = fp32_to_fp16(1 / iscale);
    } else {
      y[i].d = fp32_to_fp16(0.f);
    }
    int8_t sc[16];
    unpack_q3_k_scales(y[i].scales, sc);
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = h2f(y[i].d) * (sc[j] - 32);
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
      }
    }
    // High bit of element j goes to bit (j / 32) of hmask[j % 32]; the low two bits are
    // packed like Q2_K.
    std::memset(y[i].hmask, 0, QK_K / 8);
    uint8_t low[QK_K];
    for (int j = 0; j < QK_K; ++j) {
      int l = L[j];
      if (l > 3) {
        y[i].hmask[j % 32] |= static_cast<uint8_t>(1 << (j / 32));
        l -= 4;
      }
      low[j] = static_cast<uint8_t>(l);
    }
    pack_2bit(low, y[i].qs);
  }
}

float vec_dot_q3_k_ref(int64_t n, const void* w, const void* a) {
  const BlockQ3_K* x = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  int8_t q[QK_K], sc[16];
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    levels_q3_k(x[i], q);
    unpack_q3_k_scales(x[i].scales, sc);
    int sumi = 0;
    for (int g = 0; g < QK_K / 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * g + l] * y[i].qs[16 * g + l];
      sumi += (sc[g] - 32) * s;
    }
    sum += static_cast<double>(h2f(x[i].d) * y[i].d) * sumi;
  }
  return static_cast<float>(sum);
}

// ---------------------------------------------------------------------------------- Q4_K

void to_float_q4_k_ref(const void* src, float* dst, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(src);
  int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d), min = h2f(x[i].dmin);
    levels_q4_k(x[i], q);
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      get_scale_min_k4(s, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      for (int l = 0; l < 32; ++l) dst[i * QK_K + 32 * s + l] = d1 * q[32 * s + l] - m1;
    }
  }
}

void from_float_q4_k_ref(const float* src, void* dst, int64_t n) {
  BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    quantize_k4_like(src + i * QK_K, 15, -1.f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
    uint8_t* q = y[i].qs;
    for (int j = 0; j < QK_K; j += 64) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
  }
}

float vec_dot_q4_k_ref(int64_t n, const void* w, const void* a) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  int8_t q[QK_K];
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    levels_q4_k(x[i], q);
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x[i].scales, sc, mn);
    int sumi = 0, summ = 0;
    for (int s = 0; s < 8; ++s) {
      int t = 0;
      for (int l = 0; l < 32; ++l) t += q[32 * s + l] * y[i].qs[32 * s + l];
      sumi += sc[s] * t;
      summ += mn[s] * (y[i].bsums[2 * s] + y[i].bsums[2 * s + 1]);
    }
    sum += static_cast<double>(h2f(x[i].d) * y[i].d) * sumi - static_cast<double>(h2f(x[i].dmin) * y[i].d) * summ;
  }
  return static_cast<float>(sum);
}

// ---------------------------------------------------------------------------------- Q5_K

void to_float_q5_k_ref(const void* src, float* dst, int64_t n) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(src);
  int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d), min = h2f(x[i].dmin);
    levels_q5_k(x[i], q);
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      get_scale_min_k4(s, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      for (int l = 0; l < 32; ++l) dst[i * QK_K + 32 * s + l] = d1 * q[32 * s + l] - m1;
    }
  }
}

void from_float_q5_k_ref(const float* src, void* dst, int64_t n) {
  BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    quantize_k4_like(src + i * QK_K, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
    uint8_t* qh = y[i].qh;
    uint8_t* ql = y[i].qs;
    std::memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n0 = 0; n0 < QK_K; n0 += 64) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n0 + j];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] |= m1;
        }
        int l2 = L[n0 + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          qh[j] |= m2;
        }
        ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
      m1 = static_cast<uint8_t>(m1 << 2);
      m2 = static_cast<uint8_t>(m2 << 2);
      ql += 32;
    }
  }
}

float vec_dot_q5_k_ref(int64_t n, const void* w, const void* a) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  int8_t q[QK_K];
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    levels_q5_k(x[i], q);
    uint8_t sc[8], mn[8];
    unpack_k4_scales(x[i].scales, sc, mn);
    int sumi = 0, summ = 0;
    for (int s = 0; s < 8; ++s) {
      int t = 0;
      for (int l = 0; l < 32; ++l) t += q[32 * s + l] * y[i].qs[32 * s + l];
      sumi += sc[s] * t;
      summ += mn[s] * (y[i].bsums[2 * s] + y[i].bsums[2 * s + 1]);
    }
    sum += static_cast<double>(h2f(x[i].d) * y[i].d) * sumi - static_cast<double>(h2f(x[i].dmin) * y[i].d) * summ;
  }
  return static_cast<float>(sum);
}

// ---------------------------------------------------------------------------------- Q6_K

void to_float_q6_k_ref(const void* src, float* dst, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(src);
  int8_t q[QK_K];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    levels_q6_k(x[i], q);
    for (int e = 0; e < QK_K; ++e) dst[i * QK_K + e] = d * x[i].scales[e / 16] * q[e];
  }
}

void from_float_q6_k_ref(const float* src, void* dst, int64_t n) {
  BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      const float scale = make_qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = h2f(y[i].d) * y[i].scales[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < QK_K; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                     ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

float vec_dot_q6_k_ref(int64_t n, const void* w, const void* a) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  int8_t q[QK_K];
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    levels_q6_k(x[i], q);
    int sumi = 0;
    for (int g = 0; g < QK_K / 16; ++g) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * g + l] * y[i].qs[16 * g + l];
      sumi += x[i].scales[g] * s;
    }
    sum += static_cast<double>(h2f(x[i].d) * y[i].d) * sumi;
  }
  return static_cast<float>(sum);
}

// ---------------------------------------------------------------------------------- Q8_K

void to_float_q8_k_ref(const void* src, float* dst, int64_t n) {
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i)
    for (int j = 0; j < QK_K; ++j) dst[i * QK_K + j] = x[i].d * x[i].qs[j];
}

// ggml's quantize_row_q8_K_ref, which is also what its x86 build runs for activations:
// the signed value of largest magnitude (first one on ties) maps to -127, rounding is to
// nearest even, d = 1 / iscale is kept in fp32, and bsums hold per-16 sums of the quants.
void from_float_q8_k_ref(const float* src, void* dst, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float* x = src + i * QK_K;
    float max = 0, amax = 0;
    for (int j = 0; j < QK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (!amax) {
      // ggml leaves bsums untouched here; zeros are what any sane reader expects.
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) {
      const float v = iscale * x[j];
      // |v| <= 127 * (1 + 2^-23) by construction, unless the input holds inf/NaN.
      const int q = (v > -128.f && v < 128.f) ? nearest_int(v) : 0;
      y[i].qs[j] = static_cast<int8_t>(std::min(127, q));
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

float vec_dot_q8_k_ref(int64_t n, const void* w, const void* a) {
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(w);
  const BlockQ8_K* y = static_cast<const BlockQ8_K*>(a);
  double sum = 0;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int sumi = 0;
    for (int j = 0; j < QK_K; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    sum += static_cast<double>(x[i].d * y[i].d) * sumi;
  }
  return static_cast<float>(sum);
}

}  // namespace swapmoe::quant
