#pragma once
// The bookkeeping half of the expert cache, with no memory and no I/O: which key occupies
// which slot, which slots are pinned or still loading, how slots are grouped into pools,
// and which slot to give a new key. The real cache (expert_cache.h) and the trace
// simulator (trace_sim.h) both drive this class, so simulated hit rates are those of the
// real cache.
//
// Pools: either one pool shared by all layers, or one pool per MoE layer (per-layer
// quotas), each with its own policy instance. A key is always placed in its layer's pool.
// A slot is evictable when it is occupied, not pinned and not loading.
//
// Cold slots. Each layer counts its forward steps (begin_step); a slot remembers the step
// of its layer at which its key was last used on demand. The key is "warm" while its
// layer's latest step used it (each layer's most recent selection: what the next token is
// most likely to choose again), and cold otherwise (not used by the latest visit of its
// layer, or only ever prefetched). Prefetches may take only free or cold slots, so a
// guess never displaces an expert that the sweep just used and will probably use again.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/policy.h"

namespace swapmoe {

class Residency {
 public:
  static constexpr uint64_t kEmpty = UINT64_MAX;

  struct Slot {
    uint64_t key = kEmpty;
    int pool = 0;
    int pins = 0;
    bool loading = false;
    uint64_t used_step = 0;  // the step of the key's layer at its latest demand use (0: none)
  };

  // Which slots allocate() may take when the pool has no free slot.
  enum class Victims {
    Any,   // every evictable slot (the policy chooses)
    Cold,  // only evictable cold slots (see above), for prefetches
  };

  // pool_sizes[p]: slots in pool p (slots are numbered pool by pool). layer_pool[l]: the
  // pool of layer l's experts (-1 for a layer without experts).
  Residency(const std::vector<int>& pool_sizes, const std::vector<int>& layer_pool, const std::string& policy,
            const PolicyOptions& popts = {});

  int n_slots() const { return static_cast<int>(slots_.size()); }
  int n_pools() const { return static_cast<int>(policies_.size()); }
  int pool_size(int pool) const { return pool_sizes_[pool]; }
  int pool_of_layer(int layer) const;
  const Slot& slot(int s) const { return slots_[s]; }
  const CachePolicy& policy(int pool) const { return *policies_[pool]; }

  // Tells the layer's pool policy that a forward step at `layer` begins.
  // Also starts the layer's next step for the cold/warm distinction.
  void begin_step(int layer);
  // Slot holding key, or -1. Does not count as an access.
  int find(uint64_t key) const;
  // A demand access to a resident key (tells the policy).
  void touch(int slot);
  // Chooses a slot for key (which must not be resident) in its layer's pool: a free slot,
  // else the policy's victim among the evictable slots that `victims` admits. Returns -1
  // when there is none. *evicted receives the displaced key (kEmpty when the slot was free).
  int allocate(uint64_t key, bool demand, uint64_t* evicted, Victims victims = Victims::Any);
  // True when the slot holds a key that its layer's latest step did not use.
  bool cold(int slot) const;
  // Empties a slot (e.g. after a failed read); it must not be pinned.
  void remove(int slot);

  void pin(int slot) { ++slots_[slot].pins; }
  void unpin(int slot);
  void set_loading(int slot, bool v) { slots_[slot].loading = v; }
  int pinned_in_pool(int pool) const;

 private:
  std::vector<int> pool_sizes_;
  std::vector<int> pool_begin_;
  std::vector<int> layer_pool_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<CachePolicy>> policies_;
  std::vector<std::vector<int>> free_;  // per pool, free slot indices (used from the back)
  std::unordered_map<uint64_t, int> where_;
  std::vector<int> scratch_;
  std::vector<uint64_t> layer_steps_;  // per layer: begin_step calls so far
};

}  // namespace swapmoe
