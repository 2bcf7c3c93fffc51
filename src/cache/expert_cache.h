#pragma once
// The SSD-backed ExpertStore: a fixed pool of expert-sized slots carved once from the
// memory budget; experts are read into slots on demand with direct I/O and evicted by a
// residency policy. Output is exact: slots hold the file's bytes unchanged.
//
// Slot layout. One slot holds one expert of one layer: the aligned supersets of its gate,
// up and down slices (three separate ranges in three tensors), each part starting on an
// alignment boundary:
//   [gate superset | up superset | down superset]    (size = slot_bytes())
// slot_bytes() is the maximum of that sum over all MoE layers and experts, so any expert
// fits any slot. The views returned point `skip` bytes into each part.
//
// Use from the forward pass (one layer):
//   cache.request(l, chosen);                 // pins them; starts every missing read at once
//   while (auto a = cache.acquire_any(l))     // whichever chosen expert is ready first
//     { compute(a->view); cache.release(l, a->expert); }
// or, to compute every expert that is ready as one group (model/moe.cpp does this through ExpertStore::acquire_ready):
//   while (cache.acquire_ready(l, group))     // all ready ones; blocks only if none is
//     { compute(group); release each; group.clear(); }
//   cache.prefetch(l + 1, guess);             // optional: never evicts pinned experts
// or through the plain ExpertStore interface: request, then acquire(l, e) per expert
// (blocks for that expert only), release(l, e).
//
// Pinning rules: request() pins the experts it names until they are acquired and
// released; acquire() of an expert that was not requested pins it on the spot. A pinned
// or loading slot is never evicted. request() throws Error when the pool has no
// evictable slot left (the budget accountant sizes pools so that n_expert_used experts of
// a layer always fit); prefetch() takes only free or cold slots (cache/residency.h: not
// used by the latest visit of their layer) and silently drops what does not fit.
//
// Speculation. A few spare buffers outside the pools take reads of experts that will
// probably be needed a little later than the prefetched ones (speculate(): the layer
// after the prefetch lookahead). They are read only while the disk would otherwise be
// idle (no other read in flight), and a speculated expert enters the cache only when a
// request or prefetch asks for it: its buffer then swaps places with the slot the
// policy evicts for it, so nothing is copied. A wrong guess costs idle disk time and
// never displaces a cached expert, unlike a deeper prefetch, which takes cold slots
// (measured: 12-16% more reads, slower; docs/benchmarks.md). Slot s's bytes live in
// buffer buf_[s]; the spare buffers are the others.
//
// Thread safety: all public calls may be made from several threads at once; reads
// complete on I/O threads and wake the waiters.

#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/residency.h"
#include "cache/slot_layout.h"
#include "io/direct_file.h"
#include "io/read_engine.h"
#include "arch/config.h"
#include "expert/expert_store.h"

namespace swapmoe {

struct ExpertCacheOptions {
  // Slots: n_slots when > 0, else cache_bytes / slot_bytes().
  int64_t n_slots = 0;
  uint64_t cache_bytes = 0;
  bool per_layer = false;       // one pool per MoE layer (quotas) instead of one shared pool
  // see cache/policy.h. Measured on real Mixtral routing: "lfu" for per-layer pools,
  // "nextuse" for a shared pool (request() tells it where the layer sweep is).
  std::string policy = "lru";
  PolicyOptions policy_options;
  io::EngineOptions engine;
  io::OpenMode open_mode = io::OpenMode::Direct;
  // Spare buffers for speculative reads (speculate(), see "Speculation" above), taken from
  // the slots: the pools get n_slots - spare_slots. 0: speculate() does nothing. Ignored
  // (0) when the rest would leave a pool fewer than 2 x n_expert_used slots.
  int spare_slots = 0;
};

class ExpertCache final : public ExpertStore {
 public:
  // tensors[l]: layer l's expert tensors (all null for dense layers), e.g.
  // ModelWeights::experts. The infos are copied; the GgufFile need not outlive the cache.
  // Throws Error when the tensors are inconsistent, or when the slots are too few for
  // cfg.n_expert_used experts of one layer (per pool).
  // paths: the model's files (GgufFile::part_paths(): one, or the parts of a split model),
  // each opened once for O_DIRECT reads.
  ExpertCache(const std::vector<std::string>& paths, const ModelConfig& cfg, const std::vector<ExpertTensors>& tensors,
              const ExpertCacheOptions& opts);
  ExpertCache(const std::string& path, const ModelConfig& cfg, const std::vector<ExpertTensors>& tensors,
              const ExpertCacheOptions& opts)
      : ExpertCache(std::vector<std::string>{path}, cfg, tensors, opts) {}
  ~ExpertCache() override;

  // Bytes of one slot for these tensors at this I/O alignment (see the layout above).
  static uint64_t slot_bytes_for(const std::vector<ExpertTensors>& tensors, uint64_t alignment);

  void request(int layer, std::span<const int32_t> experts) override;
  void prefetch(int layer, std::span<const int32_t> experts) override;
  ExpertView acquire(int layer, int32_t expert) override;
  // Returns one expert named by request(layer, ...) that has not been acquired yet,
  // preferring one whose bytes are already in memory; blocks until one is ready.
  // std::nullopt when all requested experts of the layer have been acquired.
  // The expert is pinned until release(layer, expert). Throws Error on I/O failure.
  std::optional<AcquiredExpert> acquire_any(int layer);
  // Appends to `out` every requested, not yet acquired expert of the layer that is ready,
  // in request order; blocks only while none is ready. Returns how many it appended (0
  // when all requested experts have been acquired). Each is pinned until release().
  // Throws Error on I/O failure without handing out anything in that call.
  size_t acquire_ready(int layer, std::vector<AcquiredExpert>& out);
  // The ExpertStore form: `pending` is what request() named and was not handed out yet,
  // which the cache tracks itself.
  size_t acquire_ready(int layer, std::span<const int32_t> pending, std::vector<AcquiredExpert>& out) override {
    (void)pending;
    return acquire_ready(layer, out);
  }
  void release(int layer, int32_t expert) override;
  void cancel(int layer) override;
  void speculate(int layer, std::span<const int32_t> experts) override;
  bool speculates() const override { return !spares_.empty(); }
  // Speculative reads in flight at most; they start only while no other read is. Measured
  // against 4 in flight and against starting while one other read is in flight: no
  // difference on the Qwen3-30B shape at 6 GiB (docs/benchmarks.md), so the simplest.
  static constexpr int kSpeculativeInFlight = 2;
  // Whether the expert waits in a spare buffer (read or reading); for tests.
  bool speculated(int layer, int32_t expert) const;
  // A layer's pool holds at least its share of the slots (one shared pool, or per-layer
  // quotas of n_slots / MoE layers), and never fewer than n_expert_used.
  int64_t capacity() const override;

  // Blocks until no expert read is in flight (prefetches included); for tests, benchmarks
  // and orderly shutdown.
  void wait_idle();

  ExpertCacheStats stats() const;
  ExpertStoreStats stats_report() const override;
  void reset_stats() override;
  uint64_t slot_bytes() const { return slot_bytes_; }
  int n_slots() const { return res_->n_slots(); }
  uint64_t pool_bytes() const { return pool_.size(); }
  const char* engine_name() const { return engine_->name(); }
  bool direct_io() const { return files_.is_direct(); }
  // Whether the expert currently occupies a slot (loaded or loading); for tests and logs.
  bool resident(int layer, int32_t expert) const;
  // Test-only: called (without the cache's lock) whenever a caller has to wait for a
  // read (acquire, acquire_any, acquire_ready, wait_idle), again every millisecond while it
  // waits; e.g. io::release_held_completions, so that held reads complete only once the
  // consumer has computed everything that was ready. Set before use, from one thread.
  void set_wait_hook(std::function<void()> fn) { wait_hook_ = std::move(fn); }

 private:
  using Layer = SlotLayout;  // cache/slot_layout.h
  // One buffer's read state (io_ is indexed by buffer: a slot's is io_[buf_[slot]]).
  struct SlotIo {
    uint64_t key = Residency::kEmpty;  // the expert being read or held (spare buffers: the guess)
    bool speculative = false;     // submitted by speculate() and still in flight
    uint64_t spec_list = 0;       // spare buffers: which speculate() call's list it was read for
    int parts_left = 0;
    bool ready = false;
    bool prefetched = false;      // loaded by prefetch and not yet used
    std::string error;            // set when a read failed
    double submit_time = 0;
    uint64_t bytes = 0;           // requested from the disk for this load
    uint64_t skip[kExpertParts] = {}; // offset of the wanted bytes in each part
  };
  struct Wanted {
    int32_t expert;
    int slot;
  };

  void check_expert(int layer, int32_t expert) const;
  // Starts reading key into slot. Caller holds mu_.
  void start_load(int slot, uint64_t key, bool prefetch);
  // Starts reading key into buffer buf; kind 's', 'p' or 'q' (speculative). Caller holds mu_.
  void start_read(int buf, uint64_t key, char kind);
  SlotIo& sio(int slot) { return io_[static_cast<size_t>(buf_[static_cast<size_t>(slot)])]; }
  const SlotIo& sio(int slot) const { return io_[static_cast<size_t>(buf_[static_cast<size_t>(slot)])]; }
  // When key waits in a spare buffer: gives that buffer to `slot` (just allocated for key;
  // its own buffer becomes a spare), keeping a read in flight. False when key is not
  // staged or its read failed (then the caller reads it). Caller holds mu_.
  bool adopt_staged(int slot, uint64_t key, bool prefetch);
  // Starts queued speculative reads while the disk is idle enough. Caller holds mu_.
  void pump_speculation();
  void on_read_done(const io::ReadCompletion& c);
  // Finds or loads an expert for a demand access and pins it. Caller holds mu_.
  int demand_pin(int layer, int32_t expert);
  // Waits (lock held by lk) until ready() is true; adds the wait to blocked_seconds when
  // `count`. With a wait hook, calls it each time round before waiting.
  void block_until(std::unique_lock<std::mutex>& lk, const std::function<bool()>& ready, bool count = true);
  // Waits for a pinned slot to be ready; on a failed read unpins, frees it and throws.
  ExpertView wait_ready(std::unique_lock<std::mutex>& lk, int slot, int layer, int32_t expert);
  ExpertView view_of(int slot, int layer) const;
  // Frees a slot whose read failed once nobody pins it any more. Caller holds mu_.
  void drop_if_failed(int slot);
  std::string describe(uint64_t key, int part) const;
  // Adds the time since the last call to busy_seconds / inflight_byte_seconds, for the
  // reads in flight until now. Call before loads_in_flight_ or bytes_in_flight_ change.
  // Caller holds mu_.
  void account_queue(double now);
  // The optional event trace (SWAPMOE_CACHE_TRACE=FILE): one line per read submitted or
  // completed, request, hand-out, wait and release, with its time; written when the cache
  // is destroyed. For profiling where a token's time goes; off unless the variable is set.
  // Caller holds mu_.
  void trace(char kind, int layer, int32_t expert, int slot);

  std::string path_;
  int64_t n_expert_ = 0;
  int64_t n_expert_used_ = 0;
  std::vector<Layer> layers_;
  uint64_t slot_bytes_ = 0;
  io::DirectFileSet files_;
  io::AlignedBuffer pool_;
  std::unique_ptr<Residency> res_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<SlotIo> io_;          // per buffer
  std::vector<int> buf_;            // per slot: its buffer
  std::vector<int> owner_;          // per buffer: its slot, or -1 for a spare
  std::vector<int> spares_;         // the spare buffers (their number is fixed at construction)
  std::unordered_map<uint64_t, int> staged_;  // key -> spare buffer holding or reading it
  std::vector<uint64_t> spec_queue_;  // speculate()'s list, not yet started, next first
  size_t spec_next_ = 0;
  uint64_t spec_list_ = 0;          // speculate() calls so far
  int spec_in_flight_ = 0;
  bool closing_ = false;
  int loads_in_flight_ = 0;
  uint64_t bytes_in_flight_ = 0;
  double queue_time_ = 0;        // when account_queue() last ran
  struct TraceEvent {
    double t;
    char kind;
    int layer;
    int32_t expert;
    int slot;
  };
  std::string trace_path_;
  std::vector<TraceEvent> trace_;
  std::unordered_map<int, std::vector<Wanted>> wanted_;  // per layer: requested, not yet acquired
  ExpertCacheStats stats_;
  std::function<void()> wait_hook_;
  std::unique_ptr<io::ReadEngine> engine_;  // last member set up, first torn down
};

}  // namespace swapmoe
