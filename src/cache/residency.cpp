#include "cache/residency.h"

#include "util/error.h"

namespace swapmoe {

Residency::Residency(const std::vector<int>& pool_sizes, const std::vector<int>& layer_pool, const std::string& policy,
                     const PolicyOptions& popts)
    : pool_sizes_(pool_sizes), layer_pool_(layer_pool) {
  int begin = 0;
  for (size_t p = 0; p < pool_sizes.size(); ++p) {
    if (pool_sizes[p] < 0) fail("cache pool ", p, " has a negative size");
    pool_begin_.push_back(begin);
    policies_.push_back(make_policy(policy, pool_sizes[p], popts));
    free_.emplace_back();
    // Free slots are taken from the back, so push them in reverse to fill slot 0 first.
    for (int i = pool_sizes[p] - 1; i >= 0; --i) free_.back().push_back(begin + i);
    for (int i = 0; i < pool_sizes[p]; ++i) {
      Slot s;
      s.pool = static_cast<int>(p);
      slots_.push_back(s);
    }
    begin += pool_sizes[p];
  }
  for (size_t l = 0; l < layer_pool.size(); ++l)
    if (layer_pool[l] >= static_cast<int>(pool_sizes.size())) fail("layer ", l, " maps to missing cache pool ", layer_pool[l]);
}

int Residency::pool_of_layer(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(layer_pool_.size()) || layer_pool_[layer] < 0)
    fail("expert cache: layer ", layer, " has no experts");
  return layer_pool_[layer];
}

int Residency::find(uint64_t key) const {
  auto it = where_.find(key);
  return it == where_.end() ? -1 : it->second;
}

void Residency::begin_step(int layer) {
  policies_[pool_of_layer(layer)]->on_step(layer);
  if (static_cast<size_t>(layer) >= layer_steps_.size()) layer_steps_.resize(static_cast<size_t>(layer) + 1, 0);
  ++layer_steps_[static_cast<size_t>(layer)];
}

namespace {
uint64_t step_of(const std::vector<uint64_t>& steps, uint64_t key) {
  const auto l = static_cast<size_t>(key_layer(key));
  return l < steps.size() ? steps[l] : 0;
}
}  // namespace

bool Residency::cold(int slot) const {
  const Slot& s = slots_[slot];
  return s.key != kEmpty && s.used_step < step_of(layer_steps_, s.key);
}

void Residency::touch(int slot) {
  Slot& s = slots_[slot];
  s.used_step = step_of(layer_steps_, s.key);
  policies_[s.pool]->on_hit(slot, s.key);
}

int Residency::allocate(uint64_t key, bool demand, uint64_t* evicted, Victims victims) {
  const int pool = pool_of_layer(key_layer(key));
  *evicted = kEmpty;
  int s = -1;
  if (!free_[pool].empty()) {
    s = free_[pool].back();
    free_[pool].pop_back();
  } else {
    scratch_.clear();
    for (int i = pool_begin_[pool]; i < pool_begin_[pool] + pool_sizes_[pool]; ++i) {
      const Slot& c = slots_[i];
      if (c.key != kEmpty && c.pins == 0 && !c.loading && (victims == Victims::Any || cold(i))) scratch_.push_back(i);
    }
    if (scratch_.empty()) return -1;
    s = policies_[pool]->choose_victim(scratch_);
    *evicted = slots_[s].key;
    policies_[pool]->on_evict(s, slots_[s].key);
    where_.erase(slots_[s].key);
  }
  slots_[s].key = key;
  slots_[s].pins = 0;
  slots_[s].loading = false;
  slots_[s].used_step = demand ? step_of(layer_steps_, key) : 0;
  where_[key] = s;
  policies_[pool]->on_insert(s, key, demand);
  return s;
}

void Residency::remove(int slot) {
  Slot& s = slots_[slot];
  if (s.key == kEmpty) return;
  if (s.pins != 0) fail("expert cache: removing pinned slot ", slot);
  policies_[s.pool]->on_evict(slot, s.key);
  where_.erase(s.key);
  s.key = kEmpty;
  s.loading = false;
  free_[s.pool].push_back(slot);
}

void Residency::unpin(int slot) {
  if (slots_[slot].pins <= 0) fail("expert cache: unpinning slot ", slot, " which is not pinned");
  --slots_[slot].pins;
}

int Residency::pinned_in_pool(int pool) const {
  int n = 0;
  for (int i = pool_begin_[pool]; i < pool_begin_[pool] + pool_sizes_[pool]; ++i) n += slots_[i].pins > 0;
  return n;
}

}  // namespace swapmoe
