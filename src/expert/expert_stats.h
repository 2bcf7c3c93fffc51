#pragma once
// What an expert store reports about itself (ExpertStore::stats_report): the figures of
// the SSD-backed cache (cache/expert_cache.h) and of SwapMoE mode (cache/swapmoe_store.h),
// defined here so that callers can read them without knowing which store they hold.

#include <cstdint>
#include <string>

namespace swapmoe {

struct ExpertCacheStats {
  uint64_t hits = 0;            // demand accesses that found the expert resident or in flight
  uint64_t misses = 0;          // demand accesses that had to start a read
  uint64_t loads = 0;           // experts read (demand + prefetch)
  uint64_t bytes_read = 0;      // bytes requested from the disk (aligned supersets)
  double read_seconds = 0;      // summed submit-to-completion time of all expert loads
  double blocked_seconds = 0;   // time callers spent waiting in acquire / acquire_any
  double busy_seconds = 0;      // wall time with at least one expert read in flight
  double inflight_byte_seconds = 0;  // integral of the bytes in flight over time (/ busy_seconds:
                                     // the mean read queue, in bytes, while the disk was busy)
  uint64_t demand_waits = 0;    // acquire calls that had to wait for a read
  uint64_t evictions = 0;
  uint64_t prefetch_issued = 0;
  uint64_t prefetch_used = 0;    // prefetched experts later asked for before eviction
  uint64_t prefetch_wasted = 0;  // prefetched experts evicted without being used
  uint64_t prefetch_dropped = 0; // prefetches not started: no evictable slot
  // Speculative reads (ExpertStore::speculate): read into spare buffers while the disk
  // would otherwise be idle, and taken into the cache only when asked for.
  uint64_t speculative_issued = 0;
  uint64_t speculative_used = 0;    // asked for (demand or prefetch) and taken into a slot
  uint64_t speculative_wasted = 0;  // overwritten or failed without being used
  uint64_t speculative_bytes = 0;   // bytes of the speculative reads (included in bytes_read)
  double hit_rate() const { return hits + misses ? static_cast<double>(hits) / static_cast<double>(hits + misses) : 0.0; }
};

struct SwapMoeStats {
  uint64_t tokens = 0;          // route() calls of the first MoE layer
  uint64_t routes = 0;          // route() calls (tokens x MoE layers)
  uint64_t chosen = 0;          // experts of the unmasked choices (routes x n_used)
  uint64_t hits = 0;            // ... that were resident and ready
  uint64_t masked = 0;          // ... missing, weight < τ: masked out
  uint64_t sync_loads = 0;      // ... missing, weight >= τ: read synchronously
  uint64_t sync_no_slot = 0;    // ... weight >= τ but every slot held/pinned: masked
  uint64_t swaps_started = 0;
  uint64_t swaps_done = 0;      // background swaps that took effect (the expert became eligible)
  uint64_t swap_waits = 0;      // ... whose read was not complete when due: decoding waited
  double swap_wait_seconds = 0; // time spent in those waits
  uint64_t swap_failures = 0;   // background reads that failed (the slot was emptied)
  uint64_t swap_bytes = 0;      // bytes read by background swaps
  uint64_t sync_bytes = 0;      // bytes read synchronously (τ loads, acquire misses)
  uint64_t acquire_misses = 0;  // acquire() of an expert that was not ready
  double stall_seconds = 0;     // time route()/acquire() waited for reads after start-up
  uint64_t startup_bytes = 0;   // the initial resident sets
  double startup_seconds = 0;
  double hit_rate() const { return chosen ? static_cast<double>(hits) / static_cast<double>(chosen) : 0.0; }
};

// One store's report. A resident store reports nothing (cached = false).
struct ExpertStoreStats {
  bool cached = false;          // experts stream from the file into slots
  ExpertCacheStats cache;       // under SwapMoE: a summary of `swap` in the cache's terms
  int n_slots = 0;
  int n_spare = 0;              // spare buffers for speculative reads, besides the slots
  uint64_t slot_bytes = 0;
  std::string engine;
  bool direct_io = false;
  bool swapmoe = false;         // a SwapMoE store: `swap` holds its figures
  SwapMoeStats swap;
};

// A run's figures: the store's report plus the next-layer prefetcher's guesses
// (model/expert_prefetch.h), as Model::expert_stats() gathers them.
struct ExpertRunStats : ExpertStoreStats {
  bool prefetch = false;
  uint64_t predicted = 0;       // layer-(l+1) experts chosen that had been predicted
  uint64_t actual = 0;          // layer-(l+1) experts chosen, over layers with a prediction
  double prefetch_accuracy() const { return actual ? static_cast<double>(predicted) / static_cast<double>(actual) : 0.0; }
};

}  // namespace swapmoe
