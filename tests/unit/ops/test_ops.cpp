// Ops against independent double-precision references: rmsnorm, softmax, swiglu, the F16
// helpers, single-token GQA attention over an F16 cache, and matvec_multi against
// separate matvec calls (bit-identical, any thread count).

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "model/kv_cache.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/matvec_multi.h"
#include "ops/norm.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

std::vector<float> randv(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

double f16r(double x) { return fp16_to_fp32(fp32_to_fp16(static_cast<float>(x))); }

TEST(Ops, RmsNormMatchesDefinition) {
  for (int64_t n : {1, 7, 64, 2048}) {
    const auto x = randv(n, 1, -3, 3), w = randv(n, 2, 0.5, 1.5);
    std::vector<float> y(n), yn(n), alias = x;
    rmsnorm(x.data(), w.data(), y.data(), n, 1e-6f);
    rmsnorm(x.data(), nullptr, yn.data(), n, 1e-6f);
    rmsnorm(alias.data(), w.data(), alias.data(), n, 1e-6f);
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double s = 1.0 / std::sqrt(ss / n + 1e-6);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(y[i], x[i] * s * w[i], 1e-5 * std::fabs(x[i] * s * w[i]) + 1e-7);
      EXPECT_NEAR(yn[i], x[i] * s, 1e-5 * std::fabs(x[i] * s) + 1e-7);
      EXPECT_EQ(alias[i], y[i]);
    }
  }
}

TEST(Ops, RmsNormRowsIsPerRow) {
  const auto x = randv(4 * 16, 3), w = randv(16, 4);
  std::vector<float> a = x;
  rmsnorm_rows(a.data(), w.data(), 4, 16, 1e-6f);
  for (int r = 0; r < 4; ++r) {
    std::vector<float> b(16);
    rmsnorm(x.data() + r * 16, w.data(), b.data(), 16, 1e-6f);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(a[r * 16 + i], b[i]);
  }
}

TEST(Ops, SoftmaxMatchesDefinition) {
  auto x = randv(100, 5, -20, 20);
  const auto x0 = x;
  softmax(x.data(), 100);
  double mx = -1e30, sum = 0;
  for (float v : x0) mx = std::max(mx, double(v));
  for (float v : x0) sum += std::exp(v - mx);
  double total = 0;
  for (int i = 0; i < 100; ++i) {
    EXPECT_NEAR(x[i], std::exp(x0[i] - mx) / sum, 1e-6);
    total += x[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
  float big[3] = {1000.0f, 1000.0f, -1000.0f};  // no overflow thanks to the max shift
  softmax(big, 3);
  EXPECT_FLOAT_EQ(big[0], 0.5f);
  EXPECT_FLOAT_EQ(big[2], 0.0f);
}

TEST(Ops, SwigluMatchesDefinition) {
  const auto g = randv(33, 6, -8, 8), u = randv(33, 7);
  std::vector<float> y(33);
  swiglu(g.data(), u.data(), y.data(), 33);
  for (int i = 0; i < 33; ++i) {
    const double want = g[i] / (1.0 + std::exp(-double(g[i]))) * u[i];
    EXPECT_NEAR(y[i], want, 1e-6 * std::fabs(want) + 1e-7);
  }
}

TEST(Ops, F16Helpers) {
  for (int64_t n : {0, 5, 8, 16, 37, 128}) {
    const auto a = randv(n, 8), b = randv(n, 9);
    std::vector<uint16_t> ah(n);
    f32_to_f16_row(a.data(), ah.data(), n);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(ah[i], fp32_to_fp16(a[i]));
      want += double(fp16_to_fp32(ah[i])) * b[i];
    }
    EXPECT_NEAR(dot_f16_f32(ah.data(), b.data(), n), want, 1e-5);
    std::vector<float> y = b;
    axpy_f16(0.5f, ah.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], b[i] + 0.5 * fp16_to_fp32(ah[i]), 1e-6);
  }
}

// Naive attention with llama.cpp's F16 roundings (cache, query, probabilities).
std::vector<double> ref_attention(const std::vector<float>& q, const std::vector<uint16_t>& k,
                                  const std::vector<uint16_t>& v, int64_t n_pos, const AttentionShape& s) {
  std::vector<double> out(s.n_head * s.head_dim_v, 0.0);
  const int64_t kr = s.n_head_kv * s.head_dim_k, vr = s.n_head_kv * s.head_dim_v;
  for (int64_t h = 0; h < s.n_head; ++h) {
    const int64_t g = h * s.n_head_kv / s.n_head;
    std::vector<double> sc(n_pos);
    for (int64_t t = 0; t < n_pos; ++t) {
      double d = 0;
      for (int64_t i = 0; i < s.head_dim_k; ++i)
        d += f16r(q[h * s.head_dim_k + i]) * fp16_to_fp32(k[t * kr + g * s.head_dim_k + i]);
      sc[t] = d / std::sqrt(double(s.head_dim_k));
    }
    double mx = -1e300, sum = 0;
    for (double x : sc) mx = std::max(mx, x);
    for (double& x : sc) sum += (x = std::exp(x - mx));
    for (int64_t t = 0; t < n_pos; ++t)
      for (int64_t i = 0; i < s.head_dim_v; ++i)
        out[h * s.head_dim_v + i] += f16r(sc[t] / sum) * fp16_to_fp32(v[t * vr + g * s.head_dim_v + i]);
  }
  return out;
}

TEST(Ops, AttentionMatchesReferenceAndIsThreadIndependent) {
  const AttentionShape s{8, 2, 32, 24};
  const int64_t n_pos = 37, kr = s.n_head_kv * s.head_dim_k, vr = s.n_head_kv * s.head_dim_v;
  const auto q = randv(s.n_head * s.head_dim_k, 10, -2, 2);
  const auto kf = randv(n_pos * kr, 11, -2, 2), vf = randv(n_pos * vr, 12);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  f32_to_f16_row(kf.data(), k.data(), k.size());
  f32_to_f16_row(vf.data(), v.data(), v.size());
  const auto want = ref_attention(q, k, v, n_pos, s);
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> out(s.n_head * s.head_dim_v);
    attention_f16(q.data(), k.data(), kr, v.data(), vr, n_pos, s, 1.0f / std::sqrt(32.0f), out.data(), pool);
    for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], want[i], 2e-5) << i;
    if (first.empty()) first = out;
    EXPECT_EQ(out, first);
  }
}

TEST(Ops, AttentionOnePositionReturnsV) {
  const AttentionShape s{2, 1, 8, 8};
  const auto q = randv(16, 13), kf = randv(8, 14), vf = randv(8, 15);
  std::vector<uint16_t> k(8), v(8);
  f32_to_f16_row(kf.data(), k.data(), 8);
  f32_to_f16_row(vf.data(), v.data(), 8);
  ThreadPool pool(1);
  std::vector<float> out(16);
  attention_f16(q.data(), k.data(), 8, v.data(), 8, 1, s, 0.3f, out.data(), pool);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 8; ++i) EXPECT_EQ(out[h * 8 + i], fp16_to_fp32(v[i]));
}

TEST(Ops, KvCacheRoundsAndChecksBounds) {
  KvCache c(2, 4, 6, 3);
  const auto k = randv(6, 16), v = randv(3, 17);
  c.store(1, 2, k.data(), v.data());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(c.k(1)[2 * 6 + i], fp32_to_fp16(k[i]));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.v(1)[2 * 3 + i], fp32_to_fp16(v[i]));
  EXPECT_EQ(c.k(0)[2 * 6], 0);
  EXPECT_THROW(c.store(0, 4, k.data(), v.data()), Error);
  EXPECT_EQ(c.bytes(), size_t(2 * 4 * (6 + 3) * 2));
}

TEST(Ops, MatvecMultiEqualsSeparateMatvecs) {
  struct M {
    GgmlType t;
    int64_t cols, rows;
  };
  const std::vector<M> ms = {{GgmlType::F32, 64, 5}, {GgmlType::Q8_0, 256, 33}, {GgmlType::Q4_K, 256, 17},
                             {GgmlType::F16, 96, 1}};
  std::vector<std::vector<uint8_t>> data;
  std::vector<std::vector<float>> xs;
  for (size_t i = 0; i < ms.size(); ++i) {
    const auto f = randv(ms[i].cols * ms[i].rows, 20 + i);
    const size_t rb = ggml_row_size(ms[i].t, ms[i].cols);
    data.emplace_back(rb * ms[i].rows);
    for (int64_t r = 0; r < ms[i].rows; ++r)
      quant_traits(ms[i].t).from_float_ref(f.data() + r * ms[i].cols, data.back().data() + r * rb, ms[i].cols);
    xs.push_back(randv(ms[i].cols, 40 + i));
  }
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    std::vector<QuantizedActivation> acts(ms.size());
    std::vector<std::vector<float>> got(ms.size()), want(ms.size());
    std::vector<MatvecJob> jobs;
    for (size_t i = 0; i < ms.size(); ++i) {
      const MatrixRef w{ms[i].t, ms[i].cols, ms[i].rows, data[i].data()};
      quantize_activation(xs[i].data(), ms[i].cols, quant_traits(ms[i].t).vec_dot_type, acts[i]);
      got[i].assign(ms[i].rows, 0.0f);
      want[i].assign(ms[i].rows, 0.0f);
      matvec(w, acts[i], want[i].data(), pool);
      jobs.push_back({w, &acts[i], got[i].data()});
    }
    matvec_multi(jobs, pool);
    for (size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(got[i], want[i]) << i << " threads " << threads;
  }
}

}  // namespace
}  // namespace swapmoe
