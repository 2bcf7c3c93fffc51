// Multi-head latent attention, absorbed form (see attention_mla.h for the math).

#include "model/attention_mla.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "arch/arch.h"
#include "model/forward_batch.h"
#include "ops/attention.h"
#include "ops/dynamic_for.h"
#include "ops/mla_legacy.h"
#include "ops/norm.h"
#include "util/error.h"
#include "util/fp16.h"

namespace swapmoe {

namespace {

// Rows [r0, r0 + n) of a flattened 3-D weight: head h of k_b / v_b.
MatrixRef head_slice(const MatrixRef& m, int64_t h, int64_t rows_per_head) {
  MatrixRef s = m;
  s.rows = rows_per_head;
  s.data = static_cast<const uint8_t*>(m.data) + static_cast<size_t>(h * rows_per_head) * m.row_bytes();
  return s;
}

void expect_matrix(const MatrixRef& m, const char* name, int64_t cols, int64_t rows) {
  if (m.data == nullptr) fail("mla: missing ", name);
  if (m.cols != cols || m.rows != rows)
    fail("mla: ", name, " is ", m.cols, "x", m.rows, " (cols x rows), expected ", cols, "x", rows);
}

void check_weights(const MlaParams& p, const MlaLayerWeights& w) {
  const int64_t hk = p.nope + p.n_rot;
  if (p.q_lora_rank > 0) {
    expect_matrix(w.q_a, "attn_q_a", p.n_embd, p.q_lora_rank);
    expect_matrix(w.q_b, "attn_q_b", p.q_lora_rank, p.n_head * hk);
    if (!w.q_a_norm) fail("mla: missing attn_q_a_norm");
  } else {
    expect_matrix(w.q, "attn_q", p.n_embd, p.n_head * hk);
  }
  expect_matrix(w.kv_a_mqa, "attn_kv_a_mqa", p.n_embd, p.kv_lora_rank + p.n_rot);
  if (!w.kv_a_norm) fail("mla: missing attn_kv_a_norm");
  expect_matrix(w.k_b, "attn_k_b", p.nope, p.kv_lora_rank * p.n_head);
  expect_matrix(w.v_b, "attn_v_b", p.kv_lora_rank, p.head_dim_v * p.n_head);
  expect_matrix(w.out, "attn_output", p.n_head * p.head_dim_v, p.n_embd);
}

// F32-cache attention (no F16 roundings): q [n_head][dk], rows [n_pos][dk], values are the
// first dv entries of each row. out [n_head][dv].
void attention_f32(const float* q, const float* rows, int64_t dk, int64_t dv, int64_t n_pos, int64_t n_head,
                   float scale, float* out, ThreadPool& pool) {
  pool.parallel_for(n_head, [&](int64_t h0, int64_t h1, int) {
    std::vector<float> pr(static_cast<size_t>(n_pos));
    for (int64_t h = h0; h < h1; ++h) {
      const float* qh = q + h * dk;
      float mx = -INFINITY;
      for (int64_t t = 0; t < n_pos; ++t) {
        const float* r = rows + t * dk;
        double d = 0.0;
        for (int64_t i = 0; i < dk; ++i) d += static_cast<double>(qh[i]) * r[i];
        pr[t] = static_cast<float>(d) * scale;
        mx = std::max(mx, pr[t]);
      }
      double sum = 0.0;
      for (int64_t t = 0; t < n_pos; ++t) {
        pr[t] = expf(pr[t] - mx);
        sum += pr[t];
      }
      const float inv = static_cast<float>(1.0 / sum);
      float* o = out + h * dv;
      std::fill(o, o + dv, 0.0f);
      for (int64_t t = 0; t < n_pos; ++t) {
        const float pt = pr[t] * inv;
        const float* r = rows + t * dk;
        for (int64_t i = 0; i < dv; ++i) o[i] += pt * r[i];
      }
    }
  });
}

// For every head h and token t: y[t*y_ts + h*y_hs + r] = (M_h x_{t,h})[r], where
// x_{t,h} = x + t*x_ts + h*x_hs has m.cols elements and M_h is head h's rows_per_head
// rows. Heads are split over the pool; per head the tokens' rows are gathered, converted
// to the weight's vec_dot_type (as ggml's batched mul_mat converts each src1 row) and
// multiplied once.
void per_head_matmul(const MatrixRef& m, int64_t rows_per_head, int64_t n_head, int64_t n_tok, const float* x,
                     int64_t x_ts, int64_t x_hs, float* y, int64_t y_ts, int64_t y_hs, ThreadPool& pool) {
  const GgmlType vdt = quant_traits(m.type).vec_dot_type;
  const int64_t cols = m.cols;
  dynamic_for(n_head, 1, pool, [&](int64_t h0, int64_t h1) {
    thread_local std::vector<float> xin, yout;
    thread_local QuantizedActivations a;
    xin.resize(static_cast<size_t>(n_tok * cols));
    yout.resize(static_cast<size_t>(n_tok * rows_per_head));
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t t = 0; t < n_tok; ++t) std::copy_n(x + t * x_ts + h * x_hs, cols, xin.data() + t * cols);
      quantize_activations(xin.data(), n_tok, cols, vdt, a);
      matmul_st(head_slice(m, h, rows_per_head), a, yout.data(), 0, rows_per_head);
      for (int64_t t = 0; t < n_tok; ++t)
        std::copy_n(yout.data() + t * rows_per_head, rows_per_head, y + t * y_ts + h * y_hs);
    }
  });
}

}  // namespace

float mla_kq_scale(const ModelConfig& cfg) {
  // Mirrors the float expressions of llama_model_deepseek2::graph: first undo the yarn
  // attn_factor adjustment llama_context made, then fold YaRN's magnitude correction
  // (twice: it applies to q and k) into the softmax scale.
  const RopeParams rp = rope_params(cfg);
  const float attn_factor_org = rp.attn_factor * (1.0f + 0.1f * logf(1.0f / rp.freq_scale));
  const float mscale = attn_factor_org * (1.0f + 0.1f * cfg.rope_yarn_log_mul * logf(1.0f / rp.freq_scale));
  return 1.0f * mscale * mscale / sqrtf(static_cast<float>(cfg.head_dim_k_mla));
}

MlaParams mla_params(const ModelConfig& cfg) {
  if (cfg.arch.attention != AttentionKind::Mla) fail("mla: architecture ", cfg.arch_name, " does not use MLA");
  MlaParams p;
  p.n_embd = cfg.n_embd;
  p.n_head = cfg.n_head;
  p.q_lora_rank = cfg.q_lora_rank;
  p.kv_lora_rank = cfg.kv_lora_rank;
  p.n_rot = cfg.n_rot;
  p.nope = cfg.head_dim_k_mla - cfg.n_rot;
  p.head_dim_v = cfg.head_dim_v_mla;
  p.rms_eps = cfg.rms_eps;
  if (p.n_embd <= 0 || p.n_head <= 0 || p.kv_lora_rank <= 0 || p.n_rot <= 0 || p.nope <= 0 || p.head_dim_v <= 0 ||
      p.q_lora_rank < 0)
    fail("mla: invalid deepseek2 shape (n_embd ", p.n_embd, ", n_head ", p.n_head, ", kv_lora_rank ", p.kv_lora_rank,
         ", n_rot ", p.n_rot, ", key_length_mla ", cfg.head_dim_k_mla, ", value_length_mla ", p.head_dim_v, ")");
  if (p.n_rot % 2 != 0) fail("mla: rope.dimension_count ", p.n_rot, " must be even");
  p.rope = rope_params(cfg);
  p.kq_scale = mla_kq_scale(cfg);
  return p;
}

MlaCache::MlaCache(int64_t n_layer, int64_t n_ctx, int64_t kv_lora_rank, int64_t n_rot, Precision prec)
    : n_layer_(n_layer), n_ctx_(n_ctx), kv_lora_rank_(kv_lora_rank), row_(kv_lora_rank + n_rot), prec_(prec) {
  if (n_layer < 0 || n_ctx < 0 || kv_lora_rank <= 0 || n_rot < 0)
    fail("mla cache: invalid shape (", n_layer, " layers, ", n_ctx, " positions, rank ", kv_lora_rank, ", rot ", n_rot,
         ")");
  const size_t per_layer = static_cast<size_t>(n_ctx * row_);
  if (prec == Precision::F16) f16_.assign(static_cast<size_t>(n_layer), std::vector<uint16_t>(per_layer));
  else f32_.assign(static_cast<size_t>(n_layer), std::vector<float>(per_layer));
}

size_t MlaCache::bytes() const {
  return static_cast<size_t>(n_layer_ * n_ctx_ * row_) * (prec_ == Precision::F16 ? 2 : 4);
}

void MlaCache::store(int64_t il, int64_t pos, const float* row) {
  if (il < 0 || il >= n_layer_ || pos < 0 || pos >= n_ctx_)
    fail("mla cache: layer ", il, " position ", pos, " outside ", n_layer_, " layers x ", n_ctx_, " positions");
  const size_t off = static_cast<size_t>(pos * row_);
  if (prec_ == Precision::F16) {
    uint16_t* d = f16_[static_cast<size_t>(il)].data() + off;
    for (int64_t i = 0; i < row_; ++i) d[i] = fp32_to_fp16(row[i]);
  } else {
    std::copy(row, row + row_, f32_[static_cast<size_t>(il)].data() + off);
  }
}

void MlaCache::load(int64_t il, int64_t pos, float* row) const {
  if (il < 0 || il >= n_layer_ || pos < 0 || pos >= n_ctx_)
    fail("mla cache: layer ", il, " position ", pos, " outside ", n_layer_, " layers x ", n_ctx_, " positions");
  const size_t off = static_cast<size_t>(pos * row_);
  if (prec_ == Precision::F16) {
    const uint16_t* s = f16_[static_cast<size_t>(il)].data() + off;
    for (int64_t i = 0; i < row_; ++i) row[i] = fp16_to_fp32(s[i]);
  } else {
    const float* s = f32_[static_cast<size_t>(il)].data() + off;
    std::copy(s, s + row_, row);
  }
}

void mla_attention_tokens(const MlaParams& p, const MlaLayerWeights& w, MlaCache& cache, int64_t il, const float* x,
                          int64_t n, int64_t pos0, float* out, MlaScratch& s, ThreadPool& pool) {
  check_weights(p, w);
  if (cache.row() != p.kv_lora_rank + p.n_rot || cache.kv_lora_rank() != p.kv_lora_rank)
    fail("mla: cache rows hold ", cache.row(), " values, the model needs ", p.kv_lora_rank + p.n_rot);
  if (n < 1 || pos0 < 0 || pos0 + n > cache.n_ctx())
    fail("mla: positions [", pos0, ", ", pos0 + n, ") outside the ", cache.n_ctx(), "-position cache");

  const int64_t H = p.n_head, R = p.kv_lora_rank, hk = p.nope + p.n_rot, dq = R + p.n_rot, dv = p.head_dim_v;
  const int64_t E = p.n_embd;
  const size_t rows = static_cast<size_t>(n);
  s.q.resize(rows * static_cast<size_t>(H * hk));
  s.kv.resize(rows * static_cast<size_t>(dq));
  s.qfull.resize(rows * static_cast<size_t>(H * dq));
  s.lat.resize(rows * static_cast<size_t>(H * R));
  s.heads.resize(rows * static_cast<size_t>(H * dv));
  ThreadPool* convert_pool = n > 1 ? &pool : nullptr;

  // q [n][H][nope | n_rot] and [c | k_pe] [n][R + n_rot] from the same input.
  std::optional<PrefillTimer> tm;
  tm.emplace(PrefillPhase::AttnProj);
  const MatrixRef& wq = p.q_lora_rank > 0 ? w.q_a : w.q;
  quantize_activations(x, n, E, quant_traits(w.kv_a_mqa.type).vec_dot_type, s.act, convert_pool);
  const GgmlType q_vdt = quant_traits(wq.type).vec_dot_type;
  if (q_vdt != s.act.type) quantize_activations(x, n, E, q_vdt, s.act_q, convert_pool);
  const QuantizedActivations& xq = q_vdt != s.act.type ? s.act_q : s.act;
  if (p.q_lora_rank > 0) {
    const int64_t ql = p.q_lora_rank;
    s.qa.resize(rows * static_cast<size_t>(ql));
    const MatmulJob jobs[2] = {{w.q_a, &xq, s.qa.data()}, {w.kv_a_mqa, &s.act, s.kv.data()}};
    matmul_multi(jobs, pool);
    for (int64_t t = 0; t < n; ++t) {
      float* qa = s.qa.data() + t * ql;
      rmsnorm(qa, w.q_a_norm, qa, ql, p.rms_eps);
    }
    quantize_activations(s.qa.data(), n, ql, quant_traits(w.q_b.type).vec_dot_type, s.act, convert_pool);
    matmul(w.q_b, s.act, s.q.data(), pool);
  } else {
    const MatmulJob jobs[2] = {{w.q, &xq, s.q.data()}, {w.kv_a_mqa, &s.act, s.kv.data()}};
    matmul_multi(jobs, pool);
  }

  // Per token: rotate the shared key, normalise the latent, cache the row; rotate q_pe in
  // place (each head's rope part starts at offset nope) and copy it behind the absorbed q.
  tm.emplace(PrefillPhase::Rope);
  for (int64_t t = 0; t < n; ++t) {
    float* kv = s.kv.data() + t * dq;
    rope_apply(p.rope, kv + R, 1, p.n_rot, pos0 + t);
    rmsnorm(kv, w.kv_a_norm, kv, R, p.rms_eps);
    if (w.latent_round != GgmlType::F32) mla_legacy_round_latent(w.latent_round, kv, R);
    cache.store(il, pos0 + t, kv);
    float* q = s.q.data() + t * H * hk;
    rope_apply(p.rope, q + p.nope, H, hk, pos0 + t);
    for (int64_t h = 0; h < H; ++h)
      std::copy(q + h * hk + p.nope, q + (h + 1) * hk, s.qfull.data() + t * H * dq + h * dq + R);
  }
  // Absorb k_b into the query: qfull[t][h] = [k_b[h] q_nope[t][h] | q_pe[t][h]].
  tm.emplace(PrefillPhase::AbsorbKb);
  per_head_matmul(w.k_b, R, H, n, s.q.data(), H * hk, hk, s.qfull.data(), H * dq, dq, pool);

  // Multi-query attention over the cached rows; the value is the latent part of each row.
  tm.emplace(PrefillPhase::Attention);
  if (cache.precision() == MlaCache::Precision::F16) {
    AttentionShape sh;
    sh.n_head = H;
    sh.n_head_kv = 1;
    sh.head_dim_k = dq;
    sh.head_dim_v = R;
    attention_f16_causal(s.qfull.data(), H * dq, n, pos0, cache.f16(il), dq, cache.f16(il), dq, sh, p.kq_scale,
                         s.lat.data(), H * R, pool);
  } else {
    for (int64_t t = 0; t < n; ++t)
      attention_f32(s.qfull.data() + t * H * dq, cache.f32(il), dq, R, pos0 + t + 1, H, p.kq_scale,
                    s.lat.data() + t * H * R, pool);
  }

  // Decompress each head's latent output with v_b, then the output projection.
  tm.emplace(PrefillPhase::AbsorbVb);
  per_head_matmul(w.v_b, dv, H, n, s.lat.data(), H * R, R, s.heads.data(), H * dv, dv, pool);
  tm.emplace(PrefillPhase::AttnOut);
  quantize_activations(s.heads.data(), n, H * dv, quant_traits(w.out.type).vec_dot_type, s.act, convert_pool);
  matmul(w.out, s.act, out, pool);
}

void mla_attention(const MlaParams& p, const MlaLayerWeights& w, MlaCache& cache, int64_t il, const float* x,
                   int64_t pos, float* out, ThreadPool& pool) {
  // Scratch kept per calling thread: one call per token and layer must not allocate.
  thread_local MlaScratch s;
  mla_attention_tokens(p, w, cache, il, x, 1, pos, out, s, pool);
}

}  // namespace swapmoe
