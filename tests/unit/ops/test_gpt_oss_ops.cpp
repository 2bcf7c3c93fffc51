// gpt-oss's new operations against plain double-precision references:
//   - swiglu_oai (ggml_swiglu_oai: gate clamped above at 7, up clamped to [-7, 7], alpha 1.702, up + 1);
//   - attention with a sink logit per head (ggml_soft_max_ext with sinks);
//   - the sliding-window mask (llama.cpp's standard window: a query at p sees [p - w + 1, p]);
// and the properties the forward pass relies on: rows outside the window are never read, a
// sink of -inf is plain causal attention (bitwise), and a batch equals token-by-token.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/activation.h"
#include "ops/attention.h"
#include "util/fp16.h"
#include "util/thread_pool.h"

namespace swapmoe {
namespace {

double swiglu_oai_ref(double g, double u) {
  const double x = std::min(g, 7.0);
  const double y = std::clamp(u, -7.0, 7.0);
  return x / (1.0 + std::exp(-1.702 * x)) * (y + 1.0);
}

TEST(SwigluOai, MatchesTheFormulaIncludingBothClamps) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 6.0f);  // a third of the values beyond the clamp
  const int64_t n = 4096;
  std::vector<float> g(n), u(n), out(n);
  for (int64_t i = 0; i < n; ++i) {
    g[i] = nd(rng);
    u[i] = nd(rng);
  }
  // Hand-picked edges: exactly at the limit, far beyond it, large negative gates.
  g[0] = 7.0f, u[0] = 7.0f;
  g[1] = 100.0f, u[1] = -100.0f;
  g[2] = -30.0f, u[2] = 3.0f;
  g[3] = 0.0f, u[3] = 5.0f;
  swiglu_oai(g.data(), u.data(), out.data(), n);
  int clamped = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double want = swiglu_oai_ref(g[i], u[i]);
    EXPECT_NEAR(out[i], want, 1e-6 * std::max(1.0, std::fabs(want))) << "gate " << g[i] << " up " << u[i];
    clamped += g[i] > 7.0f || std::fabs(u[i]) > 7.0f;
  }
  EXPECT_GT(clamped, n / 5);  // the clamps were exercised
  // Beyond the limit the output no longer grows: gate 100 behaves as gate 7, up -100 as -7.
  EXPECT_FLOAT_EQ(out[1], static_cast<float>(swiglu_oai_ref(7.0, -7.0)));
  EXPECT_EQ(out[3], 0.0f);
  // In place (out aliasing gate), as the MoE path calls it.
  std::vector<float> g2 = g;
  swiglu_oai(g2.data(), u.data(), g2.data(), n);
  EXPECT_EQ(g2, out);
  // Not plain SwiGLU: the +1 on up and the 1.702 make a difference.
  std::vector<float> plain(n);
  swiglu(g.data(), u.data(), plain.data(), n);
  EXPECT_NE(plain, out);
}

struct Data {
  AttentionShape s;
  std::vector<float> q;
  std::vector<uint16_t> k, v;
  std::vector<float> sinks;
};

Data make(int64_t H, int64_t KV, int64_t dk, int64_t dv, int64_t n_pos, int64_t n_q, uint32_t seed) {
  Data d{{H, KV, dk, dv}, {}, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  d.q.resize(static_cast<size_t>(n_q * H * dk));
  for (float& x : d.q) x = nd(rng);
  d.k.resize(static_cast<size_t>(n_pos * KV * dk));
  d.v.resize(static_cast<size_t>(n_pos * KV * dv));
  for (uint16_t& x : d.k) x = fp32_to_fp16(nd(rng));
  for (uint16_t& x : d.v) x = fp32_to_fp16(nd(rng));
  d.sinks.resize(static_cast<size_t>(H));
  for (float& x : d.sinks) x = 2.0f * nd(rng);
  return d;
}

// One token at position pos: softmax over [first, pos] plus the sink, in double, on the
// F16-rounded query (what ggml multiplies with the F16 cache).
std::vector<double> reference(const Data& d, const float* q, int64_t pos, int64_t window, const float* sinks,
                              float scale) {
  const AttentionShape& s = d.s;
  const int64_t group = s.n_head / s.n_head_kv, kstr = s.n_head_kv * s.head_dim_k, vstr = s.n_head_kv * s.head_dim_v;
  const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
  std::vector<double> out(static_cast<size_t>(s.n_head * s.head_dim_v), 0.0);
  for (int64_t h = 0; h < s.n_head; ++h) {
    const int64_t kvh = h / group;
    std::vector<double> sc;
    double mx = sinks ? sinks[h] : -INFINITY;
    for (int64_t t = first; t <= pos; ++t) {
      double dot = 0;
      for (int64_t i = 0; i < s.head_dim_k; ++i)
        dot += static_cast<double>(fp16_to_fp32(fp32_to_fp16(q[h * s.head_dim_k + i]))) *
               fp16_to_fp32(d.k[static_cast<size_t>(t * kstr + kvh * s.head_dim_k + i)]);
      sc.push_back(dot * scale);
      mx = std::max(mx, sc.back());
    }
    double sum = sinks ? std::exp(sinks[h] - mx) : 0.0;
    for (double& x : sc) sum += (x = std::exp(x - mx));
    for (int64_t t = first; t <= pos; ++t)
      for (int64_t i = 0; i < s.head_dim_v; ++i)
        out[static_cast<size_t>(h * s.head_dim_v + i)] +=
            sc[static_cast<size_t>(t - first)] / sum * fp16_to_fp32(d.v[static_cast<size_t>(t * vstr + kvh * s.head_dim_v + i)]);
  }
  return out;
}

TEST(AttentionSinksWindow, MatchesTheDoubleReference) {
  ThreadPool pool(2);
  const int64_t H = 8, KV = 2, dk = 64, dv = 64, n_tok = 23;
  const Data d = make(H, KV, dk, dv, n_tok, n_tok, 11);
  const float scale = 0.125f;
  for (int64_t window : {0, 1, 4, 8, 100}) {
    for (bool with_sinks : {false, true}) {
      std::vector<float> got(static_cast<size_t>(n_tok * H * dv));
      attention_f16_window(d.q.data(), H * dk, n_tok, 0, d.k.data(), KV * dk, d.v.data(), KV * dv, d.s, scale,
                           with_sinks ? d.sinks.data() : nullptr, window, got.data(), H * dv, pool);
      double worst = 0;
      for (int64_t t = 0; t < n_tok; ++t) {
        const std::vector<double> want =
            reference(d, d.q.data() + t * H * dk, t, window, with_sinks ? d.sinks.data() : nullptr, scale);
        for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(want[i] - got[t * H * dv + i]));
      }
      // The probabilities are rounded to F16 before the product with V (as ggml does).
      EXPECT_LT(worst, 2e-3) << "window " << window << " sinks " << with_sinks;
    }
  }
}

TEST(AttentionSinksWindow, SinksAndWindowChangeTheResult) {
  // Guards the reference test above against a kernel that ignores its arguments.
  ThreadPool pool(1);
  const int64_t H = 4, KV = 2, dk = 32, dv = 32, n_tok = 12;
  const Data d = make(H, KV, dk, dv, n_tok, n_tok, 3);
  auto run = [&](const float* sinks, int64_t window) {
    std::vector<float> out(static_cast<size_t>(n_tok * H * dv));
    attention_f16_window(d.q.data(), H * dk, n_tok, 0, d.k.data(), KV * dk, d.v.data(), KV * dv, d.s, 0.2f, sinks,
                         window, out.data(), H * dv, pool);
    return out;
  };
  const auto plain = run(nullptr, 0);
  EXPECT_NE(plain, run(d.sinks.data(), 0));
  EXPECT_NE(plain, run(nullptr, 4));
  // A sink of -inf adds nothing: bitwise the causal kernel's one-head path, i.e. its
  // values equal the reference without sinks (checked above); and a window covering every
  // position is no window.
  const std::vector<float> minus_inf(static_cast<size_t>(H), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(plain, run(minus_inf.data(), 0));
  EXPECT_EQ(plain, run(nullptr, n_tok));
}

TEST(AttentionSinksWindow, RowsOutsideTheWindowAreNotRead) {
  ThreadPool pool(2);
  const int64_t H = 4, KV = 1, dk = 16, dv = 16, pos0 = 20, n_tok = 5, window = 6;
  Data d = make(H, KV, dk, dv, pos0 + n_tok, n_tok, 9);
  auto run = [&](const Data& x) {
    std::vector<float> out(static_cast<size_t>(n_tok * H * dv));
    attention_f16_window(x.q.data(), H * dk, n_tok, pos0, x.k.data(), KV * dk, x.v.data(), KV * dv, x.s, 0.25f,
                         x.sinks.data(), window, out.data(), H * dv, pool);
    return out;
  };
  const auto want = run(d);
  // The first token (position 20) sees [15, 20]: poison everything before 15 with NaN.
  Data poisoned = d;
  for (int64_t t = 0; t < pos0 - window + 1; ++t) {
    std::fill_n(poisoned.k.begin() + t * KV * dk, KV * dk, fp32_to_fp16(std::nanf("")));
    std::fill_n(poisoned.v.begin() + t * KV * dv, KV * dv, fp32_to_fp16(std::nanf("")));
  }
  EXPECT_EQ(want, run(poisoned));
  // Position 15 itself is inside the first token's window: changing it changes the result.
  Data changed = d;
  changed.v[static_cast<size_t>((pos0 - window + 1) * KV * dv)] = fp32_to_fp16(50.0f);
  EXPECT_NE(want, run(changed));
}

// Grouped heads go through the multi-head kernels (four heads per unit on AVX-512, two on
// AVX2), each head alone through the scalar softmax: with the sinks both must agree bit for
// bit. The same data with every KV head copied per query head (group 1) takes the one-head path.
TEST(AttentionSinksWindow, MultiHeadKernelsEqualTheOneHeadPath) {
  ThreadPool pool(2);
  const int64_t H = 8, KV = 2, dk = 64, dv = 64, pos0 = 3, n_tok = 17, window = 9;
  const Data d = make(H, KV, dk, dv, pos0 + n_tok, n_tok, 33);
  Data solo = d;
  solo.s.n_head_kv = H;
  solo.k.assign(static_cast<size_t>((pos0 + n_tok) * H * dk), 0);
  solo.v.assign(static_cast<size_t>((pos0 + n_tok) * H * dv), 0);
  for (int64_t t = 0; t < pos0 + n_tok; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / KV);
      std::copy_n(d.k.begin() + t * KV * dk + g * dk, dk, solo.k.begin() + t * H * dk + h * dk);
      std::copy_n(d.v.begin() + t * KV * dv + g * dv, dv, solo.v.begin() + t * H * dv + h * dv);
    }
  for (int64_t win : {int64_t(0), window}) {
    std::vector<float> grouped(static_cast<size_t>(n_tok * H * dv)), one(grouped.size());
    attention_f16_window(d.q.data(), H * dk, n_tok, pos0, d.k.data(), KV * dk, d.v.data(), KV * dv, d.s, 0.125f,
                         d.sinks.data(), win, grouped.data(), H * dv, pool);
    attention_f16_window(d.q.data(), H * dk, n_tok, pos0, solo.k.data(), H * dk, solo.v.data(), H * dv, solo.s, 0.125f,
                         d.sinks.data(), win, one.data(), H * dv, pool);
    EXPECT_EQ(grouped, one) << "window " << win;
  }
}

TEST(AttentionSinksWindow, BatchEqualsOneTokenAtATime) {
  ThreadPool pool(3);
  const int64_t H = 8, KV = 2, dk = 40, dv = 24, pos0 = 7, n_tok = 13, window = 5;
  const Data d = make(H, KV, dk, dv, pos0 + n_tok, n_tok, 21);
  std::vector<float> batch(static_cast<size_t>(n_tok * H * dv));
  attention_f16_window(d.q.data(), H * dk, n_tok, pos0, d.k.data(), KV * dk, d.v.data(), KV * dv, d.s, 0.3f,
                       d.sinks.data(), window, batch.data(), H * dv, pool);
  for (int64_t t = 0; t < n_tok; ++t) {
    std::vector<float> one(static_cast<size_t>(H * dv));
    attention_f16_window(d.q.data() + t * H * dk, H * dk, 1, pos0 + t, d.k.data(), KV * dk, d.v.data(), KV * dv, d.s,
                         0.3f, d.sinks.data(), window, one.data(), H * dv, pool);
    EXPECT_EQ(one, std::vector<float>(batch.begin() + t * H * dv, batch.begin() + (t + 1) * H * dv)) << t;
  }
}

}  // namespace
}  // namespace swapmoe
