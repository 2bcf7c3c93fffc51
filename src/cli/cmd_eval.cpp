// `swapmoe eval MODEL --text FILE`: perplexity of a text in one context window.
// The definition matches tests/conformance/llama_ref.mjs `eval` exactly, so the two can
// be compared: tokenize with add_special (BOS) and without special-token parsing (as
// llama-perplexity does), keep the first --max-tokens tokens (BOS included), evaluate
// them in order, and average -log softmax(logits[i-1])[tok[i]] over i >= 1 (log-sum-exp
// in double precision). Prints {"tokens":N,"nll":x,"ppl":y} on stdout.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/json_out.h"
#include "gguf/gguf.h"
#include "model/arch.h"
#include "model/model.h"
#include "util/error.h"

namespace swapmoe::cli {

namespace {

struct EvalOptions {
  ModelArgs model;
  std::string text_file;
  int64_t max_tokens = 0;  // 0: no limit besides the context
  bool parse_special = false;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the text file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, ": read error");
  return ss.str();
}

// -log softmax(logits)[target], with the log-sum-exp in double precision.
double token_nll(const float* logits, int n_vocab, int32_t target) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < n_vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  if (!std::isfinite(mx)) fail("the model produced no finite logit (max logit ", mx, ")");
  double sum = 0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return (mx + std::log(sum)) - static_cast<double>(logits[target]);
}

void eval(const EvalOptions& o) {
  const std::string text = read_file(o.text_file);
  // Tokenize from the header alone, so the context can be sized before the weights load.
  std::vector<int32_t> ids;
  int64_t n_ctx_train = 0;
  {
    auto f = GgufFile::open(o.model.path);
    n_ctx_train = config_from_gguf(*f).n_ctx_train;
    ids = Tokenizer::from_gguf(*f)->encode(text, /*add_special=*/true, o.parse_special);
  }
  if (o.max_tokens > 0 && static_cast<int64_t>(ids.size()) > o.max_tokens) ids.resize(o.max_tokens);
  const int64_t ctx = o.model.ctx > 0 ? o.model.ctx : std::min<int64_t>(n_ctx_train, static_cast<int64_t>(ids.size()));
  if (static_cast<int64_t>(ids.size()) > ctx) {
    std::fprintf(stderr, "swapmoe: text truncated from %zu to the context of %lld tokens\n", ids.size(),
                 static_cast<long long>(ctx));
    ids.resize(ctx);
  }
  if (ids.size() < 2) fail(o.text_file, ": need at least 2 tokens to score, got ", ids.size());

  ModelOptions mo = o.model.to_options();
  mo.n_ctx = std::max<int64_t>(ctx, 2);
  auto model = Model::load(o.model.path, mo);
  if (static_cast<int64_t>(ids.size()) > model->n_ctx()) {  // --mem may have reduced the context
    std::fprintf(stderr, "swapmoe: text truncated from %zu to the context of %lld tokens\n", ids.size(),
                 static_cast<long long>(model->n_ctx()));
    ids.resize(static_cast<size_t>(model->n_ctx()));
  }
  const int n_vocab = static_cast<int>(model->config().n_vocab);
  for (int32_t id : ids)
    if (id < 0 || id >= n_vocab) fail("token id ", id, " is outside the model's vocabulary of ", n_vocab);

  const auto t0 = std::chrono::steady_clock::now();
  double sum = 0;
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    const float* logits = model->forward(ids[i], static_cast<int64_t>(i));
    sum += token_nll(logits, n_vocab, ids[i + 1]);
    print_progress(*model, o.model, static_cast<int64_t>(i + 1),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  end_progress(o.model);
  const auto n = static_cast<int64_t>(ids.size() - 1);
  const double nll = sum / static_cast<double>(n);
  std::printf("%s\n", eval_result_json(n, nll, std::exp(nll)).c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "swapmoe: evaluated %lld tokens in %.2f s (%.2f tok/s)\n", static_cast<long long>(n), secs,
               secs > 0 ? static_cast<double>(n) / secs : 0.0);
  print_run_stats(*model, o.model, n, secs);
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand("eval", "Perplexity of a text file in one context window (JSON on stdout)");
  add_model_args(sub, o->model);
  sub->add_option("--text", o->text_file, "Text file to score")->required();
  sub->add_option("--max-tokens", o->max_tokens, "Score only the first N tokens (BOS included)")
      ->check(CLI::Range(0, 1 << 30));
  sub->add_flag("--parse-special", o->parse_special, "Recognise special-token texts in the file (off, like llama-perplexity)");
  return {sub, [o] { eval(*o); }};
}

}  // namespace swapmoe::cli
