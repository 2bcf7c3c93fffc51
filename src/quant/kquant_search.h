#pragma once
// Per-sub-block scale searches for the k-quant reference quantizers (see the .cpp).

#include <cstdint>

namespace swapmoe::quant {

// Symmetric levels in [-nmax, nmax-1] with a signed scale, weights w = x^2 (ggml's
// make_qx_quants with rmse_type 1 and no importance weights). L gets level + nmax.
float make_qx_quants_rmse1(int n, int nmax, const float* x, int8_t* L);

// Symmetric levels with coordinate-descent refinement (ggml's make_q3_quants, do_rmse).
// L gets level + nmax.
float make_q3_quants_rmse(int n, int nmax, const float* x, int8_t* L);

// Asymmetric levels in [0, nmax] with scale and min (ggml's make_qkx2_quants). Returns
// the scale; *the_min gets minus the (non-positive) offset.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

}  // namespace swapmoe::quant
