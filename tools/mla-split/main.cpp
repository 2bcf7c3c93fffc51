// swapmoe-mla-split: rewrites a legacy DeepSeek MLA GGUF (attn_kv_b) into the split layout
// (attn_k_b / attn_v_b and the *_mla keys) with exactly the tensors swapmoe derives at load
// (ops/mla_legacy.h). llama.cpp then runs its absorbed MLA path on the same weights, which
// separates llama.cpp's legacy-path numerics (full per-head K/V from kv_b x Q8(latent), F16
// cache) from swapmoe's: the conformance harness uses it for the legacy cases.
// Usage: swapmoe-mla-split IN.gguf OUT.gguf

#include <cstdio>
#include <string>
#include <vector>

#include "ops/mla_legacy.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "arch/arch.h"
#include "util/error.h"

using namespace swapmoe;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: swapmoe-mla-split IN.gguf OUT.gguf\n");
    return 2;
  }
  try {
    auto f = GgufFile::open(argv[1]);
    const ModelConfig c = config_from_gguf(*f);
    if (!c.mla_legacy) fail(argv[1], ": not a legacy MLA file");
    const MlaLegacyShape s{c.kv_lora_rank, c.n_head, c.head_dim_k_mla - c.n_rot, c.head_dim_v_mla};
    const std::string p = c.arch_name + ".";
    GgufWriter w;
    for (const auto& [k, v] : f->metadata()) w.set(k, v);
    w.set_u32(p + "attention.head_count_kv", 1);
    w.set_u32(p + "attention.key_length", static_cast<uint32_t>(c.kv_lora_rank + c.n_rot));
    w.set_u32(p + "attention.value_length", static_cast<uint32_t>(c.kv_lora_rank));
    w.set_u32(p + "attention.key_length_mla", static_cast<uint32_t>(c.head_dim_k_mla));
    w.set_u32(p + "attention.value_length_mla", static_cast<uint32_t>(c.head_dim_v_mla));
    for (const auto& t : f->tensors()) {
      if (t.name.find(".attn_kv_b.") == std::string::npos) {
        w.add_tensor_info(t.name, t.type, t.ne);
        continue;
      }
      const std::string layer = t.name.substr(0, t.name.find(".attn_kv_b."));
      w.add_tensor_info(layer + ".attn_k_b.weight", mla_legacy_k_b_type(t.type), {s.nope, s.kv_lora_rank, s.n_head});
      w.add_tensor_info(layer + ".attn_v_b.weight", t.type, {s.kv_lora_rank, s.head_dim_v, s.n_head});
    }
    w.begin(argv[2]);
    std::vector<uint8_t> buf, k, v;
    for (const auto& t : f->tensors()) {
      buf.resize(t.nbytes);
      f->read_at(t.part, t.offset, buf.data(), buf.size());
      if (t.name.find(".attn_kv_b.") == std::string::npos) {
        w.write_tensor_data(buf.data(), buf.size());
        continue;
      }
      const GgmlType kt = mla_legacy_k_b_type(t.type);
      k.resize(mla_legacy_k_b_bytes(s, kt));
      v.resize(mla_legacy_v_b_bytes(s, t.type));
      mla_legacy_derive(s, t.type, buf.data(), kt, k.data(), v.data());
      w.write_tensor_data(k.data(), k.size());
      w.write_tensor_data(v.data(), v.size());
    }
    w.finish();
  } catch (const Error& e) {
    std::fprintf(stderr, "swapmoe-mla-split: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
