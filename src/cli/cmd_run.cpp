// `swapmoe run MODEL -p PROMPT`: evaluates the prompt and streams the continuation to
// stdout as it is generated. With --print-ids it prints the generated ids as one JSON
// array instead, and never stops early (the conformance tests compare exactly N ids
// with llama.cpp). Timing goes to stderr as one line at the end.
// For the conformance tests, --force-ids feeds given ids instead of the sampled ones (teacher
// forcing: steps after a divergence from llama.cpp can still be compared) and --logits-out
// writes every step's full logits (float32 rows of n_vocab, one per generated token).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/json_out.h"
#include "cli/utf8_stream.h"
#include "model/model.h"
#include "server/output_filter.h"
#include "util/error.h"

namespace swapmoe::cli {

namespace {

struct RunOptions {
  ModelArgs model;
  SamplingArgs sampling;
  std::string prompt;
  int n_predict = 128;
  CLI::Option* n_option = nullptr;
  bool print_ids = false;
  std::vector<int32_t> force_ids;
  std::string logits_out;
  std::vector<std::string> stop;  // the model store's stop words (text output only)
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double rate(int64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; }

void run(const RunOptions& o) {
  // Sampling options are checked before the model is loaded, so a bad value costs nothing.
  Sampler sampler(o.sampling.to_params());
  const std::string path = o.model.path.empty() ? default_model_path() : o.model.path;
  auto model = Model::load(path, o.model.to_options());
  const Tokenizer& tok = model->tokenizer();
  const std::vector<int32_t> prompt = tok.encode(o.prompt, /*add_special=*/true, /*parse_special=*/true);
  if (prompt.empty()) fail("the prompt tokenized to nothing (and the vocabulary adds no BOS); nothing to condition on");
  const int64_t n_ctx = model->n_ctx();
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt > n_ctx) fail("the prompt has ", n_prompt, " tokens, more than the context of ", n_ctx, " (raise --ctx)");
  // Producing N tokens evaluates the prompt and then N-1 generated tokens.
  if (o.print_ids && n_prompt + o.n_predict - 1 > n_ctx)
    fail("prompt (", n_prompt, " tokens) plus ", o.n_predict, " generated tokens do not fit the context of ", n_ctx,
         " (raise --ctx)");

  const int n_vocab = static_cast<int>(model->config().n_vocab);
  for (const int32_t id : o.force_ids)
    if (id < 0 || id >= n_vocab) fail("--force-ids: id ", id, " is outside the vocabulary of ", n_vocab);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> logits_file(nullptr, std::fclose);
  if (!o.logits_out.empty()) {
    logits_file.reset(std::fopen(o.logits_out.c_str(), "wb"));
    if (!logits_file) fail("--logits-out: cannot write ", o.logits_out);
  }

  const auto t_prompt = Clock::now();
  const float* logits = model->forward_batch(prompt, 0);
  const double prompt_s = seconds_since(t_prompt);

  std::vector<int32_t> generated;
  Utf8Stream text;
  // Stop words from the model's store end the text where they start (they are not printed).
  server::OutputFilter stops(o.stop, /*start_in_think=*/false, /*split_think=*/false);
  auto write = [](const std::string& out) {
    if (out.empty()) return;
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  };
  int64_t pos = n_prompt;
  int64_t n_decode = 0;  // forward passes after the prompt
  const auto t_decode = Clock::now();
  bool ctx_full = false;
  while (static_cast<int>(generated.size()) < o.n_predict) {
    if (logits_file && std::fwrite(logits, sizeof(float), static_cast<size_t>(n_vocab), logits_file.get()) !=
                           static_cast<size_t>(n_vocab))
      fail("--logits-out: write error on ", o.logits_out);
    const size_t step = generated.size();
    const int32_t sampled = sampler.sample(logits, n_vocab);
    const int32_t id = step < o.force_ids.size() ? o.force_ids[step] : sampled;
    if (!o.print_ids && tok.is_eog(id)) break;
    generated.push_back(id);
    if (!o.print_ids && o.stop.empty()) {
      write(text.push(tok.token_to_piece(id)));
    } else if (!o.print_ids) {
      server::TextDelta d;
      stops.push(tok.token_to_piece(id), d);
      write(d.content);
      if (stops.stopped()) break;
    }
    if (static_cast<int>(generated.size()) == o.n_predict) break;
    if (pos >= n_ctx) {
      ctx_full = true;
      break;
    }
    logits = model->forward(id, pos++);
    ++n_decode;
    print_progress(*model, o.model, n_prompt + n_decode, seconds_since(t_prompt));
  }
  const double decode_s = seconds_since(t_decode);
  end_progress(o.model);
  if (logits_file && std::fclose(logits_file.release()) != 0) fail("--logits-out: write error on ", o.logits_out);

  if (o.print_ids) {
    std::printf("%s\n", ids_to_json(generated).c_str());
  } else {
    if (o.stop.empty()) {
      write(text.flush());
    } else {
      server::TextDelta d;
      stops.finish(d);
      write(d.content);
    }
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
  if (ctx_full) std::fprintf(stderr, "swapmoe: stopped: the context of %lld tokens is full\n", static_cast<long long>(n_ctx));
  std::fprintf(stderr, "swapmoe: prompt %lld tokens, %.2f tok/s | decode %lld tokens, %.2f tok/s | generated %zu tokens\n",
               static_cast<long long>(n_prompt), rate(n_prompt, prompt_s), static_cast<long long>(n_decode),
               rate(n_decode, decode_s), generated.size());
  print_run_stats(*model, o.model, n_prompt + n_decode, seconds_since(t_prompt));
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt");
  add_model_args(sub, o->model, /*model_optional=*/true);
  sub->add_option("-p,--prompt", o->prompt, "Prompt text (special tokens such as <|im_start|> are recognised)")->required();
  o->n_option = sub->add_option("-n,--n-predict", o->n_predict, "Number of tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 30));
  add_sampling_args(sub, o->sampling);
  sub->add_flag("--print-ids", o->print_ids,
                "Print the generated token ids as a JSON array instead of text, and generate exactly N tokens "
                "(no stop at end-of-generation)");
  sub->add_option("--force-ids", o->force_ids,
                  "Teacher forcing: feed these ids (comma-separated) as the first generated tokens instead of "
                  "the sampled ones (conformance tests)")
      ->delimiter(',');
  sub->add_option("--logits-out", o->logits_out,
                  "Write each step's full logits to FILE as float32 rows of n_vocab (conformance tests)");
  return {sub, [o] {
            // An ollama model's params layer gives defaults: sampling, context, length, stop words.
            o->model.resolve();
            o->sampling.apply_defaults(o->model.params);
            const auto& p = o->model.params;
            if (p.num_predict && *p.num_predict > 0 && o->n_option->count() == 0)
              o->n_predict = static_cast<int>(std::min<int64_t>(*p.num_predict, 1 << 30));
            o->stop = p.stop;
            run(*o);
          }};
}

}  // namespace swapmoe::cli
