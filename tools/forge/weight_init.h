#pragma once
// Deterministic random weights for forged models. Every value is a pure function of
// (seed, tensor name, element index), computed with the counter-based splitmix64, so any
// chunk of any tensor can be generated independently and in parallel and the result does
// not depend on the thread count or chunking.
//
// Scales are chosen so a forged model is conditioned like a trained one. Conformance tests
// compare perplexities within 0.5%, i.e. mean nll within 0.005 nats, so rounding noise (Q8
// activation rounding, F16 KV, summation order) must not be amplified:
//  - matrices: std 1/sqrt(fan_in) (fan_in = row length), so activations keep an RMS near 1;
//  - the residual stream is dominated by the token embedding (std 1): every layer's output
//    projection (attn_output, ffn_down, ffn_down_exps, ffn_down_shexp) has std
//    1/sqrt(fan_in * 2 * n_layer), as in GPT-2, so a noisy layer moves the stream little;
//  - norms: 1 + small noise; biases: small;
//  - router: std 3/sqrt(n_embd), so routing is peaked but not one-hot;
//  - the logit projection (output, or token_embd when tied): std 2.5/sqrt(n_embd) with a mild
//    log-normal scale per vocabulary row, so logits have std ~2.5 (mean nll of random text is
//    about ln(n_vocab) + 3, not e^70) while the top logit still usually stands clear of the
//    second (typical top-1/top-2 gap ~0.5 for a 150k vocabulary).

#include <cmath>
#include <cstdint>
#include <string>

#include "arch/arch.h"

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

// True for the projections that write into the residual stream.
inline bool is_residual_output(const std::string& name) {
  for (const char* base : {".attn_output.", ".ffn_down.", ".ffn_down_exps.", ".ffn_down_shexp."})
    if (name.find(base) != std::string::npos) return true;
  return false;
}

// The initialisation of one tensor, from its role in the architecture table.
// `logits_tensor` marks the tensor that projects to the vocabulary. `n_layer` (0: unknown)
// scales the residual output projections down; `tied` says token_embd is also the logit
// projection, so the residual stream starts at the logit scale and the layer outputs are
// scaled by the same factor to stay small relative to it.
inline constexpr double kLogitStd = 2.5;
// `clamped_glu` (gpt-oss's swiglu_oai, which clamps gate and up at 7): the experts' gate/up
// projections get std 3/sqrt(fan_in), so that a few percent of their values pass the clamp
// and a forged model exercises it, and the down projections 1/3 of their usual std to keep
// the layer's output at the usual scale.
inline InitRule init_rule(const TensorSpec& s, int64_t n_embd, bool logits_tensor, int64_t n_layer = 0,
                          bool tied = false, bool clamped_glu = false) {
  InitRule r;
  const double fan_in = static_cast<double>(s.ne.empty() ? 1 : s.ne[0]);
  const double logit_std = kLogitStd / std::sqrt(static_cast<double>(n_embd));
  if (logits_tensor) {
    r.std = static_cast<float>(logit_std);
    r.row_lognormal = 0.25f;
    return r;
  }
  switch (s.role) {
    case TensorRole::TokenEmbd: r.std = 1.0f; break;
    case TensorRole::Output: r.std = static_cast<float>(1.0 / std::sqrt(fan_in)); break;
    case TensorRole::Norm: r.mean = 1.0f; r.std = 0.05f; break;
    case TensorRole::Bias:
      r.std = 0.02f;
      // gpt-oss's router and output biases: of the scale of what they are added to (router
      // logits std ~3, the residual stream std ~1), so that the tests see them.
      if (s.name.find(".ffn_gate_inp.bias") != std::string::npos) r.std = 1.0f;
      if (s.name.find(".attn_output.bias") != std::string::npos) r.std = 0.1f;
      break;
    case TensorRole::Router: r.std = static_cast<float>(3.0 / std::sqrt(fan_in)); break;
    case TensorRole::SharedGate: r.std = static_cast<float>(1.0 / std::sqrt(fan_in)); break;
    case TensorRole::ExpProbsBias: r.std = 0.1f; break;
    // gpt-oss: a sink logit per head of the order of the attention scores; per-expert biases
    // large enough that a missing or misplaced one shows in the logits.
    case TensorRole::Sinks: r.std = 1.0f; break;
    case TensorRole::ExpertBias: r.std = 0.3f; break;
    case TensorRole::Matrix:
    case TensorRole::Experts: {
      double std = 1.0 / std::sqrt(fan_in);
      // MLA's attn_k_b [nope, kv_lora_rank, n_head] decompresses the latent (length
      // kv_lora_rank, RMS 1 after kv_a_norm) into keys: scaled by the latent length, keys
      // get RMS 1 and attention scores std ~1, as for the other architectures.
      if (s.name.find(".attn_k_b.") != std::string::npos && s.ne.size() >= 2)
        std = 1.0 / std::sqrt(static_cast<double>(s.ne[1]));
      if (clamped_glu && s.role == TensorRole::Experts) {
        if (s.name.find(".ffn_down_exps.") != std::string::npos) std /= 3.0;
        else std *= 3.0;
      }
      if (n_layer > 0 && is_residual_output(s.name)) {
        std /= std::sqrt(2.0 * static_cast<double>(n_layer));
        if (tied) std *= logit_std;  // the embedding rows have std logit_std, not 1
      }
      r.std = static_cast<float>(std);
      break;
    }
  }
  return r;
}

// The standard deviation of row `row` (rule.std times the row's log-normal scale, if any).
inline float row_std(uint64_t stream, const InitRule& rule, int64_t row) {
  float scale = rule.std;
  if (rule.row_lognormal != 0) {
    // A second stream (stream ^ constant) keeps the row scales independent of the values.
    const float z = normalish(splitmix64((stream ^ 0xA5A5A5A5A5A5A5A5ull) + static_cast<uint64_t>(row)));
    scale *= std::exp(rule.row_lognormal * z);
  }
  return scale;
}

// Fills out[ncols] with row `row` of a tensor whose stream is `stream`.
inline void generate_row(uint64_t stream, const InitRule& rule, int64_t row, int64_t ncols, float* out) {
  const float scale = row_std(stream, rule, row);
  const uint64_t base = stream + static_cast<uint64_t>(row) * static_cast<uint64_t>(ncols);
  for (int64_t i = 0; i < ncols; ++i) out[i] = rule.mean + scale * normalish(splitmix64(base + static_cast<uint64_t>(i)));
}

}  // namespace swapmoe::forge
