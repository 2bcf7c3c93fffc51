#include "expert/expert_store_resident.h"

#include "util/error.h"

namespace swapmoe {

MatrixRef ResidentExpertStore::Part::view(int32_t e) const {
  MatrixRef m;
  m.type = type;
  m.cols = cols;
  m.rows = rows;
  m.data = buf.data() + static_cast<size_t>(e) * slice_bytes;
  return m;
}

ResidentExpertStore::ResidentExpertStore(const GgufFile& f, const ModelConfig& cfg,
                                         const std::vector<ExpertTensors>& tensors)
    : n_expert_(cfg.n_expert), layers_(tensors.size()) {
  auto load = [&](const GgufTensorInfo* t, Part& p) {
    p.type = t->type;
    p.cols = t->ne[0];
    p.rows = t->ne[1];
    if (t->ne.size() == 2) p.rows = 1;  // a bias tensor [width, n_expert]: one row per expert
    p.slice_bytes = expert_slice_bytes(*t);
    if (p.slice_bytes != ggml_row_size(t->type, p.cols) * static_cast<uint64_t>(p.rows))
      fail(f.path(), ": tensor ", t->name, ": expert slice of ", p.slice_bytes, " bytes does not match ", p.rows,
           " rows of ", p.cols, " ", ggml_type_name(t->type), " elements");
    p.buf = AlignedBuffer(static_cast<size_t>(p.slice_bytes * n_expert_));
    for (int64_t e = 0; e < n_expert_; ++e)
      f.read_at(t->part, expert_slice_offset(*t, e), p.buf.data() + e * p.slice_bytes, p.slice_bytes);
    bytes_ += p.buf.size();
  };
  for (size_t il = 0; il < tensors.size(); ++il) {
    const ExpertTensors& t = tensors[il];
    if (!t.gate && !t.up && !t.down) continue;
    Layer& L = layers_[il];
    L.moe = true;
    L.biases = expert_part_count(t, f.path(), il) == 6;
    load(t.gate, L.gate);
    load(t.up, L.up);
    load(t.down, L.down);
    if (L.biases) {
      load(t.gate_b, L.gate_b);
      load(t.up_b, L.up_b);
      load(t.down_b, L.down_b);
    }
  }
}

ExpertView ResidentExpertStore::acquire(int layer, int32_t expert) {
  if (layer < 0 || static_cast<size_t>(layer) >= layers_.size() || !layers_[layer].moe)
    fail("expert store: layer ", layer, " has no experts");
  if (expert < 0 || expert >= n_expert_) fail("expert store: expert ", expert, " out of range [0, ", n_expert_, ")");
  const Layer& L = layers_[static_cast<size_t>(layer)];
  ExpertView v{L.gate.view(expert), L.up.view(expert), L.down.view(expert)};
  if (L.biases) {
    v.gate_b = static_cast<const float*>(L.gate_b.view(expert).data);
    v.up_b = static_cast<const float*>(L.up_b.view(expert).data);
    v.down_b = static_cast<const float*>(L.down_b.view(expert).data);
  }
  return v;
}

}  // namespace swapmoe
