#pragma once
// Architectures as data. Each supported architecture is one ArchSpec in its own file
// (src/arch/<name>.cpp): its GGUF keys beyond the common ones, its feature flags
// (config.h: ArchFeatures) and the defaults of its routing. registry.cpp maps
// general.architecture names to specs. Everything else is derived from the flags:
// config_from_gguf reads the common keys and then the spec's, tensor_specs lists the
// tensors the flags call for, and the forward pass, the forge and the planner read the
// flags. The loader binds exactly tensor_specs(cfg), and swapmoe-forge writes exactly
// those tensors and config_to_kv(cfg), so the two can never disagree.
//
// Adding an architecture: a new <name>.cpp with its spec, one line in registry.cpp, and
// a new op only where its math is new.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arch/config.h"
#include "ops/rope.h"

namespace swapmoe {

class GgufFile;

// Reads "<arch>.<key>" with range checks; messages name the file and the full key.
class ArchKeys {
 public:
  ArchKeys(const GgufFile& f, const std::string& arch) : f_(f), prefix_(arch + ".") {}
  std::string full(const std::string& k) const { return prefix_ + k; }
  bool has(const std::string& k) const;
  int64_t req(const std::string& k, int64_t lo, int64_t hi) const;
  int64_t opt(const std::string& k, int64_t def, int64_t lo, int64_t hi) const { return has(k) ? req(k, lo, hi) : def; }
  double optf(const std::string& k, double def) const;
  bool optb(const std::string& k, bool def) const;
  std::string opts(const std::string& k, const std::string& def) const;
  const std::string& path() const;

 private:
  const GgufFile& f_;
  std::string prefix_;
};

// A metadata value as config_to_kv emits it.
struct MetaValue {
  enum Kind { U32, F32, Bool, Str } kind = U32;
  uint32_t u = 0;
  float f = 0;
  bool b = false;
  std::string s;
};
using MetaList = std::vector<std::pair<std::string, MetaValue>>;

// Appends "<arch>.<key>" values to a MetaList (config_to_kv and the specs' writers).
class ArchKeyWriter {
 public:
  ArchKeyWriter(MetaList& out, const std::string& arch) : out_(out), prefix_(arch + ".") {}
  void u32(const std::string& key, int64_t v);
  void f32(const std::string& key, float v);
  void boolean(const std::string& key, bool v);
  void str(const std::string& key, const std::string& v);

 private:
  MetaList& out_;
  std::string prefix_;
};

// One architecture. Plain data plus two hooks for the keys only it has.
struct ArchSpec {
  const char* name = "";          // general.architecture
  const char* also = "";          // what else it is known as, for help texts ("" : nothing)
  ArchFeatures features;          // copied into ModelConfig::arch
  RopeType rope_type = RopeType::Neox;   // llama.cpp's llama_model_rope_type
  GatingFunc gating = GatingFunc::Softmax;  // default of ModelConfig::gating
  bool weights_norm = false;      // default of ModelConfig::expert_weights_norm (llama.cpp's graph)
  // Reads the architecture's own keys after the common ones (may adjust any field of c);
  // writes them after the common ones. Either may be null.
  void (*read_keys)(const ArchKeys& k, ModelConfig& c) = nullptr;
  void (*write_keys)(const ModelConfig& c, ArchKeyWriter& w) = nullptr;
};

// The registry (registry.cpp). find_arch: nullptr when unsupported; arch_spec throws
// Error naming the supported architectures.
const ArchSpec* find_arch(std::string_view name);
const ArchSpec& arch_spec(std::string_view name);
// "qwen3moe, qwen2moe, ..." for messages and help texts.
std::string arch_names();

// A configuration of the architecture with every field at its default: the spec, its
// name, features, rope type and routing defaults. Hyperparameters are left 0.
ModelConfig config_for_arch(const ArchSpec& spec);

// Fills a ModelConfig from metadata; throws Error naming the key when one is missing or
// out of range. Does not look at tensors except to detect a tied output projection.
ModelConfig config_from_gguf(const GgufFile& f);

// Throws Error (prefixed with `where`, e.g. the file's path) when cfg asks for something
// the engine cannot run: inconsistent widths, or a feature flag that is not implemented.
void check_config(const ModelConfig& cfg, const std::string& where);

// The architecture keys (prefixed "<arch>.") and general.architecture that describe cfg, as
// llama.cpp expects them. config_from_gguf(config_to_kv(cfg)) reproduces cfg.
MetaList config_to_kv(const ModelConfig& cfg);

// Parameters llama.cpp would use for this model's rotary embeddings (including the
// YaRN rule's yarn_log_mul / mscale adjustments). rope_params.cpp.
RopeParams rope_params(const ModelConfig& cfg);

// What a tensor is, so that tools can initialise or quantize it sensibly.
enum class TensorRole {
  TokenEmbd,   // [n_embd, n_vocab]
  Output,      // [n_embd, n_vocab]
  Norm,        // 1-D RMSNorm weight
  Bias,        // 1-D bias
  Matrix,      // 2-D dense projection
  Router,      // ffn_gate_inp [n_embd, n_expert] (kept F32 by quantize, like llama.cpp)
  SharedGate,  // qwen2moe ffn_gate_inp_shexp [n_embd]
  ExpProbsBias,// deepseek2 exp_probs_b [n_expert]
  Experts,     // 3-D [cols, rows, n_expert]: one slice per expert
  Sinks,       // gpt-oss attn_sinks [n_head]: a logit per head
  ExpertBias,  // 2-D [rows, n_expert]: one bias row per expert (gpt-oss), read with the expert
};

struct TensorSpec {
  std::string name;          // e.g. "blk.3.ffn_up_exps.weight"
  std::vector<int64_t> ne;   // GGUF dims, ne[0] = row length
  TensorRole role = TensorRole::Matrix;
  int layer = -1;            // -1 for global tensors
  bool optional = false;     // absent is fine (e.g. output.weight when tied)
  bool unused = false;       // in the file, not used by the forward pass (NextN/MTP layers): the loader
                             // checks its shape and skips it; the memory plan does not count it
};

// Every tensor the configuration's flags call for, in the canonical file order (llama.cpp's
// writer order: token_embd, output_norm, output, then per layer).
std::vector<TensorSpec> tensor_specs(const ModelConfig& cfg);

// "blk.%d.<base>.weight" style names in one place.
std::string tensor_name(const char* base, int layer = -1, const char* suffix = "weight");

}  // namespace swapmoe
