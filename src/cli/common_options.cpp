#include "cli/common_options.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "cache/budget.h"
#include "runtime/model_budget.h"
#include "util/error.h"

namespace swapmoe::cli {

ModelOptions ModelArgs::to_options() const {
  ModelOptions o;
  o.n_threads = threads;
  o.n_ctx = ctx;
  if (!mem.empty()) {
    o.mem_budget = parse_size(mem);
    if (o.mem_budget == 0) fail("--mem 0: give a positive size such as 8G, or leave --mem out for no limit");
  }
  o.cache_policy = cache_policy;
  o.cache_per_layer = cache_layout == "per-layer";
  o.io_engine = io;
  o.policy = policy;
  o.exactness = exactness;
  o.swap_rate = swap_rate;
  o.profile_path = profile;
  // SwapMoE chooses among resident experts only, so next-layer prefetch has nothing to do.
  o.prefetch = !no_prefetch && policy != "swapmoe";
  o.prefetch_depth = prefetch_depth;
  o.speculate = speculate;
  if (policy != "swapmoe" && (!profile.empty()))
    fail("--profile is used by --policy swapmoe only");
  if (policy == "swapmoe" && mem.empty())
    std::fprintf(stderr, "swapmoe: --policy swapmoe without --mem: every expert is resident, output is exact\n");
  return o;
}

store::StoreModel resolve_model_arg(const std::string& spec) {
  store::StoreModel m = store::resolve_model(spec);
  if (m.source != "file") {
    std::fprintf(stderr, "swapmoe: %s -> %s%s\n", m.name.c_str(), m.path.c_str(),
                 m.parts.size() > 1 ? cat(" (", m.parts.size(), " parts)").c_str() : "");
  }
  return m;
}

void ModelArgs::resolve() {
  if (path.empty()) return;
  store::StoreModel m = resolve_model_arg(path);
  name = m.name;
  path = m.path;
  params = m.params;
  if (params.num_ctx && *params.num_ctx > 0 && (!ctx_option || ctx_option->count() == 0)) ctx = *params.num_ctx;
}

std::string default_model_path() {
  namespace fs = std::filesystem;
  // The demo model ships in models/. Look beside the executable first (build/swapmoe ->
  // models/ next to build/), so a moved checkout still finds it, then where it was built.
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path p = exe.parent_path().parent_path() / "models" / kDefaultModelFile;
    if (fs::exists(p, ec)) return p.string();
  }
#ifdef SWAPMOE_SOURCE_DIR
  const fs::path p = fs::path(SWAPMOE_SOURCE_DIR) / "models" / kDefaultModelFile;
  if (fs::exists(p, ec)) return p.string();
#endif
  fail("no MODEL given and the default model models/", kDefaultModelFile, " was not found");
}

void add_model_args(CLI::App* sub, ModelArgs& a, bool model_optional) {
  if (model_optional)
    sub->add_option("MODEL", a.path,
                    std::string(kModelHelp) + " (default: the demo model models/" + kDefaultModelFile + ")");
  else
    sub->add_option("MODEL", a.path, kModelHelp)->required();
  sub->add_option("-t,--threads", a.threads, "Worker threads (default: all cores)")->check(CLI::Range(0, 1 << 30));
  a.ctx_option = sub->add_option("-c,--ctx", a.ctx, "Context size in tokens (default: min(4096, the model's trained context))")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_option("--mem", a.mem,
                  "Memory budget, e.g. 8G: experts are streamed from the file through a cache that fits "
                  "(default: no limit, every expert resident)")
      ->check(non_empty_size, "SIZE");
  sub->add_option("--cache-policy", a.cache_policy, "Expert cache eviction policy under --mem")
      ->check(CLI::IsMember({"lru", "lfu", "lru2", "nextuse"}))
      ->capture_default_str();
  sub->add_option("--cache-layout", a.cache_layout, "One shared expert pool, or one pool per layer")
      ->check(CLI::IsMember({"shared", "per-layer"}))
      ->capture_default_str();
  sub->add_option("--io", a.io, "Expert read engine under --mem")
      ->check(CLI::IsMember({"auto", "uring", "pread"}))
      ->capture_default_str();
  // Prefetch is on by default: since it takes only free or cold slots it was as fast or
  // faster at every budget measured (docs/benchmarks.md, memory budget, session 2).
  sub->add_flag("--prefetch", a.prefetch, "Predict the next layer's experts with its router and read them early (the default)");
  sub->add_flag("--no-prefetch", a.no_prefetch, "Do not prefetch");
  sub->add_option("--prefetch-depth", a.prefetch_depth, "Predict and read the experts of this many layers ahead")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  sub->add_option("--speculate", a.speculate,
                  "Spare expert buffers for reading the layer after the prefetch while the disk is idle (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  sub->add_flag("--progress", a.progress, "Live status line on stderr (tokens/s and cache figures)");
  sub->add_option("--policy", a.policy,
                  "Expert policy under --mem: exact (read missing experts, wait for them) or swapmoe (route "
                  "only to resident experts, swap them in the background; see docs/swapmoe.md)")
      ->check(CLI::IsMember({"exact", "swapmoe"}))
      ->capture_default_str();
  sub->add_option("--exactness", a.exactness,
                  "swapmoe: a missing chosen expert with normalised gate weight >= T is read synchronously, "
                  "below T it is masked (0 = exact output, 1 = pure SwapMoE)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--swap-rate", a.swap_rate, "swapmoe: background expert loads per token, all layers together")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  sub->add_option("--profile", a.profile,
                  "swapmoe: routing profile from `swapmoe profile` (per-layer slot shares, initial experts)");
}

void print_run_stats(Model& m, const ModelArgs& a, int64_t tokens, double seconds) {
  if (a.mem.empty()) return;
  const ExpertRunStats s = expert_run_stats(m);
  std::fprintf(stderr, "swapmoe: --mem %s, %s: %s\n", a.mem.c_str(), s.cached ? s.engine.c_str() : "resident",
               format_run_stats(s, tokens, seconds).c_str());
}

void print_progress(Model& m, const ModelArgs& a, int64_t tokens, double seconds) {
  if (!a.progress) return;
  const double tps = seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0;
  const ExpertRunStats s = expert_run_stats(m);
  std::fprintf(stderr, "\r\033[K%lld tokens, %.2f tok/s | %s", static_cast<long long>(tokens), tps,
               format_run_stats(s, tokens, seconds).c_str());
  std::fflush(stderr);
}

void end_progress(const ModelArgs& a) {
  if (a.progress) std::fputc('\n', stderr);
}

SamplerParams SamplingArgs::to_params() const {
  SamplerParams p;
  p.temp = temp;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  check_sampler_params(p, "--");
  if ((seed_option && seed_option->count() > 0) || store_seed) {
    p.seed = seed;
  } else {
    std::random_device rd;
    p.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    if (temp > 0) std::fprintf(stderr, "swapmoe: seed %llu\n", static_cast<unsigned long long>(p.seed));
  }
  return p;
}

void SamplingArgs::apply_defaults(const store::ModelParams& p) {
  auto unset = [](const CLI::Option* o) { return !o || o->count() == 0; };
  if (p.temperature && unset(temp_option)) temp = static_cast<float>(*p.temperature);
  if (p.top_k && unset(top_k_option)) top_k = static_cast<int>(*p.top_k);
  if (p.top_p && unset(top_p_option)) top_p = static_cast<float>(*p.top_p);
  if (p.min_p && unset(min_p_option)) min_p = static_cast<float>(*p.min_p);
  if (p.seed && unset(seed_option)) {
    // to_params() takes the seed only when --seed was given; a store's seed counts as given.
    seed = static_cast<uint64_t>(*p.seed);
    store_seed = true;
  }
}

std::string non_empty_size(const std::string& value) {
  if (value.empty()) return "an empty size: give one such as 8G, or leave the option out";
  return "";
}

void add_sampling_args(CLI::App* sub, SamplingArgs& a) {
  a.temp_option = sub->add_option("--temp", a.temp, "Temperature; 0 = greedy")->capture_default_str();
  a.top_k_option = sub->add_option("--top-k", a.top_k, "Keep the k most likely tokens; 0 = off")->capture_default_str();
  a.top_p_option = sub->add_option("--top-p", a.top_p, "Nucleus sampling threshold; 1 = off")->capture_default_str();
  a.min_p_option = sub->add_option("--min-p", a.min_p, "Drop tokens below min-p times the top probability; 0 = off")
                       ->capture_default_str();
  a.seed_option = sub->add_option("--seed", a.seed, "Random seed (default: random, printed on stderr)");
}

}  // namespace swapmoe::cli
