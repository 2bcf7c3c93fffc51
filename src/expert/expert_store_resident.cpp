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
    p.slice_bytes = t->expert_bytes();
    if (p.slice_bytes != ggml_row_size(t->type, p.cols) * static_cast<uint64_t>(p.rows))
      fail(f.path(), ": tensor ", t->name, ": expert slice of ", p.slice_bytes, " bytes does not match ", p.rows,
           " rows of ", p.cols, " ", ggml_type_name(t->type), " elements");
    p.buf = AlignedBuffer(static_cast<size_t>(p.slice_bytes * n_expert_));
    for (int64_t e = 0; e < n_expert_; ++e)
      f.read_at(t->part, t->expert_offset(e), p.buf.data() + e * p.slice_bytes, p.slice_bytes);
    bytes_ += p.buf.size();
  };
  for (size_t il = 0; il < tensors.size(); ++il) {
    const ExpertTensors& t = tensors[il];
    if (!t.gate && !t.up && !t.down) continue;
    if (!t.gate || !t.up || !t.down) fail(f.path(), ": layer ", il, " has an incomplete set of expert tensors");
    Layer& L = layers_[il];
    L.moe = true;
    load(t.gate, L.gate);
    load(t.up, L.up);
    load(t.down, L.down);
  }
}

ExpertView ResidentExpertStore::acquire(int layer, int32_t expert) {
  if (layer < 0 || static_cast<size_t>(layer) >= layers_.size() || !layers_[layer].moe)
    fail("expert store: layer ", layer, " has no experts");
  if (expert < 0 || expert >= n_expert_) fail("expert store: expert ", expert, " out of range [0, ", n_expert_, ")");
  const Layer& L = layers_[static_cast<size_t>(layer)];
  return ExpertView{L.gate.view(expert), L.up.view(expert), L.down.view(expert)};
}

}  // namespace swapmoe
