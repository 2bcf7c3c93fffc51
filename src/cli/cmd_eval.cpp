// `swapmoe eval MODEL --text FILE`: perplexity of a text in one context window.
// The definition matches tests/conformance/llama_ref.mjs `eval` exactly, so the two can
// be compared: tokenize with add_special (BOS) and without special-token parsing (as
// llama-perplexity does), keep the first --max-tokens tokens (BOS included), evaluate
// them in order, and average -log softmax(logits[i-1])[tok[i]] over i >= 1 (log-sum-exp
// in double precision). Prints {"tokens":N,"nll":x,"ppl":y} on stdout.
//
// With --reference exact the same tokens are first scored by the exact model (policy
// exact, same --mem budget, same context), whose logits go to an unlinked temporary file
// (eval_spill.h); that model is freed, then the chosen policy's model scores the tokens
// and is compared position by position (eval_metrics.h). The JSON line gains
// "reference","ref_nll","ref_ppl","ppl_ratio","kl_mean","kl_p99","top1_agreement",
// "tok_s","ref_tok_s" after the three usual fields. Only one model is in memory at a time.

#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "eval/eval_pass.h"
#include "cli/json_out.h"
#include "gguf/gguf.h"
#include "arch/arch.h"
#include "model/model.h"
#include "util/error.h"
#include "util/text_file.h"

namespace swapmoe::cli {

namespace {

struct EvalOptions {
  ModelArgs model;
  std::string text_file;
  int64_t max_tokens = 0;  // 0: no limit besides the context
  bool parse_special = false;
  std::string reference;   // "" or "exact"
};

// Loads the model and shortens ids to its context (--mem may have reduced it).
std::unique_ptr<Model> load_for(const EvalOptions& o, const ModelOptions& mo, std::vector<int32_t>& ids) {
  auto model = Model::load(o.model.path, mo);
  if (static_cast<int64_t>(ids.size()) > model->n_ctx()) {
    std::fprintf(stderr, "swapmoe: text truncated from %zu to the context of %lld tokens\n", ids.size(),
                 static_cast<long long>(model->n_ctx()));
    ids.resize(static_cast<size_t>(model->n_ctx()));
  }
  return model;
}

PassResult run_pass(const EvalOptions& o, Model& m, const std::vector<int32_t>& ids, LogitSpill* spill,
                    const LogitSpill* ref, const char* what) {
  const PassResult r = score_tokens(m, ids, static_cast<int64_t>(ids.size()), spill, ref,
                                    [&](int64_t n, double s) { print_progress(m, o.model, n, s); });
  end_progress(o.model);
  std::fprintf(stderr, "swapmoe: %sevaluated %lld tokens in %.2f s (%.2f tok/s)\n", what,
               static_cast<long long>(r.tokens), r.seconds, r.tok_s());
  print_run_stats(m, o.model, r.tokens, r.seconds);
  return r;
}

void eval(const EvalOptions& o) {
  const std::string text = read_whole_file(o.text_file, "the text file");
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

  if (o.reference.empty()) {
    auto model = load_for(o, mo, ids);
    const PassResult r = run_pass(o, *model, ids, nullptr, nullptr, "");
    std::printf("%s\n", eval_result_json(r.tokens, r.nll, std::exp(r.nll)).c_str());
    std::fflush(stdout);
    return;
  }

  // The reference pass: the exact policy under the same budget and context.
  ModelOptions ref_mo = mo;
  ref_mo.policy = "exact";
  auto model = load_for(o, ref_mo, ids);
  if (ids.size() < 2) fail(o.text_file, ": need at least 2 tokens to score, got ", ids.size());
  LogitSpill spill(static_cast<int>(model->config().n_vocab));
  const PassResult ref = run_pass(o, *model, ids, &spill, nullptr, "reference (exact): ");
  model.reset();
  malloc_trim(0);  // give the freed model back to the system before the next one loads

  const size_t n_ref_ids = ids.size();
  model = load_for(o, mo, ids);
  if (ids.size() != n_ref_ids)
    fail("--policy ", mo.policy, " allows a context of ", model->n_ctx(), " tokens under this budget, the exact "
         "reference ", n_ref_ids, ": give --ctx ", model->n_ctx(), " or a larger --mem");
  const std::string what = cat("policy ", mo.policy, ": ");
  const PassResult r = run_pass(o, *model, ids, nullptr, &spill, what.c_str());
  std::string json = eval_result_json(r.tokens, r.nll, std::exp(r.nll));
  json.pop_back();  // the closing brace: the reference fields follow
  char buf[512];
  std::snprintf(buf, sizeof buf,
                ",\"reference\":\"exact\",\"ref_nll\":%.6f,\"ref_ppl\":%.6f,\"ppl_ratio\":%.6f,\"kl_mean\":%.6g,"
                "\"kl_p99\":%.6g,\"top1_agreement\":%.6f,\"tok_s\":%.3f,\"ref_tok_s\":%.3f}",
                ref.nll, std::exp(ref.nll), ppl_ratio(r.nll, ref.nll), r.kl_mean, r.kl_p99, r.agreement, r.tok_s(),
                ref.tok_s());
  std::printf("%s%s\n", json.c_str(), buf);
  std::fflush(stdout);
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
  sub->add_option("--reference", o->reference,
                  "Also score the text with this policy first (same --mem) and report KL(reference || policy) "
                  "mean and p99 per token, top-1 agreement, the perplexity ratio and both speeds")
      ->check(CLI::IsMember({"exact"}));
  return {sub, [o] {
            o->model.resolve();
            eval(*o);
          }};
}

}  // namespace swapmoe::cli
