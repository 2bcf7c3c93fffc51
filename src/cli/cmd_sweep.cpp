// `swapmoe sweep MODEL --text FILE --mem LIST --policy LIST [--exactness LIST]`: the
// quality/speed tradeoff table. Every grid point (budget x policy [x τ]) loads the model
// afresh under its own budget, scores the text (perplexity, and against the exact model:
// KL mean/p99, top-1 agreement, perplexity ratio), then measures decode speed (a prompt
// from the text, then greedy tokens), and frees the model before the next point. Points
// run one after another, so the process never holds two models.
//
// The exact reference is the scoring pass of the first exact point, whose logits go to an
// unlinked temporary file (eval_spill.h); exact output does not depend on the budget (the
// expert cache computes exactly what the resident model does), so one reference serves
// every point, and the other exact points double as a check (their KL must be 0). Without
// exact in --policy, a reference pass runs first under the largest budget of --mem.
//
// --mem entries: a size ("6G", "512M"), "min" (the smallest budget the plan accepts),
// "P%" (the budget whose expert cache holds P% of all expert bytes), or "resident" (no
// budget, every expert in memory; exact policy only). Writes PREFIX.csv and PREFIX.svg,
// rewritten after every point, so a long sweep that is cut short keeps what it measured.

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>

#include "cache/budget.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "eval/eval_pass.h"
#include "eval/eval_table.h"
#include "gguf/gguf.h"
#include "io/direct_file.h"
#include "arch/arch.h"
#include "model/model.h"
#include "runtime/model_budget.h"
#include "util/error.h"
#include "util/text_file.h"
#include "util/thread_pool.h"

namespace swapmoe::cli {

namespace {

struct SweepOptions {
  std::string path;
  std::string text_file;
  std::vector<std::string> mems;
  std::vector<std::string> policies = {"exact", "swapmoe"};
  std::vector<double> exactness;  // empty: ModelOptions' default
  double swap_rate = ModelOptions{}.swap_rate;
  std::string profile;
  std::string cache_policy = "nextuse";
  std::string io = "auto";
  int threads = 0;
  int64_t ctx = 0;           // scoring window; 0: min(trained context, 512, the tokens)
  int64_t max_tokens = 1024;
  int n_decode = 32;
  int prompt_tokens = 16;
  int repeat = 1;
  std::string prefix = "sweep";
  bool append = false;
  bool plot_only = false;
  std::string title;
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail(tmp, ": cannot create the file");
    out << text;
    if (!out.flush()) fail(tmp, ": write error");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename ", tmp, " to ", path);
}

// A budget of the grid, resolved against the model's plan.
struct Budget {
  std::string label;
  uint64_t bytes = 0;  // 0: resident
  uint64_t x_bytes = 0;  // the plotted budget (resident: the smallest that holds every expert)
  double share = 0;      // of expert bytes the expert cache holds
  int64_t n_slots = 0;
};

struct ModelFacts {
  BudgetPlan measure;     // the fixed parts and the slot size, without a budget
  int64_t total_experts = 0;
  uint64_t fixed = 0;     // dense + KV + scratch + overhead
  BudgetRequest req;
};

// per_layer: plan the minimum as per-layer pools do (n_expert_used slots in every MoE
// layer), which is what --policy swapmoe needs (model_budget.cpp).
ModelFacts model_facts(const std::string& path, int64_t n_ctx, int n_threads, bool per_layer) {
  auto f = GgufFile::open(path);
  const ModelConfig cfg = config_from_gguf(*f);
  ModelFacts m;
  m.req.n_ctx = n_ctx;
  m.req.n_threads = n_threads;
  m.req.per_layer = per_layer;
  m.req.alignment = io::DirectFileSet::open(f->part_paths()).alignment();
  m.measure = measure_model(cfg, *f, m.req);
  for (const LayerExpertBytes& l : m.measure.layers) m.total_experts += l.n_expert;
  m.fixed = m.measure.dense_bytes + m.measure.kv_bytes + m.measure.scratch_bytes + m.measure.overhead_bytes;
  return m;
}

Budget resolve_budget(const std::string& label, const std::string& path, const ModelFacts& m) {
  Budget b;
  b.label = label;
  const uint64_t all = budget_for_slots(m.measure, m.total_experts);
  if (label == "resident") {
    b.bytes = 0;
    b.x_bytes = all;
    b.share = 1;
    b.n_slots = m.total_experts;
    return b;
  }
  if (label == "min") {
    b.bytes = m.measure.min_budget;
  } else if (!label.empty() && label.back() == '%') {
    char* end = nullptr;
    const std::string num = label.substr(0, label.size() - 1);
    const double pct = std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size() || !(pct > 0) || pct > 100)
      fail("--mem ", label, ": a share of expert bytes must be in (0%, 100%]");
    auto slots = static_cast<int64_t>(std::ceil(pct / 100.0 * static_cast<double>(m.total_experts) - 1e-9));
    slots = std::max(slots, m.measure.min_slots);
    b.bytes = budget_for_slots(m.measure, slots);
  } else {
    b.bytes = parse_size(label);
    if (b.bytes == 0) fail("--mem 0: give a positive size, min, P% or resident");
  }
  // The plan the model will make (throws, with the numbers, when the budget is too small).
  auto f = GgufFile::open(path);
  BudgetRequest req = m.req;
  req.budget = b.bytes;
  const BudgetPlan p = plan_budget(config_from_gguf(*f), *f, req);
  b.x_bytes = b.bytes;
  b.n_slots = std::min(p.n_slots, m.total_experts);
  b.share = m.total_experts ? static_cast<double>(b.n_slots) / static_cast<double>(m.total_experts) : 1.0;
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Forget the process's peak RSS so that VmHWM measures one point (Linux >= 4.0).
void reset_peak_rss() {
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

struct Point {
  Budget budget;
  std::string policy;
  double exactness;
};

void sweep(const SweepOptions& o) {
  if (o.plot_only) {  // redraw PREFIX.svg from PREFIX.csv
    std::vector<SweepRow> rows = rows_from_csv(read_whole_file(o.prefix + ".csv", "the sweep CSV"));
    finalize_rows(rows);
    write_file(o.prefix + ".svg", svg::render(sweep_figure(rows, o.title.empty() ? "swapmoe sweep" : o.title)));
    std::printf("%s.svg: %zu rows\n", o.prefix.c_str(), rows.size());
    return;
  }
  if (o.mems.empty()) fail("sweep: --mem is required (a list of budgets)");
  if (o.text_file.empty()) fail("sweep: --text is required");
  // Tokens: the first --max-tokens of the text, BOS included (as eval tokenizes).
  std::vector<int32_t> ids;
  int64_t n_ctx_train = 0;
  {
    auto f = GgufFile::open(o.path);
    n_ctx_train = config_from_gguf(*f).n_ctx_train;
    ids = Tokenizer::from_gguf(*f)->encode(read_whole_file(o.text_file, "the text file"), true, false);
  }
  if (o.max_tokens > 0 && static_cast<int64_t>(ids.size()) > o.max_tokens) ids.resize(o.max_tokens);
  const auto n_ids = static_cast<int64_t>(ids.size());
  const int64_t window = o.ctx > 0 ? std::min(o.ctx, n_ids) : std::min({n_ctx_train, int64_t{512}, n_ids});
  if (window < 2) fail(o.text_file, ": need at least 2 tokens to score, got ", n_ids);
  std::vector<int32_t> prompt(ids.begin(), ids.begin() + std::min<int64_t>(o.prompt_tokens, n_ids));
  const int64_t n_ctx = std::max<int64_t>(window, static_cast<int64_t>(prompt.size()) + o.n_decode);
  const int n_threads = resolve_thread_count(o.threads);

  // Budgets are resolved per policy: "min" (and the floor under "P%") differ, because
  // SwapMoE needs n_expert_used slots in every layer, exact mode only in one shared pool.
  const ModelFacts facts_exact = model_facts(o.path, n_ctx, n_threads, false);
  const ModelFacts facts_swapmoe = model_facts(o.path, n_ctx, n_threads, true);
  auto budget = [&](const std::string& label, const std::string& policy) -> std::optional<Budget> {
    try {
      return resolve_budget(label, o.path, policy == "swapmoe" ? facts_swapmoe : facts_exact);
    } catch (const Error& e) {
      std::fprintf(stderr, "swapmoe: sweep: --mem %s --policy %s: %s (point skipped)\n", label.c_str(), policy.c_str(),
                   e.what());
      return std::nullopt;
    }
  };

  // The grid: exact points first (the first one writes the reference).
  std::vector<std::string> policies = o.policies;
  std::stable_partition(policies.begin(), policies.end(), [](const std::string& p) { return p == "exact"; });
  const std::vector<double> taus = o.exactness.empty() ? std::vector<double>{ModelOptions{}.exactness} : o.exactness;
  std::vector<Point> points;
  for (const std::string& pol : policies)
    for (const std::string& label : o.mems) {
      if (pol != "exact" && label == "resident") {
        std::fprintf(stderr, "swapmoe: sweep: skipping --policy %s at resident (no budget: it is the exact model)\n",
                     pol.c_str());
        continue;
      }
      const std::optional<Budget> b = budget(label, pol);
      if (!b) continue;
      if (pol == "exact")
        points.push_back({*b, pol, kNaN});
      else
        for (double t : taus) points.push_back({*b, pol, t});
    }
  if (points.empty()) fail("sweep: no point of the grid fits its budget");

  auto base_options = [&](const Budget& b, const std::string& policy, double tau) {
    ModelOptions mo;
    mo.n_threads = n_threads;
    mo.n_ctx = n_ctx;
    mo.mem_budget = b.bytes;
    mo.cache_policy = o.cache_policy;
    mo.io_engine = o.io;
    mo.prefetch = false;
    mo.policy = policy;
    if (std::isfinite(tau)) mo.exactness = tau;
    mo.swap_rate = o.swap_rate;
    mo.profile_path = o.profile;
    return mo;
  };
  auto load = [&](const ModelOptions& mo) {
    auto m = Model::load(o.path, mo);
    if (m->n_ctx() < n_ctx)
      fail("the budget reduced the context to ", m->n_ctx(), " tokens; the sweep needs ", n_ctx,
           " (lower --ctx / --max-tokens or raise --mem)");
    return m;
  };

  std::vector<SweepRow> rows;
  if (o.append) {
    std::ifstream probe(o.prefix + ".csv");
    if (probe) rows = rows_from_csv(read_whole_file(o.prefix + ".csv", "the sweep CSV"));
  }
  const std::string title =
      !o.title.empty() ? o.title
                       : cat("swapmoe sweep: ", o.path.substr(o.path.find_last_of('/') + 1), ", ",
                             scored_positions(n_ids, window), " tokens scored, ", o.n_decode, " decoded");
  auto save = [&] {
    finalize_rows(rows);
    write_file(o.prefix + ".csv", rows_to_csv(rows));
    write_file(o.prefix + ".svg", svg::render(sweep_figure(rows, title)));
  };

  std::unique_ptr<LogitSpill> reference;
  PassResult ref_pass;
  if (std::find(policies.begin(), policies.end(), "exact") == policies.end()) {
    const Budget* largest = &points.front().budget;
    for (const Point& p : points)
      if (largest->bytes != 0 && p.budget.bytes > largest->bytes) largest = &p.budget;
    std::fprintf(stderr, "swapmoe: sweep: exact reference pass at --mem %s\n", largest->label.c_str());
    auto m = load(base_options(*largest, "exact", kNaN));
    reference = std::make_unique<LogitSpill>(static_cast<int>(m->config().n_vocab));
    ref_pass = score_tokens(*m, ids, window, reference.get(), nullptr);
    m.reset();
    malloc_trim(0);
  }

  for (const Point& pt : points) {
    const Budget& b = pt.budget;
    reset_peak_rss();
    SweepRow r;
    r.mem_bytes = b.x_bytes;
    r.mem_label = b.label;
    r.expert_share = b.share;
    r.n_slots = b.n_slots;
    r.policy = pt.policy;
    r.exactness = pt.exactness;
    try {
      auto m = load(base_options(b, pt.policy, pt.exactness));
      const bool writes_reference = !reference && pt.policy == "exact";
      std::unique_ptr<LogitSpill> spill;
      if (writes_reference) spill = std::make_unique<LogitSpill>(static_cast<int>(m->config().n_vocab));
      const PassResult pass = score_tokens(*m, ids, window, spill.get(), reference.get());
      if (writes_reference) {
        reference = std::move(spill);
        ref_pass = pass;
      }
      // Decode --repeat times; the speeds are medians, the cache figures the last run's.
      std::vector<double> decode_tps, prompt_tps;
      DecodeResult d;
      for (int k = 0; k < o.repeat; ++k) {
        d = measure_decode(*m, prompt, o.n_decode);
        decode_tps.push_back(d.decode_tok_s());
        prompt_tps.push_back(d.prompt_tok_s());
      }
      r.tokens = pass.tokens;
      r.ppl = std::exp(pass.nll);
      r.ppl_ratio = ppl_ratio(pass.nll, ref_pass.nll);
      if (writes_reference) {  // compared with itself
        r.kl_mean = r.kl_p99 = 0;
        r.top1_agreement = 1;
      } else {
        r.kl_mean = pass.kl_mean;
        r.kl_p99 = pass.kl_p99;
        r.top1_agreement = pass.agreement;
      }
      r.eval_tok_s = pass.tok_s();
      r.prefill_tok_s = median(prompt_tps);
      r.decode_tok_s = median(decode_tps);
      const double t = static_cast<double>(std::max<int64_t>(1, d.decode_tokens));
      const ExpertRunStats& ds = d.stats;
      if (ds.swapmoe) {
        // hit rate = share of the unmasked router's choices that were resident; reads are
        // background swaps plus synchronous (τ) loads.
        r.hit_rate = ds.swap.hit_rate();
        r.read_bytes_per_token = static_cast<double>(ds.swap.swap_bytes + ds.swap.sync_bytes) / t;
        r.stall_ms_per_token = 1000.0 * (ds.swap.stall_seconds + ds.swap.swap_wait_seconds) / t;
        r.swap_bytes_per_token = static_cast<double>(ds.swap.swap_bytes) / t;
        const SwapMoeStats& w = pass.stats.swap;
        const double chosen = static_cast<double>(std::max<uint64_t>(1, w.chosen));
        r.masked_share = static_cast<double>(w.masked + w.sync_no_slot) / chosen;
        r.sync_load_share = static_cast<double>(w.sync_loads) / chosen;
      } else if (ds.cached) {
        r.hit_rate = ds.cache.hit_rate();
        r.read_bytes_per_token = static_cast<double>(ds.cache.bytes_read) / t;
        r.stall_ms_per_token = 1000.0 * ds.cache.blocked_seconds / t;
      } else {
        r.hit_rate = 1.0;
      }
      m.reset();
      malloc_trim(0);
      r.peak_rss_bytes = peak_rss_bytes();
    } catch (const Error& e) {
      std::fprintf(stderr, "swapmoe: sweep: --mem %s --policy %s: %s (point skipped)\n", b.label.c_str(),
                   pt.policy.c_str(), e.what());
      continue;
    }
    if (pt.policy == "exact" && r.kl_mean != 0)
      std::fprintf(stderr, "swapmoe: sweep: WARNING: exact at --mem %s differs from the reference (KL %.3g)\n",
                   b.label.c_str(), r.kl_mean);
    std::fprintf(stderr,
                 "swapmoe: sweep: --mem %s (%s, %.0f%% of experts) %s: ppl %.4f (x%.4f) KL %.3g/%.3g top-1 %.1f%% | "
                 "eval %.1f tok/s, decode %.2f tok/s, hit %.1f%%, stall %.2f ms/token, masked %.1f%%, sync %.1f%%\n",
                 b.label.c_str(), format_bytes(b.x_bytes).c_str(), 100 * b.share, series_name(r).c_str(), r.ppl,
                 r.ppl_ratio, r.kl_mean, r.kl_p99, 100 * r.top1_agreement, r.eval_tok_s, r.decode_tok_s,
                 100 * r.hit_rate, r.stall_ms_per_token, 100 * r.masked_share, 100 * r.sync_load_share);
    rows.push_back(r);
    save();
  }
  if (rows.empty()) fail("sweep: no point could be measured");
  save();
  std::printf("%s.csv %s.svg: %zu rows\n", o.prefix.c_str(), o.prefix.c_str(), rows.size());
}

}  // namespace

Command add_sweep_command(CLI::App& app) {
  auto o = std::make_shared<SweepOptions>();
  CLI::App* sub = app.add_subcommand(
      "sweep", "Quality and speed over a grid of budgets and policies (PREFIX.csv and PREFIX.svg)");
  sub->add_option("MODEL", o->path, kModelHelp)->required();
  sub->add_option("--text", o->text_file, "Text file to score (required unless --plot-only)");
  sub->add_option("--mem", o->mems, "Budgets, comma-separated: SIZE (6G), min, P% (of expert bytes), resident")
      ->delimiter(',');
  sub->add_option("--policy", o->policies, "Expert policies, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember({"exact", "swapmoe"}))
      ->capture_default_str();
  sub->add_option("--exactness", o->exactness, "τ values for swapmoe points, comma-separated (default: the default τ)")
      ->delimiter(',')
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--swap-rate", o->swap_rate, "swapmoe: background expert loads per token")->capture_default_str();
  sub->add_option("--profile", o->profile, "swapmoe: routing profile from `swapmoe profile`");
  sub->add_option("--cache-policy", o->cache_policy, "Expert cache eviction policy (exact points)")
      ->check(CLI::IsMember({"lru", "lfu", "lru2", "nextuse"}))
      ->capture_default_str();
  sub->add_option("--io", o->io, "Expert read engine")->check(CLI::IsMember({"auto", "uring", "pread"}))->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "Worker threads (default: all cores)")->check(CLI::Range(0, 1 << 30));
  sub->add_option("-c,--ctx", o->ctx, "Scoring window in tokens (default: min(trained context, 512))")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_option("--max-tokens", o->max_tokens, "Tokens of the text to score (BOS included), in windows of --ctx")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 30));
  sub->add_option("-n,--decode-tokens", o->n_decode, "Greedy tokens generated per point for the decode speed")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--prompt-tokens", o->prompt_tokens, "Tokens of the text used as the decode prompt")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--repeat", o->repeat, "Decode measurements per point (the speeds reported are medians)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  sub->add_option("-o,--output", o->prefix, "Output prefix: writes PREFIX.csv and PREFIX.svg")->capture_default_str();
  sub->add_flag("--append", o->append, "Add the points to an existing PREFIX.csv instead of starting a new one");
  sub->add_option("--title", o->title, "Title of the plot");
  sub->add_flag("--plot-only", o->plot_only, "Only redraw PREFIX.svg from PREFIX.csv (MODEL is not read)");
  return {sub, [o] {
            o->path = resolve_model_arg(o->path).path;
            sweep(*o);
          }};
}

}  // namespace swapmoe::cli
