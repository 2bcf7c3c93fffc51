#include "runtime/model_budget.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>

#include "cache/expert_cache.h"
#include "cache/swapmoe_store.h"
#include "expert/expert_store_resident.h"
#include "io/direct_file.h"
#include "model/footprint.h"
#include "util/error.h"

namespace swapmoe {

BudgetPlan plan_budget(const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req) {
  return plan_budget(model_footprint(cfg, req.n_ctx, req.n_threads), cfg, f, req);
}

BudgetPlan measure_model(const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req) {
  return measure_model(model_footprint(cfg, req.n_ctx, req.n_threads), cfg, f, req);
}

BudgetPlan plan_model_budget(const ModelConfig& cfg, const GgufFile& f, const ModelFootprint& fp,
                             const ModelOptions& opts, int64_t n_ctx, int n_threads) {
  BudgetRequest req;
  req.budget = opts.mem_budget;
  req.n_ctx = n_ctx;
  req.n_threads = n_threads;
  // SwapMoE keeps n_expert_used resident experts in every MoE layer: plan its minimum as
  // per-layer pools do.
  req.per_layer = opts.cache_per_layer || opts.policy == "swapmoe";
  // The I/O alignment of the file as the cache will open it (O_DIRECT granularity).
  req.alignment = io::DirectFileSet::open(f.part_paths()).alignment();
  BudgetPlan plan = plan_budget(fp, cfg, f, req);
  if (plan.ctx_reduced)
    std::fprintf(stderr, "swapmoe: --mem %s: context reduced from %lld to %lld tokens so that the KV cache fits\n",
                 format_bytes(plan.budget).c_str(), static_cast<long long>(plan.n_ctx_requested),
                 static_cast<long long>(plan.n_ctx));
  return plan;
}

namespace {

io::EngineKind engine_kind(const std::string& name) {
  if (name == "auto") return io::EngineKind::Auto;
  if (name == "uring") return io::EngineKind::Uring;
  if (name == "pread") return io::EngineKind::PreadPool;
  fail("unknown I/O engine '", name, "' (expected auto, uring or pread)");
}

}  // namespace

std::unique_ptr<ExpertStore> make_expert_store(const GgufFile& f, const ModelConfig& cfg,
                                               const std::vector<ExpertTensors>& tensors, const ModelOptions& opts,
                                               const BudgetPlan* plan) {
  if (opts.policy != "exact" && opts.policy != "swapmoe")
    fail("unknown expert policy '", opts.policy, "' (expected exact or swapmoe)");
  if (opts.mem_budget == 0) return std::make_unique<ResidentExpertStore>(f, cfg, tensors);
  if (opts.policy == "swapmoe") {
    SwapMoeOptions so;
    so.cache_bytes = plan->cache_bytes;
    so.exactness = opts.exactness;
    so.swap_rate = opts.swap_rate;
    so.engine.kind = engine_kind(opts.io_engine);
    std::optional<RoutingProfile> profile;
    if (!opts.profile_path.empty()) {
      profile = RoutingProfile::load(opts.profile_path);
      so.profile = &*profile;
    }
    return std::make_unique<SwapMoeStore>(f.part_paths(), cfg, tensors, so);
  }
  if (!plan) fail("make_expert_store: a memory budget needs a plan");
  ExpertCacheOptions co;
  co.cache_bytes = plan->cache_bytes;
  co.per_layer = opts.cache_per_layer;
  co.policy = opts.cache_policy;
  co.engine.kind = engine_kind(opts.io_engine);
  co.spare_slots = opts.prefetch ? opts.speculate : 0;
  return std::make_unique<ExpertCache>(f.part_paths(), cfg, tensors, co);
}

void drop_file_cache(int fd) {
  if (fd >= 0) (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

ExpertPlan BudgetedExperts::plan(const GgufFile& f, const ModelConfig& cfg, const ModelFootprint& fp, int64_t n_ctx,
                                 int n_threads) {
  ExpertPlan p;
  p.n_ctx = n_ctx;
  if (opts_.mem_budget == 0) return p;
  plan_ = plan_model_budget(cfg, f, fp, opts_, n_ctx, n_threads);
  p.n_ctx = plan_->n_ctx;
  p.prefill_bytes = plan_->prefill_bytes;
  // Prefetch needs room beyond the pinned experts of the running layer: at least twice
  // n_expert_used slots per pool, else a guess could only be dropped.
  if (opts_.prefetch && cfg.n_expert_used > 0) {
    const int64_t per_pool = opts_.cache_per_layer
                                 ? plan_->n_slots / std::max<int64_t>(1, static_cast<int64_t>(plan_->layers.size()))
                                 : plan_->n_slots;
    p.prefetch = per_pool >= 2 * cfg.n_expert_used;
    // Each layer of lookahead may hold up to n_expert_used more slots in flight.
    p.prefetch_depth = static_cast<int>(std::clamp<int64_t>(per_pool / cfg.n_expert_used - 1, 1, std::max(opts_.prefetch_depth, 1)));
  }
  return p;
}

std::unique_ptr<ExpertStore> BudgetedExperts::make(const GgufFile& f, const ModelConfig& cfg,
                                                   const std::vector<ExpertTensors>& tensors) {
  auto store = make_expert_store(f, cfg, tensors, opts_, plan_ ? &*plan_ : nullptr);
  // Under a budget the dense weights now live in owned memory and the experts are read
  // with O_DIRECT: the file's cached pages would only count against the budget.
  if (plan_)
    for (const GgufPart& p : f.parts()) drop_file_cache(p.fd);
  return store;
}

ExpertRunStats expert_run_stats(Model& m) { return m.expert_stats(); }

void reset_expert_run_stats(Model& m) { m.reset_expert_stats(); }

uint64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      unsigned long long kb = 0;
      if (std::sscanf(line.c_str() + 6, "%llu", &kb) == 1) return static_cast<uint64_t>(kb) * 1024;
    }
  }
  return 0;
}

std::string format_swapmoe_stats(const SwapMoeStats& w, int64_t tokens) {
  const double t = tokens > 0 ? static_cast<double>(tokens) : 1.0;
  const double c = w.chosen ? static_cast<double>(w.chosen) : 1.0;
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "swapmoe: resident %.1f%% of chosen | masked %.1f%% (%llu) | sync loads %.1f%% (%llu) | swaps %llu "
                "(%s/token) | stall %.2f ms/token | swap waits %llu (%.2f ms/token) | peak RSS %s",
                100.0 * w.hit_rate(), 100.0 * static_cast<double>(w.masked + w.sync_no_slot) / c,
                static_cast<unsigned long long>(w.masked + w.sync_no_slot), 100.0 * static_cast<double>(w.sync_loads) / c,
                static_cast<unsigned long long>(w.sync_loads), static_cast<unsigned long long>(w.swaps_done),
                format_bytes(static_cast<uint64_t>(static_cast<double>(w.swap_bytes) / t)).c_str(),
                1000.0 * w.stall_seconds / t, static_cast<unsigned long long>(w.swap_waits),
                1000.0 * w.swap_wait_seconds / t, format_bytes(peak_rss_bytes()).c_str());
  return buf;
}

std::string format_run_stats(const ExpertRunStats& s, int64_t tokens, double seconds) {
  const double t = tokens > 0 ? static_cast<double>(tokens) : 1.0;
  char buf[512];
  if (!s.cached) {
    std::snprintf(buf, sizeof buf, "experts resident | peak RSS %s", format_bytes(peak_rss_bytes()).c_str());
    return buf;
  }
  if (s.swapmoe) return format_swapmoe_stats(s.swap, tokens);
  const ExpertCacheStats& c = s.cache;
  const double bw = seconds > 0 ? static_cast<double>(c.bytes_read) / seconds : 0.0;
  std::string pf = "off";
  if (s.prefetch) {
    // Accuracy says the router guessed well; issued/used say the guesses were read into slots
    // and later served a demand access (the end-to-end tests check that prefetch is used).
    char p[192];
    std::snprintf(p, sizeof p, "%.1f%% (issued %llu, used %llu, evicted unused %llu, dropped %llu)",
                  100.0 * s.prefetch_accuracy(), static_cast<unsigned long long>(c.prefetch_issued),
                  static_cast<unsigned long long>(c.prefetch_used), static_cast<unsigned long long>(c.prefetch_wasted),
                  static_cast<unsigned long long>(c.prefetch_dropped));
    pf = p;
    if (c.speculative_issued > 0) {
      std::snprintf(p, sizeof p, " | speculative reads %llu, used %llu (%.1f%%)",
                    static_cast<unsigned long long>(c.speculative_issued), static_cast<unsigned long long>(c.speculative_used),
                    100.0 * static_cast<double>(c.speculative_used) / static_cast<double>(c.speculative_issued));
      pf += p;
    }
  }
  std::snprintf(buf, sizeof buf,
                "hit rate %.1f%% | read %s/token | read bandwidth %s/s | I/O wait %.2f ms/token | prefetch accuracy %s"
                " | peak RSS %s",
                100.0 * c.hit_rate(), format_bytes(static_cast<uint64_t>(static_cast<double>(c.bytes_read) / t)).c_str(),
                format_bytes(static_cast<uint64_t>(bw)).c_str(), 1000.0 * c.blocked_seconds / t, pf.c_str(),
                format_bytes(peak_rss_bytes()).c_str());
  return buf;
}

}  // namespace swapmoe
