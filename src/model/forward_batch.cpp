// Batched prefill: ModelImpl::forward_batch and the attention / dense halves of a layer
// for a chunk of tokens (the MoE half is in moe_batch.cpp). See forward_batch.h.
//
// Exactness. Each token's result must be bitwise equal to the per-token forward(), so
// every per-token step here calls the same function with the same inputs as forward.cpp
// and ffn.cpp do (rmsnorm, rope_apply, swiglu, KvCache::store, the same additions in the
// same order), and the products use ops/matmul.h, whose results equal matvec's row by row.
// Only the loops are reordered: all tokens of a chunk go through a layer before the next
// layer starts. Causality holds because token t's attention reads cache rows [0, pos_t]
// only, whichever later rows of the chunk are already stored.

#include "model/forward_batch.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "cache/expert_cache.h"
#include "model/model_impl.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/dynamic_for.h"
#include "ops/matvec_multi.h"
#include "ops/norm.h"
#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {

namespace {

std::array<double, static_cast<size_t>(PrefillPhase::kCount)> g_phase_seconds{};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool PrefillTimer::enabled() {
  static const bool on = std::getenv("SWAPMOE_PREFILL_PROFILE") != nullptr;
  return on;
}

PrefillTimer::PrefillTimer(PrefillPhase p) : phase_(p) {
  if (enabled()) start_ns_ = now_ns();
}

PrefillTimer::~PrefillTimer() {
  if (enabled()) g_phase_seconds[static_cast<size_t>(phase_)] += 1e-9 * static_cast<double>(now_ns() - start_ns_);
}

void PrefillTimer::print_and_reset(int64_t tokens, double seconds) {
  static const char* const names[] = {"norms",    "attn-proj", "rope/kv",  "absorb-kb", "attention", "absorb-vb",
                                      "attn-out", "router",    "gather",   "gate+up",   "swiglu",    "down",
                                      "shared",   "combine",   "dense-ffn", "logits"};
  std::fprintf(stderr, "swapmoe: prefill profile, %lld tokens in %.3f s:", static_cast<long long>(tokens), seconds);
  for (size_t i = 0; i < g_phase_seconds.size(); ++i) {
    if (g_phase_seconds[i] > 0) std::fprintf(stderr, " %s %.3f", names[i], g_phase_seconds[i]);
    g_phase_seconds[i] = 0;
  }
  std::fprintf(stderr, "\n");
}

const QuantizedActivations& BatchActs::get(GgmlType weight_type) {
  const GgmlType vt = quant_traits(weight_type).vec_dot_type;
  for (auto& s : slots_)
    if (s.used && s.qa.type == vt) return s.qa;
  for (auto& s : slots_) {
    if (s.used) continue;
    quantize_activations(x_, rows_, n_, vt, s.qa, pool_);
    s.used = true;
    return s.qa;
  }
  fail("internal: more than ", slots_.size(), " activation types in one layer");
}

int64_t prefill_chunk_tokens(const ModelConfig& cfg, uint64_t scratch_bytes) {
  constexpr int64_t kMax = kPrefillMaxChunk;
  if (scratch_bytes == 0) return kMax;
  const uint64_t per = std::max<uint64_t>(1, prefill_bytes_per_token(cfg));
  return std::clamp<int64_t>(static_cast<int64_t>(scratch_bytes / per), 1, kMax);
}

const float* ModelImpl::forward_batch(const std::vector<int32_t>& tokens, int64_t pos0) {
  if (tokens.empty()) fail("forward_batch: no tokens");
  if (pos0 != n_past_) fail("forward: position ", pos0, " but the KV cache holds ", n_past_, " tokens");
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (int32_t t : tokens)
    if (t < 0 || t >= cfg_.n_vocab) fail("token id ", t, " out of range [0, ", cfg_.n_vocab, ")");
  if (pos0 + n > n_ctx_)
    fail("context full: position ", pos0 + n - 1, " needs more than the ", n_ctx_, "-token context");
  if (n == 1) return forward(tokens[0], pos0);
  if (!experts_->batch_routing()) {
    const float* out = nullptr;
    for (int64_t i = 0; i < n; ++i) out = forward(tokens[static_cast<size_t>(i)], pos0 + i);
    return out;
  }

  if (!batch_) batch_ = std::make_shared<BatchScratch>();
  // Resident, chunks of 512 tokens as llama.cpp's ubatch. Under a memory budget the
  // chunk's scratch is what the plan reserved for it (BudgetPlan::prefill_bytes).
  const int64_t chunk = prefill_chunk_tokens(cfg_, prefill_scratch_);
  const int64_t t0 = PrefillTimer::enabled() ? now_ns() : 0;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t m = std::min(chunk, n - b);
    forward_chunk(tokens.data() + b, m, pos0 + b, b + m == n);
  }
  if (PrefillTimer::enabled()) PrefillTimer::print_and_reset(n, 1e-9 * static_cast<double>(now_ns() - t0));
  return logits_.data();
}

void ModelImpl::forward_chunk(const int32_t* tokens, int64_t n, int64_t pos0, bool want_logits) {
  BatchScratch& B = *batch_;
  const int64_t E = cfg_.n_embd;
  const size_t rows = static_cast<size_t>(n);
  B.x.resize(rows * static_cast<size_t>(E));
  B.xn.resize(B.x.size());
  B.proj.resize(B.x.size());
  for (int64_t t = 0; t < n; ++t) embedding_row(w_->token_embd, tokens[t], B.x.data() + t * E);
  for (int il = 0; il < static_cast<int>(cfg_.n_layer); ++il) {
    if (cfg_.arch.attention == AttentionKind::Mla) mla_attention_batch(il, n, pos0);
    else attention_batch(il, n, pos0);
    ffn_batch(il, n);
  }
  n_past_ = pos0 + n;
  if (!want_logits) return;
  // Logits of the last token only, exactly as forward() computes them.
  const PrefillTimer tm(PrefillPhase::Logits);
  const float* x = B.x.data() + (n - 1) * E;
  rmsnorm(x, w_->output_norm.data(), xn_.data(), E, cfg_.rms_eps);
  act_.reset(xn_.data(), E);
  MatvecJob job{w_->output, &act_.get(w_->output.type), logits_.data()};
  matvec_multi({&job, 1}, pool_);
}

// Standard attention (forward.cpp's attention_block) for n tokens at pos0, pos0 + 1, ...
void ModelImpl::attention_batch(int il, int64_t n, int64_t pos0) {
  BatchScratch& B = *batch_;
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const int64_t E = cfg_.n_embd, hd = cfg_.head_dim_k;
  const int64_t qd = cfg_.n_head * hd, kd = cfg_.n_head_kv * hd, vd = cfg_.n_head_kv * cfg_.head_dim_v;
  const int64_t ad = cfg_.n_head * cfg_.head_dim_v;
  const size_t rows = static_cast<size_t>(n);
  B.q.resize(rows * static_cast<size_t>(qd));
  B.k.resize(rows * static_cast<size_t>(kd));
  B.v.resize(rows * static_cast<size_t>(vd));
  B.attn.resize(rows * static_cast<size_t>(ad));

  {
    const PrefillTimer tm(PrefillPhase::Norms);
    for (int64_t t = 0; t < n; ++t)
      rmsnorm(B.x.data() + t * E, L.attn_norm.data(), B.xn.data() + t * E, E, cfg_.rms_eps);
  }
  std::optional<PrefillTimer> tm;
  tm.emplace(PrefillPhase::AttnProj);
  B.acts.reset(B.xn.data(), n, E, &pool_);
  const MatmulJob qkv[3] = {{L.wq, &B.acts.get(L.wq.type), B.q.data()},
                            {L.wk, &B.acts.get(L.wk.type), B.k.data()},
                            {L.wv, &B.acts.get(L.wv.type), B.v.data()}};
  matmul_multi(qkv, pool_);

  tm.emplace(PrefillPhase::Rope);
  for (int64_t t = 0; t < n; ++t) {
    float* q = B.q.data() + t * qd;
    float* k = B.k.data() + t * kd;
    float* v = B.v.data() + t * vd;
    if (!L.bq.empty()) {
      add_inplace(q, L.bq.data(), qd);
      add_inplace(k, L.bk.data(), kd);
      add_inplace(v, L.bv.data(), vd);
    }
    if (cfg_.arch.qk_norm == QkNorm::PerHead) {
      rmsnorm_rows(q, L.q_norm.data(), cfg_.n_head, hd, cfg_.rms_eps);
      rmsnorm_rows(k, L.k_norm.data(), cfg_.n_head_kv, hd, cfg_.rms_eps);
    } else if (cfg_.arch.qk_norm == QkNorm::Full) {
      rmsnorm(q, L.q_norm.data(), q, qd, cfg_.rms_eps);
      rmsnorm(k, L.k_norm.data(), k, kd, cfg_.rms_eps);
    }
    rope_apply(rope_, q, cfg_.n_head, hd, pos0 + t);
    rope_apply(rope_, k, cfg_.n_head_kv, hd, pos0 + t);
    kv_.store(il, pos0 + t, k, v);
  }

  tm.emplace(PrefillPhase::Attention);
  const AttentionShape shape{cfg_.n_head, cfg_.n_head_kv, hd, cfg_.head_dim_v};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  attention_f16_causal(B.q.data(), qd, n, pos0, kv_.k(il), kv_.k_row(), kv_.v(il), kv_.v_row(), shape, scale,
                       B.attn.data(), ad, pool_);

  tm.emplace(PrefillPhase::AttnOut);
  B.acts.reset(B.attn.data(), n, ad, &pool_);
  matmul(L.wo, B.acts.get(L.wo.type), B.proj.data(), pool_);
  float* x = B.x.data();
  const float* p = B.proj.data();
  for (size_t i = 0; i < rows * static_cast<size_t>(E); ++i) x[i] = p[i] + x[i];
}

namespace {

// Rows [h * rows_per_head, (h + 1) * rows_per_head) of a flattened 3-D weight (k_b, v_b).
MatrixRef head_rows(const MatrixRef& m, int64_t h, int64_t rows_per_head) {
  MatrixRef s = m;
  s.rows = rows_per_head;
  s.data = static_cast<const uint8_t*>(m.data) + static_cast<size_t>(h * rows_per_head) * m.row_bytes();
  return s;
}

// For every head h and token t: y[t*y_ts + h*y_hs + r] = (M_h x_{t,h})[r], where
// x_{t,h} = x + t*x_ts + h*x_hs has m.cols elements and M_h is head h's rows_per_head
// rows. Heads are split over the pool; per head the tokens' rows are gathered, converted
// (each row exactly as attention_mla's per_head_matvec converts it) and multiplied once.
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
      matmul_st(head_rows(m, h, rows_per_head), a, yout.data(), 0, rows_per_head);
      for (int64_t t = 0; t < n_tok; ++t)
        std::copy_n(yout.data() + t * rows_per_head, rows_per_head, y + t * y_ts + h * y_hs);
    }
  });
}

}  // namespace

// deepseek2: attention_mla.cpp's mla_attention for n tokens. The projections into and
// out of the latent space are batched; the absorption by k_b / v_b is batched per head;
// the attention itself runs per (token, head) over the cached rows.
void ModelImpl::mla_attention_batch(int il, int64_t n, int64_t pos0) {
  BatchScratch& B = *batch_;
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const MlaLayerWeights& w = mla_w_[static_cast<size_t>(il)];
  const MlaParams& p = mla_;
  const int64_t E = cfg_.n_embd;
  std::optional<PrefillTimer> tm;
  tm.emplace(PrefillPhase::Norms);
  for (int64_t t = 0; t < n; ++t) rmsnorm(B.x.data() + t * E, L.attn_norm.data(), B.xn.data() + t * E, E, cfg_.rms_eps);
  tm.emplace(PrefillPhase::AttnProj);

  if (mla_cache_.precision() != MlaCache::Precision::F16) {
    // The batched attention mirrors the F16 cache only; the F32 mode goes token by token.
    for (int64_t t = 0; t < n; ++t)
      mla_attention(p, w, mla_cache_, il, B.xn.data() + t * E, pos0 + t, B.proj.data() + t * E, pool_);
  } else {
    const int64_t H = p.n_head, R = p.kv_lora_rank, hk = p.nope + p.n_rot, dq = R + p.n_rot, dv = p.head_dim_v;
    const size_t rows = static_cast<size_t>(n);
    B.q.resize(rows * static_cast<size_t>(H * hk));
    B.kv.resize(rows * static_cast<size_t>(dq));
    B.qfull.resize(rows * static_cast<size_t>(H * dq));
    B.lat.resize(rows * static_cast<size_t>(H * R));
    B.heads.resize(rows * static_cast<size_t>(H * dv));

    B.acts.reset(B.xn.data(), n, E, &pool_);
    if (p.q_lora_rank > 0) {
      const int64_t ql = p.q_lora_rank;
      B.qa.resize(rows * static_cast<size_t>(ql));
      const MatmulJob jobs[2] = {{w.q_a, &B.acts.get(w.q_a.type), B.qa.data()},
                                 {w.kv_a_mqa, &B.acts.get(w.kv_a_mqa.type), B.kv.data()}};
      matmul_multi(jobs, pool_);
      for (int64_t t = 0; t < n; ++t) {
        float* qa = B.qa.data() + t * ql;
        rmsnorm(qa, w.q_a_norm, qa, ql, p.rms_eps);
      }
      B.acts.reset(B.qa.data(), n, ql, &pool_);
      matmul(w.q_b, B.acts.get(w.q_b.type), B.q.data(), pool_);
    } else {
      const MatmulJob jobs[2] = {{w.q, &B.acts.get(w.q.type), B.q.data()},
                                 {w.kv_a_mqa, &B.acts.get(w.kv_a_mqa.type), B.kv.data()}};
      matmul_multi(jobs, pool_);
    }

    tm.emplace(PrefillPhase::Rope);
    for (int64_t t = 0; t < n; ++t) {
      float* kv = B.kv.data() + t * dq;
      rope_apply(p.rope, kv + R, 1, p.n_rot, pos0 + t);
      rmsnorm(kv, w.kv_a_norm, kv, R, p.rms_eps);
      mla_cache_.store(il, pos0 + t, kv);
      float* q = B.q.data() + t * H * hk;
      rope_apply(p.rope, q + p.nope, H, hk, pos0 + t);
      for (int64_t h = 0; h < H; ++h)
        std::copy(q + h * hk + p.nope, q + (h + 1) * hk, B.qfull.data() + t * H * dq + h * dq + R);
    }
    // qfull[t][h] = [k_b[h] q_nope[t][h] | q_pe[t][h]]
    tm.emplace(PrefillPhase::AbsorbKb);
    per_head_matmul(w.k_b, R, H, n, B.q.data(), H * hk, hk, B.qfull.data(), H * dq, dq, pool_);

    tm.emplace(PrefillPhase::Attention);
    AttentionShape s;
    s.n_head = H;
    s.n_head_kv = 1;
    s.head_dim_k = dq;
    s.head_dim_v = R;
    attention_f16_causal(B.qfull.data(), H * dq, n, pos0, mla_cache_.f16(il), dq, mla_cache_.f16(il), dq, s, p.kq_scale,
                         B.lat.data(), H * R, pool_);

    tm.emplace(PrefillPhase::AbsorbVb);
    per_head_matmul(w.v_b, dv, H, n, B.lat.data(), H * R, R, B.heads.data(), H * dv, dv, pool_);
    tm.emplace(PrefillPhase::AttnOut);
    B.acts.reset(B.heads.data(), n, H * dv, &pool_);
    matmul(w.out, B.acts.get(w.out.type), B.proj.data(), pool_);
  }
  float* x = B.x.data();
  const float* pr = B.proj.data();
  for (size_t i = 0; i < static_cast<size_t>(n * E); ++i) x[i] = pr[i] + x[i];
}

void ModelImpl::dense_ffn_batch(const FfnItem& f, int64_t n, float* out) {
  BatchScratch& B = *batch_;
  const int64_t ff = f.gate.rows;
  B.gate.resize(static_cast<size_t>(n * ff));
  B.up.resize(static_cast<size_t>(n * ff));
  const MatmulJob gu[2] = {{f.gate, &B.acts.get(f.gate.type), B.gate.data()},
                           {f.up, &B.acts.get(f.up.type), B.up.data()}};
  matmul_multi(gu, pool_);
  for (int64_t t = 0; t < n; ++t) swiglu(B.gate.data() + t * ff, B.up.data() + t * ff, B.gate.data() + t * ff, ff);
  quantize_activations(B.gate.data(), n, ff, quant_traits(f.down.type).vec_dot_type, B.down_act, &pool_);
  matmul(f.down, B.down_act, out, pool_);
}

void ModelImpl::ffn_batch(int il, int64_t n) {
  BatchScratch& B = *batch_;
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const int64_t E = cfg_.n_embd;
  {
    const PrefillTimer tm(PrefillPhase::Norms);
    for (int64_t t = 0; t < n; ++t)
      rmsnorm(B.x.data() + t * E, L.ffn_norm.data(), B.xn.data() + t * E, E, cfg_.rms_eps);
  }
  B.acts.reset(B.xn.data(), n, E, &pool_);
  if (cfg_.is_moe_layer(il)) {
    moe_batch(il, n);
    return;
  }
  routing_[static_cast<size_t>(il)].clear();
  const PrefillTimer tm(PrefillPhase::DenseFfn);
  B.ffn_out.resize(static_cast<size_t>(n * E));
  dense_ffn_batch({L.ffn_gate, L.ffn_up, L.ffn_down}, n, B.ffn_out.data());
  float* x = B.x.data();
  const float* o = B.ffn_out.data();
  for (size_t i = 0; i < static_cast<size_t>(n * E); ++i) x[i] = o[i] + x[i];
}

}  // namespace swapmoe
