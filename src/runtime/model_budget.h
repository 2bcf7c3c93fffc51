#pragma once
// Running a model under a memory budget (--mem): the composition of the model (model/)
// with the memory plan and the expert cache (cache/), a floor above both. The plan is
// made from the header before any weight is read, the expert store is chosen
// (ExpertCache under a budget, ResidentExpertStore without), and the figures of a run are
// gathered for the CLI's statistics lines. Model::load is runtime/load.cpp.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/budget.h"
#include "expert/expert_stats.h"
#include "expert/expert_store.h"
#include "expert/store_provider.h"
#include "model/model.h"

namespace swapmoe {

// Plans the budget for `n_ctx` tokens; throws Error with the exact breakdown when the
// budget cannot hold dense + KV + one layer's experts. When the KV cache had to shrink,
// says so on stderr.
BudgetPlan plan_model_budget(const ModelConfig& cfg, const GgufFile& f, const ModelFootprint& fp,
                             const ModelOptions& opts, int64_t n_ctx, int n_threads);

// The expert store for these options: ExpertCache sized by `plan` when opts.mem_budget > 0
// (plan must then be non-null), else every expert resident.
std::unique_ptr<ExpertStore> make_expert_store(const GgufFile& f, const ModelConfig& cfg,
                                               const std::vector<ExpertTensors>& tensors, const ModelOptions& opts,
                                               const BudgetPlan* plan);

// Asks the kernel to drop the file's pages from the page cache (after the dense weights
// were read into owned memory), so that buffered reads do not count against the budget.
void drop_file_cache(int fd);

// The memory plan for a model from its header alone: the model's own footprint
// (model/footprint.h) plus the file's dense and expert bytes (cache/budget.h). What
// `swapmoe plan` and `sweep` show; Model::load plans the same way.
BudgetPlan plan_budget(const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req);
BudgetPlan measure_model(const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req);

// Where Model::load puts the experts (expert/store_provider.h): under opts.mem_budget the
// expert cache (or the SwapMoE store) sized by the budget's plan, else every expert
// resident.
class BudgetedExperts final : public ExpertStoreProvider {
 public:
  explicit BudgetedExperts(const ModelOptions& opts) : opts_(opts) {}
  ExpertPlan plan(const GgufFile& f, const ModelConfig& cfg, const ModelFootprint& fp, int64_t n_ctx,
                  int n_threads) override;
  std::unique_ptr<ExpertStore> make(const GgufFile& f, const ModelConfig& cfg,
                                    const std::vector<ExpertTensors>& tensors) override;

 private:
  ModelOptions opts_;
  std::optional<BudgetPlan> plan_;
};

// Figures of a run (ExpertRunStats, expert/expert_stats.h), as Model::expert_stats()
// reports them: cached = false for a resident store.
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
