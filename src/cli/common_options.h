#pragma once
// Options shared by the commands that load and run a model (run, eval, and later bench
// and serve). They are declared here once, so an option such as a memory budget is added
// to every such command by one edit.

#include <cstdint>
#include <string>

#include "model/model.h"
#include "sample/sampler.h"
#include "store/store.h"

namespace CLI {
class App;
class Option;
}

namespace swapmoe::cli {

struct ModelArgs {
  std::string path;
  int threads = 0;   // 0: all cores
  int64_t ctx = 0;   // 0: the command's default (min(4096, trained context) for run)
  // Memory budget (--mem SIZE; empty: unlimited) and the expert cache's settings.
  std::string mem;
  std::string cache_policy = "nextuse";
  std::string cache_layout = "shared";
  std::string io = "auto";
  bool prefetch = false;     // --prefetch: accepted for clarity; prefetch is on unless --no-prefetch
  bool no_prefetch = false;
  int prefetch_depth = 1;    // --prefetch-depth: layers of lookahead (ModelOptions::prefetch_depth)
  int speculate = 8;         // --speculate: spare buffers for idle-disk reads (ModelOptions::speculate)
  bool progress = false;
  // Expert policy (docs/swapmoe.md): --policy exact|swapmoe, --exactness T, --swap-rate R,
  // --profile FILE (see ModelOptions).
  std::string policy = "exact";
  double exactness = 1.0;
  double swap_rate = 1.0;
  std::string profile;
  CLI::Option* ctx_option = nullptr;  // --ctx given explicitly?
  // Set by resolve(): the name MODEL was given as, and the defaults its store gives it.
  std::string name;
  store::ModelParams params;

  ModelOptions to_options() const;
  // MODEL -> the file to open (resolve_model_arg), once, before the command runs; the
  // store's num_ctx becomes the --ctx default. An empty MODEL (the demo default) stays empty.
  void resolve();
};

// MODEL as the user gave it -> the model to open (src/store/store.h: an existing path, an
// hf:OWNER/REPO[:QUANT] reference to the Hugging Face cache, or an ollama name). Says on
// stderr which file a store name resolved to.
store::StoreModel resolve_model_arg(const std::string& spec);

// MODEL (positional, required), --threads, --ctx, and the budget options
// --mem, --cache-policy, --cache-layout, --io, --no-prefetch, --progress, and the expert
// policy --policy, --exactness, --swap-rate, --profile.
// With model_optional, MODEL may be left out and default_model_path() is used.
void add_model_args(CLI::App* sub, ModelArgs& a, bool model_optional = false);

// Help text of every MODEL argument.
inline constexpr const char* kModelHelp =
    "GGUF model file (the first part of a split model), an ollama model name such as deepseek-r1:671b, or "
    "hf:OWNER/REPO[:QUANT] from the Hugging Face cache";

// The project's own demo model (issue: a small trained MoE model), the default of `run`.
inline constexpr const char* kDefaultModelFile = "fortunes-moe.gguf";
std::string default_model_path();

// The expert-cache statistics line at the end of a run (only under --mem), on stderr:
// hit rate, bytes read per token, read bandwidth, I/O wait per token, prefetch accuracy,
// peak RSS. `tokens` forward passes took `seconds`.
void print_run_stats(Model& m, const ModelArgs& a, int64_t tokens, double seconds);
// The --progress line, rewritten in place with \r (no-op without --progress).
void print_progress(Model& m, const ModelArgs& a, int64_t tokens, double seconds);
// Ends the --progress line (newline) before other output on stderr.
void end_progress(const ModelArgs& a);

struct SamplingArgs {
  float temp = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  uint64_t seed = 0;
  CLI::Option* seed_option = nullptr;  // not given: a fresh random seed, reported on stderr
  CLI::Option* temp_option = nullptr;
  CLI::Option* top_k_option = nullptr;
  CLI::Option* top_p_option = nullptr;
  CLI::Option* min_p_option = nullptr;
  bool store_seed = false;  // the seed came from the model's store (apply_defaults)

  SamplerParams to_params() const;
  // A model store's defaults (ollama's params layer) for the options not given explicitly.
  void apply_defaults(const store::ModelParams& p);
};

// A CLI11 check that refuses an empty value: `--mem ''` used to mean "no limit" silently, so a
// typo such as --mem "$UNSET" lifted the budget.
std::string non_empty_size(const std::string& value);

// --temp, --top-k, --top-p, --min-p, --seed.
void add_sampling_args(CLI::App* sub, SamplingArgs& a);

}  // namespace swapmoe::cli
