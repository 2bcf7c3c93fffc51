// RoPE against an independent double-precision implementation of the formulas (RoPE paper
// + YaRN paper as llama.cpp parameterises them), for both pairings, with and without YaRN,
// plus the parameter derivation llama.cpp performs (freq_scale, ext_factor, attn_factor,
// deepseek2's yarn_log_mul handling).

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "arch/arch.h"
#include "ops/rope.h"
#include "util/error.h"

namespace swapmoe {
namespace {

// Reference: each pair i (0 <= i < n_rot/2) has frequency base^(-2i/n_rot). YaRN blends
// the interpolated angle (freq_scale * theta) with the extrapolated one (theta) using a
// linear ramp over the pair index between the two "correction dims", and scales the
// result by attn_factor * (1 + 0.1 ln(1/freq_scale)).
std::vector<double> ref_rope(const RopeParams& p, const std::vector<float>& x, int64_t n_heads, int64_t head_dim,
                             int64_t pos) {
  std::vector<double> y(x.begin(), x.end());
  const double n = static_cast<double>(p.n_rot);
  auto corr_dim = [&](double turns) {
    return n * std::log(static_cast<double>(p.n_ctx_orig) / (turns * 2 * M_PI)) / (2 * std::log(double(p.freq_base)));
  };
  const double low = std::max(0.0, std::floor(corr_dim(p.beta_fast)));
  const double high = std::min(n - 1, std::ceil(corr_dim(p.beta_slow)));
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < p.n_rot / 2; ++i) {
      const double theta_ext = static_cast<double>(pos) * std::pow(double(p.freq_base), -2.0 * i / n);
      double theta = p.freq_scale * theta_ext;
      double mag = p.attn_factor;
      if (p.ext_factor != 0) {
        const double r = (i - low) / std::max(0.001, high - low);
        const double ramp = (1 - std::min(1.0, std::max(0.0, r))) * p.ext_factor;
        theta = theta * (1 - ramp) + theta_ext * ramp;
        mag *= 1 + 0.1 * std::log(1.0 / p.freq_scale);
      }
      const double c = std::cos(theta) * mag, s = std::sin(theta) * mag;
      int64_t a, b;
      if (p.type == RopeType::Norm) { a = 2 * i; b = 2 * i + 1; }
      else { a = i; b = i + p.n_rot / 2; }
      const double x0 = x[h * head_dim + a], x1 = x[h * head_dim + b];
      y[h * head_dim + a] = x0 * c - x1 * s;
      y[h * head_dim + b] = x0 * s + x1 * c;
    }
  }
  return y;
}

void check(const RopeParams& p, int64_t n_heads, int64_t head_dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t pos : {0, 1, 2, 7, 31, 200, 1000}) {
    std::vector<float> x(n_heads * head_dim);
    for (auto& v : x) v = u(rng);
    auto want = ref_rope(p, x, n_heads, head_dim, pos);
    std::vector<float> got = x;
    rope_apply(p, got.data(), n_heads, head_dim, pos);
    // Single precision angles drift with the position (theta is a running float product in
    // ggml): allow a few ulps of the angle, times the vector magnitude.
    const double tol = 2e-6 * (10 + static_cast<double>(pos)) * 4;
    for (size_t i = 0; i < x.size(); ++i) {
      const int64_t d = static_cast<int64_t>(i) % head_dim;
      if (d >= p.n_rot) {
        EXPECT_EQ(got[i], x[i]) << "pass-through dim " << d << " changed";
      } else {
        ASSERT_NEAR(got[i], want[i], tol) << "pos " << pos << " index " << i;
      }
    }
  }
}

RopeParams base_params(RopeType t, int64_t n_rot) {
  RopeParams p;
  p.type = t;
  p.n_rot = n_rot;
  p.freq_base = 10000.0f;
  p.n_ctx_orig = 4096;
  return p;
}

TEST(Rope, NormFullHead) { check(base_params(RopeType::Norm, 64), 3, 64, 1); }
TEST(Rope, NeoxFullHead) { check(base_params(RopeType::Neox, 64), 3, 64, 2); }
TEST(Rope, NormPartial) { check(base_params(RopeType::Norm, 16), 4, 40, 3); }
TEST(Rope, NeoxPartial) { check(base_params(RopeType::Neox, 32), 2, 48, 4); }

TEST(Rope, LinearScaling) {
  auto p = base_params(RopeType::Neox, 32);
  p.freq_scale = 0.25f;
  check(p, 2, 32, 5);
}

TEST(Rope, YarnNorm) {
  auto p = base_params(RopeType::Norm, 64);
  p.freq_base = 10000.0f;
  p.freq_scale = 1.0f / 40.0f;
  p.ext_factor = 1.0f;
  p.attn_factor = 0.7f;
  check(p, 3, 64, 6);
}

TEST(Rope, YarnNeoxPartial) {
  auto p = base_params(RopeType::Neox, 32);
  p.freq_base = 1000000.0f;
  p.freq_scale = 0.25f;
  p.ext_factor = 1.0f;
  p.n_ctx_orig = 32768;
  check(p, 2, 64, 7);
}

TEST(Rope, PositionZeroIsIdentityTimesMagnitude) {
  auto p = base_params(RopeType::Norm, 8);
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  auto y = x;
  rope_apply(p, y.data(), 1, 8, 0);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i]);
}

TEST(Rope, RejectsOddOrOversizedRot) {
  auto p = base_params(RopeType::Norm, 7);
  std::vector<float> x(16);
  EXPECT_THROW(rope_apply(p, x.data(), 1, 16, 3), Error);
  p.n_rot = 32;
  EXPECT_THROW(rope_apply(p, x.data(), 1, 16, 3), Error);
}

ModelConfig rope_cfg(const char* arch, RopeScaling s, float factor, float log_mul) {
  ModelConfig c = config_for_arch(arch_spec(arch));
  c.n_rot = 64;
  c.n_ctx_train = 163840;
  c.rope_orig_ctx = 4096;
  c.rope_freq_base = 10000.0f;
  c.rope_scaling = s;
  c.rope_scaling_factor = factor;
  c.rope_yarn_log_mul = log_mul;
  return c;
}

TEST(RopeParams, NoScaling) {
  auto p = rope_params(rope_cfg("qwen3moe", RopeScaling::None, 4.0f, 0.0f));
  EXPECT_EQ(p.type, RopeType::Neox);
  EXPECT_EQ(p.n_rot, 64);
  EXPECT_EQ(p.freq_scale, 1.0f);  // "none" ignores the factor
  EXPECT_EQ(p.ext_factor, 0.0f);
  EXPECT_EQ(p.attn_factor, 1.0f);
  EXPECT_EQ(p.n_ctx_orig, 4096);
}

TEST(RopeParams, Linear) {
  auto p = rope_params(rope_cfg("llama", RopeScaling::Linear, 4.0f, 0.0f));
  EXPECT_EQ(p.freq_scale, 0.25f);
  EXPECT_EQ(p.ext_factor, 0.0f);
  EXPECT_EQ(p.attn_factor, 1.0f);
}

TEST(RopeParams, OrigCtxFallsBackToTraining) {
  auto c = rope_cfg("llama", RopeScaling::None, 1.0f, 0.0f);
  c.rope_orig_ctx = 0;
  EXPECT_EQ(rope_params(c).n_ctx_orig, 163840);
}

TEST(RopeParams, YarnPlain) {
  // Without yarn_log_mul: attn_factor = mscale(f) / (1 + 0.1 ln f) = 1 (up to rounding).
  auto p = rope_params(rope_cfg("qwen3moe", RopeScaling::Yarn, 4.0f, 0.0f));
  EXPECT_EQ(p.ext_factor, 1.0f);
  EXPECT_EQ(p.freq_scale, 0.25f);
  EXPECT_NEAR(p.attn_factor, 1.0f, 1e-6f);
  // A non-deepseek architecture ignores yarn_log_mul like llama.cpp does.
  auto q = rope_params(rope_cfg("qwen3moe", RopeScaling::Yarn, 4.0f, 0.707f));
  EXPECT_EQ(q.attn_factor, p.attn_factor);
}

TEST(RopeParams, YarnDeepseek2) {
  // DeepSeek-V2(-Lite): factor 40, mscale = mscale_all_dim = 0.707 (log_mul after llama.cpp
  // divided the GGUF value by 0.1). llama.cpp then sets attn_factor = 1 / (1 + 0.1 ln 40).
  auto p = rope_params(rope_cfg("deepseek2", RopeScaling::Yarn, 40.0f, 0.707f));
  EXPECT_EQ(p.type, RopeType::Norm);
  EXPECT_FLOAT_EQ(p.freq_scale, 1.0f / 40.0f);
  EXPECT_NEAR(p.attn_factor, 1.0 / (1.0 + 0.1 * std::log(40.0)), 1e-6);
  // log_mul 1 keeps mscale 1: attn_factor = mscale(40, 1) / mscale(40, 1) / (1 + 0.1 ln 40).
  auto q = rope_params(rope_cfg("deepseek2", RopeScaling::Yarn, 40.0f, 1.0f));
  EXPECT_NEAR(q.attn_factor, 1.0 / (1.0 + 0.1 * std::log(40.0)), 1e-6);
  // A different log_mul (mscale_all_dim != mscale in HF terms is not expressible; llama.cpp
  // forces mscale = log_mul), so the ratio is again 1.
  auto r = rope_params(rope_cfg("deepseek2", RopeScaling::Yarn, 40.0f, 0.5f));
  EXPECT_NEAR(r.attn_factor, 1.0 / (1.0 + 0.1 * std::log(40.0)), 1e-6);
}

}  // namespace
}  // namespace swapmoe
