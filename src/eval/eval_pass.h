#pragma once
// One scoring pass of a loaded model over a token sequence, shared by `eval` and `sweep`,
// and the decode-speed measurement of `sweep`.
//
// Scoring: the tokens are cut into consecutive windows of `window` tokens (the last may be
// shorter; one window when the text fits, which is what `eval` does). In each window the
// KV cache starts empty, the tokens are evaluated in order with one forward() each, and
// position j predicts token j+1, so a window of w tokens scores w-1 positions. With a
// spill, every scored position's logits are appended to it (the reference pass); with a
// reference, each position is compared with the spilled one (KL, top-1 agreement).

#include <cstdint>
#include <functional>
#include <vector>

#include "eval/eval_metrics.h"
#include "eval/eval_spill.h"
#include "model/model.h"
#include "runtime/model_budget.h"

namespace swapmoe::cli {

struct PassResult {
  int64_t tokens = 0;   // positions scored
  double nll = 0;       // mean over them
  double seconds = 0;   // wall time of the forward passes
  double tok_s() const { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0; }
  bool compared = false;  // a reference was given: the fields below are set
  double kl_mean = 0, kl_p99 = 0, agreement = 0;
  ExpertRunStats stats;  // expert-store figures of this pass (reset at its start)
};

// progress(tokens evaluated so far, seconds so far), called after every forward pass.
using ProgressFn = std::function<void(int64_t, double)>;

// Scores `ids` on `m` (see the file comment). window must be in [2, m.n_ctx()]. At most
// one of spill_out / reference may be non-null; the reference must hold exactly as many
// records as this pass scores, with the model's vocabulary size. Throws Error otherwise,
// and on a token id outside the vocabulary.
PassResult score_tokens(Model& m, const std::vector<int32_t>& ids, int64_t window, LogitSpill* spill_out,
                        const LogitSpill* reference, const ProgressFn& progress = {});

// Number of positions score_tokens will score for n tokens in windows of `window`.
int64_t scored_positions(int64_t n_tokens, int64_t window);

struct DecodeResult {
  int64_t prompt_tokens = 0;
  double prompt_seconds = 0;  // forward_batch of the prompt
  int64_t decode_tokens = 0;
  double decode_seconds = 0;  // greedy decode: one forward() per generated token
  ExpertRunStats stats;       // expert-store figures of the decode phase only
  double prompt_tok_s() const { return prompt_seconds > 0 ? static_cast<double>(prompt_tokens) / prompt_seconds : 0.0; }
  double decode_tok_s() const { return decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0; }
};

// Resets the KV cache, evaluates `prompt` with forward_batch (timed), then generates
// n_decode tokens greedily (timed; the expert-store statistics are reset before, so they
// cover exactly these forward passes). prompt must be non-empty and fit the context with
// the generated tokens.
DecodeResult measure_decode(Model& m, const std::vector<int32_t>& prompt, int n_decode);

}  // namespace swapmoe::cli
