#include "model/weights.h"

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <set>
#include <string>

#include "ops/mla_legacy.h"
#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {

MatrixRef BoundTensor::matrix() const {
  MatrixRef m;
  m.type = type;
  m.cols = ne.empty() ? 0 : ne[0];
  m.rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) m.rows *= ne[i];
  m.data = bytes.data();
  return m;
}

namespace {

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

bool is_vector_role(TensorRole r) {
  return r == TensorRole::Norm || r == TensorRole::Bias || r == TensorRole::ExpProbsBias || r == TensorRole::Sinks;
}

// Checks that the weight type has the arithmetic a matvec needs; rethrows with the name.
void check_matrix_type(const GgufFile& f, const GgufTensorInfo& t) {
  try {
    const QuantTraits& q = quant_traits(t.type);
    (void)quant_traits(q.vec_dot_type);
    if (!q.vec_dot || !q.to_float) fail("no kernels");
  } catch (const Error& e) {
    fail(f.path(), ": tensor ", t.name, " has type ", ggml_type_name(t.type),
         ", which swapmoe cannot multiply (", e.what(), ")");
  }
}

std::vector<float> to_f32(const GgufFile& f, const GgufTensorInfo& t) {
  if (t.type != GgmlType::F32 && t.type != GgmlType::F16 && t.type != GgmlType::BF16)
    fail(f.path(), ": tensor ", t.name, ": expected type F32 (or F16/BF16), got ", ggml_type_name(t.type));
  const int64_t n = t.n_elements();
  std::vector<uint8_t> raw(t.nbytes);
  f.read_at(t.part, t.offset, raw.data(), raw.size());
  std::vector<float> out(static_cast<size_t>(n));
  quant_traits(t.type).to_float(raw.data(), out.data(), n);
  return out;
}

}  // namespace

const BoundTensor* ModelWeights::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const std::vector<float>* ModelWeights::vec(const std::string& name) const {
  auto it = vecs_.find(name);
  return it == vecs_.end() ? nullptr : &it->second;
}

bool mla_legacy_reference_requested() {
  static const bool on = [] {
    const char* e = std::getenv("SWAPMOE_MLA_LEGACY_REFERENCE");
    return e != nullptr && std::string(e) == "1";
  }();
  return on;
}

namespace {

// Splits one layer's legacy attn_kv_b (already in memory) into attn_k_b / attn_v_b.
void derive_legacy(const GgufFile& f, const ModelConfig& cfg, const TensorSpec& s, const GgufTensorInfo& t,
                   const AlignedBuffer& kv_b, std::map<std::string, BoundTensor>& out, MlaLegacyLoad& stats,
                   ThreadPool* pool) {
  const MlaLegacyShape shape{cfg.kv_lora_rank, cfg.n_head, cfg.head_dim_k_mla - cfg.n_rot, cfg.head_dim_v_mla};
  const GgmlType k_type = stats.reference ? GgmlType::F32 : mla_legacy_k_b_type(t.type);
  try {
    mla_legacy_check(shape, t.type, k_type);
  } catch (const Error& e) {
    fail(f.path(), ": tensor ", s.name, " (", ggml_type_name(t.type), "): ", e.what());
  }
  BoundTensor k, v;
  k.name = tensor_name("attn_k_b", s.layer);
  k.type = k_type;
  k.ne = {shape.nope, shape.kv_lora_rank, shape.n_head};
  k.bytes = AlignedBuffer(mla_legacy_k_b_bytes(shape, k_type));
  v.name = tensor_name("attn_v_b", s.layer);
  v.type = t.type;
  v.ne = {shape.kv_lora_rank, shape.head_dim_v, shape.n_head};
  v.bytes = AlignedBuffer(mla_legacy_v_b_bytes(shape, t.type));
  const auto t0 = std::chrono::steady_clock::now();
  mla_legacy_derive(shape, t.type, kv_b.data(), k_type, k.bytes.data(), v.bytes.data(), pool);
  if (stats.reference) {
    // v_b's rows dequantized, so the head outputs are not re-quantized for the product.
    const size_t row = ggml_row_size(t.type, shape.kv_lora_rank);
    const int64_t rows = shape.head_dim_v * shape.n_head;
    AlignedBuffer vf(static_cast<size_t>(rows * shape.kv_lora_rank) * sizeof(float));
    for (int64_t r = 0; r < rows; ++r)
      quant_traits(t.type).to_float(v.bytes.data() + static_cast<size_t>(r) * row,
                                    reinterpret_cast<float*>(vf.data()) + r * shape.kv_lora_rank, shape.kv_lora_rank);
    v.type = GgmlType::F32;
    v.bytes = std::move(vf);
    stats.latent_types.resize(static_cast<size_t>(cfg.n_layer), GgmlType::F32);
    stats.latent_types[static_cast<size_t>(s.layer)] = mla_legacy_latent_type(t.type);
  }
  stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats.layers += 1;
  stats.kv_b_type = t.type;
  stats.k_b_type = k_type;
  stats.kv_b_bytes += t.nbytes;
  stats.derived_bytes += k.bytes.size() + v.bytes.size();
  std::string kn = k.name, vn = v.name;
  out.emplace(kn, std::move(k));
  out.emplace(vn, std::move(v));
}

}  // namespace

std::unique_ptr<ModelWeights> ModelWeights::bind(const GgufFile& f, const ModelConfig& cfg, ThreadPool* pool) {
  auto w = std::make_unique<ModelWeights>();
  const std::vector<TensorSpec> specs = tensor_specs(cfg);
  std::set<std::string> expected;
  w->layers.resize(static_cast<size_t>(cfg.n_layer));
  w->experts.resize(static_cast<size_t>(cfg.n_layer));
  w->legacy_.reference = cfg.mla_legacy && mla_legacy_reference_requested();

  for (const TensorSpec& s : specs) {
    expected.insert(s.name);
    const GgufTensorInfo* t = f.find_tensor(s.name);
    if (!t) {
      if (s.optional) continue;
      fail(f.path(), ": missing tensor ", s.name, " (expected shape ", shape_str(s.ne), ")");
    }
    if (t->ne != s.ne)
      fail(f.path(), ": tensor ", s.name, ": expected shape ", shape_str(s.ne), ", got ", shape_str(t->ne),
           " (type ", ggml_type_name(t->type), ")");
    if (s.unused) continue;  // checked, not loaded (a NextN/MTP layer: arch/config.h)
    if (is_vector_role(s.role)) {
      w->vecs_[s.name] = to_f32(f, *t);
      w->bytes_ += static_cast<size_t>(t->n_elements()) * sizeof(float);
      continue;
    }
    if (s.role == TensorRole::ExpertBias) {
      // Read with their expert by the expert store (expert/expert_store.h), not here.
      if (t->type != GgmlType::F32)
        fail(f.path(), ": tensor ", s.name, ": expert biases must be F32, not ", ggml_type_name(t->type));
      ExpertTensors& e = w->experts[static_cast<size_t>(s.layer)];
      if (s.name.find("ffn_gate_exps") != std::string::npos) e.gate_b = t;
      else if (s.name.find("ffn_up_exps") != std::string::npos) e.up_b = t;
      else if (s.name.find("ffn_down_exps") != std::string::npos) e.down_b = t;
      else fail("internal: unknown expert bias tensor ", s.name);
      continue;
    }
    check_matrix_type(f, *t);
    if (s.role == TensorRole::Experts) {
      if (s.layer < 0) fail("internal: expert tensor ", s.name, " without a layer");
      ExpertTensors& e = w->experts[static_cast<size_t>(s.layer)];
      if (s.name.find("ffn_gate_exps") != std::string::npos) e.gate = t;
      else if (s.name.find("ffn_up_exps") != std::string::npos) e.up = t;
      else if (s.name.find("ffn_down_exps") != std::string::npos) e.down = t;
      else fail("internal: unknown expert tensor ", s.name);
      continue;
    }
    BoundTensor b;
    b.name = s.name;
    b.type = t->type;
    b.ne = t->ne;
    b.bytes = AlignedBuffer(t->nbytes);
    f.read_at(t->part, t->offset, b.bytes.data(), t->nbytes);
    // The bytes now live in owned memory; the file's cached pages would only be counted a
    // second time against a --mem budget (and a memory cgroup), so drop them at once.
    if (const int fd = f.parts()[t->part].fd; fd >= 0)
      (void)posix_fadvise(fd, static_cast<off_t>(t->offset), static_cast<off_t>(t->nbytes), POSIX_FADV_DONTNEED);
    if (cfg.mla_legacy && s.layer >= 0 && s.name == tensor_name("attn_kv_b", s.layer)) {
      // Split as it is read, so at most one layer's attn_kv_b is held besides the result.
      derive_legacy(f, cfg, s, *t, b.bytes, w->tensors_, w->legacy_, pool);
      w->bytes_ += w->tensor(tensor_name("attn_k_b", s.layer))->bytes.size() +
                   w->tensor(tensor_name("attn_v_b", s.layer))->bytes.size();
      continue;
    }
    w->bytes_ += t->nbytes;
    w->tensors_.emplace(s.name, std::move(b));
  }

  // Unused tensors are harmless (e.g. rope_freqs of some llama files), but worth a note.
  size_t n_extra = 0;
  std::string first_extra;
  for (const GgufTensorInfo& t : f.tensors())
    if (!expected.count(t.name) && n_extra++ == 0) first_extra = t.name;
  if (n_extra > 0)
    std::fprintf(stderr, "swapmoe: warning: %s: ignoring %zu tensor(s) that %s does not use (e.g. %s)\n",
                 f.path().c_str(), n_extra, cfg.arch_name.c_str(), first_extra.c_str());

  auto mat = [&](const std::string& name) -> MatrixRef {
    const BoundTensor* b = w->tensor(name);
    return b ? b->matrix() : MatrixRef{};
  };
  auto vec = [&](const std::string& name) -> std::vector<float> {
    const std::vector<float>* v = w->vec(name);
    return v ? *v : std::vector<float>{};
  };

  w->token_embd = mat("token_embd.weight");
  w->output = cfg.has_output && w->tensor("output.weight") ? mat("output.weight") : w->token_embd;
  w->output_norm = vec("output_norm.weight");
  for (int il = 0; il < static_cast<int>(cfg.n_layer); ++il) {
    LayerWeights& L = w->layers[static_cast<size_t>(il)];
    L.attn_norm = vec(tensor_name("attn_norm", il));
    L.ffn_norm = vec(tensor_name(cfg.arch.ffn_norm, il));
    L.wq = mat(tensor_name("attn_q", il));
    L.wk = mat(tensor_name("attn_k", il));
    L.wv = mat(tensor_name("attn_v", il));
    L.wo = mat(tensor_name("attn_output", il));
    L.bq = vec(tensor_name("attn_q", il, "bias"));
    L.bk = vec(tensor_name("attn_k", il, "bias"));
    L.bv = vec(tensor_name("attn_v", il, "bias"));
    L.bo = vec(tensor_name("attn_output", il, "bias"));
    L.sinks = vec(tensor_name("attn_sinks", il));
    L.gate_inp_b = vec(tensor_name("ffn_gate_inp", il, "bias"));
    L.q_norm = vec(tensor_name("attn_q_norm", il));
    L.k_norm = vec(tensor_name("attn_k_norm", il));
    L.ffn_gate = mat(tensor_name("ffn_gate", il));
    L.ffn_up = mat(tensor_name("ffn_up", il));
    L.ffn_down = mat(tensor_name("ffn_down", il));
    L.gate_inp = mat(tensor_name("ffn_gate_inp", il));
    L.exp_probs_b = vec(tensor_name("exp_probs_b", il, "bias"));
    L.gate_inp_shexp = mat(tensor_name("ffn_gate_inp_shexp", il));
    L.gate_shexp = mat(tensor_name("ffn_gate_shexp", il));
    L.up_shexp = mat(tensor_name("ffn_up_shexp", il));
    L.down_shexp = mat(tensor_name("ffn_down_shexp", il));
    L.has_shexp = L.gate_shexp.data != nullptr;
  }
  return w;
}

void embedding_row(const MatrixRef& embd, int32_t t, float* out) {
  const auto* row = static_cast<const uint8_t*>(embd.data) + static_cast<size_t>(t) * embd.row_bytes();
  quant_traits(embd.type).to_float(row, out, embd.cols);
}

}  // namespace swapmoe
