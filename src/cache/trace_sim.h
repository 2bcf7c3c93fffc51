#pragma once
// Policy-only replay of recorded expert routing through Residency (no memory, no I/O), to
// compare residency policies and pool layouts on real routing. Random-weight test models
// route almost uniformly, so their hit rates say nothing about real models; recorded
// traces (tests/data/traces/) do.

#include <cstdint>
#include <string>
#include <vector>

namespace swapmoe {

struct RoutingTrace {
  int n_layer = 0;
  int n_expert = 0;  // max expert id + 1
  std::vector<std::string> names;
  // seqs[s][token][layer] = the experts chosen for that token at that layer, in order.
  std::vector<std::vector<std::vector<std::vector<int32_t>>>> seqs;
};

// Reads {"seqs": {"name": {"experts": [[[e, e], ...layers], ...tokens]}, ...}}; the
// sequences are taken in the file's key order. Throws Error on a malformed file.
RoutingTrace load_routing_trace(const std::string& path);

struct SimOptions {
  // A policy of cache/policy.h, or "opt": Belady's clairvoyant policy (evicts the expert
  // whose next use is farthest away), the upper bound no real policy can beat.
  std::string policy = "lru";
  bool per_layer = true;     // one pool per layer, else one pool shared by all layers
  int slots_per_layer = 2;   // shared: the pool has slots_per_layer * n_layer slots
  bool reset_per_seq = true; // start every sequence with an empty cache
  double lfu_half_life = 0;  // 0: the policy's default
  // As ExpertCache::request: a layer's resident experts are pinned before its misses are
  // placed. false: accesses one after the other (plain LRU semantics, as in shared/README.md).
  bool pin_hits_first = true;
};

struct SimResult {
  uint64_t accesses = 0;
  uint64_t hits = 0;
  double hit_rate() const { return accesses ? static_cast<double>(hits) / static_cast<double>(accesses) : 0.0; }
};

// Replays every token: per layer, all chosen experts are requested together and stay
// pinned until the layer is done (as the forward pass does), then released.
// seq < 0: all sequences (summed); else only that one.
SimResult simulate_trace(const RoutingTrace& t, const SimOptions& o, int seq = -1);

}  // namespace swapmoe
