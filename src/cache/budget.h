#pragma once
// The memory-budget accountant: splits a --mem budget into what must be resident (dense
// weights, KV cache, scratch, process overhead) and what is left for the expert cache,
// or refuses with exact numbers when the model cannot run in that budget.
//
// Accounting (all in bytes):
//   dense     every non-expert tensor as the loader holds it: matrices as stored, 1-D
//             tensors (norms, biases) as F32 twice (ModelWeights keeps a F32 copy and the
//             layer struct another).
//   KV        per token, as the model reports it (ModelFootprint, model/footprint.cpp):
//             F16 K and V rows per layer, or one F16 latent row per layer under MLA.
//   scratch   the forward pass's buffers for one token, as the model reports it.
//   prefill   the batched prompt's chunk buffers, sized so a chunk of prefill_bytes /
//             ModelFootprint::prefill_bytes_per_token tokens fits: at least
//             16 tokens; beyond that 1/32 of what is left for experts, at most a 512-token
//             chunk. Bigger chunks load each expert once for more prompt tokens.
//   overhead  the process itself: the executable and shared libraries as resident when
//             the plan is made (RssFile from /proc/self/status, once per process), 1 MiB +
//             3 x the tokenizer metadata of heap (parsed header, tokenizer tables), growth
//             while running (1.5 MiB + 256 KiB per thread) and a margin of 1/16 + 512 KiB
//             (budget.cpp, process_overhead).
//   slot      one expert of the largest MoE layer as the cache stores it (gate + up + down
//             slices, each rounded out to the I/O alignment; ExpertCache::slot_bytes_for).
// Minimum budget = dense + KV(ctx) + scratch + minimum prefill + overhead + minimum slots x slot, where the
// minimum slots are what exact computation of one layer needs: n_expert_used pinned
// experts (shared pool), or n_expert_used in every layer's pool (per-layer quotas).
// The expert cache gets everything else. If the KV cache for the requested context does
// not fit next to the minimum, the context is reduced (to a multiple of 256, at least 256)
// and the plan says so; below that the budget is refused.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arch/config.h"
#include "expert/store_provider.h"
#include "gguf/gguf.h"

namespace swapmoe {

// "6G", "6GiB", "6gb", "512M", "1.5G", "4096": binary units (K = 1024 ...), whatever the
// spelling. Throws Error naming the text on anything else.
uint64_t parse_size(const std::string& text);
// 1073741824 -> "1.00 GiB"
std::string format_bytes(uint64_t bytes);

struct BudgetRequest {
  uint64_t budget = 0;        // the --mem limit
  int64_t n_ctx = 4096;       // context wanted
  int n_threads = 1;
  bool per_layer = false;     // per-layer expert pools instead of one shared pool
  uint64_t alignment = 4096;  // direct-I/O alignment of the model file (DirectFile::alignment)
  // Resident bytes of the executable and shared libraries of the process that will run
  // the model. 0: this process, measured (RssFile at its first plan); set it when planning
  // for a process elsewhere, e.g. another machine's.
  uint64_t process_baseline = 0;
};

struct LayerExpertBytes {
  int layer = 0;
  int64_t n_expert = 0;
  uint64_t bytes_per_expert = 0;  // gate + up + down slices, exact
};

struct BudgetPlan {
  uint64_t budget = 0;
  uint64_t dense_bytes = 0;
  uint64_t kv_bytes_per_token = 0;
  int64_t n_ctx_requested = 0;
  int64_t n_ctx = 0;               // what the plan allows (may be reduced)
  bool ctx_reduced = false;
  uint64_t kv_bytes = 0;           // for n_ctx
  uint64_t scratch_bytes = 0;
  uint64_t prefill_bytes_per_token = 0;  // batched-prefill scratch per prompt token
  uint64_t prefill_bytes = 0;            // reserved for one prefill chunk (minimum in measure_model)
  uint64_t overhead_bytes = 0;
  std::vector<LayerExpertBytes> layers;  // MoE layers only
  uint64_t expert_bytes_total = 0;       // all experts of all layers, exact
  uint64_t slot_bytes = 0;
  int64_t n_expert = 0, n_expert_used = 0;
  bool per_layer = false;
  int64_t min_slots = 0;
  uint64_t min_budget = 0;         // at the planned n_ctx
  uint64_t cache_bytes = 0;        // the expert cache's share (pass as ExpertCacheOptions::cache_bytes)
  int64_t n_slots = 0;             // cache_bytes / slot_bytes, capped at every expert
  bool all_experts_fit = false;
  // Worst case (uniform routing, hit rate = slots / n_expert per layer):
  // sum over MoE layers of n_used * (1 - slots_l / n_expert) * bytes_per_expert_l.
  double worst_read_bytes_per_token = 0;
  std::vector<std::string> notes;  // e.g. why n_ctx was reduced
};

// Computes the plan. Throws Error with the exact breakdown when the budget is below the
// minimum even at the smallest context, e.g.
//   "--mem 4.00 GiB is too small for this model: needs at least 7.90 GiB (dense 5.20 GiB,
//    KV 0.40 GiB for 4096 tokens, scratch 10.12 MiB, overhead 70.00 MiB, experts 2.22 GiB
//    = 2 slots of 1.11 GiB)".
// fp: what the model holds besides its experts (model_footprint(cfg, req.n_ctx,
// req.n_threads); runtime/model_budget.h has the shorthand without it).
BudgetPlan plan_budget(const ModelFootprint& fp, const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req);

// The smallest budget whose plan gives `slots` expert slots, for a plan `m` from
// measure_model (same request otherwise): the fixed parts, the cache, and the prefill
// chunk buffers that plan_budget takes from the expert share (1/32 of it, within limits).
uint64_t budget_for_slots(const BudgetPlan& m, int64_t slots);

// Bytes the plan's pieces need, without a budget (for `swapmoe info`-style reports and
// for plan_budget itself). budget, cache_bytes and n_slots are left 0.
BudgetPlan measure_model(const ModelFootprint& fp, const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req);

std::string plan_to_text(const BudgetPlan& p);
nlohmann::json plan_to_json(const BudgetPlan& p);

// Per-layer expert tensors found by name (blk.N.ffn_{gate,up,down}_exps.weight).
bool is_expert_tensor(const std::string& name);

}  // namespace swapmoe
