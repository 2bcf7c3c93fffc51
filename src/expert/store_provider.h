#pragma once
// Where a model's experts will live, decided when the model is opened. The model
// (model/model.cpp) calls plan() once its header is parsed and before it reads any
// weight, so that a budget too small is refused first, then make() once the expert
// tensors are bound. The model needs nothing else from the memory plan: src/runtime/
// implements this with the budget accountant and the expert cache (cache/), a floor
// above the model.

#include <cstdint>
#include <memory>
#include <vector>

#include "arch/config.h"
#include "expert/expert_store.h"
#include "gguf/gguf.h"

namespace swapmoe {

// The largest prompt chunk, in tokens (llama.cpp's default micro-batch).
constexpr int64_t kPrefillMaxChunk = 512;

// What the model holds besides its routed experts, as it reports it to the memory plan
// (model/footprint.h computes it from the configuration).
struct ModelFootprint {
  uint64_t kv_bytes_per_token = 0;       // KV (or MLA latent) cache rows of all layers
  uint64_t scratch_bytes = 0;            // the forward pass's buffers for one token
  uint64_t prefill_bytes_per_token = 0;  // a prompt chunk's buffers, per token of the chunk
};

struct ExpertPlan {
  int64_t n_ctx = 0;           // the context the memory plan leaves room for
  uint64_t prefill_bytes = 0;  // scratch for one prompt chunk; 0: whole 512-token chunks
  bool prefetch = false;       // predict the next layer's experts (model/expert_prefetch.h)
  int prefetch_depth = 1;      // ... and the layers after it, up to this many ahead
};

class ExpertStoreProvider {
 public:
  virtual ~ExpertStoreProvider() = default;
  // n_ctx: the context the caller asked for. Throws Error when the model cannot run.
  virtual ExpertPlan plan(const GgufFile& f, const ModelConfig& cfg, const ModelFootprint& fp, int64_t n_ctx,
                          int n_threads) = 0;
  // tensors[l]: layer l's expert tensors (all null for dense layers).
  virtual std::unique_ptr<ExpertStore> make(const GgufFile& f, const ModelConfig& cfg,
                                            const std::vector<ExpertTensors>& tensors) = 0;
};

}  // namespace swapmoe
