#pragma once
// Prefetch of the next layer's experts. While layer l's MoE block runs, layer l+1's
// router is applied to the residual stream as it enters layer l's FFN (x after layer l's
// attention, before its FFN), normalised with layer l+1's ffn_norm (RMSNorm, the same
// epsilon): logits = W_gate_inp[l+1] rmsnorm(x) * ffn_norm[l+1], then the same top-k
// selection as the real router (selection bias included). The residual stream changes
// little between adjacent layers, so this guesses most of layer l+1's experts, and the
// reads overlap layer l's expert compute and layer l+1's attention.
//
// The guess only decides what is read early; the real selection at layer l+1 is made
// from the real state, so prefetching never changes the output.
//
// Depth. With depth d the same state also predicts layers l+2 .. l+d (each with its own
// ffn_norm and router), and the guesses are handed to the store nearest layer first, so
// that the disk works on l+1 before l+2. One layer of lookahead is not enough when a
// layer's compute is shorter than its reads in some layers and longer in others: the
// queue runs dry while a slow layer computes, with the next layer's reads already done
// (measured on the Qwen3-30B shape at 6 GiB: the disk idle 19% of the decode time inside
// layers). Layer l+2's guess made at layer l is less accurate; at layer l+1 it is made
// again from the nearer state and only what differs is added, so wrong far guesses
// cost reads but never change which experts the real selection gets.
//
// Batched steps. A decode step of several sequences predicts from each row and reads the
// union of the guesses. Whether that pays depends on how many of the read guesses serve a
// request before they are evicted. On the Qwen3-30B shape at 6 GiB with 4 streams, 96% did:
// the disk was busy 98% of the time instead of 88% and decoding 7% faster despite 6.5% more
// reads. With 8 streams only 75% did (the union of 8 guesses per layer churns a cache that
// holds a quarter of the experts), reads per token rose by a third and decoding was slower
// than without; on a small forged model whose router guessed half right, the union read a
// third more and decoded slower (docs/benchmarks.md). So the union is read only while the
// store's own figures show it pays: over windows of kGateWindow prefetch outcomes (a read
// guess later used, or evicted unused; ExpertCacheStats), the share used must be at least
// kMinUsedShare. Below it, batched steps stop reading guesses for kProbeAfter batched
// predictions, then try again. A single-token step always reads its guess (one wrong
// guess costs one read; depth-1 prediction always paid there).
//
// Measured and rejected (docs/benchmarks.md, "The 6 GiB single stream and batched steps,
// session 6"): a second prediction at the start of each layer, before its attention
// (refining its own guess, guessing the next layer one attention earlier): 16% more
// reads, slower; and
// reading the layer after the lookahead only while fewer than k reads were in flight:
// 14% more reads, not faster. At this budget every wrong guess also evicts an expert that
// a later token would have hit.
//
// Speculation. What does fill those gaps: the layer after the lookahead is guessed as well
// and handed to ExpertStore::speculate, which reads it only while the disk is idle and into
// spare buffers outside the cache (cache/expert_cache.h), so a wrong guess evicts nothing.
// On the same shape at 6 GiB: the disk busy 97% instead of 88% of the time, 0.3% more
// reads, decode 6-16% faster (docs/benchmarks.md, "Speculative reads into spare buffers").

#include <cstdint>
#include <vector>

#include "model/act_cache.h"
#include "arch/config.h"
#include "expert/expert_store.h"
#include "expert/router.h"
#include "model/weights.h"
#include "util/thread_pool.h"

namespace swapmoe {

class ExpertPrefetcher {
 public:
  // depth >= 1: how many MoE layers ahead to predict (see above).
  ExpertPrefetcher(const ModelConfig& cfg, const ModelWeights& w, const RouterParams& router, int depth = 1);

  // Layer `il` chose `ids`: scores the guess made for it (if any).
  void on_selected(int il, const int32_t* ids, size_t n);
  // Predicts the experts of the next `depth` layers from x (layer il's FFN input,
  // [n_embd]) and asks the store to prefetch them, layer il+1 first; stops at the first
  // dense layer or the end of the model. No-op after the last MoE layer.
  void predict_next(int il, const float* x, ExpertStore& store, ThreadPool& pool);
  // The same for `rows` tokens of one batched decode step (x: [rows][n_embd], each row a
  // different sequence's FFN input): the union of the rows' guesses, each expert once,
  // read while that pays (see "Batched steps" above).
  void predict_next(int il, const float* x, int64_t rows, ExpertStore& store, ThreadPool& pool);
  // Whether batched steps read their guesses now.
  bool batch_reads() const { return gate_open_; }
  static constexpr uint64_t kGateWindow = 256;   // prefetch outcomes per judgement
  static constexpr double kMinUsedShare = 0.85;  // of them used, to keep reading
  static constexpr int kProbeAfter = 384;        // batched predictions before trying again
  int depth() const { return depth_; }

  uint64_t predicted() const { return predicted_; }
  uint64_t actual() const { return actual_; }
  void reset_stats() { predicted_ = actual_ = 0; }

 private:
  const ModelConfig& cfg_;
  const ModelWeights& w_;
  RouterParams router_;
  int depth_ = 1;
  ActCache act_;
  std::vector<float> xn_, logits_, weights_;
  std::vector<int32_t> one_;  // one row's guess
  std::vector<int32_t> far_;  // the speculative guess (one layer beyond the lookahead)
  // The union of the rows' guesses for layer nl, each expert once, row by row, best first
  // within a row.
  void guess_rows(int nl, const float* x, int64_t rows, std::vector<int32_t>& g, ThreadPool& pool);
  // The gate for batched reads: judged on the store's prefetch figures since base_*.
  void judge_batch_reads(const ExpertStore& store);
  bool gate_open_ = true;
  int closed_for_ = 0;  // batched predictions since the gate closed
  uint64_t base_used_ = 0, base_wasted_ = 0;
  bool based_ = false;
  std::vector<std::vector<int32_t>> guess_;  // per layer: the last prediction (empty: none)
  uint64_t predicted_ = 0, actual_ = 0;
};

}  // namespace swapmoe
