// `swapmoe list [--mem SIZE] [--json]`: the models of ollama's store and of the Hugging
// Face cache (src/store), with their architecture, size, parts and what the memory plan
// says about them on this machine: "resident" (every expert fits next to the rest),
// "--mem" (runs with experts streamed from disk: the plan's minimum fits, the whole model
// does not) or "too large" (not even the minimum fits). Only GGUF headers are read, so
// it is instant even for 400 GB files. The budget is --mem, or else this machine's
// available memory (MemAvailable).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cache/budget.h"
#include "runtime/model_budget.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "gguf/gguf.h"
#include "io/direct_file.h"
#include "arch/arch.h"
#include "store/store.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace swapmoe::cli {

namespace {

struct ListOptions {
  std::string mem;
  bool json = false;
};

// MemAvailable from /proc/meminfo in bytes (0 if unknown).
uint64_t mem_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

struct Row {
  store::StoreModel model;
  std::string arch = "?";
  std::string plan;        // "resident", "--mem", "too large" or "unknown"
  std::string plan_note;   // the figures behind it
  uint64_t min_budget = 0, resident_budget = 0;
};

Row describe(store::StoreModel m, uint64_t budget) {
  Row r;
  r.model = std::move(m);
  try {
    auto f = GgufFile::open(r.model.path);
    r.arch = f->get_str("general.architecture", "?");
    const ModelConfig cfg = config_from_gguf(*f);
    BudgetRequest req;
    req.n_ctx = std::min<int64_t>(4096, std::max<int64_t>(cfg.n_ctx_train, 1));
    req.n_threads = resolve_thread_count(0);
    req.alignment = io::DirectFile::open(r.model.path).alignment();
    const BudgetPlan p = measure_model(cfg, *f, req);
    int64_t all_slots = 0;
    for (const auto& l : p.layers) all_slots += l.n_expert;
    r.min_budget = p.min_budget;
    r.resident_budget = budget_for_slots(p, all_slots);
    if (r.resident_budget <= budget) {
      r.plan = "resident";
      r.plan_note = cat("needs ", format_bytes(r.resident_budget));
    } else if (r.min_budget <= budget) {
      r.plan = "--mem";
      r.plan_note = cat("streams experts; at least ", format_bytes(r.min_budget), ", all resident ",
                        format_bytes(r.resident_budget));
    } else {
      r.plan = "too large";
      r.plan_note = cat("needs at least ", format_bytes(r.min_budget));
    }
  } catch (const Error& e) {
    r.plan = "unknown";
    r.plan_note = e.what();
  }
  return r;
}

void list(const ListOptions& o) {
  uint64_t budget = 0;
  std::string budget_from;
  if (!o.mem.empty()) {
    budget = parse_size(o.mem);
    budget_from = "--mem";
  } else {
    budget = mem_available();
    budget_from = "MemAvailable";
  }
  std::vector<std::string> problems;
  std::vector<Row> rows;
  for (store::StoreModel& m : store::list_models(&problems)) rows.push_back(describe(std::move(m), budget));
  for (const std::string& p : problems) std::fprintf(stderr, "swapmoe: skipped: %s\n", p.c_str());

  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows)
      out.push_back({{"name", r.model.name},
                     {"source", r.model.source},
                     {"path", r.model.path},
                     {"architecture", r.arch},
                     {"size", r.model.size},
                     {"parts", r.model.parts.size()},
                     {"plan", r.plan},
                     {"plan_note", r.plan_note},
                     {"min_budget", r.min_budget},
                     {"resident_budget", r.resident_budget}});
    std::printf("%s\n", nlohmann::json{{"budget", budget}, {"budget_from", budget_from}, {"models", out}}.dump(2).c_str());
    return;
  }
  std::fprintf(stderr, "swapmoe: ollama store %s, Hugging Face cache %s; plan for %s (%s)\n",
               store::ollama_models_dir().c_str(), store::hf_hub_dir().c_str(), format_bytes(budget).c_str(),
               budget_from.c_str());
  if (rows.empty()) {
    std::fprintf(stderr, "swapmoe: no models found\n");
    return;
  }
  size_t wn = 4, wa = 4, ws = 4;
  for (const Row& r : rows) {
    wn = std::max(wn, r.model.name.size());
    wa = std::max(wa, r.arch.size());
    ws = std::max(ws, format_bytes(r.model.size).size());
  }
  std::printf("%-*s  %-*s  %*s  %5s  %-9s  %s\n", static_cast<int>(wn), "NAME", static_cast<int>(wa), "ARCH",
              static_cast<int>(ws), "SIZE", "PARTS", "PLAN", "");
  for (const Row& r : rows)
    std::printf("%-*s  %-*s  %*s  %5zu  %-9s  %s\n", static_cast<int>(wn), r.model.name.c_str(), static_cast<int>(wa),
                r.arch.c_str(), static_cast<int>(ws), format_bytes(r.model.size).c_str(), r.model.parts.size(),
                r.plan.c_str(), r.plan_note.c_str());
}

}  // namespace

Command add_list_command(CLI::App& app) {
  auto o = std::make_shared<ListOptions>();
  CLI::App* sub = app.add_subcommand(
      "list", "List the models in ollama's store and the Hugging Face cache, with what the memory plan says");
  sub->add_option("--mem", o->mem, "Budget to plan for, e.g. 24G (default: this machine's available memory)");
  sub->add_flag("--json", o->json, "Print the list as JSON");
  return {sub, [o] { list(*o); }};
}

}  // namespace swapmoe::cli
