// Residency policies on scripted access sequences (eviction order computed by hand), the
// pinning rules, per-layer pools, and the replay of real Mixtral routing.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "cache/residency.h"
#include "cache/trace_sim.h"
#include "util/error.h"

using namespace swapmoe;

namespace {

// One pool of n slots for layer 0. access(): a demand access; returns the evicted expert
// (-1 when nothing was evicted, -2 on a hit).
struct Sim {
  Residency r;
  Sim(int n, const std::string& policy, double hl = 0)
      : r({n}, {0}, policy, PolicyOptions{hl}) {}
  int access(int e, bool demand = true) {
    const uint64_t k = expert_key(0, e);
    int s = r.find(k);
    if (s >= 0) {
      if (demand) r.touch(s);
      return -2;
    }
    uint64_t ev = 0;
    s = r.allocate(k, demand, &ev);
    EXPECT_GE(s, 0);
    return ev == Residency::kEmpty ? -1 : key_expert(ev);
  }
  int slot_of(int e) const { return r.find(expert_key(0, e)); }
};

}  // namespace

TEST(Policy, LruEvictsLeastRecentlyUsed) {
  Sim s(3, "lru");
  EXPECT_EQ(s.access(0), -1);
  EXPECT_EQ(s.access(1), -1);
  EXPECT_EQ(s.access(2), -1);
  EXPECT_EQ(s.access(0), -2);  // hit: 0 becomes most recent
  EXPECT_EQ(s.access(3), 1);   // order of recency: 1 < 2 < 0
  EXPECT_EQ(s.access(4), 2);
  EXPECT_EQ(s.access(0), -2);
  EXPECT_EQ(s.access(5), 3);
}

TEST(Policy, LfuKeepsFrequentExpertsAndDecays) {
  // Long half-life: plain frequency. 0 has 3 uses, 1 two, 2 one -> 2 goes first.
  {
    Sim s(3, "lfu", 1000);
    s.access(0); s.access(0); s.access(0);
    s.access(1); s.access(1);
    s.access(2);
    EXPECT_EQ(s.access(3), 2);
    EXPECT_EQ(s.access(4), 3);  // 3 has one use, most recent, but still the least frequent
  }
  // Half-life 2 ticks: 0 used at t1..t3 (score 2.207 at t3), 1 at t4,t5 (1.707 at t5),
  // 2 at t6 (1). Compared at a common time: log2(score) + last/2 =
  // 0: 1.142 + 1.5 = 2.642; 1: 0.771 + 2.5 = 3.271; 2: 0 + 3 = 3. So 0 is evicted.
  {
    Sim s(3, "lfu", 2);
    s.access(0); s.access(0); s.access(0);
    s.access(1); s.access(1);
    s.access(2);
    EXPECT_EQ(s.access(3), 0);
  }
  // History survives eviction: 0 was popular, got evicted, comes back with its score.
  {
    Sim s(2, "lfu", 1000);
    for (int i = 0; i < 5; ++i) s.access(0);
    s.access(1);
    s.r.pin(s.slot_of(1));
    EXPECT_EQ(s.access(2), 0);  // forced out: 1 is pinned
    s.r.unpin(s.slot_of(1));
    EXPECT_EQ(s.access(0), 1);  // back: 1 and 2 have one use each; 1 is older
    EXPECT_EQ(s.access(3), 2);  // 0 (6 uses, remembered across its eviction) stays
  }
}

TEST(Policy, Lru2EvictsOneTimersFirst) {
  Sim s(3, "lru2");
  s.access(0); s.access(1); s.access(2);
  s.access(0); s.access(1);
  EXPECT_EQ(s.access(3), 2);  // 2 was seen once
  EXPECT_EQ(s.access(4), 3);  // 3 is the most recent, but was seen once
  EXPECT_EQ(s.access(5), 4);
  s.access(5);                // 5 now has two uses, at t8 and t9
  EXPECT_EQ(s.access(6), 0);  // second-to-last uses: 0 -> t1, 1 -> t2, 5 -> t8
}

TEST(Policy, PrefetchInsertIsNotAUse) {
  // A prefetched expert used once counts one use, not two.
  Sim s(2, "lfu", 1000);
  s.access(0); s.access(0);      // 0: two uses
  s.access(1, /*demand=*/false); // prefetched
  s.access(1);                   // first use confirms it: still one use
  EXPECT_EQ(s.access(2), 1);
}

TEST(Residency, PinnedAndLoadingSlotsAreNeverEvicted) {
  for (const char* p : {"lru", "lfu", "lru2"}) {
    SCOPED_TRACE(p);
    Sim s(3, p);
    s.access(0); s.access(1); s.access(2);
    s.r.pin(s.slot_of(0));
    s.r.set_loading(s.slot_of(1), true);
    for (int e = 3; e < 10; ++e) {
      const int ev = s.access(e);
      EXPECT_NE(ev, 0);
      EXPECT_NE(ev, 1);
    }
    s.r.pin(s.slot_of(9));
    uint64_t ev = 0;
    EXPECT_EQ(s.r.allocate(expert_key(0, 20), true, &ev), -1);  // all pinned or loading
    EXPECT_EQ(s.r.pinned_in_pool(0), 2);
    s.r.unpin(s.slot_of(0));
    EXPECT_EQ(s.r.allocate(expert_key(0, 20), true, &ev), s.r.n_slots() - 3 + 0);  // 0 sat in slot 0
    EXPECT_EQ(key_expert(ev), 0);
    EXPECT_THROW(s.r.unpin(s.slot_of(20)), Error);  // not pinned
  }
}

TEST(Residency, PerLayerPoolsDoNotStealFromEachOther) {
  // Layers 0 and 2 have 2 slots each; layer 1 has no experts.
  Residency r({2, 2}, {0, -1, 1}, "lru");
  uint64_t ev = 0;
  EXPECT_EQ(r.allocate(expert_key(0, 0), true, &ev), 0);
  EXPECT_EQ(r.allocate(expert_key(0, 1), true, &ev), 1);
  for (int e = 0; e < 6; ++e) {
    const int s = r.allocate(expert_key(2, e), true, &ev);
    EXPECT_TRUE(s == 2 || s == 3);
    if (ev != Residency::kEmpty) {
      EXPECT_EQ(key_layer(ev), 2);
    }
  }
  EXPECT_GE(r.find(expert_key(0, 0)), 0);
  EXPECT_GE(r.find(expert_key(0, 1)), 0);
  EXPECT_THROW(r.allocate(expert_key(1, 0), true, &ev), Error);
  // Shared pool: layer 2 does evict layer 0.
  Residency sh({2}, {0, -1, 0}, "lru");
  sh.allocate(expert_key(0, 0), true, &ev);
  sh.allocate(expert_key(2, 0), true, &ev);
  sh.allocate(expert_key(2, 1), true, &ev);
  EXPECT_EQ(ev, expert_key(0, 0));
}

// A shared pool under the layer sweep: three layers that each always pick expert 0, two
// slots. At layer 2 a victim is needed: LRU evicts layer 0's expert, the very next one
// needed; nextuse evicts layer 1's (needed two steps later) and then hits at layer 0.
TEST(Policy, NextUseKeepsWhatTheSweepNeedsNext) {
  for (const char* p : {"lru", "nextuse"}) {
    SCOPED_TRACE(p);
    Residency r({2}, {0, 0, 0}, p);
    uint64_t ev = 0;
    int hits = 0;
    for (int step = 0; step < 4; ++step) {
      const int layer = step % 3;
      r.begin_step(layer);
      const uint64_t k = expert_key(layer, 0);
      const int s = r.find(k);
      if (s >= 0) {
        r.touch(s);
        ++hits;
      } else {
        ASSERT_GE(r.allocate(k, true, &ev), 0);
        if (step == 2) {
          EXPECT_EQ(key_layer(ev), std::string(p) == "lru" ? 0 : 1);
        }
      }
    }
    EXPECT_EQ(hits, std::string(p) == "lru" ? 0 : 1);
  }
}

TEST(Policy, UnknownNameThrows) { EXPECT_THROW(make_policy("fifo", 4), Error); }

// Real routing of Mixtral-8x7B (8 experts, top-2, 32 layers, 577 decode tokens over four
// sequences), copied from shared/traces/ without the gate values.
namespace {
const RoutingTrace& mixtral() {
  static const RoutingTrace t =
      load_routing_trace(std::string(SWAPMOE_TEST_DATA) + "/traces/mixtral-8x7b-decode-experts.json");
  return t;
}
double hit_rate(const char* policy, bool per_layer, int slots, bool pin_hits_first = true) {
  SimOptions o;
  o.policy = policy;
  o.per_layer = per_layer;
  o.slots_per_layer = slots;
  o.pin_hits_first = pin_hits_first;
  return simulate_trace(mixtral(), o).hit_rate();
}
}  // namespace

TEST(TraceReplay, TraceShape) {
  const RoutingTrace& t = mixtral();
  ASSERT_EQ(t.n_layer, 32);
  ASSERT_EQ(t.n_expert, 8);
  ASSERT_EQ(t.seqs.size(), 4u);
  size_t n_tok = 0;
  for (const auto& s : t.seqs) n_tok += s.size();
  EXPECT_EQ(n_tok, 577u);
  EXPECT_EQ(t.seqs[0][0][0], (std::vector<int32_t>{6, 5}));  // first token, layer 0
}

// shared/README.md reports per-layer LRU hit rates of 29-34% / 57-60% / 79-80% with
// 2 / 4 / 6 of 8 slots per layer; our replay over the whole trace must land in those
// ranges (single sequences spread wider, e.g. 28-35% at 2 slots).
TEST(TraceReplay, PerLayerLruMatchesTheReadme) {
  // The README's LRU takes the accesses one after the other (no pinning of hits first).
  const double h2 = hit_rate("lru", true, 2, false), h4 = hit_rate("lru", true, 4, false),
               h6 = hit_rate("lru", true, 6, false);
  EXPECT_GE(h2, 0.29);
  EXPECT_LE(h2, 0.34);
  EXPECT_GE(h4, 0.57);
  EXPECT_LE(h4, 0.60);
  EXPECT_GE(h6, 0.79);
  EXPECT_LE(h6, 0.80);
}

// The frequency-aware policies must beat LRU on real routing in both pool layouts (they
// gain 1-5 points: Mixtral's routers have persistent favourites), and in a shared pool
// nextuse must beat lfu (it also models the layer sweep).
TEST(TraceReplay, FrequencyPoliciesBeatLru) {
  for (int s : {2, 4, 6}) {
    EXPECT_GT(hit_rate("lfu", true, s, false), hit_rate("lru", true, s, false)) << s;
    EXPECT_GT(hit_rate("lfu", false, s, false), hit_rate("lru", false, s, false)) << s;
    EXPECT_GT(hit_rate("nextuse", false, s, false), hit_rate("lfu", false, s, false)) << s;
  }
  // As the cache places a layer's misses (hits pinned first), nextuse in a shared pool
  // still beats lfu at every size, and lfu beats lru per layer where there is a choice
  // (at 2 of 8 slots a top-2 layer keeps exactly its last pair under any policy).
  for (int s : {2, 4, 6}) EXPECT_GT(hit_rate("nextuse", false, s), hit_rate("lfu", false, s)) << s;
  for (int s : {4, 6}) EXPECT_GT(hit_rate("lfu", true, s), hit_rate("lru", true, s)) << s;
  EXPECT_EQ(hit_rate("lfu", true, 2), hit_rate("lru", true, 2));
}

// Belady's OPT bounds every policy from above, and on a hand-made sequence is exact.
TEST(TraceReplay, OptIsAnUpperBound) {
  for (bool per_layer : {true, false})
    for (int s : {2, 4, 6})
      for (const char* p : {"lru", "lfu", "lru2", "nextuse"})
        EXPECT_GE(hit_rate("opt", per_layer, s), hit_rate(p, per_layer, s)) << p << " " << s << " " << per_layer;
  // One layer, 2 slots, one expert per token: 0 1 2 0 1 2 0 1 2. LRU never hits. OPT:
  // at 2 it evicts 1 (next use 4, after 0's at 3); 0 hits; at 1 it evicts 0 (next 6,
  // after 2's at 5); 2 hits; at 0 it evicts 2 (next 8, after 1's at 7); 1 hits: 3 hits.
  RoutingTrace t;
  t.n_layer = 1;
  t.n_expert = 3;
  t.seqs.emplace_back();
  for (int e : {0, 1, 2, 0, 1, 2, 0, 1, 2}) t.seqs[0].push_back({{e}});
  SimOptions o;
  o.slots_per_layer = 2;
  o.policy = "lru";
  EXPECT_EQ(simulate_trace(t, o).hits, 0u);
  o.policy = "opt";
  EXPECT_EQ(simulate_trace(t, o).hits, 3u);
}

// The whole table, for the record (slow under sanitizers, so only on request; disabled rather
// than skipped, so that a strict CI run has no skips):
//   test_cache --gtest_also_run_disabled_tests --gtest_filter=TraceReplay.DISABLED_Table
TEST(TraceReplay, DISABLED_Table) {
  std::printf("hit rates over all 577 tokens (cache emptied per sequence; hits pinned first, as the cache does):\n");
  std::printf("%-6s %-9s %8s %8s %8s\n", "policy", "pools", "2/8", "4/8", "6/8");
  for (const char* p : {"lru", "lfu", "lru2", "nextuse", "opt"}) {
    for (bool per_layer : {true, false}) {
      std::printf("%-6s %-9s", p, per_layer ? "per-layer" : "shared");
      for (int s : {2, 4, 6}) std::printf(" %7.1f%%", 100.0 * hit_rate(p, per_layer, s));
      std::printf("\n");
    }
  }
  EXPECT_GT(hit_rate("lru", true, 6), hit_rate("lru", true, 2));
}
