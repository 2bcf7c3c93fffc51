// `swapmoe profile MODEL --text FILE -o PROFILE`: runs the exact model over a text and
// writes the per-layer, per-expert routing statistics that `--policy swapmoe --profile`
// uses to size each layer's share of expert slots and to choose the initial resident
// experts (cache/swapmoe_profile.h has the JSON layout, docs/swapmoe.md the rule).
//
// The text is tokenized (with BOS), cut to --max-tokens, and evaluated in windows of the
// model's context (the KV cache is reset between windows). The routing recorded is the
// unmodified model's, so --mem (an exact-mode expert cache) only changes the speed.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "cache/swapmoe_policy.h"
#include "cache/swapmoe_profile.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "runtime/model_budget.h"
#include "util/error.h"
#include "util/text_file.h"

namespace swapmoe::cli {

namespace {

struct ProfileOptions {
  ModelArgs model;
  std::string text_file;
  std::string out;
  int64_t max_tokens = 0;
};

void profile(const ProfileOptions& o) {
  const std::string text = read_whole_file(o.text_file, "the text file");

  ModelOptions mo = o.model.to_options();
  mo.policy = "exact";
  auto model = Model::load(o.model.path, mo);
  const ModelConfig& cfg = model->config();
  if (cfg.n_expert <= 0) fail(o.model.path, ": the model has no experts to profile");

  std::vector<int32_t> ids = model->tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (o.max_tokens > 0 && static_cast<int64_t>(ids.size()) > o.max_tokens) ids.resize(static_cast<size_t>(o.max_tokens));
  if (ids.empty()) fail(o.text_file, ": no tokens to profile");

  // Wrap the model's store in the recorder.
  RoutingRecorder* r = nullptr;
  model->wrap_experts([&](std::unique_ptr<ExpertStore> inner) {
    auto rec = std::make_unique<RoutingRecorder>(std::move(inner), cfg);
    r = rec.get();
    return rec;
  });

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t ctx = model->n_ctx();
  int64_t pos = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (pos == ctx) {
      model->reset();
      pos = 0;
    }
    model->forward(ids[i], pos++);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const RoutingProfile& p = r->profile();
  p.save(o.out);
  std::fprintf(stderr, "swapmoe: profiled %zu tokens in %.2f s (%.1f tok/s), %zu MoE layers -> %s\n", ids.size(), secs,
               secs > 0 ? static_cast<double>(ids.size()) / secs : 0.0, p.layers.size(), o.out.c_str());
  for (const LayerProfile& L : p.layers)
    std::fprintf(stderr, "  layer %3d: entropy %.3f nats (per token %.3f), %lld of %lld experts hold 90%% of the chosen mass\n",
                 L.layer, L.entropy(), L.token_entropy(), static_cast<long long>(experts_to_cover(L.chosen_mass, kCoverShare)),
                 static_cast<long long>(cfg.n_expert));
}

}  // namespace

Command add_profile_command(CLI::App& app) {
  auto o = std::make_shared<ProfileOptions>();
  CLI::App* sub = app.add_subcommand(
      "profile", "Record per-layer expert routing statistics of a text, for --policy swapmoe --profile");
  add_model_args(sub, o->model);
  sub->add_option("--text", o->text_file, "Text file to run the model over")->required();
  sub->add_option("-o,--output", o->out, "Profile to write (JSON)")->required();
  sub->add_option("--max-tokens", o->max_tokens, "Profile at most this many tokens (default: the whole text)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  return {sub, [o] {
            o->model.resolve();
            profile(*o);
          }};
}

}  // namespace swapmoe::cli
