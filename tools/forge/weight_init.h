#pragma once
// Deterministic random weights for forged models. Every value is a pure function of
// (seed, tensor name, element index), computed with the counter-based splitmix64, so any
// chunk of any tensor can be generated independently and in parallel and the result does
// not depend on the thread count or chunking.
//
// Scales are chosen so a forged model behaves like a trained one in the ways tests need:
//  - matrices: std 1/sqrt(fan_in) (fan_in = row length), so activations keep an RMS near 1;
//  - norms: 1 + small noise; biases: small;
//  - router: std 3/sqrt(n_embd), so routing is peaked rather than uniform;
//  - the logit projection (output, or token_embd when tied): std 6/sqrt(n_embd) with a
//    log-normal scale per vocabulary row, so the top logit usually stands clear of the
//    second and greedy decoding is not decided by near-ties.

#include <cmath>
#include <cstdint>
#include <string>

#include "model/arch.h"

namespace swapmoe::forge {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// An approximately standard normal value from one 64-bit draw: the sum of four 16-bit
// uniforms (Irwin-Hall), centred and scaled to unit variance. Bounded by +-3.46, which
// is harmless for weights and much cheaper than Box-Muller.
inline float normalish(uint64_t bits) {
  const uint64_t s = (bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) + ((bits >> 32) & 0xFFFF) + (bits >> 48);
  constexpr double kMean = 2.0 * 65535.0, kScale = 1.7320508075688772 / 65536.0;  // sqrt(3) / 2^16
  return static_cast<float>((static_cast<double>(s) - kMean) * kScale);
}

// FNV-1a of the name, mixed with the user seed: the stream of one tensor.
inline uint64_t tensor_stream(uint64_t seed, const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001B3ull;
  return splitmix64(seed ^ splitmix64(h));
}

struct InitRule {
  float mean = 0;       // added to every value (norms: 1)
  float std = 1;        // of the normal-ish noise
  float row_lognormal = 0;  // sigma of a per-row log-normal scale (0: none)
};

// The initialisation of one tensor, from its role in the architecture table.
// `logits_tensor` marks the tensor that projects to the vocabulary.
inline InitRule init_rule(const TensorSpec& s, int64_t n_embd, bool logits_tensor) {
  InitRule r;
  const double fan_in = static_cast<double>(s.ne.empty() ? 1 : s.ne[0]);
  if (logits_tensor) {
    r.std = static_cast<float>(6.0 / std::sqrt(static_cast<double>(n_embd)));
    r.row_lognormal = 0.5f;
    return r;
  }
  switch (s.role) {
    case TensorRole::TokenEmbd: r.std = 1.0f; break;
    case TensorRole::Output: r.std = static_cast<float>(1.0 / std::sqrt(fan_in)); break;
    case TensorRole::Norm: r.mean = 1.0f; r.std = 0.05f; break;
    case TensorRole::Bias: r.std = 0.02f; break;
    case TensorRole::Router: r.std = static_cast<float>(3.0 / std::sqrt(fan_in)); break;
    case TensorRole::SharedGate: r.std = static_cast<float>(1.0 / std::sqrt(fan_in)); break;
    case TensorRole::ExpProbsBias: r.std = 0.1f; break;
    case TensorRole::Matrix:
    case TensorRole::Experts: r.std = static_cast<float>(1.0 / std::sqrt(fan_in)); break;
  }
  return r;
}

// Fills out[ncols] with row `row` of a tensor whose stream is `stream`.
inline void generate_row(uint64_t stream, const InitRule& rule, int64_t row, int64_t ncols, float* out) {
  float scale = rule.std;
  if (rule.row_lognormal != 0) {
    // A second stream (stream ^ constant) keeps the row scales independent of the values.
    const float z = normalish(splitmix64((stream ^ 0xA5A5A5A5A5A5A5A5ull) + static_cast<uint64_t>(row)));
    scale *= std::exp(rule.row_lognormal * z);
  }
  const uint64_t base = stream + static_cast<uint64_t>(row) * static_cast<uint64_t>(ncols);
  for (int64_t i = 0; i < ncols; ++i) out[i] = rule.mean + scale * normalish(splitmix64(base + static_cast<uint64_t>(i)));
}

}  // namespace swapmoe::forge
