// The per-token forward pass of the MoE architectures (qwen3moe, qwen2moe, llama/Mixtral,
// olmoe; deepseek2 with attention from attention_mla.h), mirroring llama.cpp's graphs in src/models/*.cpp:
//
//   x = token_embd[token]
//   for each layer:
//     x = x + attention(rmsnorm(x) * attn_norm)          (attention_block)
//     x = x + ffn_or_moe(rmsnorm(x) * ffn_norm)          (ffn_block, ffn.cpp)
//   logits = output * (rmsnorm(x) * output_norm)

#include <cmath>

#include "model/model_impl.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/matvec_multi.h"
#include "ops/norm.h"
#include "util/error.h"

namespace swapmoe {

const float* ModelImpl::forward(int32_t token, int64_t pos) {
  if (token < 0 || token >= cfg_.n_vocab) fail("token id ", token, " out of range [0, ", cfg_.n_vocab, ")");
  if (pos != n_past_) fail("forward: position ", pos, " but the KV cache holds ", n_past_, " tokens");
  if (pos >= n_ctx_) fail("context full: position ", pos, " needs more than the ", n_ctx_, "-token context");

  float* x = x_.data();
  embedding_row(w_->token_embd, token, x);
  for (int il = 0; il < static_cast<int>(cfg_.n_layer); ++il) {
    attention_block(il, x, pos);
    ffn_block(il, x);
  }
  n_past_ = pos + 1;

  rmsnorm(x, w_->output_norm.data(), xn_.data(), cfg_.n_embd, cfg_.rms_eps);
  act_.reset(xn_.data(), cfg_.n_embd);
  MatvecJob job{w_->output, &act_.get(w_->output.type), logits_.data()};
  matvec_multi({&job, 1}, pool_);
  return logits_.data();
}

// Standard multi-head attention with grouped KV heads:
//   q = Wq xn (+bq), k = Wk xn (+bk), v = Wv xn (+bv)        [n_head*hd], [n_head_kv*hd] x2
//   qwen3moe: rmsnorm per head of q and k; olmoe: rmsnorm over all of q and of k
//   rope(q), rope(k); store k, v (F16) at pos; softmax(q.K^T / sqrt(hd)) V; out = Wo attn
void ModelImpl::attention_block(int il, float* x, int64_t pos) {
  const LayerWeights& L = w_->layers[static_cast<size_t>(il)];
  if (cfg_.arch.attention == AttentionKind::Mla) {
    // Multi-head latent attention (attention_mla.h) with its own latent cache.
    rmsnorm(x, L.attn_norm.data(), xn_.data(), cfg_.n_embd, cfg_.rms_eps);
    mla_attention(mla_, mla_w_[static_cast<size_t>(il)], mla_cache_, il, xn_.data(), pos, proj_.data(), pool_);
    for (int64_t i = 0; i < cfg_.n_embd; ++i) x[i] = proj_[i] + x[i];
    return;
  }
  const int64_t hd = cfg_.head_dim_k;
  float* q = q_.data();
  float* k = k_.data();
  float* v = v_.data();

  rmsnorm(x, L.attn_norm.data(), xn_.data(), cfg_.n_embd, cfg_.rms_eps);
  act_.reset(xn_.data(), cfg_.n_embd);
  const MatvecJob qkv[3] = {{L.wq, &act_.get(L.wq.type), q},
                            {L.wk, &act_.get(L.wk.type), k},
                            {L.wv, &act_.get(L.wv.type), v}};
  matvec_multi(qkv, pool_);
  if (!L.bq.empty()) {
    add_inplace(q, L.bq.data(), static_cast<int64_t>(q_.size()));
    add_inplace(k, L.bk.data(), static_cast<int64_t>(k_.size()));
    add_inplace(v, L.bv.data(), static_cast<int64_t>(v_.size()));
  }
  if (cfg_.arch.qk_norm == QkNorm::PerHead) {
    rmsnorm_rows(q, L.q_norm.data(), cfg_.n_head, hd, cfg_.rms_eps);
    rmsnorm_rows(k, L.k_norm.data(), cfg_.n_head_kv, hd, cfg_.rms_eps);
  } else if (cfg_.arch.qk_norm == QkNorm::Full) {
    rmsnorm(q, L.q_norm.data(), q, static_cast<int64_t>(q_.size()), cfg_.rms_eps);
    rmsnorm(k, L.k_norm.data(), k, static_cast<int64_t>(k_.size()), cfg_.rms_eps);
  }
  rope_apply(rope_, q, cfg_.n_head, hd, pos);
  rope_apply(rope_, k, cfg_.n_head_kv, hd, pos);
  kv_.store(il, pos, k, v);

  const AttentionShape shape{cfg_.n_head, cfg_.n_head_kv, hd, cfg_.head_dim_v};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  attention_f16(q, kv_.k(il), kv_.k_row(), kv_.v(il), kv_.v_row(), pos + 1, shape, scale, attn_.data(), pool_);

  act_.reset(attn_.data(), static_cast<int64_t>(attn_.size()));
  const MatvecJob o{L.wo, &act_.get(L.wo.type), proj_.data()};
  matvec_multi({&o, 1}, pool_);
  // llama.cpp: ffn_inp = attn_out + inpSA
  for (int64_t i = 0; i < cfg_.n_embd; ++i) x[i] = proj_[i] + x[i];
}

}  // namespace swapmoe
