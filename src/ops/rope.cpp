// Rotary position embeddings, reproducing ggml's CPU rope (ggml_compute_forward_rope_flt)
// operation by operation in single precision, so that our rotated q/k agree with
// llama.cpp's to the last bit wherever the compilers agree on the float operations.
//
// The per-position "cache" of (cos, sin) pairs is built exactly as ggml builds it: theta
// starts at the position and is multiplied by theta_scale = base^(-2/n_rot) once per pair
// (a running product, not a fresh pow per pair: the rounding differs). The YaRN ramp and
// magnitude factor follow rope_yarn / rope_yarn_ramp / ggml_rope_yarn_corr_dims.

#include "ops/rope.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "util/error.h"

namespace swapmoe {

namespace {

// ggml_rope_yarn_corr_dim: the dimension index at which a rotation makes `n_rot_turns`
// full turns over the original context.
float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot_turns, float base) {
  return static_cast<float>(n_dims) *
         logf(static_cast<float>(n_ctx_orig) / (n_rot_turns * 2.0f * static_cast<float>(M_PI))) /
         (2.0f * logf(base));
}

float yarn_ramp(float low, float high, int64_t i0) {
  // ggml divides the *integer* pair index (i0 / 2) before converting to float.
  const float y = static_cast<float>(static_cast<int>(i0) / 2 - low) / std::max(0.001f, high - low);
  return 1.0f - std::min(1.0f, std::max(0.0f, y));
}

// Fills cache[0..n_rot) with (cos, sin) pairs for position pos (ggml_rope_cache_init with
// no frequency factors and the forward sign).
void build_cache(const RopeParams& p, int64_t pos, float* cache) {
  const int n_dims = static_cast<int>(p.n_rot);
  const float theta_scale = powf(p.freq_base, -2.0f / static_cast<float>(n_dims));

  float corr[2] = {0.0f, 0.0f};
  {
    const int n_ctx_orig = static_cast<int>(p.n_ctx_orig);
    const float start = floorf(yarn_corr_dim(n_dims, n_ctx_orig, p.beta_fast, p.freq_base));
    const float end = ceilf(yarn_corr_dim(n_dims, n_ctx_orig, p.beta_slow, p.freq_base));
    corr[0] = std::max(0.0f, start);
    corr[1] = std::min(static_cast<float>(n_dims - 1), end);
  }

  float theta = static_cast<float>(pos);
  for (int64_t i0 = 0; i0 < n_dims; i0 += 2) {
    const float theta_extrap = theta;  // frequency factor 1: theta / 1.0f is theta
    const float theta_interp = p.freq_scale * theta_extrap;
    float th = theta_interp;
    float mscale = p.attn_factor;
    if (p.ext_factor != 0.0f) {
      const float ramp_mix = yarn_ramp(corr[0], corr[1], i0) * p.ext_factor;
      th = theta_interp * (1.0f - ramp_mix) + theta_extrap * ramp_mix;
      mscale *= 1.0f + 0.1f * logf(1.0f / p.freq_scale);
    }
    cache[i0 + 0] = cosf(th) * mscale;
    cache[i0 + 1] = sinf(th) * mscale;
    theta *= theta_scale;
  }
}

}  // namespace

void rope_apply(const RopeParams& p, float* x, int64_t n_heads, int64_t head_dim, int64_t pos) {
  if (p.n_rot <= 0) return;
  if (p.n_rot % 2 != 0 || p.n_rot > head_dim)
    fail("rope: n_rot ", p.n_rot, " must be even and at most the head size ", head_dim);

  // One cache per call; a thread_local buffer avoids an allocation per token and layer.
  thread_local std::vector<float> cache;
  cache.resize(static_cast<size_t>(p.n_rot));
  build_cache(p, pos, cache.data());

  const int64_t n = p.n_rot;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    if (p.type == RopeType::Norm) {
      // Adjacent pairs (v[i0], v[i0 + 1]) use cache pair i0.
      for (int64_t i0 = 0; i0 < n; i0 += 2) {
        const float c = cache[i0], s = cache[i0 + 1];
        const float x0 = v[i0], x1 = v[i0 + 1];
        v[i0] = x0 * c - x1 * s;
        v[i0 + 1] = x0 * s + x1 * c;
      }
    } else {
      // Neox: pair (v[i], v[i + n/2]) uses cache pair 2i.
      const int64_t half = n / 2;
      for (int64_t i0 = 0; i0 < n; i0 += 2) {
        const int64_t ic = i0 / 2;
        const float c = cache[i0], s = cache[i0 + 1];
        const float x0 = v[ic], x1 = v[ic + half];
        v[ic] = x0 * c - x1 * s;
        v[ic + half] = x0 * s + x1 * c;
      }
    }
    // Dimensions n_rot..head_dim pass through unchanged (in place: nothing to do).
  }
}

}  // namespace swapmoe
