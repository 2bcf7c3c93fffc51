#pragma once
// Experts are a resource with an owner. The ExpertStore decides where expert weights live
// (all resident here; an SSD-backed cache under a memory budget later). The forward pass
// asks for "expert e of layer l" and receives views into memory it does not own, valid
// until it releases them.
//
// Per MoE layer and token the forward pass calls, in this order:
//   route(l, ...)      which experts, with which weights (the store may restrict the
//                      choice to experts it holds: SwapMoE masked gating)
//   request(l, ids)    hint: these will be acquired now
//   acquire(l, e) / release(l, e) for each chosen e.
// A batched caller may route several tokens of layer l before acquiring; every expert
// that route() returned stays acquirable until it is released or route() is called for
// another layer.

#include <cstdint>
#include <span>

#include "expert/router.h"
#include "ops/matvec.h"

namespace swapmoe {

// One expert's three matrices, as stored in the file (no requantization):
//   gate, up: [n_embd -> n_ff_exp]  (cols n_embd, rows n_ff_exp)
//   down:     [n_ff_exp -> n_embd]  (cols n_ff_exp, rows n_embd)
struct ExpertView {
  MatrixRef gate, up, down;
};

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
  // Whether a batched caller (forward_batch) may route every token of a chunk through a
  // layer before computing any of them. A store that may have to read a missing expert
  // synchronously into a slot (SwapMoE with the exactness knob below 1) says no: with a
  // chunk's routed experts all held, no slot may be free, and the read would have to be
  // masked instead. The prompt then runs token by token.
  virtual bool batch_routing() const { return true; }
  // Hint that these experts of `layer` are about to be used (a store may start reads).
  virtual void request(int layer, std::span<const int32_t> experts) { (void)layer; (void)experts; }
  // Hint that these experts of `layer` will probably be needed soon (prefetch).
  virtual void prefetch(int layer, std::span<const int32_t> experts) { (void)layer; (void)experts; }
  // Blocks until the expert is available and pins it; throws Error on I/O failure.
  virtual ExpertView acquire(int layer, int32_t expert) = 0;
  // Unpins an expert obtained from acquire().
  virtual void release(int layer, int32_t expert) { (void)layer; (void)expert; }
};

}  // namespace swapmoe
