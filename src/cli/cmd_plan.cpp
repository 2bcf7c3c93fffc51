// `swapmoe plan MODEL [--mem SIZE] [--ctx N] [--threads N] [--json]`: what a memory budget buys, from
// the GGUF header alone (instant even on a 400 GB file): dense bytes, expert bytes per
// layer and in total, bytes per expert, KV bytes per token, the minimum workable budget
// and, for a given budget, the expert cache's share and the bytes read from disk per
// token at the worst-case (uniform routing) hit rate.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cache/budget.h"
#include "runtime/model_budget.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "gguf/gguf.h"
#include "io/direct_file.h"
#include "arch/arch.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace swapmoe::cli {

namespace {

struct PlanOptions {
  std::string path;
  std::string mem;
  int64_t ctx = 0;
  std::string layout = "shared";
  int threads = 0;  // 0: all cores, as `run` and `serve` default to
  bool json = false;
};

void plan(const PlanOptions& o) {
  auto f = GgufFile::open(o.path);
  const ModelConfig cfg = config_from_gguf(*f);
  BudgetRequest req;
  req.n_ctx = o.ctx > 0 ? o.ctx : std::min<int64_t>(4096, cfg.n_ctx_train);
  req.per_layer = o.layout == "per-layer";
  // Per-thread scratch is part of the budget: plan for the threads the engine would start.
  req.n_threads = resolve_thread_count(o.threads);
  req.alignment = io::DirectFileSet::open(f->part_paths()).alignment();
  BudgetPlan p;
  if (!o.mem.empty()) {
    req.budget = parse_size(o.mem);
    p = plan_budget(cfg, *f, req);
  } else {
    p = measure_model(cfg, *f, req);
  }
  if (o.json) std::printf("%s\n", plan_to_json(p).dump(2).c_str());
  else std::printf("%s", plan_to_text(p).c_str());
}

}  // namespace

Command add_plan_command(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  CLI::App* sub = app.add_subcommand("plan", "What a memory budget buys for a model (reads the header only)");
  sub->add_option("MODEL", o->path, kModelHelp)->required();
  sub->add_option("--mem", o->mem, "Memory budget to plan for, e.g. 8G (default: only the model's figures)")
      ->check(non_empty_size, "SIZE");
  sub->add_option("-c,--ctx", o->ctx, "Context size in tokens (default: min(4096, trained context))")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_option("--cache-layout", o->layout, "One shared expert pool, or one pool per layer")
      ->check(CLI::IsMember({"shared", "per-layer"}))
      ->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Worker threads to plan for (default: all cores, as run does)")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_flag("--json", o->json, "Print the plan as JSON");
  return {sub, [o] {
            o->path = resolve_model_arg(o->path).path;
            plan(*o);
          }};
}

}  // namespace swapmoe::cli
