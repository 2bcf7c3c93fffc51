#pragma once
// Where one expert's weights go inside a cache slot, shared by the exact-mode ExpertCache
// and the SwapMoE store so that both read the same bytes into the same places:
//   [gate superset | up superset | down superset (| gate_b | up_b | down_b supersets)]
// (the bias parts only for models with expert biases: gpt-oss).
// Each part is the aligned superset (io::aligned_span) of the expert's slice of that
// tensor; a part's room is the longest superset over all experts of the tensor, because
// the superset length depends on where each slice starts relative to the alignment.

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "io/direct_file.h"
#include "io/read_engine.h"
#include "expert/expert_store.h"
#include "arch/config.h"

namespace swapmoe {

struct SlotPart {
  GgufTensorInfo info;       // copy of the tensor's info (type, ne, offset)
  uint64_t slot_offset = 0;  // where this part's superset starts in a slot
};

struct SlotLayout {
  bool moe = false;  // false for a layer without experts
  int n_parts = 3;   // 3, or 6 with the expert biases
  SlotPart part[kExpertParts];  // gate, up, down, gate_b, up_b, down_b
};

// Read tags: slot * kSlotTagStride + part.
inline constexpr uint64_t kSlotTagStride = 8;

// Tensor-name stems of the parts, for error messages.
extern const char* const kExpertPartName[kExpertParts];

// tensors[p] of an ExpertTensors: 0 gate, 1 up, 2 down, 3-5 their biases (expert/expert_store.h).
const GgufTensorInfo* expert_part_info(const ExpertTensors& t, int p);

// Lays out every layer's parts after checking its expert tensors against the files (the
// parts of a split model, index = GgufTensorInfo::part): all three present, 3-D with
// cfg.n_expert experts, inside their file. Supersets use files.alignment(). Throws Error
// naming the file and tensor. Index = layer.
std::vector<SlotLayout> layout_expert_slots(const std::string& path, const ModelConfig& cfg,
                                            const std::vector<ExpertTensors>& tensors, const io::DirectFileSet& files);

// Submits the reads (one per part) that fill a slot at `slot_base` with `expert` of layer L: each part's
// aligned superset (at files.alignment(), from the file of the tensor's part), tagged tag_base + part. skip[p] receives where the part's bytes start
// inside its superset. Returns the bytes requested.
uint64_t submit_expert_reads(const SlotLayout& L, const io::DirectFileSet& files, int32_t expert, uint8_t* slot_base,
                             uint64_t tag_base, uint64_t skip[kExpertParts], io::ReadEngine& engine);

// The expert's three matrices inside a filled slot (skip as submit_expert_reads set it).
ExpertView slot_view(const SlotLayout& L, const uint8_t* slot_base, const uint64_t skip[kExpertParts]);

}  // namespace swapmoe
