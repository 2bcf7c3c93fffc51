// Scalar reference kernels of the grid-based i-quants: IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS,
// IQ3_S, IQ1_S, IQ1_M (256-element super-blocks, dot products against Q8_K activations).
//
// Dequantizers repeat ggml's float expressions in ggml's order, so to_float matches
// llama.cpp's bit for bit. Dot products compute each block's integer sums exactly and then
// do ggml's per-block float step in ggml's generic order, in float:
//   IQ2/IQ3 : sumf += (d_x * d_y) * bsum;  result = c * sumf  (c = 1/8, 1/4 or 1)
//   IQ1_S/M : sumf += (d_x * d_y) * (sumi + 0.125 * sumi_delta)
// The SIMD kernels (simd_iq.inc) compute the same integers and run this same float
// sequence, so they are bitwise equal to these references.
//
// There is no quantizer here: llama.cpp needs an importance matrix for most of these types
// (and a grid search for all of them); from_float throws.

#include <cstring>

#include "quant/blocks.h"
#include "quant/iq_grids.h"
#include "quant/kernels.h"
#include "util/error.h"
#include "util/fp16.h"

namespace swapmoe::quant {
namespace {

float h2f(uint16_t h) { return fp16_to_fp32(h); }

const uint8_t* grid_bytes(const uint64_t* g, int index) { return reinterpret_cast<const uint8_t*>(g + index); }
const uint8_t* grid_bytes(const uint32_t* g, int index) { return reinterpret_cast<const uint8_t*>(g + index); }

// n levels of one group, scaled and signed (bit j of signs: element j negative).
void emit(float db, const uint8_t* grid, uint8_t signs, int shift, int n, float* y) {
  for (int j = 0; j < n; ++j) y[j] = db * grid[j] * (signs >> (j + shift) & 1 ? -1.f : 1.f);
}

// Integer <signed levels, q8> of a group of n.
int dot_group(const uint8_t* grid, uint8_t signs, int shift, int n, const int8_t* q8) {
  int s = 0;
  for (int j = 0; j < n; ++j) s += (signs >> (j + shift) & 1 ? -1 : 1) * grid[j] * q8[j];
  return s;
}

uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// IQ2_XXS: the per-32 pair of words (indices, then signs + scale).
void iq2xxs_words(const BlockIQ2_XXS& b, int ib, uint32_t& idx, uint32_t& sgn) {
  idx = load_u32(b.qs + 4 * ib);
  sgn = load_u32(b.qs + 4 * ib + 2);
}

int iq2s_index(const BlockIQ2_S& b, int ib, int l) { return b.qs[4 * ib + l] | ((b.qh[ib] << (8 - 2 * l)) & 0x300); }
int iq3s_index(const BlockIQ3_S& b, int k) {  // k = 0..63 (group of 4)
  return b.qs[k] | ((b.qh[k / 8] << (8 - k % 8)) & 256);
}
int iq1s_index(const BlockIQ1_S& b, int ib, int l) { return b.qs[4 * ib + l] | (((b.qh[ib] >> (3 * l)) & 7) << 8); }
int iq1m_index(const BlockIQ1_M& b, int ib, int l) {
  return b.qs[4 * ib + l] | ((static_cast<uint16_t>(b.qh[2 * ib + l / 2]) << (8 - 4 * (l % 2))) & 0x700);
}
// IQ1_M: 3-bit scale of half h (0, 1) of sub-block ib.
int iq1m_ls(const BlockIQ1_M& b, int ib, int h) {
  uint16_t sc;
  std::memcpy(&sc, b.scales + 2 * (ib / 2), 2);
  return 2 * ((sc >> (6 * (ib % 2) + 3 * h)) & 7) + 1;
}

}  // namespace

// ------------------------------------------------------------------------------- IQ2_XXS

void to_float_iq2_xxs_ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ2_XXS*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      uint32_t idx, sgn;
      iq2xxs_words(x[i], ib, idx, sgn);
      const float db = d * (0.5f + (sgn >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l, y += 8)
        emit(db, grid_bytes(kIq2xxsGrid, (idx >> (8 * l)) & 255), iq_signs8(sgn >> (7 * l)), 0, 8, y);
    }
  }
}

float vec_dot_iq2_xxs_ref(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ2_XXS*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = yb[i].qs;
    int32_t bsum = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      uint32_t idx, sgn;
      iq2xxs_words(x[i], ib, idx, sgn);
      int32_t sumi = 0;
      for (int l = 0; l < 4; ++l, q8 += 8)
        sumi += dot_group(grid_bytes(kIq2xxsGrid, (idx >> (8 * l)) & 255), iq_signs8(sgn >> (7 * l)), 0, 8, q8);
      bsum += sumi * static_cast<int32_t>(2 * (sgn >> 28) + 1);
    }
    sumf += h2f(x[i].d) * yb[i].d * static_cast<float>(bsum);
  }
  return 0.125f * sumf;
}

// -------------------------------------------------------------------------------- IQ2_XS

void to_float_iq2_xs_ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ2_XS*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float db[2] = {d * (0.5f + (x[i].scales[ib] & 0xf)) * 0.25f, d * (0.5f + (x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint16_t q = x[i].qs[4 * ib + l];
        emit(db[l / 2], grid_bytes(kIq2xsGrid, q & 511), iq_signs8(q >> 9), 0, 8, y);
      }
    }
  }
}

float vec_dot_iq2_xs_ref(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ2_XS*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = yb[i].qs;
    int32_t bsum = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      int32_t sumi[2] = {0, 0};
      for (int l = 0; l < 4; ++l, q8 += 8) {
        const uint16_t q = x[i].qs[4 * ib + l];
        sumi[l / 2] += dot_group(grid_bytes(kIq2xsGrid, q & 511), iq_signs8(q >> 9), 0, 8, q8);
      }
      bsum += sumi[0] * (2 * (x[i].scales[ib] & 0xf) + 1) + sumi[1] * (2 * (x[i].scales[ib] >> 4) + 1);
    }
    sumf += h2f(x[i].d) * yb[i].d * static_cast<float>(bsum);
  }
  return 0.125f * sumf;
}

// --------------------------------------------------------------------------------- IQ2_S

void to_float_iq2_s_ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ2_S*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    const uint8_t* signs = x[i].qs + QK_K / 8;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float db[2] = {d * (0.5f + (x[i].scales[ib] & 0xf)) * 0.25f, d * (0.5f + (x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l, y += 8)
        emit(db[l / 2], grid_bytes(kIq2sGrid, iq2s_index(x[i], ib, l)), signs[4 * ib + l], 0, 8, y);
    }
  }
}

float vec_dot_iq2_s_ref(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ2_S*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = yb[i].qs;
    const uint8_t* signs = x[i].qs + QK_K / 8;
    int32_t bsum = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      int32_t sumi[2] = {0, 0};
      for (int l = 0; l < 4; ++l, q8 += 8)
        sumi[l / 2] += dot_group(grid_bytes(kIq2sGrid, iq2s_index(x[i], ib, l)), signs[4 * ib + l], 0, 8, q8);
      bsum += sumi[0] * (2 * (x[i].scales[ib] & 0xf) + 1) + sumi[1] * (2 * (x[i].scales[ib] >> 4) + 1);
    }
    sumf += h2f(x[i].d) * yb[i].d * static_cast<float>(bsum);
  }
  return 0.125f * sumf;
}

// ------------------------------------------------------------------------------- IQ3_XXS

void to_float_iq3_xxs_ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ3_XXS*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const uint32_t aux = load_u32(x[i].qs + QK_K / 4 + 4 * ib);
      const float db = d * (0.5f + (aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t s = iq_signs8(aux >> (7 * l));
        emit(db, grid_bytes(kIq3xxsGrid, qs[8 * ib + 2 * l]), s, 0, 4, y);
        emit(db, grid_bytes(kIq3xxsGrid, qs[8 * ib + 2 * l + 1]), s, 4, 4, y + 4);
      }
    }
  }
}

float vec_dot_iq3_xxs_ref(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ3_XXS*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = yb[i].qs;
    const uint8_t* qs = x[i].qs;
    int32_t bsum = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const uint32_t aux = load_u32(x[i].qs + QK_K / 4 + 4 * ib);
      int32_t sumi = 0;
      for (int l = 0; l < 4; ++l, q8 += 8) {
        const uint8_t s = iq_signs8(aux >> (7 * l));
        sumi += dot_group(grid_bytes(kIq3xxsGrid, qs[8 * ib + 2 * l]), s, 0, 4, q8);
        sumi += dot_group(grid_bytes(kIq3xxsGrid, qs[8 * ib + 2 * l + 1]), s, 4, 4, q8 + 4);
      }
      bsum += sumi * static_cast<int32_t>(2 * (aux >> 28) + 1);
    }
    sumf += h2f(x[i].d) * yb[i].d * static_cast<float>(bsum);
  }
  return 0.25f * sumf;
}

// --------------------------------------------------------------------------------- IQ3_S

void to_float_iq3_s_ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ3_S*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float db = d * (1 + 2 * ((x[i].scales[ib / 2] >> (4 * (ib % 2))) & 0xf));
      for (int l = 0; l < 4; ++l, y += 8) {
        const uint8_t s = x[i].signs[4 * ib + l];
        emit(db, grid_bytes(kIq3sGrid, iq3s_index(x[i], 8 * ib + 2 * l)), s, 0, 4, y);
        emit(db, grid_bytes(kIq3sGrid, iq3s_index(x[i], 8 * ib + 2 * l + 1)), s, 4, 4, y + 4);
      }
    }
  }
}

float vec_dot_iq3_s_ref(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ3_S*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = yb[i].qs;
    int32_t bsum = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      int32_t sumi = 0;
      for (int l = 0; l < 4; ++l, q8 += 8) {
        const uint8_t s = x[i].signs[4 * ib + l];
        sumi += dot_group(grid_bytes(kIq3sGrid, iq3s_index(x[i], 8 * ib + 2 * l)), s, 0, 4, q8);
        sumi += dot_group(grid_bytes(kIq3sGrid, iq3s_index(x[i], 8 * ib + 2 * l + 1)), s, 4, 4, q8 + 4);
      }
      bsum += sumi * (1 + 2 * ((x[i].scales[ib / 2] >> (4 * (ib % 2))) & 0xf));
    }
    sumf += h2f(x[i].d) * yb[i].d * static_cast<float>(bsum);
  }
  return sumf;
}

// --------------------------------------------------------------------------------- IQ1_S

void to_float_iq1_s_ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ1_S*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(x[i].d);
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const uint16_t qh = x[i].qh[ib];
      const float dl = d * (2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIq1Delta : kIq1Delta;
      for (int l = 0; l < 4; ++l, y += 8) {
        const auto* g = reinterpret_cast<const int8_t*>(kIq1sGrid + iq1s_index(x[i], ib, l));
        for (int j = 0; j < 8; ++j) y[j] = dl * (g[j] + delta);
      }
    }
  }
}

float vec_dot_iq1_s_ref(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ1_S*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = yb[i].qs;
    int32_t sumi = 0, sumi1 = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const uint16_t qh = x[i].qh[ib];
      const int ls = 2 * ((qh >> 12) & 7) + 1;
      int32_t lsum = 0;
      for (int l = 0; l < 4; ++l, q8 += 8) {
        const auto* g = reinterpret_cast<const int8_t*>(kIq1sGrid + iq1s_index(x[i], ib, l));
        for (int j = 0; j < 8; ++j) lsum += q8[j] * g[j];
      }
      sumi += ls * lsum;
      sumi1 += ls * (qh & 0x8000 ? -1 : 1) * (yb[i].bsums[2 * ib] + yb[i].bsums[2 * ib + 1]);
    }
    sumf += h2f(x[i].d) * yb[i].d * (static_cast<float>(sumi) + kIq1Delta * static_cast<float>(sumi1));
  }
  return sumf;
}

// --------------------------------------------------------------------------------- IQ1_M

void to_float_iq1_m_ref(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockIQ1_M*>(src);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = h2f(iq1m_scale(x[i].scales));
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float dl[2] = {d * iq1m_ls(x[i], ib, 0), d * iq1m_ls(x[i], ib, 1)};
      for (int l = 0; l < 4; ++l, y += 8) {
        const float delta = x[i].qh[2 * ib + l / 2] & (0x08 << (4 * (l % 2))) ? -kIq1Delta : kIq1Delta;
        const auto* g = reinterpret_cast<const int8_t*>(kIq1sGrid + iq1m_index(x[i], ib, l));
        for (int j = 0; j < 8; ++j) y[j] = dl[l / 2] * (g[j] + delta);
      }
    }
  }
}

float vec_dot_iq1_m_ref(int64_t n, const void* w, const void* a) {
  const auto* x = static_cast<const BlockIQ1_M*>(w);
  const auto* yb = static_cast<const BlockQ8_K*>(a);
  float sumf = 0.f;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const int8_t* q8 = yb[i].qs;
    int32_t sumi1 = 0, sumi2 = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      int32_t s1[2] = {0, 0}, s2[2] = {0, 0};
      for (int l = 0; l < 4; ++l, q8 += 8) {
        const auto* g = reinterpret_cast<const int8_t*>(kIq1sGrid + iq1m_index(x[i], ib, l));
        int32_t lsum1 = 0, lsum2 = 0;
        for (int j = 0; j < 8; ++j) {
          lsum1 += q8[j] * g[j];
          lsum2 += q8[j];
        }
        const int delta = x[i].qh[2 * ib + l / 2] & (0x08 << (4 * (l % 2))) ? -1 : 1;
        s1[l / 2] += lsum1;
        s2[l / 2] += lsum2 * delta;
      }
      const int ls1 = iq1m_ls(x[i], ib, 0), ls2 = iq1m_ls(x[i], ib, 1);
      sumi1 += s1[0] * ls1 + s1[1] * ls2;
      sumi2 += s2[0] * ls1 + s2[1] * ls2;
    }
    sumf += h2f(iq1m_scale(x[i].scales)) * yb[i].d * (static_cast<float>(sumi1) + kIq1Delta * static_cast<float>(sumi2));
  }
  return sumf;
}

// ------------------------------------------------------------------------- no quantizers

#define SWAPMOE_IQ_NO_QUANTIZER(t, name)                                                              \
  void from_float_##t##_ref(const float*, void*, int64_t) {                                         \
    fail("quantizing to " name " is not supported (llama.cpp needs an importance matrix and a grid " \
         "search for it); convert with llama-quantize");                                            \
  }
SWAPMOE_IQ_NO_QUANTIZER(iq2_xxs, "IQ2_XXS")
SWAPMOE_IQ_NO_QUANTIZER(iq2_xs, "IQ2_XS")
SWAPMOE_IQ_NO_QUANTIZER(iq2_s, "IQ2_S")
SWAPMOE_IQ_NO_QUANTIZER(iq3_xxs, "IQ3_XXS")
SWAPMOE_IQ_NO_QUANTIZER(iq3_s, "IQ3_S")
SWAPMOE_IQ_NO_QUANTIZER(iq1_s, "IQ1_S")
SWAPMOE_IQ_NO_QUANTIZER(iq1_m, "IQ1_M")
#undef SWAPMOE_IQ_NO_QUANTIZER

}  // namespace swapmoe::quant
