#include "cache/slot_layout.h"

#include <algorithm>

#include "io/direct_file.h"
#include "util/error.h"

namespace swapmoe {

const char* const kExpertPartName[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};

const GgufTensorInfo* expert_part_info(const ExpertTensors& t, int p) { return p == 0 ? t.gate : p == 1 ? t.up : t.down; }

std::vector<SlotLayout> layout_expert_slots(const std::string& path, const ModelConfig& cfg,
                                            const std::vector<ExpertTensors>& tensors, const io::DirectFileSet& files) {
  const uint64_t alignment = files.alignment();
  std::vector<SlotLayout> out(tensors.size());
  for (size_t l = 0; l < tensors.size(); ++l) {
    const ExpertTensors& t = tensors[l];
    if (!t.gate && !t.up && !t.down) continue;
    if (!t.gate || !t.up || !t.down) fail(path, ": layer ", l, " has an incomplete set of expert tensors");
    SlotLayout& L = out[l];
    L.moe = true;
    uint64_t off = 0;
    for (int p = 0; p < 3; ++p) {
      const GgufTensorInfo* info = expert_part_info(t, p);
      if (info->ne.size() != 3 || info->ne[2] != cfg.n_expert)
        fail(path, ": tensor ", info->name, ": expected 3 dimensions with ", cfg.n_expert, " experts");
      if (info->part >= files.size())
        fail(path, ": tensor ", info->name, " is in part ", info->part + 1, " but the model has ", files.size(),
             " file", files.size() == 1 ? "" : "s");
      const io::DirectFile& file = files.part(info->part);
      const uint64_t end = info->offset + info->expert_bytes() * static_cast<uint64_t>(info->ne[2]);
      if (end > file.size())
        fail(file.path(), ": tensor ", info->name, " ends at byte ", end, ", past the end of the file (", file.size(),
             " bytes)");
      L.part[p].info = *info;
      L.part[p].slot_offset = off;
      uint64_t longest = 0;
      for (int64_t e = 0; e < info->ne[2]; ++e)
        longest = std::max(longest, io::aligned_span(info->expert_offset(e), info->expert_bytes(), alignment).length);
      off += longest;
    }
  }
  return out;
}

uint64_t submit_expert_reads(const SlotLayout& L, const io::DirectFileSet& files, int32_t expert, uint8_t* slot_base,
                             uint64_t tag_base, uint64_t skip[3], io::ReadEngine& engine) {
  uint64_t total = 0;
  for (int p = 0; p < 3; ++p) {
    const GgufTensorInfo& info = L.part[p].info;
    const uint64_t bytes = info.expert_bytes();
    const io::AlignedSpan span = io::aligned_span(info.expert_offset(expert), bytes, files.alignment());
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

ExpertView slot_view(const SlotLayout& L, const uint8_t* slot_base, const uint64_t skip[3]) {
  MatrixRef m[3];
  for (int p = 0; p < 3; ++p) {
    const GgufTensorInfo& info = L.part[p].info;
    m[p].type = info.type;
    m[p].cols = info.ne[0];
    m[p].rows = info.ne[1];
    m[p].data = slot_base + L.part[p].slot_offset + skip[p];
  }
  return ExpertView{m[0], m[1], m[2]};
}

}  // namespace swapmoe
