// `swapmoe plan MODEL [--mem SIZE] [--ctx N] [--threads N] [--parallel N] [--json]`: what a memory budget buys, from
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
#include "model/forward_batch.h"
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
  int parallel = 1;  // serve --parallel N: sequences sharing the context
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
  // serve --parallel N: N KV caches share the planned context (so the KV line above is
  // their total), and one batched step's buffers are the prompt-chunk scratch the plan
  // reserved, which carries T tokens: N decode tokens plus prompt tokens, or several
  // passes per step when N > T.
  const int64_t per_seq = p.n_ctx / o.parallel;
  // Without a budget the engine's chunks are not limited (512 tokens).
  const uint64_t batch_scratch = o.mem.empty() ? 0 : p.prefill_bytes;
  const int64_t batch_tokens = prefill_chunk_tokens(cfg, batch_scratch);
  const uint64_t batch_bytes = batch_scratch > 0 ? batch_scratch : static_cast<uint64_t>(batch_tokens) * p.prefill_bytes_per_token;
  if (o.json) {
    nlohmann::json j = plan_to_json(p);
    j["parallel"] = {{"sequences", o.parallel},
                     {"n_ctx_per_sequence", per_seq},
                     {"kv_bytes_per_sequence", static_cast<uint64_t>(per_seq) * p.kv_bytes_per_token},
                     {"batch_tokens", batch_tokens},
                     {"batch_bytes", batch_bytes}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s", plan_to_text(p).c_str());
  std::printf("  %-28s%d KV cache%s of %lld tokens, %s each\n  %-28s%s carry %lld tokens (%d decode + %lld prompt)%s\n",
              ("slots (--parallel " + std::to_string(o.parallel) + ")").c_str(), o.parallel, o.parallel == 1 ? "" : "s",
              static_cast<long long>(per_seq), format_bytes(static_cast<uint64_t>(per_seq) * p.kv_bytes_per_token).c_str(),
              "batch buffers per step", format_bytes(batch_bytes).c_str(), static_cast<long long>(batch_tokens), std::min<int>(o.parallel, static_cast<int>(batch_tokens)),
              static_cast<long long>(std::max<int64_t>(0, batch_tokens - o.parallel)),
              batch_tokens < o.parallel ? "; more slots than that take several passes per step" : "");
  if (per_seq < 16) std::printf("warning: %lld tokens per sequence; serve refuses fewer than 16\n", static_cast<long long>(per_seq));
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
  sub->add_option("--parallel", o->parallel,
                  "Slots to plan for (serve --parallel N): how the context's KV cache and the step's batch buffers split")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  sub->add_flag("--json", o->json, "Print the plan as JSON");
  return {sub, [o] {
            o->path = resolve_model_arg(o->path).path;
            plan(*o);
          }};
}

}  // namespace swapmoe::cli
