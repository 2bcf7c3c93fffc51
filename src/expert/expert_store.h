#pragma once
// Experts are a resource with an owner. The ExpertStore decides where expert weights live
// (all resident: expert_store_resident.h; an SSD-backed cache under a memory budget:
// cache/expert_cache.h; SwapMoE's resident sets: cache/swapmoe_store.h). The forward pass
// asks for "expert e of layer l" and receives views into memory it does not own, valid
// until it releases them.
//
// Per MoE layer the forward pass (model/moe.cpp) calls, in this order:
//   route(l, ...)      for each token: which experts, with which weights (the store may
//                      restrict the choice to experts it holds: SwapMoE masked gating)
//   request(l, ids)    the experts of one wave (at most capacity() of them): they will be
//                      acquired now, so a store may start their reads
//   acquire_ready(l, pending, out) until every requested expert was handed out, each
//                      group computed as it arrives, then release(l, e) for each.
// Every expert that route() returned stays acquirable until it is released or route() is
// called for another layer. cancel(l) gives back what request() pinned and nobody
// acquired (after an error).
//
// A store reports its own figures (stats) and how many experts of a layer it can pin at
// once (capacity), so that callers never need to know which kind of store they hold.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "expert/expert_stats.h"
#include "expert/router.h"
#include "gguf/gguf.h"
#include "ops/matvec.h"

namespace swapmoe {

// One expert's three matrices, as stored in the file (no requantization):
//   gate, up: [n_embd -> n_ff_exp]  (cols n_embd, rows n_ff_exp)
//   down:     [n_ff_exp -> n_embd]  (cols n_ff_exp, rows n_embd)
// Expert biases (gpt-oss), null when the model has none:
//   gate_b, up_b: [n_ff_exp] F32;  down_b: [n_embd] F32
// They belong to the expert: a store keeps them with its matrices (the cache's slot holds
// them), so they are valid exactly as long as the matrices.
struct ExpertView {
  MatrixRef gate, up, down;
  const float* gate_b = nullptr;
  const float* up_b = nullptr;
  const float* down_b = nullptr;
};

// An expert handed out by acquire_ready().
struct AcquiredExpert {
  int32_t expert = -1;
  ExpertView view;
};

// The file location of one MoE layer's three expert tensors.
// The optional biases are F32 [rows, n_expert]: expert e's row is one contiguous slice.
struct ExpertTensors {
  const GgufTensorInfo* gate = nullptr;  // [n_embd, n_ff_exp, n_expert]
  const GgufTensorInfo* up = nullptr;    // [n_embd, n_ff_exp, n_expert]
  const GgufTensorInfo* down = nullptr;  // [n_ff_exp, n_embd, n_expert]
  const GgufTensorInfo* gate_b = nullptr;  // [n_ff_exp, n_expert] (gpt-oss), else null
  const GgufTensorInfo* up_b = nullptr;    // [n_ff_exp, n_expert]
  const GgufTensorInfo* down_b = nullptr;  // [n_embd, n_expert]
};

// The parts of one expert, in slot order: 0 gate, 1 up, 2 down, 3 gate_b, 4 up_b, 5 down_b.
inline constexpr int kExpertParts = 6;
const GgufTensorInfo* expert_part(const ExpertTensors& t, int p);
// How many parts a layer has: 3, or 6 with biases (all three or none; else Error naming path).
int expert_part_count(const ExpertTensors& t, const std::string& path, size_t layer);
// One expert's slice of a part: a 3-D matrix's [cols, rows] slice, or a 2-D bias tensor's
// row. Throws Error naming the tensor for other shapes, a bias that is not F32, or e out of range.
uint64_t expert_slice_bytes(const GgufTensorInfo& t);
uint64_t expert_slice_offset(const GgufTensorInfo& t, int64_t e);

class ExpertStore {
 public:
  virtual ~ExpertStore() = default;
  // Expert selection for one token of `layer`: router logits [n_expert] -> ids[n_used],
  // weights[n_used]. The default is the model's own selection (select_experts, every
  // expert eligible); SwapMoeStore masks out experts it does not hold.
  virtual void route(int layer, const RouterParams& p, const float* logits, int32_t* ids, float* weights) {
    (void)layer;
    select_experts(p, logits, ids, weights);
  }
  // Whether a batched caller may route every token of a chunk through a layer before
  // computing any of them. A store that may have to read a missing expert synchronously
  // into a slot (SwapMoE with the exactness knob below 1) says no: with a chunk's routed
  // experts all held, no slot may be free, and the read would have to be masked instead.
  // The prompt then runs token by token.
  virtual bool batch_routing() const { return true; }
  // How many experts of one layer the store can pin at once: a batched caller requests
  // at most this many per wave. 0: only what one token routes (n_expert_used).
  virtual int64_t capacity() const { return 0; }
  // Hint that these experts of `layer` are about to be used (a store may start reads).
  virtual void request(int layer, std::span<const int32_t> experts) { (void)layer; (void)experts; }
  // Hint that these experts of `layer` will probably be needed soon (prefetch).
  virtual void prefetch(int layer, std::span<const int32_t> experts) { (void)layer; (void)experts; }
  // Weaker than prefetch: these experts of `layer` may be needed a little later. A store
  // that can (the SSD-backed cache with spare buffers) reads them only while the disk has
  // nothing else to do, into buffers outside the cache, so that a wrong guess costs idle
  // disk time and never evicts anything. Each call replaces the previous list.
  virtual void speculate(int layer, std::span<const int32_t> experts) { (void)layer; (void)experts; }
  // Whether speculate() does anything (callers skip computing the guess otherwise).
  virtual bool speculates() const { return false; }
  // Blocks until the expert is available and pins it; throws Error on I/O failure.
  virtual ExpertView acquire(int layer, int32_t expert) = 0;
  // Appends to `out` experts of `pending` (requested and not yet handed out) that are
  // ready, blocking only while none is; each is pinned until release(). Returns how many
  // it appended. A store that reads from disk hands them out as their reads complete
  // (cache/expert_cache.h); the default acquires all of them, in order. On an error
  // nothing acquired in the call stays pinned.
  virtual size_t acquire_ready(int layer, std::span<const int32_t> pending, std::vector<AcquiredExpert>& out);
  // Unpins an expert obtained from acquire() or acquire_ready().
  virtual void release(int layer, int32_t expert) { (void)layer; (void)expert; }
  // Unpins the experts of `layer` that request() named and nobody acquired (e.g. when a
  // token is abandoned after an error).
  virtual void cancel(int layer) { (void)layer; }
  // The store's figures since the last reset_stats() (a resident store: none).
  virtual ExpertStoreStats stats_report() const { return {}; }
  virtual void reset_stats() {}
};

}  // namespace swapmoe
