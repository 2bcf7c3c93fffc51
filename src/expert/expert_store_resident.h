#pragma once
// The simplest ExpertStore: every expert of every MoE layer is read into RAM once at
// load time (one pread per expert slice, so the per-expert offsets are exercised the
// same way an SSD-backed store will use them), and acquire() returns views.

#include <vector>

#include "arch/config.h"
#include "expert/expert_store.h"
#include "gguf/gguf.h"
#include "util/aligned_buffer.h"

namespace swapmoe {

class ResidentExpertStore : public ExpertStore {
 public:
  ResidentExpertStore(const GgufFile& f, const ModelConfig& cfg, const std::vector<ExpertTensors>& tensors);
  ExpertView acquire(int layer, int32_t expert) override;
  // Every expert is at hand: a batched caller may pin a whole layer's.
  int64_t capacity() const override { return n_expert_; }
  size_t bytes() const { return bytes_; }

 private:
  struct Part {
    GgmlType type = GgmlType::F32;
    int64_t cols = 0, rows = 0;
    uint64_t slice_bytes = 0;
    AlignedBuffer buf;  // n_expert slices of slice_bytes
    MatrixRef view(int32_t e) const;
  };
  struct Layer {
    bool moe = false;
    bool biases = false;
    Part gate, up, down;
    Part gate_b, up_b, down_b;  // gpt-oss: one F32 row per expert (cols = width, rows = 1)
  };
  int64_t n_expert_ = 0;
  std::vector<Layer> layers_;
  size_t bytes_ = 0;
};

}  // namespace swapmoe
