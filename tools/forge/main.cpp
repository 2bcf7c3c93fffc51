// swapmoe-forge: writes random-weight GGUF models of every supported architecture, for
// tests and benchmarks (real models are too big to ship with the tests). The tensors and
// keys come from the architecture table (src/model/arch.h), so a forged model always has
// exactly the layout the loader and llama.cpp expect.
//
//   swapmoe-forge --arch qwen3moe --type Q4_K_M --layers 2 --vocab ggml-vocab-qwen2.gguf -o tiny.gguf
//   swapmoe-forge --preset qwen3-30b-a3b --vocab ggml-vocab-qwen2.gguf -o qwen3-30b-a3b.gguf

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "convert/quant_mix.h"
#include "cli/size_parse.h"
#include "forge_spec.h"
#include "forge_write.h"
#include "util/error.h"

using namespace swapmoe;
using namespace swapmoe::forge;

namespace {

// A preset sets the defaults that the other flags then override, so it is read before
// the real parse.
std::string find_preset(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--preset") == 0 && i + 1 < argc) return argv[i + 1];
    if (std::strncmp(argv[i], "--preset=", 9) == 0) return argv[i] + 9;
  }
  return "";
}

void add_options(CLI::App& app, ForgeSpec& s, std::string& preset_name) {
  std::string presets;
  for (const auto& n : preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  app.add_option("--preset", preset_name, "Shape of a real model: " + presets + " (other flags override it)");
  app.add_option("--arch", s.arch, "Architecture: qwen3moe, qwen2moe, llama (Mixtral), olmoe, deepseek2, glm4moe, gpt-oss")->capture_default_str();
  app.add_option("--type", s.type, "Quantization: " + cli::quant_target_names() + " (default F32, or the preset's)");
  app.add_option("--expert-type", s.expert_type,
                 "Block type of every routed expert tensor (*_exps), overriding --type's mix (e.g. IQ2_XXS)");
  app.add_option("--down-type", s.down_type, "Block type of ffn_down_exps, overriding --type and --expert-type");
  app.add_option("--tensor-type", s.tensor_types,
                 "REGEX=TYPE (repeatable): type of every quantizable tensor whose name matches, after the other type "
                 "flags; the first matching rule wins; given ones replace a preset's rules");
  app.add_option("--vocab", s.vocab, "GGUF whose tokenizer.* keys are copied (e.g. ggml-vocab-qwen2.gguf)")->required();
  app.add_option("-o,--out", s.out, "Output GGUF file")->required();
  app.add_option("--seed", s.seed, "Seed of the random weights")->capture_default_str();
  app.add_option("--name", s.name, "general.name");
  app.add_option("-t,--threads", s.threads, "Worker threads (default: all cores)");
  app.add_option("--layers", s.layers, "Number of layers")->capture_default_str();
  app.add_option("--embd", s.embd, "Embedding width")->capture_default_str();
  app.add_option("--ff", s.ff, "Dense FFN width (deepseek2 leading layers; default 2 x expert-ff)");
  app.add_option("--expert-ff", s.expert_ff, "Routed expert FFN width")->capture_default_str();
  app.add_option("--experts", s.experts, "Routed experts per layer")->capture_default_str();
  app.add_option("--experts-used", s.experts_used, "Experts chosen per token")->capture_default_str();
  app.add_option("--heads", s.heads, "Attention heads")->capture_default_str();
  app.add_option("--heads-kv", s.heads_kv, "KV heads (default heads/2, or heads when odd; olmoe: heads)");
  app.add_option("--head-dim", s.head_dim, "Per-head q/k size (default embd/heads; deepseek2: nope+rope, default 96)");
  app.add_option("--head-dim-v", s.head_dim_v, "Per-head v size (default head-dim; deepseek2: 64)");
  app.add_option("--ctx", s.ctx, "Trained context length written to the file")->capture_default_str();
  app.add_option("--shared-ff", s.shared_ff, "qwen2moe shared expert width (default 2 x expert-ff)");
  app.add_option("--shared-experts", s.shared_experts, "deepseek2 shared experts (default 1)");
  app.add_option("--q-lora-rank", s.q_lora_rank, "deepseek2 q low rank (0 = plain attn_q)")->capture_default_str();
  app.add_option("--kv-lora-rank", s.kv_lora_rank, "deepseek2 kv latent size (default 128)");
  app.add_option("--rope-dim", s.rope_dim, "Rotary dimensions (default: head dim; deepseek2: 32)");
  app.add_option("--rope-base", s.rope_base, "RoPE frequency base (default 10000)");
  app.add_option("--leading-dense", s.leading_dense, "deepseek2 leading dense layers (default 1)");
  app.add_option("--mla-layout", s.mla_layout,
                 "deepseek2 attention tensors: split (attn_k_b/attn_v_b, current llama.cpp) or legacy (one attn_kv_b, "
                 "files converted before 2025-04 such as ollama's deepseek-r1:671b)")
      ->capture_default_str();
  app.add_option("--gating", s.gating, "deepseek2 expert gating: softmax or sigmoid (default sigmoid)");
  app.add_option("--groups", s.groups, "deepseek2 expert groups (0 = no group-limited routing)");
  app.add_option("--groups-used", s.groups_used, "deepseek2 groups chosen per token");
  app.add_option("--expert-weights-scale", s.expert_weights_scale, "Routed output scale (deepseek2 sigmoid default 2.5)");
  app.add_option("--rope-scaling", s.rope_scaling, "RoPE scaling: none, linear or yarn (default none; yarn when --rope-factor is set)");
  app.add_option("--rope-factor", s.yarn_factor, "RoPE scaling factor (linear or YaRN)");
  app.add_option("--rope-orig-ctx", s.yarn_orig_ctx, "rope.scaling.original_context_length (default --ctx)");
  app.add_option("--qk-norm", s.qk_norm, "glm4moe: on (per-head q/k RMSNorm, GLM-4.5/4.6) or off (GLM-4.5-Air); default on");
  app.add_option("--nextn-layers", s.nextn_layers,
                 "glm4moe: NextN/MTP layers written after --layers (in the file, not run; default 1)");
  app.add_option("--rms-eps", s.rms_eps, "attention.layer_norm_rms_epsilon")->capture_default_str();
  app.add_option("--sliding-window", s.sliding_window, "gpt-oss: attention.sliding_window (default 128)");
  app.add_option("--rope-base-swa", s.rope_base_swa, "gpt-oss: rope.freq_base_swa of the windowed layers (default: not written)");
  app.add_option("--yarn-log-mul", s.yarn_log_mul,
                 "YaRN attention log multiplier as llama.cpp applies it (deepseek2 files store it x 0.1)");
  // Two plain flags (an int flag would be reset by CLI11 when neither is given).
  app.add_flag_callback("--fast", [&s] { s.fast = 1; },
                        "Write random valid quantized blocks (Q4_K/Q5_K/Q6_K/Q8_0) directly instead of quantizing float weights: disk speed; default for files over 1 GiB");
  app.add_flag_callback("--exact", [&s] { s.fast = 0; },
                        "Run the reference quantizer on every tensor, whatever the file size");
  app.add_flag("--tied", s.tied, "No output.weight: logits use token_embd");
  app.add_flag("--sparse-experts", s.sparse_experts,
               "Leave expert tensors as holes (zeros): huge test files that take little disk and time");
  app.add_flag("--sparse-all", s.sparse_all,
               "Leave every tensor as a hole: a file with a real header and zero weights, written instantly");
  auto* by_size = app.add_option("--split-max-size", s.split_max_size,
                                 "Write a split model as gguf-split does: at most SIZE of tensor data per part, N "
                                 "followed by M (10^6 bytes) or G (10^9), e.g. 500M, or 0 for one file; parts are named "
                                 "OUT-00001-of-0000N.gguf (a trailing .gguf of OUT is dropped)");
  app.add_option("--split-max-tensors", s.split_max_tensors, "Write a split model with at most N tensors per part")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 31))
      ->excludes(by_size);
  app.add_flag("-v,--verbose", s.verbose, "Log every tensor");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"swapmoe-forge: write a random-weight GGUF model of a supported MoE architecture", "swapmoe-forge"};
  ForgeSpec spec;
  std::string preset_name;
  try {
    const std::string p = find_preset(argc, argv);
    if (!p.empty()) spec = preset(p);
  } catch (const Error& e) {
    std::cerr << "swapmoe-forge: error: " << e.what() << "\n";
    return 1;
  }
  add_options(app, spec, preset_name);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "swapmoe-forge: error: " << e.what() << "\nRun 'swapmoe-forge --help' for usage.\n";
    return 1;
  }
  // The preset's part size gives way to a part count given here (the two flags exclude each other).
  if (app.count("--split-max-tensors") && !app.count("--split-max-size")) spec.split_max_size.clear();
  if (spec.split_max_size == "0") spec.split_max_size.clear();  // one file, whatever the preset says
  try {
    const ForgeResult r = forge_model(spec);
    std::string where = r.paths.front();
    if (r.paths.size() > 1) where += cat(" (+", r.paths.size() - 1, " more parts)");
    std::fprintf(stderr, "swapmoe-forge: wrote %s: %s %s, %zu tensors, %s in %.1f s\n", where.c_str(), spec.arch.c_str(),
                 spec.type.empty() ? "F32" : spec.type.c_str(), r.n_tensors, cli::format_size(r.file_bytes).c_str(),
                 r.seconds);
  } catch (const Error& e) {
    std::cerr << "swapmoe-forge: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "swapmoe-forge: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
