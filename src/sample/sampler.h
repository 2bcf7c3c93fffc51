#pragma once
// Token sampler with llama.cpp's default chain: top-k -> top-p -> min-p -> temperature ->
// softmax -> draw. The truncations run on the untempered logits and temperature only reshapes
// what survives, exactly as in llama.cpp's common sampler, so the same settings keep the same
// candidate set in both engines. Draws use a seeded std::mt19937_64, so a seed reproduces a
// sequence (the random stream itself is ours, not llama.cpp's, so individual draws differ).

#include <cstdint>
#include <random>
#include <vector>

namespace swapmoe {

struct SamplerParams {
  float temp = 0.8f;    // <= 0: greedy argmax (ties -> lowest id)
  int top_k = 40;       // <= 0: disabled
  float top_p = 0.95f;  // >= 1: disabled
  float min_p = 0.05f;  // <= 0: disabled
  uint64_t seed = 0;
};

// The accepted range of each sampling parameter, shared by the CLI and the server so that
// both refuse the same values with the same words. temp below 0 is as greedy as 0; top_k 0
// is off; top_p and min_p are probabilities. The seed takes any 64-bit value.
struct SamplerLimits {
  static constexpr double temp_max = 100.0;
  static constexpr int64_t top_k_max = int64_t{1} << 30;
};

// Throws Error naming the first parameter outside its range (NaN included), e.g.
// "min_p 5 is out of range [0, 1]". `prefix` is prepended ("--" for the CLI).
void check_sampler_params(const SamplerParams& p, const char* prefix = "");

// One surviving candidate: token id and its final probability (after temperature + softmax).
struct TokenProb {
  int32_t id;
  double p;
};

class Sampler {
 public:
  // Throws Error for NaN parameters.
  explicit Sampler(SamplerParams params);

  // Picks the next token from logits[0..n_vocab). NaN logits are treated as -inf (never picked).
  // Throws Error if n_vocab <= 0 or no logit is finite/+inf-comparable (all NaN or -inf).
  int32_t sample(const float* logits, int n_vocab);

  // The distribution sample() draws from when temp > 0: the truncated candidate set, sorted by
  // logit descending (ties by id ascending), with probabilities that sum to 1. With temp <= 0 it
  // is the single argmax token with p = 1. Exposed for tests and for log-prob reporting.
  std::vector<TokenProb> distribution(const float* logits, int n_vocab) const;

  // Greedy argmax over finite logits; ties -> lowest id. Throws like sample().
  static int32_t argmax(const float* logits, int n_vocab);

  const SamplerParams& params() const { return params_; }

 private:
  SamplerParams params_;
  std::mt19937_64 rng_;
};

}  // namespace swapmoe
