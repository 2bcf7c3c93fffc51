#pragma once
// Which type each tensor gets when a model is quantized: llama.cpp's "mixes" (Q4_K_M,
// Q5_K_M, ...), re-implemented from the rules of llama.cpp's llama_tensor_get_type so
// that `swapmoe quantize` and `swapmoe-forge --type` produce the same layouts a user
// gets from llama-quantize. Shared by both tools (header-only so the forge, which does
// not link the CLI, and the unit tests can include it without another library).
//
// The rules, for the targets swapmoe supports:
//  - Only tensors whose name ends in "weight", with 2 or more dimensions, that are not
//    norms ("_norm.weight") or routers ("ffn_gate_inp.weight") are quantized; all
//    others (norms, biases, router, exp_probs_b) keep their type, as in llama.cpp.
//  - output.weight (or token_embd.weight when the output is tied to it) becomes Q6_K,
//    or Q8_0 when the target is Q8_0 or its rows do not fit the target's blocks.
//  - attn_v (and attn_qkv / attn_kv_b) and ffn_down (dense, shared and *_exps) get more
//    bits on some layers: for Q4_K_M / Q5_K_M, Q6_K on the layers where
//    use_more_bits(i, n) holds: the first and last eighth, and every third layer between.
//  - Models with exactly 8 experts (Mixtral) get Q8_0 attn_v and attn_k and Q5_K
//    attn_output for the smaller k-quant mixes.
//  - IQ4_NL / IQ4_XS (no imatrix): attn_v Q5_K when n_gqa >= 4, ffn_down Q5_K on the first
//    eighth of the layers, attn_output Q5_K with 8 experts. TQ1_0 / TQ2_0: token_embd Q4_K.
//    MXFP4_MOE: 3-D tensors (the stacked experts) MXFP4, every other quantized tensor and
//    output/token_embd Q8_0.
//  - Rows whose length is not a multiple of the block size fall back like llama.cpp:
//    Q2_K/Q3_K/TQ1_0/TQ2_0 -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
//    IQ4_XS and the grid i-quants -> IQ4_NL, and F16 if even that does not fit (llama.cpp aborts for block-32
//    types; we fall back to F16 instead).
// Not reproduced: the IQ1/IQ2/IQ3 mixes, imatrix-dependent rules, Falcon and the 70B attn_v bump.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "util/error.h"
#include "util/ggml_type.h"

namespace swapmoe::cli {

// llama.cpp's llama_ftype values, written to general.file_type.
namespace llama_ftype {
constexpr uint32_t ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q4_0 = 2, MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7,
                   MOSTLY_Q5_0 = 8, MOSTLY_Q5_1 = 9, MOSTLY_Q2_K = 10, MOSTLY_Q3_K_S = 11, MOSTLY_Q3_K_M = 12,
                   MOSTLY_Q3_K_L = 13, MOSTLY_Q4_K_S = 14, MOSTLY_Q4_K_M = 15, MOSTLY_Q5_K_S = 16,
                   MOSTLY_Q5_K_M = 17, MOSTLY_Q6_K = 18, MOSTLY_IQ4_NL = 25, MOSTLY_IQ4_XS = 30,
                   MOSTLY_BF16 = 32, MOSTLY_TQ1_0 = 36, MOSTLY_TQ2_0 = 37, MOSTLY_MXFP4_MOE = 38,
                   MOSTLY_IQ2_XXS = 19, MOSTLY_IQ2_XS = 20, MOSTLY_IQ3_XXS = 23, MOSTLY_IQ1_S = 24,
                   MOSTLY_IQ3_S = 26, MOSTLY_IQ2_S = 28, MOSTLY_IQ1_M = 31;
}

// A named quantization target: TYPE of `swapmoe quantize` / --type of the forge.
struct QuantTarget {
  const char* name;
  GgmlType base;   // the type of every quantizable tensor the mix does not single out
  uint32_t ftype;  // llama_ftype written to general.file_type
  bool pure;       // no mix: every quantizable tensor gets `base` (llama-quantize --pure)
  // No quantizer here (the grid i-quants need an importance matrix): only swapmoe-forge
  // writes it, as random valid blocks; `swapmoe quantize` refuses it.
  bool forge_only = false;
};

// Names of llama-quantize's file types mean the same mix here. The bare k-quant block
// names Q3_K / Q4_K / Q5_K (which llama-quantize treats as aliases of *_M) are "pure"
// here, so a file exercising exactly one block format can be made; Q2_K and Q6_K are
// llama.cpp's ftypes of those names.
inline const std::vector<QuantTarget>& quant_targets() {
  using T = GgmlType;
  namespace f = llama_ftype;
  static const std::vector<QuantTarget> targets = {
      {"F32", T::F32, f::ALL_F32, true},        {"F16", T::F16, f::MOSTLY_F16, true},
      {"BF16", T::BF16, f::MOSTLY_BF16, true},  {"Q8_0", T::Q8_0, f::MOSTLY_Q8_0, false},
      {"Q4_0", T::Q4_0, f::MOSTLY_Q4_0, false}, {"Q4_1", T::Q4_1, f::MOSTLY_Q4_1, false},
      {"Q5_0", T::Q5_0, f::MOSTLY_Q5_0, false}, {"Q5_1", T::Q5_1, f::MOSTLY_Q5_1, false},
      {"Q2_K", T::Q2_K, f::MOSTLY_Q2_K, false}, {"Q3_K_S", T::Q3_K, f::MOSTLY_Q3_K_S, false},
      {"Q3_K_M", T::Q3_K, f::MOSTLY_Q3_K_M, false}, {"Q3_K_L", T::Q3_K, f::MOSTLY_Q3_K_L, false},
      {"Q4_K_S", T::Q4_K, f::MOSTLY_Q4_K_S, false}, {"Q4_K_M", T::Q4_K, f::MOSTLY_Q4_K_M, false},
      {"Q5_K_S", T::Q5_K, f::MOSTLY_Q5_K_S, false}, {"Q5_K_M", T::Q5_K, f::MOSTLY_Q5_K_M, false},
      {"Q6_K", T::Q6_K, f::MOSTLY_Q6_K, false},  {"Q3_K", T::Q3_K, f::MOSTLY_Q3_K_S, true},
      {"Q4_K", T::Q4_K, f::MOSTLY_Q4_K_S, true}, {"Q5_K", T::Q5_K, f::MOSTLY_Q5_K_S, true},
      {"IQ4_NL", T::IQ4_NL, f::MOSTLY_IQ4_NL, false}, {"IQ4_XS", T::IQ4_XS, f::MOSTLY_IQ4_XS, false},
      {"TQ1_0", T::TQ1_0, f::MOSTLY_TQ1_0, false},   {"TQ2_0", T::TQ2_0, f::MOSTLY_TQ2_0, false},
      {"MXFP4_MOE", T::MXFP4, f::MOSTLY_MXFP4_MOE, false},
      // MXFP4 for every quantized tensor (llama-quantize MXFP4_MOE --pure), so that one
      // format can be exercised alone.
      {"MXFP4", T::MXFP4, f::MOSTLY_MXFP4_MOE, true},
      // The grid i-quants, pure (every quantizable tensor of that type): llama.cpp's IQ1/IQ2/IQ3
      // mixes depend on an importance matrix and are not reproduced. Forge only.
      {"IQ2_XXS", T::IQ2_XXS, f::MOSTLY_IQ2_XXS, true, true}, {"IQ2_XS", T::IQ2_XS, f::MOSTLY_IQ2_XS, true, true},
      {"IQ2_S", T::IQ2_S, f::MOSTLY_IQ2_S, true, true},       {"IQ3_XXS", T::IQ3_XXS, f::MOSTLY_IQ3_XXS, true, true},
      {"IQ3_S", T::IQ3_S, f::MOSTLY_IQ3_S, true, true},       {"IQ1_S", T::IQ1_S, f::MOSTLY_IQ1_S, true, true},
      {"IQ1_M", T::IQ1_M, f::MOSTLY_IQ1_M, true, true},
  };
  return targets;
}

inline std::string quant_target_names() {
  std::string s;
  for (const auto& t : quant_targets()) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

// Case-insensitive lookup; throws Error listing the valid names.
inline const QuantTarget& find_quant_target(const std::string& name) {
  std::string up;
  for (char c : name) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& t : quant_targets())
    if (up == t.name) return t;
  fail("unknown quantization type '", name, "' (valid: ", quant_target_names(), ")");
}

// Block-quantized (as opposed to the float types F32/F16/BF16).
inline bool is_block_quantized(GgmlType t) {
  return t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16;
}

// The model facts the mix depends on.
struct MixModel {
  int64_t n_layer = 0;
  int64_t n_expert = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_gqa() const { return n_head_kv > 0 ? n_head / n_head_kv : 0; }
};

struct MixTensor {
  std::string name;
  std::vector<int64_t> ne;
  GgmlType type = GgmlType::F32;  // current type
};

// "blk.N." prefix -> N, else -1 (global tensors).
inline int tensor_layer(const std::string& name) {
  if (name.compare(0, 4, "blk.") != 0) return -1;
  size_t i = 4;
  int64_t v = 0;
  bool digits = false;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && v < (int64_t(1) << 30)) {
    v = v * 10 + (name[i] - '0');
    digits = true;
    ++i;
  }
  if (!digits || i >= name.size() || name[i] != '.') return -1;
  return static_cast<int>(v);
}

// Number of dimensions ignoring trailing 1s, as ggml_n_dims counts them.
inline int tensor_n_dims(const std::vector<int64_t>& ne) {
  int n = static_cast<int>(ne.size());
  while (n > 1 && ne[n - 1] == 1) --n;
  return std::max(n, 1);
}

// Reads the mix facts from "<arch>.*" metadata, for any architecture (head counts may be
// per-layer arrays; the first layer's value is used, as llama.cpp's n_gqa() does).
inline MixModel mix_model_from_gguf(const GgufFile& f) {
  const std::string arch = f.get_str("general.architecture", "");
  auto first_int = [&](const std::string& key, int64_t def) -> int64_t {
    const GgufValue* v = f.find(arch + "." + key);
    if (!v) return def;
    if (v->type == GgufType::ARRAY) return v->arr_int.empty() ? def : v->arr_int[0];
    return f.get_i64(arch + "." + key);
  };
  MixModel m;
  m.n_layer = first_int("block_count", 0);
  m.n_expert = first_int("expert_count", 0);
  m.n_head = first_int("attention.head_count", 0);
  m.n_head_kv = first_int("attention.head_count_kv", m.n_head);
  if (m.n_layer <= 0) {
    // Without a layer count the per-layer rules cannot work; count the blocks instead.
    int max_layer = -1;
    for (const auto& t : f.tensors()) max_layer = std::max(max_layer, tensor_layer(t.name));
    m.n_layer = max_layer + 1;
  }
  return m;
}

inline bool contains(const std::string& s, const char* sub) { return s.find(sub) != std::string::npos; }

// Whether llama.cpp would quantize this tensor at all (tensor_allows_quantization).
inline bool tensor_allows_quantization(const std::string& name, const std::vector<int64_t>& ne) {
  if (tensor_n_dims(ne) < 2) return false;
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
  if (contains(name, "_norm.weight")) return false;
  if (contains(name, "ffn_gate_inp.weight")) return false;  // the router stays exact
  if (name == "position_embd.weight" || name == "token_types.weight") return false;
  if (contains(name, "ssm_conv1d") || contains(name, "attn_rel_b.weight")) return false;
  return true;
}

enum class TensorCategory { TokenEmbd, AttnQ, AttnV, AttnK, AttnQkv, AttnKvB, AttnOutput, FfnUp, FfnGate, FfnDown, Output, Other };

inline TensorCategory tensor_category(const std::string& name) {
  using C = TensorCategory;
  if (name == "output.weight") return C::Output;
  if (name == "token_embd.weight") return C::TokenEmbd;
  if (contains(name, "attn_qkv.weight")) return C::AttnQkv;
  if (contains(name, "attn_kv_b.weight")) return C::AttnKvB;
  if (contains(name, "attn_v.weight")) return C::AttnV;
  if (contains(name, "attn_k.weight")) return C::AttnK;
  if (contains(name, "attn_q.weight")) return C::AttnQ;
  if (contains(name, "attn_output.weight")) return C::AttnOutput;
  if (contains(name, "ffn_up")) return C::FfnUp;
  if (contains(name, "ffn_gate")) return C::FfnGate;
  if (contains(name, "ffn_down")) return C::FfnDown;
  return C::Other;
}

// The first and last eighth of the layers and every third layer in between.
inline bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// Fallback when a row length does not fit the chosen type's blocks.
inline GgmlType fallback_type(GgmlType t, int64_t ncols, std::string* note) {
  const int64_t bs = ggml_type_info(t).block_size;
  if (ncols % bs == 0) return t;
  GgmlType r;
  switch (t) {
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::TQ1_0: case GgmlType::TQ2_0: r = GgmlType::Q4_0; break;
    case GgmlType::IQ4_XS: case GgmlType::IQ2_XXS: case GgmlType::IQ2_XS: case GgmlType::IQ2_S:
    case GgmlType::IQ3_XXS: case GgmlType::IQ3_S: case GgmlType::IQ1_S: case GgmlType::IQ1_M:
      r = GgmlType::IQ4_NL;
      break;
    case GgmlType::Q4_K: r = GgmlType::Q5_0; break;
    case GgmlType::Q5_K: r = GgmlType::Q5_1; break;
    case GgmlType::Q6_K: r = GgmlType::Q8_0; break;
    default: r = GgmlType::F16; break;
  }
  if (ncols % ggml_type_info(r).block_size != 0) r = GgmlType::F16;
  if (note) *note = cat("row length ", ncols, " is not a multiple of ", bs, " (", ggml_type_name(t), "): using ", ggml_type_name(r));
  return r;
}

struct MixPlan {
  std::vector<GgmlType> types;    // per input tensor, in input order
  std::vector<std::string> notes; // fallbacks, one line each
};

// Chooses the type of every tensor. llama.cpp visits tensors sorted by (layer, name),
// and its attn_v counter depends on that order, so the same order is used here.
inline MixPlan plan_quant_types(const QuantTarget& target, const MixModel& model, const std::vector<MixTensor>& tensors) {
  using C = TensorCategory;
  using T = GgmlType;
  namespace f = llama_ftype;
  MixPlan plan;
  plan.types.resize(tensors.size());

  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int la = tensor_layer(tensors[a].name), lb = tensor_layer(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });

  int n_attention_wv = 0;
  bool tied = true;
  for (const auto& t : tensors) {
    const C c = tensor_category(t.name);
    if (c == C::AttnV || c == C::AttnQkv || c == C::AttnKvB) ++n_attention_wv;
    if (c == C::Output) tied = false;
  }
  const int n_layer = static_cast<int>(model.n_layer);
  const uint32_t ft = target.ftype;
  int i_attention_wv = 0, i_ffn_down = 0;

  // The layer a per-layer rule applies to: from the name for MoE models (whose expert
  // tensors are not one per layer in every file), else the running count.
  auto layer_of = [&](const std::string& name, int counter) {
    if (model.n_expert <= 1) return counter;
    const int l = tensor_layer(name);
    if (l < 0 || l >= n_layer) fail("tensor ", name, ": cannot determine its layer in [0, ", n_layer, ")");
    return l;
  };

  for (size_t idx : order) {
    const MixTensor& t = tensors[idx];
    if (!tensor_allows_quantization(t.name, t.ne)) {
      plan.types[idx] = t.type;
      continue;
    }
    T nt = target.base;
    const bool iq4 = ft == f::MOSTLY_IQ4_NL || ft == f::MOSTLY_IQ4_XS;
    if (is_block_quantized(target.base) && !target.pure) {
      const C c = tensor_category(t.name);
      if (c == C::Output || (tied && c == C::TokenEmbd)) {
        if (ft == f::MOSTLY_MXFP4_MOE) nt = T::Q8_0;
        else if (t.ne[0] % ggml_type_info(nt).block_size != 0) nt = T::Q8_0;
        else if (nt != T::Q8_0) nt = T::Q6_K;
      } else if (ft == f::MOSTLY_MXFP4_MOE) {
        // The stacked expert tensors (3-D, more than one expert) are MXFP4, all else Q8_0.
        nt = t.ne.size() > 2 && t.ne[2] > 1 ? T::MXFP4 : T::Q8_0;
      } else if (c == C::TokenEmbd) {
        // llama.cpp changes token_embd only for the IQ1/IQ2/IQ3 and ternary mixes.
        if (ft == f::MOSTLY_TQ1_0 || ft == f::MOSTLY_TQ2_0) nt = T::Q4_K;
      } else if (c == C::AttnV || c == C::AttnQkv || c == C::AttnKvB) {
        if (ft == f::MOSTLY_Q2_K) nt = model.n_gqa() >= 4 ? T::Q4_K : T::Q3_K;
        else if (ft == f::MOSTLY_Q3_K_M) nt = i_attention_wv < 2 ? T::Q5_K : T::Q4_K;
        else if (ft == f::MOSTLY_Q3_K_L) nt = T::Q5_K;
        else if ((ft == f::MOSTLY_Q4_K_M || ft == f::MOSTLY_Q5_K_M) && use_more_bits(i_attention_wv, n_attention_wv))
          nt = T::Q6_K;
        else if (iq4 && model.n_gqa() >= 4) nt = T::Q5_K;
        else if (ft == f::MOSTLY_Q4_K_S && i_attention_wv < 4) nt = T::Q5_K;
        if (model.n_expert == 8) nt = T::Q8_0;
        ++i_attention_wv;
      } else if (c == C::AttnK) {
        if (model.n_expert == 8) nt = T::Q8_0;
      } else if (c == C::FfnDown) {
        const int il = layer_of(t.name, i_ffn_down);
        if (ft == f::MOSTLY_Q2_K) nt = T::Q3_K;
        else if (ft == f::MOSTLY_Q3_K_M) nt = il < n_layer / 16 ? T::Q5_K : T::Q4_K;
        else if (ft == f::MOSTLY_Q3_K_L) nt = T::Q5_K;
        else if (ft == f::MOSTLY_Q4_K_M) { if (use_more_bits(il, n_layer)) nt = T::Q6_K; }
        else if (iq4 && il < n_layer / 8) nt = T::Q5_K;  // without an imatrix
        else if (ft == f::MOSTLY_Q5_K_M && use_more_bits(il, n_layer)) nt = T::Q6_K;
        else if (ft == f::MOSTLY_Q4_K_S && il < n_layer / 8) nt = T::Q5_K;
        ++i_ffn_down;
      } else if (c == C::AttnOutput) {
        if (model.n_expert == 8) {
          if (ft == f::MOSTLY_Q2_K || ft == f::MOSTLY_Q3_K_S || ft == f::MOSTLY_Q3_K_M || ft == f::MOSTLY_Q4_K_S ||
              ft == f::MOSTLY_Q4_K_M || iq4)
            nt = T::Q5_K;
        } else {
          if (ft == f::MOSTLY_Q2_K) nt = T::Q3_K;
          else if (ft == f::MOSTLY_Q3_K_M) nt = T::Q4_K;
          else if (ft == f::MOSTLY_Q3_K_L) nt = T::Q5_K;
        }
      }
    }
    if (is_block_quantized(target.base)) {
      std::string note;
      nt = fallback_type(nt, t.ne[0], &note);
      if (!note.empty()) plan.notes.push_back(t.name + ": " + note);
    }
    plan.types[idx] = nt;
  }
  return plan;
}

}  // namespace swapmoe::cli
