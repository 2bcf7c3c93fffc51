#include "cache/slot_layout.h"

#include <algorithm>

#include "io/direct_file.h"
#include "util/error.h"

namespace swapmoe {

const char* const kExpertPartName[kExpertParts] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps",
                                                   "ffn_gate_exps.bias", "ffn_up_exps.bias", "ffn_down_exps.bias"};

const GgufTensorInfo* expert_part_info(const ExpertTensors& t, int p) { return expert_part(t, p); }

std::vector<SlotLayout> layout_expert_slots(const std::string& path, const ModelConfig& cfg,
                                            const std::vector<ExpertTensors>& tensors, const io::DirectFileSet& files) {
  const uint64_t alignment = files.alignment();
  std::vector<SlotLayout> out(tensors.size());
  for (size_t l = 0; l < tensors.size(); ++l) {
    const ExpertTensors& t = tensors[l];
    if (!t.gate && !t.up && !t.down) continue;
    SlotLayout& L = out[l];
    L.moe = true;
    L.n_parts = expert_part_count(t, path, l);
    uint64_t off = 0;
    for (int p = 0; p < L.n_parts; ++p) {
      const GgufTensorInfo* info = expert_part_info(t, p);
      const size_t dims = p < 3 ? 3 : 2;
      if (info->ne.size() != dims || info->ne.back() != cfg.n_expert)
        fail(path, ": tensor ", info->name, ": expected ", dims, " dimensions with ", cfg.n_expert, " experts");
      if (info->part >= files.size())
        fail(path, ": tensor ", info->name, " is in part ", info->part + 1, " but the model has ", files.size(),
             " file", files.size() == 1 ? "" : "s");
      const io::DirectFile& file = files.part(info->part);
      const uint64_t end = info->offset + expert_slice_bytes(*info) * static_cast<uint64_t>(cfg.n_expert);
      if (end > file.size())
        fail(file.path(), ": tensor ", info->name, " ends at byte ", end, ", past the end of the file (", file.size(),
             " bytes)");
      L.part[p].info = *info;
      L.part[p].slot_offset = off;
      uint64_t longest = 0;
      for (int64_t e = 0; e < cfg.n_expert; ++e)
        longest = std::max(longest, io::aligned_span(expert_slice_offset(*info, e), expert_slice_bytes(*info), alignment).length);
      off += longest;
    }
  }
  return out;
}

uint64_t submit_expert_reads(const SlotLayout& L, const io::DirectFileSet& files, int32_t expert, uint8_t* slot_base,
                             uint64_t tag_base, uint64_t skip[kExpertParts], io::ReadEngine& engine) {
  uint64_t total = 0;
  for (int p = 0; p < L.n_parts; ++p) {
    const GgufTensorInfo& info = L.part[p].info;
    const uint64_t bytes = expert_slice_bytes(info);
    const io::AlignedSpan span = io::aligned_span(expert_slice_offset(info, expert), bytes, files.alignment());
    skip[p] = span.skip;
    io::ReadRequest r;
    r.fd = files.part(info.part).fd();
    r.offset = span.start;
    r.len = span.length;
    r.min_len = span.skip + bytes;
    r.dst = slot_base + L.part[p].slot_offset;
    r.tag = tag_base + static_cast<uint64_t>(p);
    total += span.length;
    engine.submit(r);
  }
  return total;
}

ExpertView slot_view(const SlotLayout& L, const uint8_t* slot_base, const uint64_t skip[kExpertParts]) {
  MatrixRef m[3];
  for (int p = 0; p < 3; ++p) {  // the matrices; the biases below
    const GgufTensorInfo& info = L.part[p].info;
    m[p].type = info.type;
    m[p].cols = info.ne[0];
    m[p].rows = info.ne[1];
    m[p].data = slot_base + L.part[p].slot_offset + skip[p];
  }
  ExpertView v{m[0], m[1], m[2]};
  if (L.n_parts == kExpertParts) {
    auto bias = [&](int p) { return reinterpret_cast<const float*>(slot_base + L.part[p].slot_offset + skip[p]); };
    v.gate_b = bias(3);
    v.up_b = bias(4);
    v.down_b = bias(5);
  }
  return v;
}

}  // namespace swapmoe
