// `swapmoe info MODEL`: what a GGUF model file holds — architecture, hyperparameters,
// tensor types and how many bytes sit in experts versus dense weights. Reads only the
// header (the GGUF reader never touches tensor data), so it is instant on a 400 GB file.

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "convert/quant_mix.h"
#include "cli/size_parse.h"
#include "ops/mla_legacy.h"
#include "gguf/gguf.h"
#include "arch/arch.h"
#include "expert/expert_store.h"
#include "util/thread_pool.h"

namespace swapmoe::cli {

namespace {

struct InfoOptions {
  std::string model;
  bool meta = false;
  bool tensors = false;
};

std::string ftype_name(uint64_t ftype) {
  for (const auto& t : quant_targets())
    if (t.ftype == ftype && !(t.pure && is_block_quantized(t.base) && !t.forge_only)) return t.name;
  return "unknown";
}

void print_config(const ModelConfig& c) {
  auto row = [](const char* k, const std::string& v) { std::printf("  %-22s %s\n", k, v.c_str()); };
  auto num = [&](const char* k, int64_t v) { row(k, std::to_string(v)); };
  auto flt = [&](const char* k, double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%g", v);
    row(k, b);
  };
  std::printf("hyperparameters:\n");
  num("n_vocab", c.n_vocab);
  num("n_ctx_train", c.n_ctx_train);
  num("n_embd", c.n_embd);
  num("n_layer", c.n_layer);
  if (c.n_layer_nextn)
    row("n_layer_nextn", std::to_string(c.n_layer_nextn) + " (NextN/MTP: blk." + std::to_string(c.n_layer) +
                             (c.n_layer_nextn > 1 ? "-" + std::to_string(c.n_layer + c.n_layer_nextn - 1) : "") +
                             ", not used for plain decoding, not loaded)");
  num("n_head", c.n_head);
  num("n_head_kv", c.n_head_kv);
  num("head_dim_k", c.head_dim_k);
  num("head_dim_v", c.head_dim_v);
  flt("rms_eps", c.rms_eps);
  if (c.n_ff) num("n_ff (dense)", c.n_ff);
  num("n_expert", c.n_expert);
  num("n_expert_used", c.n_expert_used);
  num("n_ff_exp", c.n_ff_exp);
  if (c.n_ff_shexp) num("n_ff_shexp", c.n_ff_shexp);
  if (c.n_expert_shared) num("n_expert_shared", c.n_expert_shared);
  if (c.n_layer_dense_lead) num("n_layer_dense_lead", c.n_layer_dense_lead);
  row("gating", c.gating == GatingFunc::Sigmoid ? "sigmoid" : c.gating == GatingFunc::SoftmaxWeight ? "softmax over the top-k" : "softmax");
  row("expert_weights_norm", c.expert_weights_norm ? "true" : "false");
  if (c.expert_weights_scale != 1.0f) flt("expert_weights_scale", c.expert_weights_scale);
  if (c.n_expert_groups > 1) {
    num("n_expert_groups", c.n_expert_groups);
    num("n_expert_groups_used", c.n_expert_groups_used);
  }
  if (c.arch.attention == AttentionKind::Gqa)
    row("qk_norm", c.arch.qk_norm == QkNorm::PerHead ? "per head" : c.arch.qk_norm == QkNorm::Full ? "whole projection" : "none");
  row("rope", c.rope_type == RopeType::Neox ? "neox" : "norm");
  num("n_rot", c.n_rot);
  flt("rope_freq_base", c.rope_freq_base);
  if (c.rope_scaling != RopeScaling::None) {
    row("rope_scaling", c.rope_scaling == RopeScaling::Yarn ? "yarn" : "linear");
    flt("rope_scaling_factor", c.rope_scaling_factor);
    num("rope_orig_ctx", c.rope_orig_ctx);
  }
  if (c.kv_lora_rank) {
    num("q_lora_rank", c.q_lora_rank);
    num("kv_lora_rank", c.kv_lora_rank);
    num("head_dim_k_mla", c.head_dim_k_mla);
    num("head_dim_v_mla", c.head_dim_v_mla);
  }
  if (c.arch.sliding_window_pattern != 0) {
    num("sliding_window", c.n_swa);
    row("windowed layers", cat("layer % ", c.arch.sliding_window_pattern, " < ", c.arch.sliding_window_pattern - 1));
    flt("rope_freq_base_swa", c.rope_freq_base_swa);
  }
  if (c.arch.sinks) row("attention sinks", "yes");
  if (c.arch.expert_biases) row("expert biases", "gate/up/down (read with each expert)");
  row("output", c.has_output ? "separate" : "tied to token_embd");
}

// The legacy DeepSeek MLA layout (attn_kv_b): what the load-time split costs. Bytes come
// from the header; the time is measured by splitting layer 0's attn_kv_b (one tensor read,
// ~14 MB for R1) on the threads `run` would use, times the number of layers.
void print_mla_legacy(const GgufFile& f, const ModelConfig& cfg) {
  const MlaLegacyShape shape{cfg.kv_lora_rank, cfg.n_head, cfg.head_dim_k_mla - cfg.n_rot, cfg.head_dim_v_mla};
  uint64_t kv_b = 0, derived = 0;
  const GgufTensorInfo* first = nullptr;
  for (int il = 0; il < cfg.n_layer; ++il) {
    const GgufTensorInfo* t = f.find_tensor(tensor_name("attn_kv_b", il));
    if (!t) continue;
    if (!first) first = t;
    kv_b += t->nbytes;
    derived += mla_legacy_k_b_bytes(shape, mla_legacy_k_b_type(t->type)) + mla_legacy_v_b_bytes(shape, t->type);
  }
  std::printf("mla layout:   legacy (attn_kv_b; no attn_k_b/attn_v_b, no *_mla keys)\n");
  if (!first) return;
  const GgmlType k_type = mla_legacy_k_b_type(first->type);
  std::printf("  derived at load:     attn_k_b %s [%lld, %lld, %lld] + attn_v_b %s [%lld, %lld, %lld] per layer\n",
              ggml_type_name(k_type), static_cast<long long>(shape.nope), static_cast<long long>(shape.kv_lora_rank),
              static_cast<long long>(shape.n_head), ggml_type_name(first->type),
              static_cast<long long>(shape.kv_lora_rank), static_cast<long long>(shape.head_dim_v),
              static_cast<long long>(shape.n_head));
  std::printf("  dense bytes:         %s resident instead of attn_kv_b's %s (%+.1f MiB)\n", format_size(derived).c_str(),
              format_size(kv_b).c_str(), (static_cast<double>(derived) - static_cast<double>(kv_b)) / (1 << 20));
  try {
    mla_legacy_check(shape, first->type, k_type);
    std::vector<uint8_t> in(first->nbytes), k(mla_legacy_k_b_bytes(shape, k_type)),
        v(mla_legacy_v_b_bytes(shape, first->type));
    f.read_at(first->part, first->offset, in.data(), in.size());
    ThreadPool pool(0);
    const auto t0 = std::chrono::steady_clock::now();
    mla_legacy_derive(shape, first->type, in.data(), k_type, k.data(), v.data(), &pool);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("  derivation time:     ~%.2f s at load (%.1f ms per layer on %d threads, measured on layer 0)\n",
                s * static_cast<double>(cfg.n_layer), s * 1e3, pool.size());
  } catch (const Error& e) {
    std::printf("  derivation:          not possible: %s\n", e.what());
  }
}

void print_info(const InfoOptions& o) {
  auto f = GgufFile::open(o.model);
  std::printf("file:         %s\n", f->path().c_str());
  std::printf("gguf:         version %u, %s, %zu tensors, %zu metadata keys, alignment %llu\n", f->version(),
              format_size(f->file_size()).c_str(), f->tensors().size(), f->metadata().size(),
              static_cast<unsigned long long>(f->alignment()));
  if (f->is_split()) {
    // A split model (gguf-split): every part, as validated when the set was opened.
    std::printf("parts:        %zu (split GGUF)\n", f->parts().size());
    for (const GgufPart& p : f->parts())
      std::printf("  %-48s %12s %6zu tensors\n", p.path.c_str(), format_size(p.file_size).c_str(), p.n_tensors);
  }
  std::printf("architecture: %s\n", f->get_str("general.architecture", "(none)").c_str());
  if (f->has("general.name")) std::printf("name:         %s\n", f->get_str("general.name").c_str());
  if (f->has("general.file_type")) {
    const uint64_t ft = f->get_u64("general.file_type");
    std::printf("file type:    %s (general.file_type = %llu)\n", ftype_name(ft).c_str(), static_cast<unsigned long long>(ft));
  }

  // A file swapmoe cannot run (dense model, unknown architecture, vocab only) still gets
  // its tensor table; the reason goes to stderr so the listing stays useful.
  int64_t n_layer_run = -1;  // the NextN/MTP layers beyond it are tallied apart
  try {
    const ModelConfig cfg = config_from_gguf(*f);
    if (cfg.n_layer_nextn > 0) n_layer_run = cfg.n_layer;
    print_config(cfg);
    if (cfg.mla_legacy) print_mla_legacy(*f, cfg);
  } catch (const Error& e) {
    std::fprintf(stderr, "swapmoe: note: no model configuration: %s\n", e.what());
  }

  struct TypeStat { int64_t count = 0; uint64_t bytes = 0; };
  std::map<std::string, TypeStat> by_type;
  TypeStat experts, dense, total, nextn;
  std::map<int, uint64_t> expert_bytes_by_layer;
  for (const auto& t : f->tensors()) {
    auto& s = by_type[ggml_type_name(t.type)];
    ++s.count;
    s.bytes += t.nbytes;
    ++total.count;
    total.bytes += t.nbytes;
    if (n_layer_run >= 0 && tensor_layer(t.name) >= n_layer_run) {
      ++nextn.count;
      nextn.bytes += t.nbytes;
    } else if (t.name.find("_exps") != std::string::npos) {
      ++experts.count;
      experts.bytes += t.nbytes;
      expert_bytes_by_layer[tensor_layer(t.name)] += expert_slice_bytes(t);  // matrices and gpt-oss bias rows
    } else {
      ++dense.count;
      dense.bytes += t.nbytes;
    }
  }
  std::printf("tensor types:\n  %-7s %7s %14s\n", "type", "count", "bytes");
  for (const auto& [name, s] : by_type)
    std::printf("  %-7s %7lld %14s\n", name.c_str(), static_cast<long long>(s.count), format_size(s.bytes).c_str());
  std::printf("  %-7s %7lld %14s\n", "total", static_cast<long long>(total.count), format_size(total.bytes).c_str());
  const double pct = total.bytes ? 100.0 * static_cast<double>(experts.bytes) / static_cast<double>(total.bytes) : 0.0;
  std::printf("weights:\n");
  std::printf("  experts (*_exps)  %5lld tensors %14s (%.1f%%)\n", static_cast<long long>(experts.count),
              format_size(experts.bytes).c_str(), pct);
  std::printf("  dense             %5lld tensors %14s\n", static_cast<long long>(dense.count), format_size(dense.bytes).c_str());
  if (nextn.count)
    std::printf("  NextN/MTP layer   %5lld tensors %14s (not loaded)\n", static_cast<long long>(nextn.count),
                format_size(nextn.bytes).c_str());
  if (!expert_bytes_by_layer.empty()) {
    // One expert of one layer (its gate, up and down slices) is the unit swapmoe moves.
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const auto& [layer, b] : expert_bytes_by_layer) {
      lo = std::min(lo, b);
      hi = std::max(hi, b);
    }
    std::printf("  one expert of one layer: %s", format_size(lo).c_str());
    if (hi != lo) std::printf(" .. %s", format_size(hi).c_str());
    std::printf("\n");
  }

  if (o.meta) {
    std::printf("metadata:\n");
    for (const auto& [k, v] : f->metadata()) std::printf("  %-44s %s\n", k.c_str(), gguf_value_to_string(v).c_str());
  }
  if (o.tensors) {
    std::printf("tensors:\n");
    for (const auto& t : f->tensors()) {
      std::string shape;
      for (size_t i = 0; i < t.ne.size(); ++i) shape += (i ? " x " : "") + std::to_string(t.ne[i]);
      std::printf("  %-36s %-5s [%s] %s", t.name.c_str(), ggml_type_name(t.type), shape.c_str(), format_size(t.nbytes).c_str());
      if (f->is_split()) std::printf("  (part %u)", t.part + 1);
      std::printf("\n");
    }
  }
}

}  // namespace

Command add_info_command(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "Show architecture, hyperparameters and tensor sizes of a GGUF model (header only)");
  sub->add_option("MODEL", o->model, kModelHelp)->required();
  sub->add_flag("--meta", o->meta, "Also list every metadata key");
  sub->add_flag("--tensors", o->tensors, "Also list every tensor with its type and shape");
  return {sub, [o] {
            o->model = resolve_model_arg(o->model).path;
            print_info(*o);
          }};
}

}  // namespace swapmoe::cli
