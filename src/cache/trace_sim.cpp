#include "cache/trace_sim.h"

#include <fstream>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "cache/residency.h"
#include "util/error.h"

namespace swapmoe {

RoutingTrace load_routing_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot open routing trace ", path);
  RoutingTrace t;
  try {
    // ordered_json keeps the sequences in file order.
    const nlohmann::ordered_json j = nlohmann::ordered_json::parse(in);
    for (const auto& [name, seq] : j.at("seqs").items()) {
      t.names.push_back(name);
      auto& tokens = t.seqs.emplace_back();
      for (const auto& tok : seq.at("experts")) {
        auto& layers = tokens.emplace_back();
        for (const auto& lay : tok) {
          auto& ex = layers.emplace_back();
          for (const auto& e : lay) {
            const int v = e.get<int>();
            if (v < 0 || v > 65535) fail("routing trace ", path, ": expert id ", v, " out of range");
            ex.push_back(v);
            t.n_expert = std::max(t.n_expert, v + 1);
          }
        }
        if (t.n_layer == 0) t.n_layer = static_cast<int>(layers.size());
        if (static_cast<int>(layers.size()) != t.n_layer)
          fail("routing trace ", path, ": sequence ", name, " has a token with ", layers.size(), " layers, expected ", t.n_layer);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail("routing trace ", path, ": ", e.what());
  }
  if (t.seqs.empty() || t.n_layer == 0) fail("routing trace ", path, ": no sequences");
  return t;
}

namespace {

// Belady's OPT on one sequence: the demand stream is flattened in the order the forward
// pass makes the accesses; on a miss with a full pool, the resident unpinned key whose next
// access lies farthest ahead is evicted.
void simulate_opt(const RoutingTrace& t, const SimOptions& o, size_t s, SimResult& r) {
  struct Access {
    uint64_t key;
    int layer;
    size_t step;  // (token, layer) step: keys of the same step are pinned together
  };
  std::vector<Access> acc;
  size_t step = 0;
  for (const auto& tok : t.seqs[s])
    for (int l = 0; l < t.n_layer; ++l, ++step)
      for (int32_t e : tok[l]) acc.push_back(Access{expert_key(l, e), l, step});
  std::vector<size_t> next(acc.size());
  std::unordered_map<uint64_t, size_t> last;
  for (size_t i = acc.size(); i-- > 0;) {
    auto it = last.find(acc[i].key);
    next[i] = it == last.end() ? SIZE_MAX : it->second;
    last[acc[i].key] = i;
  }
  const int n_pools = o.per_layer ? t.n_layer : 1;
  const size_t cap = static_cast<size_t>(o.per_layer ? o.slots_per_layer : o.slots_per_layer * t.n_layer);
  // Per pool: resident key -> (next use, step of its latest access).
  std::vector<std::unordered_map<uint64_t, std::pair<size_t, size_t>>> pools(static_cast<size_t>(n_pools));
  for (size_t i = 0; i < acc.size(); ++i) {
    auto& pool = pools[o.per_layer ? static_cast<size_t>(acc[i].layer) : 0];
    ++r.accesses;
    auto it = pool.find(acc[i].key);
    if (it != pool.end()) {
      ++r.hits;
    } else if (pool.size() >= cap) {
      auto victim = pool.end();
      for (auto c = pool.begin(); c != pool.end(); ++c) {
        if (c->second.second == acc[i].step) continue;  // pinned by the current layer step
        if (victim == pool.end() || c->second.first > victim->second.first) victim = c;
      }
      if (victim == pool.end()) fail("simulate_trace: layer ", acc[i].layer, " needs more experts at once than its slots");
      pool.erase(victim);
    }
    pool[acc[i].key] = {next[i], acc[i].step};
  }
}

}  // namespace

SimResult simulate_trace(const RoutingTrace& t, const SimOptions& o, int seq) {
  if (o.slots_per_layer < 1) fail("simulate_trace: slots_per_layer must be >= 1");
  if (o.policy == "opt") {
    if (!o.reset_per_seq) fail("simulate_trace: opt replays each sequence from an empty cache");
    SimResult r;
    for (size_t s = 0; s < t.seqs.size(); ++s)
      if (seq < 0 || static_cast<size_t>(seq) == s) simulate_opt(t, o, s, r);
    return r;
  }
  std::vector<int> pool_sizes, layer_pool(t.n_layer);
  if (o.per_layer) {
    for (int l = 0; l < t.n_layer; ++l) {
      pool_sizes.push_back(o.slots_per_layer);
      layer_pool[l] = l;
    }
  } else {
    pool_sizes.push_back(o.slots_per_layer * t.n_layer);
  }
  PolicyOptions popts;
  popts.lfu_half_life = o.lfu_half_life;
  SimResult r;
  std::unique_ptr<Residency> res;
  std::vector<int> held;
  for (size_t s = 0; s < t.seqs.size(); ++s) {
    if (seq >= 0 && static_cast<size_t>(seq) != s) continue;
    if (!res || o.reset_per_seq) res = std::make_unique<Residency>(pool_sizes, layer_pool, o.policy, popts);
    for (const auto& tok : t.seqs[s]) {
      for (int l = 0; l < t.n_layer; ++l) {
        held.clear();
        res->begin_step(l);
        // As ExpertCache::request: the layer's resident experts are pinned before any
        // miss is placed, so a miss never evicts an expert the same step is about to hit.
        for (int32_t e : tok[l]) {
          if (!o.pin_hits_first) break;
          const int slot = res->find(expert_key(l, e));
          if (slot < 0) continue;
          ++r.accesses;
          ++r.hits;
          res->touch(slot);
          res->pin(slot);
          held.push_back(slot);
        }
        for (int32_t e : tok[l]) {
          const uint64_t key = expert_key(l, e);
          int slot = res->find(key);
          if (slot >= 0 && o.pin_hits_first) continue;  // pinned above
          ++r.accesses;
          if (slot >= 0) {
            ++r.hits;
            res->touch(slot);
          } else {
            uint64_t evicted = 0;
            slot = res->allocate(key, true, &evicted);
            if (slot < 0) fail("simulate_trace: layer ", l, " needs more experts at once than its ", o.slots_per_layer, " slots");
          }
          res->pin(slot);
          held.push_back(slot);
        }
        for (int slot : held) res->unpin(slot);
      }
    }
  }
  return r;
}

}  // namespace swapmoe
