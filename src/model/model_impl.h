#pragma once
// The engine's Model: the loaded file, bound weights, expert store, KV cache, scratch
// buffers, and the forward pass over a span of tokens (forward.cpp, moe.cpp,
// attention_mla.cpp). Kept in a header so that tests and stores can reach the pieces; the
// public API is model.h.

#include <memory>
#include <span>
#include <vector>

#include "expert/expert_store.h"
#include "expert/router.h"
#include "gguf/gguf.h"
#include "model/attention_mla.h"
#include "model/forward_batch.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weights.h"
#include "ops/rope.h"

namespace swapmoe {

class ExpertPrefetcher;  // model/expert_prefetch.h

// One gated FFN (a dense layer or a shared expert): down(silu(gate x) * up x).
struct FfnWeights {
  MatrixRef gate, up, down;
};

class ModelImpl : public Model {
 public:
  // Binds and reads everything; throws Error on any problem with the file.
  ModelImpl(std::unique_ptr<GgufFile> file, const ModelOptions& opts, ExpertStoreProvider& experts);
  ~ModelImpl() override;

  const ModelConfig& config() const override { return cfg_; }
  const Tokenizer& tokenizer() const override { return *tok_; }
  const GgufFile& file() const override { return *file_; }
  int64_t n_ctx() const override { return n_ctx_; }
  ThreadPool& pool() override { return pool_; }
  const float* forward(int32_t token, int64_t pos) override;
  const float* forward_batch(const std::vector<int32_t>& tokens, int64_t pos0) override;
  std::vector<const float*> forward_multi(std::span<const SequenceTokens> batch) override;
  int64_t max_batch_tokens() const override;
  void reset() override { n_past_ = 0; }
  // Sequences (model.h). The selected sequence's state lives in kv_, mla_cache_ and
  // n_past_ (so the forward pass uses those members directly); the others wait in seqs_.
  int n_sequences() const override { return static_cast<int>(seqs_.size()); }
  int sequence() const override { return seq_; }
  void select_sequence(int s) override;
  int64_t n_past() const override { return n_past_; }
  void rewind(int64_t n) override;
  ExpertRunStats expert_stats() const override;
  void reset_expert_stats() override;
  void wrap_experts(const std::function<std::unique_ptr<ExpertStore>(std::unique_ptr<ExpertStore>)>& wrap) override;

  const ModelWeights& weights() const { return *w_; }
  ExpertStore& experts() { return *experts_; }
  // Replaces the expert store (e.g. with an SSD-backed cache); the old one is dropped.
  void set_expert_store(std::unique_ptr<ExpertStore> s) { experts_ = std::move(s); }
  // The experts the last token chose, per layer (n_expert_used ids each; empty for dense layers).
  const std::vector<std::vector<int32_t>>& last_routing() const { return routing_; }
  // Next-layer expert prediction (null when prefetch is off; model/expert_prefetch.h).
  ExpertPrefetcher* prefetcher() const { return prefetch_.get(); }
  // Turns next-layer prediction on (depth >= 1) or off (0), e.g. after set_expert_store().
  void set_prefetch_depth(int depth);
  // Experts computed while another expert of the same layer was still being read
  // (compute-as-ready instrumentation; stays 0 with a resident store).
  uint64_t experts_computed_early() const { return experts_early_; }

 private:
  // One sequence's tokens within a span (rows [off, off + n) of the span's buffers), at
  // positions pos0, pos0 + 1, ... of sequence seq.
  struct SeqSpan {
    int seq = 0;
    int64_t off = 0, n = 0, pos0 = 0;
    bool want_logits = false;
  };
  // The forward pass (forward.cpp): n tokens at positions pos0, pos0 + 1, ... of the
  // selected sequence through every layer; the last token's logits into logits_ when
  // want_logits.
  void run_tokens(const int32_t* tokens, int64_t n, int64_t pos0, bool want_logits);
  // The same over the sequences of spans_ (their tokens laid end to end in `tokens`, n in
  // all): logits_ gets one row [n_vocab] per span that wants logits, in span order.
  void run_spans(const int32_t* tokens, int64_t n);
  // Per-sequence state, whether selected (in kv_ / mla_cache_ / n_past_) or parked.
  KvCache& kv_of(int s) { return s == seq_ ? kv_ : seqs_[static_cast<size_t>(s)].kv; }
  MlaCache& mla_of(int s) { return s == seq_ ? mla_cache_ : seqs_[static_cast<size_t>(s)].mla_cache; }
  int64_t& n_past_of(int s) { return s == seq_ ? n_past_ : seqs_[static_cast<size_t>(s)].n_past; }
  // The blocks of one layer: input the n normalised rows in s_.xn (converted in s_.acts
  // for the FFN), output the n rows to add to the residual stream in s_.proj. Attention
  // runs per span of spans_, each against its sequence's cache.
  void attention(int il, int64_t n);
  void dense_ffn(const FfnWeights& f, int64_t n, float* out);
  // moe.cpp: routes the n tokens, runs each chosen expert once over its tokens (groups
  // computed as the store hands them out), sums in selection order.
  void moe(int il, int64_t n);
  void moe_wave(int il, int64_t n, std::span<const int32_t> wave, bool with_shared);

  std::unique_ptr<GgufFile> file_;
  ModelConfig cfg_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<ModelWeights> w_;
  std::unique_ptr<ExpertStore> experts_;
  std::unique_ptr<ExpertPrefetcher> prefetch_;
  ThreadPool pool_;
  KvCache kv_;                       // grouped-query attention
  MlaParams mla_;                    // multi-head latent attention
  MlaCache mla_cache_;
  std::vector<MlaLayerWeights> mla_w_;
  RopeParams rope_;
  RopeParams rope_swa_;  // sliding-window layers (cfg_.is_swa_layer)
  RouterParams router_;
  int64_t n_ctx_ = 0;
  int64_t n_past_ = 0;
  // Per-sequence state of the sequences not selected; seqs_[seq_] is an empty placeholder
  // while sequence seq_'s state is in kv_ / mla_cache_ / n_past_. Swapping is O(1).
  struct SequenceState {
    KvCache kv;
    MlaCache mla_cache;
    int64_t n_past = 0;
  };
  std::vector<SequenceState> seqs_;
  int seq_ = 0;

  Scratch s_;                   // the buffers of one span of tokens (forward_batch.h)
  std::vector<SeqSpan> spans_;  // the sequences of the span being computed
  std::vector<int> row_seq_;        // [T]: the sequence of each row of the span
  std::vector<int64_t> row_pos_;    // [T]: its position
  std::vector<float> logits_;   // [spans wanting logits][n_vocab]: their last tokens'
  std::vector<float> multi_logits_;  // forward_multi's result: [entries][n_vocab]
  std::vector<std::vector<int32_t>> routing_;
  uint64_t experts_early_ = 0;  // see experts_computed_early()
  // Bytes a prompt chunk may use: the plan's BudgetPlan::prefill_bytes under --mem, 0
  // (whole 512-token chunks) without a budget.
  uint64_t prefill_scratch_ = 0;
};

}  // namespace swapmoe
