#include "cli/common_options.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <random>

namespace swapmoe::cli {

ModelOptions ModelArgs::to_options() const {
  ModelOptions o;
  o.n_threads = threads;
  o.n_ctx = ctx;
  return o;
}

void add_model_args(CLI::App* sub, ModelArgs& a) {
  sub->add_option("MODEL", a.path, "GGUF model file")->required();
  sub->add_option("-t,--threads", a.threads, "Worker threads (default: all cores)")->check(CLI::Range(0, 1 << 30));
  sub->add_option("-c,--ctx", a.ctx, "Context size in tokens (default: min(4096, the model's trained context))")
      ->check(CLI::Range(0, 1 << 30));
}

SamplerParams SamplingArgs::to_params() const {
  SamplerParams p;
  p.temp = temp;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  if (seed_option && seed_option->count() > 0) {
    p.seed = seed;
  } else {
    std::random_device rd;
    p.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    if (temp > 0) std::fprintf(stderr, "swapmoe: seed %llu\n", static_cast<unsigned long long>(p.seed));
  }
  return p;
}

void add_sampling_args(CLI::App* sub, SamplingArgs& a) {
  sub->add_option("--temp", a.temp, "Temperature; 0 = greedy")->capture_default_str();
  sub->add_option("--top-k", a.top_k, "Keep the k most likely tokens; 0 = off")->capture_default_str();
  sub->add_option("--top-p", a.top_p, "Nucleus sampling threshold; 1 = off")->capture_default_str();
  sub->add_option("--min-p", a.min_p, "Drop tokens below min-p times the top probability; 0 = off")
      ->capture_default_str();
  a.seed_option = sub->add_option("--seed", a.seed, "Random seed (default: random, printed on stderr)");
}

}  // namespace swapmoe::cli
