#pragma once
// The engine's Model: the loaded file, bound weights, expert store, KV cache, scratch
// buffers, and the per-token forward pass (forward.cpp, ffn.cpp). Kept in a header so
// that tests and future stores can reach the pieces; the public API is model.h.

#include <memory>
#include <span>
#include <vector>

#include "gguf/gguf.h"
#include "model/act_cache.h"
#include "model/attention_mla.h"
#include "expert/expert_store.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "expert/router.h"
#include "model/weights.h"
#include "ops/rope.h"

namespace swapmoe {

class ExpertPrefetcher;       // model/expert_prefetch.h
class StreamingExpertStore;  // cache/expert_cache.h

struct BatchScratch;  // model/forward_batch.h (batched prefill)

// One gated FFN (an expert, a shared expert, or a dense FFN): down(silu(gate x) * up x).
struct FfnItem {
  MatrixRef gate, up, down;
};

class ModelImpl : public Model {
 public:
  // Binds and reads everything; throws Error on any problem with the file.
  ModelImpl(std::unique_ptr<GgufFile> file, const ModelOptions& opts);
  ~ModelImpl() override;

  const ModelConfig& config() const override { return cfg_; }
  const Tokenizer& tokenizer() const override { return *tok_; }
  const GgufFile& file() const override { return *file_; }
  int64_t n_ctx() const override { return n_ctx_; }
  ThreadPool& pool() override { return pool_; }
  const float* forward(int32_t token, int64_t pos) override;
  const float* forward_batch(const std::vector<int32_t>& tokens, int64_t pos0) override;
  void reset() override { n_past_ = 0; }
  // Sequences (model.h). The selected sequence's state lives in kv_, mla_cache_ and
  // n_past_ (so the forward passes use those members directly); the others wait in seqs_.
  int n_sequences() const override { return static_cast<int>(seqs_.size()); }
  int sequence() const override { return seq_; }
  void select_sequence(int s) override;
  int64_t n_past() const override { return n_past_; }
  void rewind(int64_t n) override;

  const ModelWeights& weights() const { return *w_; }
  ExpertStore& experts() { return *experts_; }
  // Replaces the expert store (e.g. with an SSD-backed cache); the old one is dropped.
  void set_expert_store(std::unique_ptr<ExpertStore> s) { experts_ = std::move(s); }
  // The experts the last forward() chose, per layer (n_expert_used ids each; empty for dense layers).
  const std::vector<std::vector<int32_t>>& last_routing() const { return routing_; }
  // Next-layer expert prediction (null when prefetch is off; model/expert_prefetch.h).
  ExpertPrefetcher* prefetcher() const { return prefetch_.get(); }
  // Experts computed while another expert of the same layer was still being read (stream:
  // compute-as-ready instrumentation; stays 0 with a resident store).
  uint64_t experts_computed_early() const { return experts_early_; }

 private:
  // x: residual stream [n_embd]; each adds its block's output to x.
  void attention_block(int il, float* x, int64_t pos);
  void ffn_block(int il, float* x);
  // Runs items' FFNs on the activation in act_; outputs into ffn_out_[i] ([n_embd] each).
  void run_ffn_items(const std::vector<FfnItem>& items);
  // The same with item i's output into ffn_out_[out[i]] (stream: experts in arrival groups).
  void run_ffn_items(std::span<const FfnItem> items, std::span<const size_t> out);
  // The MoE experts of a layer from a StreamingExpertStore, group by group as they arrive
  // (ffn.cpp); outputs into ffn_out_[i] for ids_[i], the shared expert into ffn_out_[n_used].
  void run_streamed_experts(int il, StreamingExpertStore& store);

  std::unique_ptr<GgufFile> file_;
  ModelConfig cfg_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<ModelWeights> w_;
  std::unique_ptr<ExpertStore> experts_;
  std::unique_ptr<ExpertPrefetcher> prefetch_;
  ThreadPool pool_;
  KvCache kv_;                       // standard attention
  MlaParams mla_;                    // deepseek2 only
  MlaCache mla_cache_;
  std::vector<MlaLayerWeights> mla_w_;
  RopeParams rope_;
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

  // Scratch, sized once.
  ActCache act_;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, proj_, logits_, router_logits_;
  std::vector<int32_t> ids_;
  std::vector<float> expert_w_;
  std::vector<std::vector<float>> ffn_gate_, ffn_up_, ffn_out_;
  std::vector<QuantizedActivation> ffn_act_;
  std::vector<std::vector<int32_t>> routing_;
  uint64_t experts_early_ = 0;  // stream: see experts_computed_early()

  // Batched prefill (forward_batch.cpp, moe_batch.cpp; see forward_batch.h). Each works
  // on batch_->x, the residual stream of the chunk's n tokens at positions pos0, ...
  void forward_chunk(const int32_t* tokens, int64_t n, int64_t pos0, bool want_logits);
  void attention_batch(int il, int64_t n, int64_t pos0);
  void mla_attention_batch(int il, int64_t n, int64_t pos0);
  void ffn_batch(int il, int64_t n);
  // Routes the n tokens of layer il (input in batch_->acts), runs each chosen expert once
  // over its tokens, adds the weighted sums in selection order to batch_->x.
  void moe_batch(int il, int64_t n);
  // out [n][E] = down(silu(gate xn) * up xn) for xn in batch_->acts.
  void dense_ffn_batch(const FfnItem& f, int64_t n, float* out);
  std::shared_ptr<BatchScratch> batch_;  // created on first use
  // Bytes a prefill chunk may use: the plan's BudgetPlan::prefill_bytes under --mem, 0
  // (whole 512-token chunks) without a budget.
  uint64_t prefill_scratch_ = 0;
};

}  // namespace swapmoe
