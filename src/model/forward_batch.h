#pragma once
// Scratch and helpers of the forward pass over a span of tokens (forward.cpp, moe.cpp).
//
// A prompt is evaluated in chunks of up to prefill_chunk_tokens() tokens, a decoded token
// alone. Within a span every layer runs its products over all its tokens (ops/matmul.h;
// the matrix-vector kernels for one token), attention runs per token over the KV cache,
// and each MoE expert that any token chose runs once over the tokens that chose it.

#include <array>
#include <cstdint>
#include <vector>

#include "arch/config.h"
#include "expert/expert_store.h"
#include "model/attention_mla.h"
#include "ops/matmul.h"

namespace swapmoe {

// rows x n activations converted once per vec_dot_type and shared by every matrix that
// multiplies them (q/k/v, the router, all experts), like ActCache for one token.
class BatchActs {
 public:
  // Forgets earlier conversions; x [rows][n] must stay valid and unchanged while in use.
  void reset(const float* x, int64_t rows, int64_t n, ThreadPool* pool) {
    x_ = x;
    rows_ = rows;
    n_ = n;
    pool_ = rows > 1 ? pool : nullptr;  // one row converts faster than a pool wakes up
    for (auto& s : slots_) s.used = false;
  }
  const QuantizedActivations& get(GgmlType weight_type);

 private:
  struct Slot {
    bool used = false;
    QuantizedActivations qa;
  };
  const float* x_ = nullptr;
  int64_t rows_ = 0, n_ = 0;
  ThreadPool* pool_ = nullptr;
  std::array<Slot, 6> slots_;
};

// Buffers of one span of tokens; vectors grow to the largest span seen and are then
// reused. Shapes: T = tokens in the span, E = n_embd.
struct Scratch {
  std::vector<float> x, xn, proj;          // [T][E] residual stream, normed input, block output
  std::vector<float> q, k, v, attn;        // [T][n_head*hd], [T][n_kv*hd] x2, [T][n_head*hd_v]
  MlaScratch mla;                          // multi-head latent attention (attention_mla.h)
  BatchActs acts;                          // conversions of the current block input
  QuantizedActivations down_act;           // dense FFN: converted silu(gate)*up
  std::vector<float> gate, up, ffn_out;    // dense / shared FFN: [T][ff] x2, [T][E]
  // MoE
  std::vector<float> logits, weights, shexp_logit;  // [T][n_expert], [T][n_used], [T]
  std::vector<int32_t> ids;                         // [T][n_used]
  std::vector<int64_t> row_of;                      // [T][n_used]: row of (token, slot) in moe_out
  std::vector<int64_t> first, fill;                 // [n_expert + 1]: expert e's rows [first[e], first[e+1]); filling them
  std::vector<int32_t> tokens;                      // [T*n_used]: the token of each moe_out row
  std::vector<int32_t> used;                        // experts chosen by any token, by id
  std::vector<float> moe_gate, moe_up, moe_out;     // [T*n_used][ff_exp] x2, [T*n_used][E]
  std::vector<QuantizedActivations> exp_in_gate, exp_in_up, exp_in_down;  // per expert of a group
  std::vector<AcquiredExpert> group;                // experts handed out together
  std::vector<int32_t> pending;                     // requested, not yet handed out
  std::vector<MatmulJob> jobs;
};

// prefill_bytes_per_token(cfg) (model/footprint.h) estimates Scratch per token of a
// chunk, for chunk sizing and the budget: every buffer above must stay inside it.

// Tokens per chunk: 512 (llama.cpp's default micro-batch) when the scratch is not limited,
// else as many as `scratch_bytes` allows (at least 1).
int64_t prefill_chunk_tokens(const ModelConfig& cfg, uint64_t scratch_bytes);

// Wall time per phase of forward_batch, summed over the calls since the last print, for
// profiling (printed to stderr after each forward_batch of more than one token when
// SWAPMOE_PREFILL_PROFILE is set; otherwise nothing is measured).
enum class PrefillPhase { Norms, AttnProj, Rope, AbsorbKb, Attention, AbsorbVb, AttnOut, Router, Gather, GateUp,
                          Swiglu, Down, Shared, Combine, DenseFfn, Logits, kCount };
class PrefillTimer {
 public:
  explicit PrefillTimer(PrefillPhase p);
  ~PrefillTimer();
  PrefillTimer(const PrefillTimer&) = delete;
  PrefillTimer& operator=(const PrefillTimer&) = delete;
  static bool enabled();
  static void print_and_reset(int64_t tokens, double seconds);

 private:
  PrefillPhase phase_;
  int64_t start_ns_ = 0;
};

}  // namespace swapmoe
