// The blocked attention kernels (four positions per score call, the output kept in
// registers across positions) and the batched causal attention must give exactly what the
// plain per-position loop over dot_f16_f32 / axpy_f16 gives: bitwise, for head sizes with
// and without a tail, any number of positions, grouped KV heads.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "ops/attention.h"
#include "util/fp16.h"

namespace swapmoe {
namespace {

// The per-position loop attention_f16 ran before it was blocked.
void attention_plain(const float* q, const uint16_t* k, int64_t ks, const uint16_t* v, int64_t vs, int64_t n_pos,
                     const AttentionShape& s, float scale, float* out) {
  const int64_t group = s.n_head / s.n_head_kv;
  std::vector<float> qh(s.head_dim_k), p(n_pos);
  for (int64_t h = 0; h < s.n_head; ++h) {
    const int64_t kvh = h / group;
    for (int64_t d = 0; d < s.head_dim_k; ++d) qh[d] = fp16_to_fp32(fp32_to_fp16(q[h * s.head_dim_k + d]));
    float mx = -INFINITY;
    for (int64_t t = 0; t < n_pos; ++t) {
      p[t] = dot_f16_f32(k + kvh * s.head_dim_k + t * ks, qh.data(), s.head_dim_k) * scale;
      mx = std::max(mx, p[t]);
    }
    double sum = 0.0;
    for (int64_t t = 0; t < n_pos; ++t) {
      p[t] = std::exp(p[t] - mx);
      sum += static_cast<double>(p[t]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* o = out + h * s.head_dim_v;
    std::fill(o, o + s.head_dim_v, 0.0f);
    for (int64_t t = 0; t < n_pos; ++t)
      axpy_f16(fp16_to_fp32(fp32_to_fp16(p[t] * inv)), v + kvh * s.head_dim_v + t * vs, o, s.head_dim_v);
  }
}

struct Data {
  AttentionShape s;
  int64_t n_pos;
  std::vector<float> q;
  std::vector<uint16_t> k, v;
};

Data make(int64_t n_head, int64_t n_kv, int64_t dk, int64_t dv, int64_t n_pos, int64_t n_q, uint32_t seed) {
  Data d{{n_head, n_kv, dk, dv}, n_pos, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  d.q.resize(static_cast<size_t>(n_q * n_head * dk));
  for (float& x : d.q) x = nd(rng);
  d.k.resize(static_cast<size_t>(n_pos * n_kv * dk));
  d.v.resize(static_cast<size_t>(n_pos * n_kv * dv));
  for (uint16_t& x : d.k) x = fp32_to_fp16(nd(rng));
  for (uint16_t& x : d.v) x = fp32_to_fp16(nd(rng));
  return d;
}

TEST(AttentionBlocked, BitwiseEqualToThePlainLoop) {
  ThreadPool pool(2);
  const int64_t shapes[][4] = {{4, 2, 16, 16},  {4, 4, 40, 24},    {8, 2, 128, 128}, {16, 1, 576, 512},
                                {3, 1, 12, 5},   {8, 2, 36, 20},    {8, 1, 64, 72}};
  for (const auto& sh : shapes) {
    for (int64_t n_pos : {1, 3, 4, 5, 8, 37}) {
      const Data d = make(sh[0], sh[1], sh[2], sh[3], n_pos, 1, static_cast<uint32_t>(n_pos * 7 + sh[2]));
      const float scale = 1.0f / std::sqrt(static_cast<float>(sh[2]));
      std::vector<float> want(static_cast<size_t>(sh[0] * sh[3])), got(want.size());
      attention_plain(d.q.data(), d.k.data(), sh[1] * sh[2], d.v.data(), sh[1] * sh[3], n_pos, d.s, scale, want.data());
      attention_f16(d.q.data(), d.k.data(), sh[1] * sh[2], d.v.data(), sh[1] * sh[3], n_pos, d.s, scale, got.data(),
                    pool);
      EXPECT_EQ(want, got) << "dk " << sh[2] << " dv " << sh[3] << " positions " << n_pos;
    }
  }
}

TEST(AttentionBlocked, CausalBatchEqualsOneTokenAtATime) {
  ThreadPool pool(3);
  const int64_t H = 8, KV = 2, dk = 40, dv = 24, pos0 = 5, n_tok = 11;
  const Data d = make(H, KV, dk, dv, pos0 + n_tok, n_tok, 3);
  const float scale = 0.3f;
  const int64_t q_stride = H * dk + 8, out_stride = H * dv + 4;  // strided rows
  std::vector<float> q(static_cast<size_t>(n_tok * q_stride));
  for (int64_t t = 0; t < n_tok; ++t) std::copy_n(d.q.data() + t * H * dk, H * dk, q.data() + t * q_stride);
  std::vector<float> got(static_cast<size_t>(n_tok * out_stride), -1.0f);
  attention_f16_causal(q.data(), q_stride, n_tok, pos0, d.k.data(), KV * dk, d.v.data(), KV * dv, d.s, scale,
                       got.data(), out_stride, pool);
  for (int64_t t = 0; t < n_tok; ++t) {
    std::vector<float> want(static_cast<size_t>(H * dv));
    attention_plain(d.q.data() + t * H * dk, d.k.data(), KV * dk, d.v.data(), KV * dv, pos0 + t + 1, d.s, scale,
                    want.data());
    EXPECT_EQ(want, std::vector<float>(got.begin() + t * out_stride, got.begin() + t * out_stride + H * dv)) << t;
  }
}

}  // namespace
}  // namespace swapmoe
