#pragma once
// Running a model under a memory budget (--mem): the plan (cache/budget.h) is made from
// the header before any weight is read, the expert store is chosen (ExpertCache under a
// budget, ResidentExpertStore without), and the figures of a run are gathered for the
// CLI's statistics lines.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cache/budget.h"
#include "cache/expert_cache.h"
#include "cache/swapmoe_store.h"
#include "expert/expert_store.h"
#include "model/model.h"

namespace swapmoe {

class ExpertPrefetcher;

// Plans the budget for `n_ctx` tokens; throws Error with the exact breakdown when the
// budget cannot hold dense + KV + one layer's experts. When the KV cache had to shrink,
// says so on stderr.
BudgetPlan plan_model_budget(const ModelConfig& cfg, const GgufFile& f, const ModelOptions& opts, int64_t n_ctx,
                             int n_threads);

// The expert store for these options: ExpertCache sized by `plan` when opts.mem_budget > 0
// (plan must then be non-null), else every expert resident.
std::unique_ptr<ExpertStore> make_expert_store(const GgufFile& f, const ModelConfig& cfg,
                                               const std::vector<ExpertTensors>& tensors, const ModelOptions& opts,
                                               const BudgetPlan* plan);

// Asks the kernel to drop the file's pages from the page cache (after the dense weights
// were read into owned memory), so that buffered reads do not count against the budget.
void drop_file_cache(int fd);

// Acquires the experts `ids` of `layer` (already request()ed) into views[i] for ids[i].
// A StreamingExpertStore hands them out in completion order; the views are put back in
// selection order, so what is computed from them does not depend on arrival order. On
// an error every acquired expert is released and the rest of the request cancelled.
void acquire_experts(ExpertStore& store, int layer, std::span<const int32_t> ids, std::vector<ExpertView>& views);

// Unpins experts that request() named and nobody acquired (stores that pin on request).
void cancel_request(ExpertStore& store, int layer);

// Figures of a run under a budget, for the statistics lines.
struct ExpertRunStats {
  bool cached = false;          // an ExpertCache is in use
  ExpertCacheStats cache;
  int n_slots = 0;
  uint64_t slot_bytes = 0;
  std::string engine;
  bool direct_io = false;
  bool prefetch = false;
  uint64_t predicted = 0;       // layer-(l+1) experts chosen that had been predicted
  uint64_t actual = 0;          // layer-(l+1) experts chosen, over layers with a prediction
  bool swapmoe = false;         // a SwapMoeStore is in use (--policy swapmoe); then `swap`
                                // holds its figures and `cache` a summary of them:
  SwapMoeStats swap;            // hits/misses of the unmasked choices, swap+sync bytes, stall
  double prefetch_accuracy() const { return actual ? static_cast<double>(predicted) / static_cast<double>(actual) : 0.0; }
};

// Statistics of the model's expert store (cached = false for a resident store).
ExpertRunStats expert_run_stats(Model& m);
void reset_expert_run_stats(Model& m);

// Peak resident set size of this process (VmHWM of /proc/self/status), 0 if unknown.
uint64_t peak_rss_bytes();

// One line of figures: hit rate, bytes read per token, read bandwidth over `seconds`,
// I/O wait per token, prefetch accuracy, peak RSS. `tokens` = forward passes measured.
std::string format_run_stats(const ExpertRunStats& s, int64_t tokens, double seconds);
// The SwapMoE line (format_run_stats under --policy swapmoe): share of the unmasked
// choices that were resident, masked (below τ, or no slot), read synchronously (>= τ),
// background swaps completed and their bytes per token, stall (I/O wait) per token.
std::string format_swapmoe_stats(const SwapMoeStats& s, int64_t tokens);

}  // namespace swapmoe
