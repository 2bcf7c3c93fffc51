// The forward pass of every architecture, over a span of n tokens at positions pos0,
// pos0 + 1, ... (decode is n = 1; a prompt runs in chunks of up to 512), mirroring
// llama.cpp's graphs (src/models/*.cpp):
//
//   x[t] = token_embd[token t]                                        x: [n][n_embd]
//   for each layer:
//     x += attention(rmsnorm(x) * attn_norm)      GQA below, or MLA (attention_mla.cpp)
//     x += ffn(rmsnorm(x) * ffn_norm)             dense FFN below, or MoE (moe.cpp)
//   logits = output (rmsnorm(x[n-1]) * output_norm)                   [n_vocab]
//
// What a layer does is read from the configuration's feature flags (arch/config.h), never
// from the architecture's name.
//
// One path for every n. The products go through ops/matmul.h, which runs the
// matrix-vector kernels for a single token and whose rows are bitwise equal to them for
// many; every per-token step (norms, biases, rope, KV stores, the MoE sums) is the same
// function in the same order whatever n is, and attention of token t reads cache rows
// [0, pos_t] only. So a token's logits and cache rows do not depend on how the tokens
// were split into calls: prefill equals decode by construction.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "model/forward_batch.h"
#include "model/model_impl.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// x[i] += y[i] for n rows of e values, as llama.cpp adds a block's output to the residual
// stream (ggml_add(cur, inpSA): the block output first).
void add_residual(float* x, const float* y, int64_t n, int64_t e) {
  for (int64_t i = 0; i < n * e; ++i) x[i] = y[i] + x[i];
}

}  // namespace

const float* ModelImpl::forward(int32_t token, int64_t pos) {
  if (token < 0 || token >= cfg_.n_vocab) fail("token id ", token, " out of range [0, ", cfg_.n_vocab, ")");
  if (pos != n_past_) fail("forward: position ", pos, " but the KV cache holds ", n_past_, " tokens");
  if (pos >= n_ctx_) fail("context full: position ", pos, " needs more than the ", n_ctx_, "-token context");
  run_tokens(&token, 1, pos, /*want_logits=*/true);
  return logits_.data();
}

const float* ModelImpl::forward_batch(const std::vector<int32_t>& tokens, int64_t pos0) {
  if (tokens.empty()) fail("forward_batch: no tokens");
  if (pos0 != n_past_) fail("forward: position ", pos0, " but the KV cache holds ", n_past_, " tokens");
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (int32_t t : tokens)
    if (t < 0 || t >= cfg_.n_vocab) fail("token id ", t, " out of range [0, ", cfg_.n_vocab, ")");
  if (pos0 + n > n_ctx_)
    fail("context full: position ", pos0 + n - 1, " needs more than the ", n_ctx_, "-token context");
  // Resident, chunks of 512 tokens as llama.cpp's ubatch. Under a memory budget the
  // chunk's scratch is what the plan reserved for it (BudgetPlan::prefill_bytes). A store
  // that cannot route a whole chunk before computing it takes the tokens one by one.
  const int64_t chunk = experts_->batch_routing() ? prefill_chunk_tokens(cfg_, prefill_scratch_) : 1;
  const int64_t t0 = PrefillTimer::enabled() ? now_ns() : 0;
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t m = std::min(chunk, n - b);
    run_tokens(tokens.data() + b, m, pos0 + b, b + m == n);
  }
  if (PrefillTimer::enabled() && n > 1) PrefillTimer::print_and_reset(n, 1e-9 * static_cast<double>(now_ns() - t0));
  return logits_.data();
}

int64_t ModelImpl::max_batch_tokens() const {
  return experts_->batch_routing() ? prefill_chunk_tokens(cfg_, prefill_scratch_) : 1;
}

std::vector<const float*> ModelImpl::forward_multi(std::span<const SequenceTokens> batch) {
  // Everything is checked before anything is computed, so that a refused step leaves every
  // cache as it was.
  std::vector<char> seen(seqs_.size(), 0);
  for (const SequenceTokens& b : batch) {
    if (b.seq < 0 || b.seq >= n_sequences()) fail("forward_multi: sequence ", b.seq, " out of range [0, ", n_sequences(), ")");
    if (seen[static_cast<size_t>(b.seq)]++) fail("forward_multi: sequence ", b.seq, " appears twice in one step");
    if (b.tokens.empty()) fail("forward_multi: sequence ", b.seq, " has no tokens");
    if (b.pos0 != n_past_of(b.seq))
      fail("forward_multi: sequence ", b.seq, " at position ", b.pos0, " but its KV cache holds ", n_past_of(b.seq), " tokens");
    const int64_t n = static_cast<int64_t>(b.tokens.size());
    if (b.pos0 + n > n_ctx_)
      fail("context full: sequence ", b.seq, " position ", b.pos0 + n - 1, " needs more than the ", n_ctx_, "-token context");
    for (int32_t t : b.tokens)
      if (t < 0 || t >= cfg_.n_vocab) fail("token id ", t, " out of range [0, ", cfg_.n_vocab, ")");
  }
  const auto V = static_cast<size_t>(cfg_.n_vocab);
  multi_logits_.resize(batch.size() * V);
  std::vector<const float*> out(batch.size(), nullptr);
  // Passes of at most max_batch_tokens() tokens: the entries in order, an entry split
  // across passes where it does not fit (its logits come from the pass holding its last token).
  const int64_t cap = max_batch_tokens();
  std::vector<int32_t> tokens;
  std::vector<size_t> owner;  // entry of each span of the pass
  size_t i = 0;
  int64_t done = 0;  // tokens of entry i already computed
  while (i < batch.size()) {
    spans_.clear();
    tokens.clear();
    owner.clear();
    while (i < batch.size() && static_cast<int64_t>(tokens.size()) < cap) {
      const SequenceTokens& b = batch[i];
      const int64_t len = static_cast<int64_t>(b.tokens.size());
      const int64_t take = std::min(len - done, cap - static_cast<int64_t>(tokens.size()));
      const bool last = done + take == len;
      spans_.push_back({b.seq, static_cast<int64_t>(tokens.size()), take, b.pos0 + done, last && b.want_logits});
      owner.push_back(i);
      tokens.insert(tokens.end(), b.tokens.begin() + done, b.tokens.begin() + done + take);
      done += take;
      if (last) {
        ++i;
        done = 0;
      }
    }
    run_spans(tokens.data(), static_cast<int64_t>(tokens.size()));
    size_t row = 0;
    for (size_t k = 0; k < spans_.size(); ++k) {
      if (!spans_[k].want_logits) continue;
      float* dst = multi_logits_.data() + owner[k] * V;
      std::copy_n(logits_.data() + row * V, V, dst);
      out[owner[k]] = dst;
      ++row;
    }
  }
  spans_.clear();
  return out;
}

void ModelImpl::run_tokens(const int32_t* tokens, int64_t n, int64_t pos0, bool want_logits) {
  spans_.assign(1, SeqSpan{seq_, 0, n, pos0, want_logits});
  run_spans(tokens, n);
  spans_.clear();
}

void ModelImpl::run_spans(const int32_t* tokens, int64_t n) {
  Scratch& S = s_;
  const int64_t E = cfg_.n_embd;
  S.x.resize(static_cast<size_t>(n * E));
  S.xn.resize(S.x.size());
  S.proj.resize(S.x.size());
  for (int64_t t = 0; t < n; ++t) embedding_row(w_->token_embd, tokens[t], S.x.data() + t * E);
  // Each row's sequence and position (the per-token steps read them).
  row_seq_.resize(static_cast<size_t>(n));
  row_pos_.resize(static_cast<size_t>(n));
  for (const SeqSpan& sp : spans_)
    for (int64_t t = 0; t < sp.n; ++t) {
      row_seq_[static_cast<size_t>(sp.off + t)] = sp.seq;
      row_pos_[static_cast<size_t>(sp.off + t)] = sp.pos0 + t;
    }

  for (int il = 0; il < static_cast<int>(cfg_.n_layer); ++il) {
    const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
    {
      const PrefillTimer tm(PrefillPhase::Norms);
      for (int64_t t = 0; t < n; ++t) rmsnorm(S.x.data() + t * E, L.attn_norm.data(), S.xn.data() + t * E, E, cfg_.rms_eps);
    }
    if (cfg_.arch.attention == AttentionKind::Mla) {
      // Per sequence, against its own latent cache.
      for (const SeqSpan& sp : spans_)
        mla_attention_tokens(mla_, mla_w_[static_cast<size_t>(il)], mla_of(sp.seq), il, S.xn.data() + sp.off * E, sp.n,
                             sp.pos0, S.proj.data() + sp.off * E, S.mla, pool_);
    } else {
      attention(il, n);
    }
    add_residual(S.x.data(), S.proj.data(), n, E);

    {
      const PrefillTimer tm(PrefillPhase::Norms);
      for (int64_t t = 0; t < n; ++t) rmsnorm(S.x.data() + t * E, L.ffn_norm.data(), S.xn.data() + t * E, E, cfg_.rms_eps);
    }
    S.acts.reset(S.xn.data(), n, E, &pool_);
    if (cfg_.is_moe_layer(il)) {
      moe(il, n);
    } else {
      routing_[static_cast<size_t>(il)].clear();
      const PrefillTimer tm(PrefillPhase::DenseFfn);
      dense_ffn({L.ffn_gate, L.ffn_up, L.ffn_down}, n, S.proj.data());
    }
    add_residual(S.x.data(), S.proj.data(), n, E);
  }
  for (const SeqSpan& sp : spans_) n_past_of(sp.seq) = sp.pos0 + sp.n;

  // Logits of each span's last token, where wanted: one product over those rows (bitwise
  // the matrix-vector product of each row alone, ops/matmul.h).
  int64_t rows = 0;
  for (const SeqSpan& sp : spans_) rows += sp.want_logits ? 1 : 0;
  if (rows == 0) return;
  const PrefillTimer tm(PrefillPhase::Logits);
  float* xn = S.xn.data();
  int64_t r = 0;
  for (const SeqSpan& sp : spans_)
    if (sp.want_logits) rmsnorm(S.x.data() + (sp.off + sp.n - 1) * E, w_->output_norm.data(), xn + (r++) * E, E, cfg_.rms_eps);
  logits_.resize(static_cast<size_t>(rows * cfg_.n_vocab));
  S.acts.reset(xn, rows, E, &pool_);
  matmul(w_->output, S.acts.get(w_->output.type), logits_.data(), pool_);
}

// Grouped-query attention for the n tokens in s_.xn; the output projection into s_.proj.
//   q = Wq xn (+bq), k = Wk xn (+bk), v = Wv xn (+bv)      [n_head*hd], [n_head_kv*hd] x2
//   qk-norm: rmsnorm of each q and k head, or of the whole q and k (arch.qk_norm)
//   rope(q), rope(k); store k, v (F16) at the token's position
//   out = Wo softmax(q.K^T / sqrt(hd)) V over positions [0, pos] (+bo)
//   gpt-oss: a sink logit per head joins each softmax; windowed layers attend to
//   [pos - n_swa + 1, pos] only and rotate with rope_swa_
void ModelImpl::attention(int il, int64_t n) {
  Scratch& S = s_;
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  const int64_t E = cfg_.n_embd, hd = cfg_.head_dim_k;
  const int64_t qd = cfg_.n_head * hd, kd = cfg_.n_head_kv * hd, vd = cfg_.n_head_kv * cfg_.head_dim_v;
  const int64_t ad = cfg_.n_head * cfg_.head_dim_v;
  const size_t rows = static_cast<size_t>(n);
  S.q.resize(rows * static_cast<size_t>(qd));
  S.k.resize(rows * static_cast<size_t>(kd));
  S.v.resize(rows * static_cast<size_t>(vd));
  S.attn.resize(rows * static_cast<size_t>(ad));

  std::optional<PrefillTimer> tm;
  tm.emplace(PrefillPhase::AttnProj);
  S.acts.reset(S.xn.data(), n, E, &pool_);
  const MatmulJob qkv[3] = {{L.wq, &S.acts.get(L.wq.type), S.q.data()},
                            {L.wk, &S.acts.get(L.wk.type), S.k.data()},
                            {L.wv, &S.acts.get(L.wv.type), S.v.data()}};
  matmul_multi(qkv, pool_);

  tm.emplace(PrefillPhase::Rope);
  const bool swa = cfg_.is_swa_layer(il);
  const RopeParams& rope = swa ? rope_swa_ : rope_;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t pos = row_pos_[static_cast<size_t>(t)];
    float* q = S.q.data() + t * qd;
    float* k = S.k.data() + t * kd;
    float* v = S.v.data() + t * vd;
    if (cfg_.arch.qkv_bias) {
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
    rope_apply(rope, q, cfg_.n_head, hd, pos);
    rope_apply(rope, k, cfg_.n_head_kv, hd, pos);
    kv_of(row_seq_[static_cast<size_t>(t)]).store(il, pos, k, v);
  }

  tm.emplace(PrefillPhase::Attention);
  const AttentionShape shape{cfg_.n_head, cfg_.n_head_kv, hd, cfg_.head_dim_v};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Per sequence: its tokens attend to its own cache. gpt-oss: sinks in every softmax, the
  // window on the layers the pattern marks.
  const bool gpt_oss_attention = cfg_.arch.sinks || cfg_.arch.sliding_window_pattern != 0;
  for (const SeqSpan& sp : spans_) {
    const KvCache& kv = kv_of(sp.seq);
    if (gpt_oss_attention)
      attention_f16_window(S.q.data() + sp.off * qd, qd, sp.n, sp.pos0, kv.k(il), kv.k_row(), kv.v(il), kv.v_row(), shape,
                           scale, L.sinks.empty() ? nullptr : L.sinks.data(), swa ? cfg_.n_swa : 0,
                           S.attn.data() + sp.off * ad, ad, pool_);
    else
      attention_f16_causal(S.q.data() + sp.off * qd, qd, sp.n, sp.pos0, kv.k(il), kv.k_row(), kv.v(il), kv.v_row(), shape,
                           scale, S.attn.data() + sp.off * ad, ad, pool_);
  }

  tm.emplace(PrefillPhase::AttnOut);
  S.acts.reset(S.attn.data(), n, ad, &pool_);
  matmul(L.wo, S.acts.get(L.wo.type), S.proj.data(), pool_);
  if (!L.bo.empty())
    for (int64_t t = 0; t < n; ++t) add_inplace(S.proj.data() + t * E, L.bo.data(), E);
}

// out [n][n_embd] = down(silu(gate xn) * up xn) for the n rows converted in s_.acts: a
// dense layer, or a shared expert.
void ModelImpl::dense_ffn(const FfnWeights& f, int64_t n, float* out) {
  Scratch& S = s_;
  const int64_t ff = f.gate.rows;
  S.gate.resize(static_cast<size_t>(n * ff));
  S.up.resize(static_cast<size_t>(n * ff));
  const MatmulJob gu[2] = {{f.gate, &S.acts.get(f.gate.type), S.gate.data()},
                           {f.up, &S.acts.get(f.up.type), S.up.data()}};
  matmul_multi(gu, pool_);
  for (int64_t t = 0; t < n; ++t) swiglu(S.gate.data() + t * ff, S.up.data() + t * ff, S.gate.data() + t * ff, ff);
  quantize_activations(S.gate.data(), n, ff, quant_traits(f.down.type).vec_dot_type, S.down_act, n > 1 ? &pool_ : nullptr);
  matmul(f.down, S.down_act, out, pool_);
}

}  // namespace swapmoe
