#include "eval/eval_pass.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace swapmoe::cli {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int64_t scored_positions(int64_t n_tokens, int64_t window) {
  if (window < 2) return 0;
  int64_t n = 0;
  for (int64_t start = 0; start < n_tokens; start += window) n += std::max<int64_t>(0, std::min(window, n_tokens - start) - 1);
  return n;
}

PassResult score_tokens(Model& m, const std::vector<int32_t>& ids, int64_t window, LogitSpill* spill_out,
                        const LogitSpill* reference, const ProgressFn& progress) {
  if (spill_out && reference) fail("score_tokens: a pass either writes a spill or compares with one, not both");
  if (window < 2 || window > m.n_ctx())
    fail("scoring window of ", window, " tokens: must be in [2, ", m.n_ctx(), "] (the model's context)");
  const int n_vocab = static_cast<int>(m.config().n_vocab);
  for (int32_t id : ids)
    if (id < 0 || id >= n_vocab) fail("token id ", id, " is outside the model's vocabulary of ", n_vocab);
  const auto n_ids = static_cast<int64_t>(ids.size());
  const int64_t n_scored = scored_positions(n_ids, window);
  if (n_scored < 1) fail("need at least 2 tokens to score, got ", ids.size());
  if (spill_out && spill_out->n_vocab() != n_vocab)
    fail("logit spill has a vocabulary of ", spill_out->n_vocab(), ", the model ", n_vocab);
  if (reference) {
    if (reference->n_vocab() != n_vocab)
      fail("the reference pass had a vocabulary of ", reference->n_vocab(), " tokens, this model has ", n_vocab);
    if (reference->size() != n_scored)
      fail("the reference pass scored ", reference->size(), " positions, this pass scores ", n_scored,
           " (a different context or --max-tokens?)");
  }

  std::vector<float> ref_logits(reference ? static_cast<size_t>(n_vocab) : 0);
  QualityAccumulator q;
  PassResult r;
  double sum = 0;
  int64_t done = 0;  // forward passes
  reset_expert_run_stats(m);
  const auto t0 = Clock::now();
  double compare_s = 0;  // time spent reading the reference and comparing, not the model's
  for (int64_t start = 0; start < n_ids; start += window) {
    const int64_t end = std::min(n_ids, start + window);
    if (end - start < 2) break;
    m.reset();
    for (int64_t i = start; i + 1 < end; ++i) {
      const float* logits = m.forward(ids[static_cast<size_t>(i)], i - start);
      ++done;
      const double lse = log_sum_exp(logits, n_vocab);
      sum += lse - static_cast<double>(logits[ids[static_cast<size_t>(i + 1)]]);
      if (spill_out) spill_out->append(logits, lse);
      if (reference) {
        const auto tc = Clock::now();
        double ref_lse = 0;
        reference->read(r.tokens, ref_logits.data(), ref_lse);
        const double kl = kl_divergence(ref_logits.data(), ref_lse, logits, lse, n_vocab);
        q.add(kl, argmax(ref_logits.data(), n_vocab) == argmax(logits, n_vocab));
        compare_s += since(tc);
      }
      ++r.tokens;
      if (progress) progress(done, since(t0));
    }
  }
  // The spill write is counted as the pass's time (it is part of producing the reference),
  // reading and comparing is not (it is measurement overhead of the policy pass).
  r.seconds = since(t0) - compare_s;
  r.nll = sum / static_cast<double>(r.tokens);
  r.stats = expert_run_stats(m);
  if (reference) {
    r.compared = true;
    r.kl_mean = q.kl_mean();
    r.kl_p99 = q.kl_p99();
    r.agreement = q.agreement();
  }
  return r;
}

DecodeResult measure_decode(Model& m, const std::vector<int32_t>& prompt, int n_decode) {
  if (prompt.empty()) fail("decode measurement: the prompt is empty");
  if (n_decode < 1) fail("decode measurement: need at least 1 token to generate, got ", n_decode);
  if (static_cast<int64_t>(prompt.size()) + n_decode > m.n_ctx())
    fail("decode measurement: prompt (", prompt.size(), " tokens) plus ", n_decode,
         " generated tokens do not fit the context of ", m.n_ctx());
  const int n_vocab = static_cast<int>(m.config().n_vocab);
  DecodeResult d;
  m.reset();
  auto t0 = Clock::now();
  const float* logits = m.forward_batch(prompt, 0);
  d.prompt_seconds = since(t0);
  d.prompt_tokens = static_cast<int64_t>(prompt.size());
  reset_expert_run_stats(m);
  auto pos = static_cast<int64_t>(prompt.size());
  t0 = Clock::now();
  for (int i = 0; i < n_decode; ++i) logits = m.forward(argmax(logits, n_vocab), pos++);
  d.decode_seconds = since(t0);
  d.decode_tokens = n_decode;
  d.stats = expert_run_stats(m);
  return d;
}

}  // namespace swapmoe::cli
