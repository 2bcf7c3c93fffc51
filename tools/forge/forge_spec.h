#pragma once
// What swapmoe-forge builds: the command-line description of a model (architecture,
// widths, quantization type, vocabulary, seed) and its translation into the engine's
// ModelConfig. Presets reproduce the shapes of real models.

#include <cstdint>
#include <string>
#include <vector>

#include "arch/config.h"

namespace swapmoe::forge {

// Width fields left at 0 (or -1 where 0 is meaningful) take the architecture's default.
struct ForgeSpec {
  std::string arch = "qwen3moe";
  std::string type;  // "" : preset's type, else F32
  // Per-tensor overrides applied after the mix of `type` (block type names, e.g. IQ2_XXS):
  // every routed expert tensor (*_exps), and then ffn_down_exps alone. "" : no override.
  std::string expert_type;
  std::string down_type;
  // --tensor-type rules "REGEX=TYPE", applied after both overrides to every quantizable
  // tensor; the first rule whose regex is found in the name decides (forge_types.h).
  std::vector<std::string> tensor_types;
  std::string vocab;
  std::string out;
  std::string name;  // general.name ("" : derived)
  uint64_t seed = 42;
  int threads = 0;
  bool sparse_experts = false;
  bool sparse_all = false;  // every tensor a hole: a header-only file of any size, instantly
  bool verbose = false;
  // Fast mode writes random valid quantized blocks for the expert tensors instead of running
  // the reference quantizer on float weights (fast_quant.h). -1: on for files over 1 GiB.
  int fast = -1;
  // Split output in gguf-split's format (gguf/gguf_split_writer.h): "" / 0 for one file.
  std::string split_max_size;
  uint64_t split_max_tensors = 0;

  int64_t layers = 2;
  int64_t embd = 256;
  int64_t ff = 0;          // dense FFN (deepseek2 leading layers; feed_forward_length)
  int64_t expert_ff = 256;
  int64_t experts = 8;
  int64_t experts_used = 2;
  int64_t heads = 4;
  int64_t heads_kv = 0;
  int64_t head_dim = 0;    // per-head q/k size (deepseek2: nope + rope part)
  int64_t head_dim_v = 0;  // per-head v size
  int64_t ctx = 4096;
  int64_t shared_ff = 0;       // qwen2moe shared expert width
  int64_t shared_experts = -1; // deepseek2 shared experts
  int64_t q_lora_rank = 0;     // deepseek2; 0 = plain attn_q
  int64_t kv_lora_rank = 0;    // deepseek2
  int64_t rope_dim = 0;
  int64_t leading_dense = -1;  // deepseek2
  std::string mla_layout = "split";  // deepseek2: split (attn_k_b/attn_v_b) or legacy (attn_kv_b)
  std::string gating;          // softmax | sigmoid ("" : arch default)
  int64_t groups = 0;
  int64_t groups_used = 0;
  float expert_weights_scale = 0;  // 0 : arch default
  float rope_base = 0;             // 0 : 10000
  float rms_eps = 1e-6f;
  bool tied = false;               // no output.weight: logits use token_embd
  // RoPE scaling: "" (none, or yarn when yarn_factor > 0), "none", "linear", "yarn".
  std::string rope_scaling;
  // The scaling factor (linear or YaRN; the deepseek-r1 preset: YaRN x40).
  float yarn_factor = 0;
  int64_t yarn_orig_ctx = 0;
  std::string qk_norm;        // on | off, for architectures whose files may omit it ("" : on)
  int64_t nextn_layers = -1;  // NextN/MTP layers after --layers (glm4moe; -1 : 1 where the arch has them)
  float yarn_log_mul = 0;  // as llama.cpp applies it (deepseek2 files store it x 0.1)
  // Sliding-window architectures (gpt-oss): the window (0: 128) and the windowed layers'
  // rope base (0: --rope-base).
  int64_t sliding_window = 0;
  float rope_base_swa = 0;
};

std::vector<std::string> preset_names();
// Throws Error for an unknown name.
ForgeSpec preset(const std::string& name);

// Fills every arch default and checks the combination; throws Error with the flag name.
ModelConfig make_config(const ForgeSpec& s, int64_t n_vocab);

}  // namespace swapmoe::forge
