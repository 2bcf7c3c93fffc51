#include "reference_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "arch/arch.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/fp16.h"

namespace swapmoe::test {

namespace {
double f16_round(double x) { return fp16_to_fp32(fp32_to_fp16(static_cast<float>(x))); }
double silu_d(double x) { return x / (1.0 + std::exp(-x)); }
std::string L(int il, const char* base, const char* suffix = "weight") { return tensor_name(base, il, suffix); }
}  // namespace

ReferenceModel::ReferenceModel(const std::string& path) : f_(GgufFile::open(path)), cfg_(config_from_gguf(*f_)) {
  k_.resize(cfg_.n_layer);
  v_.resize(cfg_.n_layer);
}

std::vector<float> ReferenceModel::vec(const std::string& name) const {
  const GgufTensorInfo* t = f_->find_tensor(name);
  if (!t) return {};
  std::vector<uint8_t> raw(t->nbytes);
  f_->read_at(t->part, t->offset, raw.data(), raw.size());
  std::vector<float> out(static_cast<size_t>(t->n_elements()));
  const int64_t cols = t->ne[0];
  const size_t rb = ggml_row_size(t->type, cols);
  for (int64_t r = 0; r < t->n_elements() / cols; ++r)
    quant_traits(t->type).to_float_ref(raw.data() + r * rb, out.data() + r * cols, cols);
  return out;
}

std::vector<double> ReferenceModel::mul(const std::string& name, const std::vector<double>& x, int64_t expert) const {
  const GgufTensorInfo* t = f_->find_tensor(name);
  if (!t) fail("reference: no tensor ", name);
  const std::vector<float> w = vec(name);
  const int64_t cols = t->ne[0], rows = t->ne.size() > 1 ? t->ne[1] : 1;
  const size_t base = expert >= 0 ? static_cast<size_t>(expert * rows * cols) : 0;
  std::vector<double> y(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) y[r] += static_cast<double>(w[base + r * cols + c]) * x[c];
  return y;
}

std::vector<double> ReferenceModel::rmsnorm(const std::vector<double>& x, const std::vector<float>& w) const {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double s = 1.0 / std::sqrt(ss / x.size() + cfg_.rms_eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i % w.size()];
  return y;
}

void ReferenceModel::rope(std::vector<double>& x, int64_t n_heads, int64_t pos, int64_t stride, int64_t offset) const {
  const int64_t hd = stride > 0 ? stride : cfg_.head_dim_k, n = cfg_.n_rot;
  for (int64_t h = 0; h < n_heads; ++h) {
    double* v = x.data() + h * hd + offset;
    for (int64_t i = 0; i < n / 2; ++i) {
      const double theta = pos * std::pow(static_cast<double>(cfg_.rope_freq_base), -2.0 * i / n);
      // Neox pairs element i with i + n/2; "normal" pairs adjacent elements.
      const int64_t a = cfg_.rope_type == RopeType::Neox ? i : 2 * i;
      const int64_t b = cfg_.rope_type == RopeType::Neox ? i + n / 2 : 2 * i + 1;
      const double x0 = v[a], x1 = v[b];
      v[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
      v[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
    }
  }
}

std::vector<double> ReferenceModel::expert_ffn(int il, int64_t e, const std::vector<double>& x) const {
  const bool shared = e < 0;
  std::vector<double> g = mul(L(il, shared ? "ffn_gate_shexp" : "ffn_gate_exps"), x, e);
  std::vector<double> u = mul(L(il, shared ? "ffn_up_shexp" : "ffn_up_exps"), x, e);
  for (size_t i = 0; i < g.size(); ++i) g[i] = silu_d(g[i]) * u[i];
  return mul(L(il, shared ? "ffn_down_shexp" : "ffn_down_exps"), g, e);
}

// Absorbed multi-head latent attention: one cached row [c | k_pe] per position serves as
// the single key head, and its first kv_lora_rank values as the value.
std::vector<double> ReferenceModel::mla_attention(int il, const std::vector<double>& h) {
  const ModelConfig& c = cfg_;
  const int64_t r = c.kv_lora_rank, nr = c.n_rot, nope = c.head_dim_k_mla - nr, hk = c.head_dim_k_mla;
  std::vector<double> q;
  if (c.q_lora_rank > 0) q = mul(L(il, "attn_q_b"), rmsnorm(mul(L(il, "attn_q_a"), h), vec(L(il, "attn_q_a_norm"))));
  else q = mul(L(il, "attn_q"), h);
  std::vector<double> kv = mul(L(il, "attn_kv_a_mqa"), h);
  std::vector<double> lat(kv.begin(), kv.begin() + r), kpe(kv.begin() + r, kv.end());
  lat = rmsnorm(lat, vec(L(il, "attn_kv_a_norm")));
  rope(q, c.n_head, pos_, hk, nope);
  rope(kpe, 1, pos_, nr, 0);
  std::vector<double> row(lat);
  row.insert(row.end(), kpe.begin(), kpe.end());
  for (double& a : row) a = f16_round(a);
  k_[il].push_back(row);
  const std::vector<float> kb = vec(L(il, "attn_k_b")), vb = vec(L(il, "attn_v_b"));
  const int64_t n_pos = static_cast<int64_t>(k_[il].size());
  std::vector<double> o(c.n_head * c.head_dim_v_mla, 0.0);
  for (int64_t hh = 0; hh < c.n_head; ++hh) {
    std::vector<double> qa(r + nr, 0.0);  // [k_b q_nope | q_pe], rounded to F16 for the F16 cache
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < nope; ++j) qa[i] += kb[(hh * r + i) * nope + j] * q[hh * hk + j];
    for (int64_t j = 0; j < nr; ++j) qa[r + j] = q[hh * hk + nope + j];
    for (double& a : qa) a = f16_round(a);
    std::vector<double> s(n_pos);
    for (int64_t t = 0; t < n_pos; ++t) {
      double d = 0;
      for (int64_t i = 0; i < r + nr; ++i) d += qa[i] * k_[il][t][i];
      s[t] = d / std::sqrt(static_cast<double>(hk));
    }
    const double mx = *std::max_element(s.begin(), s.end());
    double sum = 0;
    for (double& a : s) sum += (a = std::exp(a - mx));
    std::vector<double> ol(r, 0.0);
    for (int64_t t = 0; t < n_pos; ++t) {
      const double p = f16_round(s[t] / sum);
      for (int64_t i = 0; i < r; ++i) ol[i] += p * k_[il][t][i];
    }
    for (int64_t d = 0; d < c.head_dim_v_mla; ++d)
      for (int64_t i = 0; i < r; ++i) o[hh * c.head_dim_v_mla + d] += vb[(hh * c.head_dim_v_mla + d) * r + i] * ol[i];
  }
  return mul(L(il, "attn_output"), o);
}

// The FFN of the architectures that state their routing (deepseek2, glm4moe): dense leading
// layers, then softmax or sigmoid scores with a selection bias, the chosen scores renormalised
// and scaled, plus the shared expert unweighted.
std::vector<double> ReferenceModel::ffn_routing_keys(int il, const std::vector<double>& h) const {
  const ModelConfig& c = cfg_;
  const int64_t E = c.n_embd;
  std::vector<double> y;
  if (il < c.n_layer_dense_lead) {
    std::vector<double> g = mul(L(il, "ffn_gate"), h), u = mul(L(il, "ffn_up"), h);
    for (size_t i = 0; i < g.size(); ++i) g[i] = silu_d(g[i]) * u[i];
    y = mul(L(il, "ffn_down"), g);
  } else {
    // Sigmoid scores; the bias only steers the choice; chosen scores renormalised, scaled.
    std::vector<double> p = mul(L(il, "ffn_gate_inp"), h);
    if (c.gating == GatingFunc::Sigmoid) {
      for (double& a : p) a = 1.0 / (1.0 + std::exp(-a));
    } else {
      const double m = *std::max_element(p.begin(), p.end());
      double z = 0;
      for (double& a : p) z += (a = std::exp(a - m));
      for (double& a : p) a /= z;
    }
    std::vector<float> b = vec(L(il, "exp_probs_b", "bias"));
    if (b.empty()) b.assign(c.n_expert, 0.0f);  // softmax gating files have no selection bias
    std::vector<int64_t> order(c.n_expert);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a1, int64_t b1) { return p[a1] + b[a1] > p[b1] + b[b1]; });
    double wsum = 0;
    for (int64_t i = 0; i < c.n_expert_used; ++i) wsum += p[order[i]];
    y = expert_ffn(il, -1, h);
    std::vector<double> moe(E, 0.0);
    for (int64_t i = 0; i < c.n_expert_used; ++i) {
      const double w = (c.expert_weights_norm ? p[order[i]] / wsum : p[order[i]]) * c.expert_weights_scale;
      const std::vector<double> ye = expert_ffn(il, order[i], h);
      for (int64_t j = 0; j < E; ++j) moe[j] += w * ye[j];
    }
    for (int64_t j = 0; j < E; ++j) y[j] += moe[j];
  }
  return y;
}

std::vector<double> ReferenceModel::step(int32_t token) {
  const ModelConfig& c = cfg_;
  const int64_t E = c.n_embd, hd = c.head_dim_k;
  const std::vector<float> emb = vec("token_embd.weight");
  std::vector<double> x(emb.begin() + token * E, emb.begin() + (token + 1) * E);

  for (int il = 0; il < c.n_layer; ++il) {
    // Attention.
    std::vector<double> h = rmsnorm(x, vec(L(il, "attn_norm")));
    if (c.arch.attention == AttentionKind::Mla) {
      const std::vector<double> o = mla_attention(il, h);
      for (int64_t i = 0; i < E; ++i) x[i] += o[i];
      const std::vector<double> y = ffn_routing_keys(il, rmsnorm(x, vec(L(il, c.arch.ffn_norm))));
      for (int64_t i = 0; i < E; ++i) x[i] += y[i];
      continue;
    }
    std::vector<double> q = mul(L(il, "attn_q"), h), k = mul(L(il, "attn_k"), h), v = mul(L(il, "attn_v"), h);
    if (c.arch.qkv_bias) {
      const auto bq = vec(L(il, "attn_q", "bias")), bk = vec(L(il, "attn_k", "bias")), bv = vec(L(il, "attn_v", "bias"));
      for (size_t i = 0; i < q.size(); ++i) q[i] += bq[i];
      for (size_t i = 0; i < k.size(); ++i) k[i] += bk[i];
      for (size_t i = 0; i < v.size(); ++i) v[i] += bv[i];
    }
    if (c.arch.qk_norm == QkNorm::PerHead) {
      const auto qn = vec(L(il, "attn_q_norm")), kn = vec(L(il, "attn_k_norm"));
      for (int64_t hh = 0; hh < c.n_head; ++hh) {
        std::vector<double> s(q.begin() + hh * hd, q.begin() + (hh + 1) * hd);
        s = rmsnorm(s, qn);
        std::copy(s.begin(), s.end(), q.begin() + hh * hd);
      }
      for (int64_t hh = 0; hh < c.n_head_kv; ++hh) {
        std::vector<double> s(k.begin() + hh * hd, k.begin() + (hh + 1) * hd);
        s = rmsnorm(s, kn);
        std::copy(s.begin(), s.end(), k.begin() + hh * hd);
      }
    } else if (c.arch.qk_norm == QkNorm::Full) {  // whole projection
      q = rmsnorm(q, vec(L(il, "attn_q_norm")));
      k = rmsnorm(k, vec(L(il, "attn_k_norm")));
    }
    rope(q, c.n_head, pos_);
    rope(k, c.n_head_kv, pos_);
    for (double& a : k) a = f16_round(a);
    for (double& a : v) a = f16_round(a);
    k_[il].push_back(k);
    v_[il].push_back(v);
    std::vector<double> att(c.n_head * c.head_dim_v, 0.0);
    const int64_t n_pos = static_cast<int64_t>(k_[il].size());
    for (int64_t hh = 0; hh < c.n_head; ++hh) {
      const int64_t kv = hh / (c.n_head / c.n_head_kv);
      std::vector<double> s(n_pos);
      for (int64_t t = 0; t < n_pos; ++t) {
        double d = 0;
        for (int64_t i = 0; i < hd; ++i) d += f16_round(q[hh * hd + i]) * k_[il][t][kv * hd + i];
        s[t] = d / std::sqrt(static_cast<double>(hd));
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& a : s) sum += (a = std::exp(a - mx));
      for (int64_t t = 0; t < n_pos; ++t) {
        const double p = f16_round(s[t] / sum);
        for (int64_t i = 0; i < c.head_dim_v; ++i) att[hh * c.head_dim_v + i] += p * v_[il][t][kv * c.head_dim_v + i];
      }
    }
    const std::vector<double> o = mul(L(il, "attn_output"), att);
    for (int64_t i = 0; i < E; ++i) x[i] += o[i];

    // Mixture of experts.
    h = rmsnorm(x, vec(L(il, c.arch.ffn_norm)));
    if (c.arch.routing_keys) {
      const std::vector<double> y = ffn_routing_keys(il, h);
      for (int64_t i = 0; i < E; ++i) x[i] += y[i];
      continue;
    }
    std::vector<double> logits = mul(L(il, "ffn_gate_inp"), h);
    const double mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (double& a : logits) sum += (a = std::exp(a - mx));
    for (double& a : logits) a /= sum;
    std::vector<int64_t> order(c.n_expert);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return logits[a] > logits[b]; });
    double wsum = 0;
    for (int64_t i = 0; i < c.n_expert_used; ++i) wsum += logits[order[i]];
    std::vector<double> moe(E, 0.0);
    for (int64_t i = 0; i < c.n_expert_used; ++i) {
      const double w = c.expert_weights_norm ? logits[order[i]] / wsum : logits[order[i]];
      const std::vector<double> y = expert_ffn(il, order[i], h);
      for (int64_t j = 0; j < E; ++j) moe[j] += w * y[j];
    }
    if (c.arch.shared_expert == SharedExpert::Gated) {
      const double g = mul(L(il, "ffn_gate_inp_shexp"), h)[0];
      const double s = 1.0 / (1.0 + std::exp(-g));
      const std::vector<double> y = expert_ffn(il, -1, h);
      for (int64_t j = 0; j < E; ++j) moe[j] += s * y[j];
    }
    for (int64_t i = 0; i < E; ++i) x[i] += moe[i];
  }
  ++pos_;
  const std::vector<double> h = rmsnorm(x, vec("output_norm.weight"));
  return mul(f_->find_tensor("output.weight") ? "output.weight" : "token_embd.weight", h);
}

}  // namespace swapmoe::test
