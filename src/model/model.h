#pragma once
// The public face of the engine: load a GGUF MoE model and evaluate tokens one at a time.
// Dense weights are copied into memory the model owns; experts come from an ExpertStore.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "arch/config.h"
#include "expert/expert_stats.h"
#include "tokenizer/tokenizer.h"
#include "util/thread_pool.h"

namespace swapmoe {

class GgufFile;
class ExpertStore;
class ExpertStoreProvider;

struct ModelOptions {
  int n_threads = 0;   // 0: all cores
  int64_t n_ctx = 0;   // 0: min(4096, trained context)
  // Memory budget (runtime/model_budget.h): 0 = unlimited, every expert resident. Otherwise the
  // experts live in an SSD-backed ExpertCache sized by plan_budget, and the context may
  // be reduced (said on stderr) so that the KV cache fits.
  uint64_t mem_budget = 0;
  // Defaults measured on the Mixtral routing trace (tests/unit/cache, TraceReplay.Table):
  // nextuse in one shared pool has the best hit rate at 2, 4 and 6 slots of 8 per layer.
  std::string cache_policy = "nextuse";  // lru | lfu | lru2 | nextuse
  bool cache_per_layer = false;          // per-layer pools (quotas) instead of one shared pool
  std::string io_engine = "auto";      // auto | uring | pread
  bool prefetch = true;                // predict layer l+1's experts while layer l runs
  // ... and layers l+2 .. l+depth from the same state (model/expert_prefetch.h). Deeper
  // lookahead keeps the read queue from running dry while a slow layer computes, but reads
  // 7-12% more on the Qwen3-30B shape at 6 GiB and was not faster under load
  // (docs/benchmarks.md, "The 6 GiB single stream"): 1 by default.
  int prefetch_depth = 1;
  // Spare expert buffers for speculative reads (cache/expert_cache.h, "Speculation"): the
  // layer after the lookahead is guessed too and read into them only while the disk is
  // idle. 0: off. They are taken from the expert cache's slots.
  int speculate = 8;
  // Expert policy (docs/swapmoe.md). "exact": every chosen expert is computed, missing ones
  // are read from the file and decoding waits for them. "swapmoe" (needs --mem): each MoE
  // layer keeps a set of resident experts and routing is restricted to them (masked
  // gating); the sets change by background reads that decoding never waits for.
  std::string policy = "exact";  // exact | swapmoe
  // τ in [0, 1], used by swapmoe: a missing expert that the unmasked routing chose, with a
  // gate weight (normalised over the chosen experts, so in [0, 1]) >= τ, is read
  // synchronously as exact mode does; below τ it is masked. 0 = exact output, 1 = pure
  // SwapMoE (nothing is ever read synchronously, even a weight of exactly 1). Default: pure.
  double exactness = 1.0;
  // swapmoe: background expert loads per token, summed over all layers (an amortised
  // budget: unused allowance accumulates up to max(1, swap_rate) loads). 0 = never swap.
  double swap_rate = 1.0;
  // swapmoe: a routing profile written by `swapmoe profile` (per-layer slot shares and the
  // initial resident sets); empty = even split, initial sets adapt online.
  std::string profile_path;
  // Independent sequences (server slots), each with its own KV cache and position. n_ctx
  // (and the budget's KV reservation) is the total: each sequence gets n_ctx / n_sequences
  // positions, so N slots cost the memory of one full-length cache.
  int n_sequences = 1;
};

// One sequence's part of a batched step (Model::forward_multi): its next tokens, at
// positions pos0, pos0 + 1, ... of its own KV cache.
struct SequenceTokens {
  int seq = 0;
  std::span<const int32_t> tokens;
  int64_t pos0 = 0;           // must equal the sequence's n_past
  bool want_logits = true;    // the last token's logits are wanted
};

class Model {
 public:
  // Throws Error (naming the file and problem) on anything wrong with the file. Under a
  // memory budget the experts live in the expert cache sized by the budget's plan. Defined
  // in src/runtime/load.cpp, which composes the model with cache/ (a floor above it).
  static std::unique_ptr<Model> load(const std::string& path, const ModelOptions& opts);
  // The same with the experts wherever `experts` puts them (expert/store_provider.h).
  static std::unique_ptr<Model> open(std::unique_ptr<GgufFile> file, const ModelOptions& opts,
                                     ExpertStoreProvider& experts);
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual const GgufFile& file() const = 0;
  virtual int64_t n_ctx() const = 0;
  virtual ThreadPool& pool() = 0;

  // Evaluates `token` at position `pos` (0-based; pos must equal the number of tokens
  // already in the KV cache, and be < n_ctx()). Returns logits [n_vocab], valid until
  // the next call. Throws Error when the context is full.
  virtual const float* forward(int32_t token, int64_t pos) = 0;

  // Evaluates tokens at positions pos0, pos0+1, ...; returns the last token's logits.
  // The same forward pass as forward(), over chunks of tokens: the logits and KV rows are
  // bitwise those of one forward() per token.
  virtual const float* forward_batch(const std::vector<int32_t>& tokens, int64_t pos0) = 0;

  // Continuous batching: the tokens of several sequences (each at most once) in one
  // forward pass. Every product runs over all the step's tokens; attention runs per
  // sequence against its own cache; each MoE expert runs once over every token of the step
  // that chose it (under a memory budget: read once, pinned while it computes). A token's
  // logits and KV rows are bitwise those of forward() on that sequence alone, whatever
  // else the batch holds. Returns, per entry, its last token's logits [n_vocab] (null
  // where want_logits is false), valid until the next call. Steps of more than
  // max_batch_tokens() tokens run as several passes, in order. The selected sequence
  // stays selected.
  virtual std::vector<const float*> forward_multi(std::span<const SequenceTokens> batch) = 0;
  // Tokens one forward pass carries at most: the prompt-chunk scratch the plan reserved
  // (512 without a budget), 1 when the expert store cannot route a span ahead.
  virtual int64_t max_batch_tokens() const = 0;

  // Forgets the KV cache (positions restart at 0).
  virtual void reset() = 0;

  // Sequences (ModelOptions::n_sequences). forward, forward_batch, reset, rewind and
  // n_past act on the selected sequence (0 after load); each sequence has its own KV cache
  // and position, so switching between them costs nothing and changes no result. n_ctx()
  // is the context of one sequence. Not thread-safe: one caller drives the model.
  virtual int n_sequences() const = 0;
  virtual int sequence() const = 0;
  // Throws Error when s is not in [0, n_sequences()).
  virtual void select_sequence(int s) = 0;
  // Tokens the selected sequence's KV cache holds (the next position to evaluate).
  virtual int64_t n_past() const = 0;
  // Forgets positions >= n of the selected sequence (0 <= n <= n_past()), so that a
  // prompt sharing only a prefix with what is cached continues from that prefix.
  virtual void rewind(int64_t n) = 0;

  // The expert store's and the prefetcher's figures since the last reset.
  virtual ExpertRunStats expert_stats() const = 0;
  virtual void reset_expert_stats() = 0;
  // Replaces the expert store by wrap(current store), e.g. a recorder around it.
  virtual void wrap_experts(const std::function<std::unique_ptr<ExpertStore>(std::unique_ptr<ExpertStore>)>& wrap) = 0;
};

}  // namespace swapmoe
