#pragma once
// Residency policies of the expert cache: which resident expert to evict when a slot is
// needed. A policy only sees slot indices and expert keys; pinning, loading and the pools
// are handled by Residency (residency.h), which offers the policy only evictable slots.
//
// Implementations (make_policy names):
//   "lru"  least recently used.
//   "lfu"  frequency with exponential decay: each key carries a score that gains 1 per
//          access and halves every `half_life` accesses of its pool; the lowest score is
//          evicted (ties: least recently used). Scores are remembered for keys that are
//          not resident, so an expert that is popular over the long run wins its slot back
//          quickly after one unlucky eviction. MoE routers have such persistent favourites.
//   "lru2" LRU-K with K = 2: evicts the key whose second-to-last access is oldest (keys
//          seen only once go first), which resists one-off accesses flushing the cache.
//   "nextuse" estimated time to next use under the layer sweep (see policy.cpp): the best
//          policy for a shared pool on the Mixtral trace.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace swapmoe {

// (layer, expert) packed into one integer: layer in the high 32 bits.
inline uint64_t expert_key(int64_t layer, int64_t expert) {
  return (static_cast<uint64_t>(layer) << 32) | static_cast<uint32_t>(expert);
}
inline int32_t key_layer(uint64_t key) { return static_cast<int32_t>(key >> 32); }
inline int32_t key_expert(uint64_t key) { return static_cast<int32_t>(key & 0xffffffffu); }

class CachePolicy {
 public:
  virtual ~CachePolicy() = default;
  virtual const char* name() const = 0;
  // A demand access found `key` resident in `slot`.
  virtual void on_hit(int slot, uint64_t key) = 0;
  // `key` was placed in `slot`. demand: the forward pass asked for it (a miss); false for
  // a prefetch, which is not a use and should not count as one.
  virtual void on_insert(int slot, uint64_t key, bool demand) = 0;
  // The forward pass starts a step at `layer` (its experts for one token are requested
  // together). Only policies that model the layer sweep care.
  virtual void on_step(int layer) { (void)layer; }
  // `key` left `slot` (evicted or dropped after a failed read).
  virtual void on_evict(int slot, uint64_t key) = 0;
  // Picks the slot to evict among `candidates` (all unpinned, resident, non-empty);
  // candidates is never empty.
  virtual int choose_victim(std::span<const int> candidates) = 0;
};

struct PolicyOptions {
  // In accesses of the pool; 0: 16 x the pool's slot count. On the Mixtral trace that is
  // about 16 tokens whatever the pool layout, and within 0.3 points of the best half-life
  // at 2, 4 and 6 slots of 8 per layer (shorter forgets too fast, longer adapts too slowly).
  double lfu_half_life = 0;
  // "nextuse": half-life of its per-expert counts, in forward steps of the layer; 0: 16.
  double nextuse_half_life = 0;
};

// name: "lru" | "lfu" | "lru2" | "nextuse"; n_slots: slots in the pool the policy manages (slot
// indices passed in are global, not pool-relative). Throws Error on an unknown name.
std::unique_ptr<CachePolicy> make_policy(const std::string& name, int n_slots, const PolicyOptions& opts = {});

}  // namespace swapmoe
