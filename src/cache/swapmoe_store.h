#pragma once
// SwapMoE mode (--policy swapmoe; Kong et al., ACL 2024; docs/swapmoe.md): each MoE layer
// keeps a fixed number of resident "virtual experts" in slots carved from the --mem
// budget, routing is restricted to them (masked gating), and the resident sets follow the
// experts' importance through background reads that decoding never waits for.
//
// Per token and MoE layer, route():
//   1. unmasked selection (select_experts, every expert eligible): the experts the full
//      model would use, their weights, and the router probabilities of all experts;
//   2. importance update from those probabilities (swapmoe_policy.h);
//   3. exactness knob τ: a missing expert of the unmasked choice whose weight, normalised
//      over the chosen experts (so in [0, 1]), is >= τ is read synchronously into the slot
//      of the layer's least important unused expert (counted as a "sync load", its wait
//      as stall); below τ it is masked ("masked"). τ >= 1 never reads;
//   4. masked selection: select_experts among the experts whose slots are ready, with the
//      architecture's usual weight normalisation. When every expert of the unmasked choice
//      is resident the unmasked result is returned as it is, bit for bit.
// At the start of each token (route() of the first MoE layer) the swap scheduler adds
// swap_rate to an allowance (capped at max(1, swap_rate)) and, while at least one load is
// allowed, starts the most valuable swap over all layers: the non-resident expert with the
// highest importance replaces the layer's least important resident one when
// swap_worth_it(I_c, I_v). Swaps are staged: a few slots (ceil(swap_rate), 1 to 8, taken
// from the budget when it has room beyond n_expert_used per layer) belong to no layer; the new expert is
// read into one of them while the victim stays eligible, and when the read completes the
// new expert becomes eligible, the victim stops being eligible, and the victim's slot
// (once the token using it releases it) becomes a staging slot. So a swap never shrinks a
// layer's eligible set. Without a free staging slot no swap starts; with no staging slots
// at all (a budget of exactly n_expert_used per layer) the victim's slot is read into
// directly, the victim becoming ineligible at once, and only while the layer keeps
// n_expert_used eligible experts.
//
// Determinism: a background swap issued at token t takes effect exactly at the start of token
// t + swap_delay (default 2), whenever its read completes: a read that is done earlier waits,
// unpublished; a read that is late is waited for then (counted in swap_waits and
// swap_wait_seconds). So the resident sets, hence the output, are a function of the token
// stream alone, not of the disk, the I/O engine, the thread count or the machine's load.
// (Reads that fail are the exception: they are dropped when they fail.)
//
// Slots. Layout as ExpertCache (expert_cache.h): [gate | up | down] aligned supersets,
// slot_bytes = ExpertCache::slot_bytes_for. n_slots = cache_bytes / slot_bytes (capped at
// every expert); layers get apportion_slots(n_slots, w, n_expert_used, n_expert) with
// w = 1 (even split) or, with a profile, w = experts_to_cover(chosen_mass, 0.9) of the
// layer. The initial resident set of a layer is its slots' worth of experts in decreasing
// profile chosen mass (without a profile: the lowest ids), read at construction ("start-up").
//
// Holds and pins: an expert route() returned is "held" until release() or until route()
// is called for another layer; acquire() pins it until release(). Held, pinned and loading
// slots are never reused. acquire() of an expert that is not ready (a caller that did not
// use route()) reads it synchronously, counted in stall and acquire_misses.
//
// Thread safety: all public calls may come from any thread; reads complete on the I/O
// engine's threads.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "cache/slot_layout.h"
#include "cache/swapmoe_profile.h"
#include "io/direct_file.h"
#include "io/read_engine.h"
#include "arch/config.h"
#include "expert/expert_store.h"

namespace swapmoe {

struct SwapMoeOptions {
  int64_t n_slots = 0;          // when > 0, else cache_bytes / slot_bytes
  uint64_t cache_bytes = 0;
  double exactness = 1.0;       // τ
  double swap_rate = 1.0;       // background loads per token, all layers together
  double decay = 0.95;          // γ of the importance (swapmoe_policy.h kImportanceDecay)
  int swap_delay = 2;           // tokens from a swap's start to its effect (>= 1), see above
  const RoutingProfile* profile = nullptr;  // per-layer shares and initial sets (may be null)
  io::EngineOptions engine;
  io::OpenMode open_mode = io::OpenMode::Direct;
};

class SwapMoeStore final : public ExpertStore {
 public:
  // Throws Error when the tensors are inconsistent, or when the slots cannot give every
  // MoE layer n_expert_used of them (with the numbers).
  // paths: the model's files (one, or the parts of a split model), as for ExpertCache.
  SwapMoeStore(const std::vector<std::string>& paths, const ModelConfig& cfg, const std::vector<ExpertTensors>& tensors,
               const SwapMoeOptions& opts);
  SwapMoeStore(const std::string& path, const ModelConfig& cfg, const std::vector<ExpertTensors>& tensors,
               const SwapMoeOptions& opts)
      : SwapMoeStore(std::vector<std::string>{path}, cfg, tensors, opts) {}
  ~SwapMoeStore() override;

  void route(int layer, const RouterParams& p, const float* logits, int32_t* ids, float* weights) override;
  // τ < 1 may read chosen experts synchronously, which needs a free slot per token.
  bool batch_routing() const override { return exactness_ >= 1.0; }
  ExpertView acquire(int layer, int32_t expert) override;
  void release(int layer, int32_t expert) override;

  // Blocks until no read is in flight (tests, benchmarks, shutdown).
  void wait_idle();
  SwapMoeStats stats() const;
  ExpertStoreStats stats_report() const override;
  void reset_stats() override;  // keeps the start-up figures
  uint64_t slot_bytes() const { return slot_bytes_; }
  int n_slots() const { return static_cast<int>(slots_.size()); }
  const char* engine_name() const { return engine_->name(); }
  bool direct_io() const { return files_.is_direct(); }
  // Slots of each layer (0 for dense layers), importance and eligibility: for tests/logs.
  std::vector<int64_t> layer_slots() const;
  std::vector<double> importance(int layer) const;
  // Whether the expert is resident and ready (eligible for routing).
  bool eligible(int layer, int32_t expert) const;
  // Whether the expert's bytes are in a slot and ready (eligible, or retiring after a swap
  // but still held by the token that chose it).
  bool resident(int layer, int32_t expert) const;

 private:
  enum class State { Empty, Loading, Ready };
  struct Slot {
    int layer = -1;
    int32_t expert = -1;
    State state = State::Empty;
    bool sync = false;     // a synchronous read: a waiter will look at `error`
    bool held = false;
    int pins = 0;
    int retire = -1;        // a staged swap: the slot whose expert this read replaces
    bool doomed = false;    // chosen as the victim of a staged swap in flight
    bool retiring = false;  // replaced: no longer eligible, freed once unheld and unpinned
    int parts_left = 0;
    uint64_t due = 0;       // a background swap: the token at whose start it takes effect
    std::string error;
    uint64_t skip[kExpertParts] = {};
  };
  struct Layer : SlotLayout {  // moe, part[3]: cache/slot_layout.h
    std::vector<int> slots;          // indices into slots_
    std::vector<int> slot_of;        // [n_expert] -> slot or -1
    std::vector<uint8_t> eligible;   // [n_expert] slot ready
    std::vector<double> importance;  // [n_expert]
  };

  void check_expert(int layer, int32_t expert) const;
  // Starts reading `expert` of `layer` into `slot` (which must be Empty). Caller holds mu_.
  void start_load(int slot, int layer, int32_t expert, bool sync);
  void on_read_done(const io::ReadCompletion& c);
  // Makes slot Empty (the expert it held is no longer resident). Caller holds mu_.
  void evict(int slot);
  // The layer's least important reusable slot (Empty first; else Ready, not held, not
  // pinned), or -1.
  int victim(int layer) const;
  // Reads `expert` synchronously (waiting for a background read of it if one runs),
  // evicting the least important reusable slot. Returns false when no slot can be reused.
  // Throws Error on I/O failure.
  bool load_sync(std::unique_lock<std::mutex>& lk, int layer, int32_t expert);
  void on_token(std::unique_lock<std::mutex>& lk);
  // A completed read takes effect: the expert becomes eligible and a staged swap's victim
  // retires. Caller holds mu_.
  void publish(int slot);
  // Removes `slot` from pending_ (no-op if absent). Caller holds mu_.
  void unpend(int slot);
  // Frees a retiring slot once nothing uses it (back to the staging list). Caller holds mu_.
  void try_retire(int slot);
  // Detaches an Empty slot from its layer and puts it on the staging list.
  void to_staging(int slot);
  ExpertView view_of(int slot) const;

  std::string path_;
  int64_t n_expert_ = 0, n_expert_used_ = 0;
  int first_moe_ = -1;
  bool sigmoid_ = false;
  double exactness_ = 1.0, swap_rate_ = 1.0, decay_ = 0.95, allowance_ = 0.0;
  std::vector<Layer> layers_;
  uint64_t slot_bytes_ = 0;
  io::DirectFileSet files_;
  io::AlignedBuffer pool_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_;
  int loads_in_flight_ = 0;
  int held_layer_ = -1;  // the layer whose route() results are held
  std::vector<int> staging_;  // free slots that belong to no layer (staged swaps read into them)
  std::vector<int> pending_;  // background swaps not yet in effect, in start order
  int swap_delay_ = 2;
  uint64_t clock_ = 0;        // tokens seen (as stats_.tokens, but never reset): swaps' due times
  int64_t staging_slots_ = 0; // how many slots were set aside for staging
  SwapMoeStats stats_;
  // route() scratch (under mu_).
  std::vector<float> probs_;
  std::vector<int32_t> ids_u_;
  std::vector<float> w_u_;
  std::unique_ptr<io::ReadEngine> engine_;  // last member set up, first torn down
};

}  // namespace swapmoe
