#include "tiny_model.h"

#include <unistd.h>

#include <cmath>
#include <random>
#include <vector>

#include "gguf/gguf_writer.h"
#include "quant/quant.h"

namespace swapmoe {

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::Qwen3Moe: return "qwen3moe";
    case Arch::Qwen2Moe: return "qwen2moe";
    case Arch::Llama: return "llama";
    case Arch::Olmoe: return "olmoe";
    case Arch::Deepseek2: return "deepseek2";
    case Arch::Glm4Moe: return "glm4moe";
  }
  return "?";
}

}  // namespace swapmoe

namespace swapmoe::test {

ModelConfig tiny_config(Arch arch, int64_t n_embd, int variant) {
  ModelConfig c = config_for_arch(arch_spec(arch_name(arch)));
  c.n_vocab = 258;
  c.n_ctx_train = 256;
  c.n_embd = n_embd;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = arch == Arch::Olmoe ? 4 : 2;
  c.head_dim_k = c.head_dim_v = n_embd / c.n_head;
  c.n_rot = c.head_dim_k;
  c.rms_eps = 1e-6f;
  c.n_expert = 8;
  c.n_expert_used = 2;
  c.n_ff_exp = 32;
  c.n_ff = arch == Arch::Llama || arch == Arch::Olmoe ? 32 : 96;
  if (arch == Arch::Qwen2Moe) c.n_ff_shexp = 64;
  c.rope_freq_base = arch == Arch::Llama ? 1000000.0f : 10000.0f;
  c.rope_type = arch == Arch::Llama || arch == Arch::Deepseek2 ? RopeType::Norm : RopeType::Neox;
  c.rope_orig_ctx = c.n_ctx_train;
  c.expert_weights_norm = arch == Arch::Qwen3Moe || arch == Arch::Llama;
  if (arch == Arch::Deepseek2) {
    // One dense leading layer, then MoE layers with a shared expert and sigmoid gating
    // with a selection bias; MLA with a low-rank q.
    c.n_layer = 3;
    c.n_layer_dense_lead = 1;
    c.n_head_kv = 1;
    // Every MLA width distinct, so that a swapped dimension cannot go unnoticed.
    c.q_lora_rank = 40;
    c.kv_lora_rank = 32;
    c.n_rot = 16;
    c.head_dim_k_mla = 16 + 24;  // rope + nope
    c.head_dim_v_mla = 20;
    c.head_dim_k = c.kv_lora_rank + c.n_rot;
    c.head_dim_v = c.kv_lora_rank;
    c.n_expert_shared = 1;
    c.gating = GatingFunc::Sigmoid;
    c.expert_weights_norm = true;
    c.expert_weights_scale = 2.5f;
    if (variant == 1) {
      c.n_layer = 2;
      c.n_layer_dense_lead = 0;
      c.q_lora_rank = 0;
      c.gating = GatingFunc::Softmax;
      c.expert_weights_norm = false;
      c.expert_weights_scale = 1.0f;
    }
  }
  if (arch == Arch::Glm4Moe) {
    // GLM-4.5's layout in small: heads wider than n_embd / n_head with rope over half of
    // each, q/k/v biases, one dense leading layer, sigmoid gating with a selection bias,
    // one shared expert, and one NextN/MTP layer after the three it runs.
    c.n_layer = 3;
    c.n_layer_nextn = 1;
    c.n_layer_dense_lead = 1;
    c.head_dim_k = c.head_dim_v = 2 * n_embd / c.n_head;
    c.n_rot = c.head_dim_k / 2;
    c.n_expert_shared = 1;
    c.gating = GatingFunc::Sigmoid;
    c.expert_weights_norm = true;
    c.expert_weights_scale = 2.5f;
    if (variant == 1) {
      c.arch.qk_norm = QkNorm::None;
      c.expert_weights_scale = 1.0f;
    }
  }
  return c;
}

std::string temp_path(const std::string& stem) {
  return std::string(SWAPMOE_BUILD_DIR) + "/test_model_" + stem + "_" + std::to_string(getpid()) + ".gguf";
}

namespace {

// GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to 256+k.
std::string byte_token(int b) {
  int cp = b;
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  if (!printable) {
    int k = 0;
    for (int c = 0; c < b; ++c) {
      const bool p = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
      if (!p) ++k;
    }
    cp = 256 + k;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

}  // namespace

void write_tiny_model(const std::string& path, const ModelConfig& cfg, const TinyOptions& opt) {
  GgufWriter w;
  for (const auto& [key, v] : config_to_kv(cfg)) {
    switch (v.kind) {
      case MetaValue::U32: w.set_u32(key, v.u); break;
      case MetaValue::F32: w.set_f32(key, v.f); break;
      case MetaValue::Bool: w.set_bool(key, v.b); break;
      case MetaValue::Str: w.set_str(key, v.s); break;
    }
  }
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(byte_token(b));
    types.push_back(1);
  }
  tokens.push_back("<|endoftext|>");
  tokens.push_back("<|im_start|>");
  types.push_back(3);
  types.push_back(3);
  w.set_str("tokenizer.ggml.model", "gpt2");
  w.set_str("tokenizer.ggml.pre", "qwen2");
  w.set_arr_str("tokenizer.ggml.tokens", tokens);
  w.set_arr_i32("tokenizer.ggml.token_type", types);
  w.set_arr_str("tokenizer.ggml.merges", {});
  w.set_u32("tokenizer.ggml.eos_token_id", 256);
  w.set_u32("tokenizer.ggml.bos_token_id", 256);
  w.set_bool("tokenizer.ggml.add_bos_token", false);

  struct Planned {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type;
    TensorRole role;
  };
  std::vector<Planned> plan;
  for (const TensorSpec& s : tensor_specs(cfg)) {
    if (s.role == TensorRole::Output && opt.tie_output) continue;
    GgmlType t = GgmlType::F32;
    if (s.role == TensorRole::TokenEmbd) t = opt.embd_type;
    else if (s.role == TensorRole::Matrix || s.role == TensorRole::Experts || s.role == TensorRole::Output)
      t = opt.matrix_type;
    Planned p{s.name, s.ne, t, s.role};
    if (opt.edit) opt.edit(p.name, p.ne, p.type);
    if (p.name.empty()) continue;  // edit removed it
    plan.push_back(p);
    w.add_tensor_info(p.name, p.type, p.ne);
  }
  if (opt.add_extra) {
    plan.push_back({"rope_freqs.weight", {cfg.n_rot / 2}, GgmlType::F32, TensorRole::Norm});
    w.add_tensor_info(plan.back().name, plan.back().type, plan.back().ne);
  }
  w.begin(path);
  std::mt19937 rng(opt.seed);
  for (const Planned& p : plan) {
    int64_t n = 1;
    for (int64_t d : p.ne) n *= d;
    std::vector<float> vals(static_cast<size_t>(n));
    // Norm weights near 1, everything else small and centred (keeps activations tame).
    const bool is_norm = p.role == TensorRole::Norm;
    const float scale = is_norm ? 0.2f : 1.0f / std::sqrt(static_cast<float>(p.ne[0]));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : vals) v = (is_norm ? 1.0f : 0.0f) + scale * u(rng);
    if (p.type == GgmlType::F32) {
      w.write_tensor_data(vals.data(), vals.size() * sizeof(float));
    } else {
      const size_t rb = ggml_row_size(p.type, p.ne[0]);
      const int64_t rows = n / p.ne[0];
      std::vector<uint8_t> bytes(rb * rows);
      const QuantTraits& q = quant_traits(p.type);
      for (int64_t r = 0; r < rows; ++r) q.from_float_ref(vals.data() + r * p.ne[0], bytes.data() + r * rb, p.ne[0]);
      w.write_tensor_data(bytes.data(), bytes.size());
    }
  }
  w.finish();
}

}  // namespace swapmoe::test
