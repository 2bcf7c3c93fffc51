#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ops/f16_kernels.h"
#include "util/cpu.h"
#include "util/fp16.h"

namespace swapmoe {

namespace {
bool use_avx2() {
  static const bool v = best_isa() >= Isa::Avx2;
  return v;
}
}  // namespace

float dot_f16_f32(const uint16_t* a, const float* b, int64_t n) {
  if (use_avx2()) return detail::dot_f16_f32_avx2(a, b, n);
  float r = 0.0f;
  for (int64_t i = 0; i < n; ++i) r += fp16_to_fp32(a[i]) * b[i];
  return r;
}

void axpy_f16(float s, const uint16_t* x, float* y, int64_t n) {
  if (use_avx2()) return detail::axpy_f16_avx2(s, x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] += s * fp16_to_fp32(x[i]);
}

void f32_to_f16_row(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

namespace {

bool use_avx512() {
  static const bool v = best_isa() >= Isa::Avx512;
  return v;
}

// Scores -> probabilities, in place: softmax (max, exp, sum in double, float reciprocal)
// and the F16 rounding of each probability for the product with the F16 V cache.
// With a sink (gpt-oss), ggml's soft_max takes the sink logit into the maximum and adds
// exp(sink - max) to the sum, as if it were one more position whose value is never used.
void probabilities(float* p, int64_t n_pos, const float* sink = nullptr) {
  float mx = -INFINITY;
  for (int64_t t = 0; t < n_pos; ++t) mx = std::max(mx, p[t]);
  if (sink) mx = std::max(mx, *sink);
  double sum = 0.0;
  for (int64_t t = 0; t < n_pos; ++t) {
    p[t] = std::exp(p[t] - mx);
    sum += static_cast<double>(p[t]);
  }
  if (sink) sum += static_cast<double>(std::exp(*sink - mx));
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t t = 0; t < n_pos; ++t) p[t] = fp16_to_fp32(fp32_to_fp16(p[t] * inv));
}

// Heads per unit of work: 4 when four consecutive heads share a KV head and the AVX-512
// four-head kernels apply, 2 for pairs and the AVX2 two-head kernels, else 1.
int64_t heads_per_unit(const AttentionShape& s) {
  const int64_t group = s.n_head / s.n_head_kv;
  if (s.head_dim_k % 8 != 0) return 1;
  if (use_avx512() && group % 4 == 0) return 4;
  if (use_avx2() && group % 2 == 0) return 2;
  return 1;
}

// Query heads [h0, h0 + nh) (nh = 1, or 2 or 4 sharing one KV head) over n_pos cached
// positions: the body shared by attention_f16 and attention_f16_causal, so that the
// per-token and the batched paths run the same instructions and agree bit for bit. Every
// kernel variant gives each (head, position) exactly the single-head AVX2 kernel's value.
// qh and p are scratch of nh * head_dim_k and nh * n_pos floats.
void attend_heads(const float* q, const uint16_t* k, int64_t k_stride, const uint16_t* v, int64_t v_stride,
                  int64_t n_pos, const AttentionShape& s, float scale, int64_t h0, int64_t nh, float* out, float* qh,
                  float* p, const float* sinks = nullptr) {
  const int64_t group = s.n_head / s.n_head_kv;
  const int64_t kvh = h0 / group;
  const int64_t dk = s.head_dim_k;
  // The query is rounded to F16, as ggml converts it for the F16 K cache.
  // (nh heads are consecutive, so their queries are one contiguous run.)
  if (use_avx512()) {
    detail::round_f16_avx512(q + h0 * dk, qh, nh * dk);
  } else if (use_avx2()) {
    detail::round_f16_avx2(q + h0 * dk, qh, nh * dk);
  } else {
    for (int64_t d = 0; d < nh * dk; ++d) qh[d] = fp16_to_fp32(fp32_to_fp16(q[h0 * dk + d]));
  }
  const uint16_t* kh = k + kvh * dk;
  const uint16_t* vh = v + kvh * s.head_dim_v;
  float* o = out + h0 * s.head_dim_v;
  if (nh == 4) {
    // Four heads x four positions per call (then two, then one): each converted K vector
    // serves four heads, each query vector four positions, and every score is the
    // single-head AVX2 kernel's value.
    int64_t t0 = 0;
    for (; t0 + 4 <= n_pos; t0 += 4)
      detail::dot_f16_f32_h4p4_avx512(kh + t0 * k_stride, k_stride, qh, dk, dk, scale, p + t0, n_pos);
    for (; t0 + 2 <= n_pos; t0 += 2) {
      float d[8];
      detail::dot_f16_f32_h4p2_avx512(kh + t0 * k_stride, k_stride, qh, dk, dk, d);
      for (int j = 0; j < 4; ++j) {
        p[j * n_pos + t0] = d[2 * j] * scale;
        p[j * n_pos + t0 + 1] = d[2 * j + 1] * scale;
      }
    }
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t t = t0; t < n_pos; ++t) p[j * n_pos + t] = dot_f16_f32(kh + t * k_stride, qh + j * dk, dk) * scale;
    detail::probabilities_h4_avx512(p, n_pos, n_pos, sinks ? sinks + h0 : nullptr);
    detail::weighted_sum_f16_h4_zmm_avx512(p, n_pos, vh, v_stride, n_pos, o, s.head_dim_v, s.head_dim_v);
    return;
  }
  if (nh == 2) {
    // Two heads x two positions per call (AVX2's 16 registers hold no more accumulators),
    // then the last position per head.
    int64_t t0 = 0;
    for (; t0 + 2 <= n_pos; t0 += 2)
      detail::dot_f16_f32_h2p2_avx2(kh + t0 * k_stride, k_stride, qh, dk, dk, scale, p + t0, n_pos);
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t t = t0; t < n_pos; ++t) p[j * n_pos + t] = dot_f16_f32(kh + t * k_stride, qh + j * dk, dk) * scale;
    detail::probabilities_h2_avx2(p, n_pos, n_pos, sinks ? sinks + h0 : nullptr);
    std::fill(o, o + 2 * s.head_dim_v, 0.0f);
    detail::weighted_sum_f16_h2_avx2(p, n_pos, vh, v_stride, n_pos, o, s.head_dim_v, s.head_dim_v);
    return;
  }
  int64_t t0 = 0;
  if (use_avx2()) {
    // Four positions per call: the same per-position results, four independent chains.
    for (; t0 + 4 <= n_pos; t0 += 4) {
      float d[4];
      detail::dot_f16_f32_x4_avx2(kh + t0 * k_stride, k_stride, qh, dk, d);
      for (int j = 0; j < 4; ++j) p[t0 + j] = d[j] * scale;
    }
  }
  for (int64_t t = t0; t < n_pos; ++t) p[t] = dot_f16_f32(kh + t * k_stride, qh, dk) * scale;
  probabilities(p, n_pos, sinks ? sinks + h0 : nullptr);
  std::fill(o, o + s.head_dim_v, 0.0f);
  if (use_avx2()) {
    detail::weighted_sum_f16_avx2(p, vh, v_stride, n_pos, o, s.head_dim_v);
  } else {
    for (int64_t t = 0; t < n_pos; ++t) axpy_f16(p[t], vh + t * v_stride, o, s.head_dim_v);
  }
}

// 64-byte aligned float scratch: the kernels' 32- and 64-byte query loads must not split
// cache lines (a query 16 bytes off cost the four-head score kernel 84 -> 52 GFLOP/s).
class AlignedScratch {
 public:
  explicit AlignedScratch(int64_t n) : buf_(static_cast<size_t>(n) + 16) {}
  float* data() {
    const auto a = reinterpret_cast<uintptr_t>(buf_.data());
    return buf_.data() + ((64 - a % 64) % 64) / sizeof(float);
  }

 private:
  std::vector<float> buf_;
};

}  // namespace

void attention_f16(const float* q, const uint16_t* k, int64_t k_stride, const uint16_t* v, int64_t v_stride,
                   int64_t n_pos, const AttentionShape& s, float scale, float* out, ThreadPool& pool) {
  const int64_t nh = heads_per_unit(s);
  pool.parallel_for(s.n_head / nh, [&](int64_t u0, int64_t u1, int) {
    AlignedScratch qh(nh * s.head_dim_k);
    std::vector<float> p(static_cast<size_t>(nh * n_pos));
    for (int64_t u = u0; u < u1; ++u)
      attend_heads(q, k, k_stride, v, v_stride, n_pos, s, scale, u * nh, nh, out, qh.data(), p.data());
  });
}

void attention_f16_causal(const float* q, int64_t q_stride, int64_t n_tok, int64_t pos0, const uint16_t* k,
                          int64_t k_stride, const uint16_t* v, int64_t v_stride, const AttentionShape& s, float scale,
                          float* out, int64_t out_stride, ThreadPool& pool) {
  if (n_tok <= 0) return;
  // One token (decode): the single-query kernel, heads split statically.
  if (n_tok == 1) return attention_f16(q, k, k_stride, v, v_stride, pos0 + 1, s, scale, out, pool);
  // Work items are (token, head) pairs; a later token attends to more positions, so the
  // items are handed out dynamically in small runs instead of one contiguous range per
  // thread (which would give the last thread all the long rows), and the longest first,
  // so that the runs left at the end, when threads may idle, are the shortest.
  const int64_t nh = heads_per_unit(s);
  const int64_t units = s.n_head / nh;
  const int64_t n_items = n_tok * units;
  const int64_t run = std::max<int64_t>(1, units / 4);
  std::atomic<int64_t> next{0};
  pool.run_on_all([&](int, int) {
    AlignedScratch qh(nh * s.head_dim_k);
    std::vector<float> p(static_cast<size_t>(nh * (pos0 + n_tok)));
    for (;;) {
      const int64_t i0 = next.fetch_add(run, std::memory_order_relaxed);
      if (i0 >= n_items) break;
      const int64_t i1 = std::min(n_items, i0 + run);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t t = n_tok - 1 - i / units, u = i % units;
        // The queries of the next item (nh * head_dim_k floats, read once) are not in any
        // cache yet: fetch them into L2 while this item computes, instead of stalling on
        // them at its start.
        if (i + 1 < i1) {
          const int64_t tn = n_tok - 1 - (i + 1) / units, un = (i + 1) % units;
          const char* qn = reinterpret_cast<const char*>(q + tn * q_stride + un * nh * s.head_dim_k);
          for (int64_t b = 0; b < nh * s.head_dim_k * 4; b += 64) __builtin_prefetch(qn + b, 0, 2);
        }
        attend_heads(q + t * q_stride, k, k_stride, v, v_stride, pos0 + t + 1, s, scale, u * nh, nh,
                     out + t * out_stride, qh.data(), p.data());
      }
    }
  });
}

void attention_f16_window(const float* q, int64_t q_stride, int64_t n_tok, int64_t pos0, const uint16_t* k,
                          int64_t k_stride, const uint16_t* v, int64_t v_stride, const AttentionShape& s, float scale,
                          const float* sinks, int64_t window, float* out, int64_t out_stride, ThreadPool& pool) {
  if (n_tok <= 0) return;
  // Items are (token, unit of nh heads) pairs handed out dynamically, as in the causal path;
  // every kernel variant takes the sinks into its softmax the same way.
  const int64_t nh = heads_per_unit(s);
  const int64_t units = s.n_head / nh;
  const int64_t n_items = n_tok * units;
  const int64_t run = std::max<int64_t>(1, units / 4);
  const int64_t longest = window > 0 ? std::min(window, pos0 + n_tok) : pos0 + n_tok;
  std::atomic<int64_t> next{0};
  pool.run_on_all([&](int, int) {
    AlignedScratch qh(nh * s.head_dim_k);
    std::vector<float> p(static_cast<size_t>(nh * longest));
    for (;;) {
      const int64_t i0 = next.fetch_add(run, std::memory_order_relaxed);
      if (i0 >= n_items) break;
      const int64_t i1 = std::min(n_items, i0 + run);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t t = i / units, u = i % units;
        const int64_t pos = pos0 + t;
        // llama.cpp's standard window masks position p0 for a query at p1 when p1 - p0 >= window.
        const int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
        attend_heads(q + t * q_stride, k + first * k_stride, k_stride, v + first * v_stride, v_stride, pos - first + 1,
                     s, scale, u * nh, nh, out + t * out_stride, qh.data(), p.data(), sinks);
      }
    }
  });
}

}  // namespace swapmoe
