#include "expert/expert_store.h"

#include "util/error.h"
#include "util/ggml_type.h"

namespace swapmoe {

const GgufTensorInfo* expert_part(const ExpertTensors& t, int p) {
  switch (p) {
    case 0: return t.gate;
    case 1: return t.up;
    case 2: return t.down;
    case 3: return t.gate_b;
    case 4: return t.up_b;
    case 5: return t.down_b;
    default: return nullptr;
  }
}

int expert_part_count(const ExpertTensors& t, const std::string& path, size_t layer) {
  if (!t.gate || !t.up || !t.down) fail(path, ": layer ", layer, " has an incomplete set of expert tensors");
  const int biases = (t.gate_b != nullptr) + (t.up_b != nullptr) + (t.down_b != nullptr);
  if (biases != 0 && biases != 3) fail(path, ": layer ", layer, " has ", biases, " of the 3 expert bias tensors");
  return biases == 3 ? 6 : 3;
}

uint64_t expert_slice_bytes(const GgufTensorInfo& t) {
  if (t.ne.size() == 2) {
    if (t.type != GgmlType::F32) fail("tensor '", t.name, "': expert biases must be F32, not ", ggml_type_name(t.type));
    return static_cast<uint64_t>(t.ne[0]) * 4;
  }
  return t.expert_bytes();
}

uint64_t expert_slice_offset(const GgufTensorInfo& t, int64_t e) {
  if (t.ne.size() == 2) {
    if (e < 0 || e >= t.ne[1]) fail("tensor '", t.name, "': expert ", e, " out of range 0..", t.ne[1] - 1);
    return t.offset + static_cast<uint64_t>(e) * expert_slice_bytes(t);
  }
  return t.expert_offset(e);
}

size_t ExpertStore::acquire_ready(int layer, std::span<const int32_t> pending, std::vector<AcquiredExpert>& out) {
  const size_t first = out.size();
  try {
    for (int32_t e : pending) out.push_back({e, acquire(layer, e)});
  } catch (...) {
    for (size_t i = first; i < out.size(); ++i) release(layer, out[i].expert);
    out.resize(first);
    throw;
  }
  return pending.size();
}

}  // namespace swapmoe
