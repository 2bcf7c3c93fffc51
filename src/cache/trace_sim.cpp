#include "cache/trace_sim.h"

#include <fstream>
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

SimResult simulate_trace(const RoutingTrace& t, const SimOptions& o, int seq) {
  if (o.slots_per_layer < 1) fail("simulate_trace: slots_per_layer must be >= 1");
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
        for (int32_t e : tok[l]) {
          const uint64_t key = expert_key(l, e);
          int slot = res->find(key);
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
