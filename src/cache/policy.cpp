#include "cache/policy.h"

#include <cmath>
#include <unordered_map>
#include <vector>

#include "util/error.h"

namespace swapmoe {
namespace {

// Per-slot state is kept in vectors indexed by the (global) slot number, grown on first
// use: victim selection scans every candidate, so lookups must be cheap.
template <typename T>
T& at(std::vector<T>& v, int slot) {
  if (static_cast<size_t>(slot) >= v.size()) v.resize(static_cast<size_t>(slot) + 1);
  return v[static_cast<size_t>(slot)];
}

class LruPolicy final : public CachePolicy {
 public:
  const char* name() const override { return "lru"; }
  void on_hit(int slot, uint64_t) override { at(last_, slot) = ++tick_; }
  void on_insert(int slot, uint64_t, bool) override { at(last_, slot) = ++tick_; }
  void on_evict(int slot, uint64_t) override { at(last_, slot) = 0; }
  int choose_victim(std::span<const int> candidates) override {
    int best = candidates[0];
    uint64_t best_t = UINT64_MAX;
    for (int s : candidates) {
      const uint64_t t = at(last_, s);
      if (t < best_t) {
        best_t = t;
        best = s;
      }
    }
    return best;
  }

 private:
  uint64_t tick_ = 0;
  std::vector<uint64_t> last_;
};

// Per-key history shared by the frequency-aware policies. A prefetch inserts a key
// "provisionally": it is treated as used once, and the first demand hit that follows only
// confirms that use instead of counting a second one.
struct KeyHistory {
  double score = 0;    // lfu: decayed access count as of `last`
  uint64_t last = 0;   // tick of the latest access
  uint64_t prev = 0;   // lru2: tick of the access before it (0: none)
  bool provisional = false;
};

// The bookkeeping of LFU and LRU-2: a history per key (kept after eviction, so a key that
// returns is judged by its past) and the history of the key in each slot. Subclasses say
// how a use is counted and which candidate to evict.
class KeyHistoryPolicy : public CachePolicy {
 public:
  void on_hit(int slot, uint64_t key) override { access(slot, key, true); }
  void on_insert(int slot, uint64_t key, bool demand) override { access(slot, key, demand); }
  void on_evict(int slot, uint64_t) override { at(slot_hist_, slot) = nullptr; }

 protected:
  // Counts one use of h at tick `now`; h.last still holds the tick of the previous access.
  virtual void count_use(KeyHistory& h, uint64_t now) = 0;
  const KeyHistory& slot_history(int slot) { return *at(slot_hist_, slot); }

 private:
  void access(int slot, uint64_t key, bool demand) {
    KeyHistory& h = hist_[key];  // unordered_map: references stay valid as it grows
    at(slot_hist_, slot) = &h;
    const uint64_t now = ++tick_;
    if (demand && h.provisional) {
      h.provisional = false;  // this use was already counted when the prefetch arrived
    } else {
      count_use(h, now);
      h.provisional = !demand;
    }
    h.last = now;
  }

  uint64_t tick_ = 0;
  std::unordered_map<uint64_t, KeyHistory> hist_;
  std::vector<KeyHistory*> slot_hist_;  // the history of the key in each slot
};

class LfuDecayPolicy final : public KeyHistoryPolicy {
 public:
  explicit LfuDecayPolicy(double half_life) : half_life_(half_life) {}
  const char* name() const override { return "lfu"; }
  int choose_victim(std::span<const int> candidates) override {
    // Compare decayed scores at the current tick in the log domain:
    //   log2(score * 2^-((now - last) / h)) = log2(score) + last / h - now / h,
    // where the now/h term is common to all candidates and drops out.
    int best = candidates[0];
    double best_v = INFINITY;
    uint64_t best_last = UINT64_MAX;
    for (int s : candidates) {
      const KeyHistory& h = slot_history(s);
      const double v = std::log2(std::max(h.score, 1e-300)) + static_cast<double>(h.last) / half_life_;
      if (v < best_v || (v == best_v && h.last < best_last)) {
        best_v = v;
        best_last = h.last;
        best = s;
      }
    }
    return best;
  }

 private:
  void count_use(KeyHistory& h, uint64_t now) override {
    h.score = h.score * std::exp2(-static_cast<double>(now - h.last) / half_life_) + 1.0;
  }

  double half_life_;
};

class Lru2Policy final : public KeyHistoryPolicy {
 public:
  const char* name() const override { return "lru2"; }
  int choose_victim(std::span<const int> candidates) override {
    int best = candidates[0];
    uint64_t best_prev = UINT64_MAX, best_last = UINT64_MAX;
    for (int s : candidates) {
      const KeyHistory& h = slot_history(s);
      if (h.prev < best_prev || (h.prev == best_prev && h.last < best_last)) {
        best_prev = h.prev;
        best_last = h.last;
        best = s;
      }
    }
    return best;
  }

 private:
  void count_use(KeyHistory& h, uint64_t) override { h.prev = h.last; }
};

// Estimated next use: approximates Belady's OPT under the model that each layer's routing
// is an independent draw with per-expert probabilities p. The forward pass sweeps the
// layers in order, so an expert of layer l is next needed after d steps (d = layers from
// the current one to l, 1..L) if chosen next time, and after L more steps per miss of
// that chance: E[next use] = d + L * (1/p - 1). The candidate with the largest estimate is
// evicted. p is the expert's decayed count of uses over the decayed count of its layer's
// forward steps. In a shared pool this stops LRU's worst habit under a cyclic sweep
// (evicting the layers that come up next); in a per-layer pool d is the same for all
// candidates and it reduces to decayed LFU.
class NextUsePolicy final : public CachePolicy {
 public:
  explicit NextUsePolicy(double half_life_steps) : decay_(std::exp2(-1.0 / half_life_steps)) {}
  const char* name() const override { return "nextuse"; }
  void on_hit(int slot, uint64_t key) override { access(slot, key, true); }
  void on_insert(int slot, uint64_t key, bool demand) override { access(slot, key, demand); }
  void on_evict(int slot, uint64_t) override { at(slot_key_, slot) = UINT64_MAX; }
  void on_step(int layer) override {
    explicit_steps_ = true;
    new_step(layer);
  }
  int choose_victim(std::span<const int> candidates) override {
    const double L = static_cast<double>(layers_.size());
    int best = candidates[0];
    double best_t = -1;
    uint64_t best_tick = UINT64_MAX;
    for (int s : candidates) {
      const uint64_t key = at(slot_key_, s);
      const int layer = key_layer(key);
      const LayerState& ls = layers_[static_cast<size_t>(layer)];
      const Hist& h = hist_[key];
      // Bring the key's count to its layer's current step.
      const double c = h.count * std::pow(decay_, static_cast<double>(ls.steps - h.step));
      const double p = ls.norm > 0 ? std::min(1.0, c / ls.norm) : 0.0;
      int d = layer - cur_layer_;
      if (d <= 0) d += static_cast<int>(L);
      const double t = p > 0 ? d + L * (1.0 / p - 1.0) : INFINITY;
      if (t > best_t || (t == best_t && h.tick < best_tick)) {  // ties: least recently used
        best_t = t;
        best_tick = h.tick;
        best = s;
      }
    }
    return best;
  }

 private:
  struct Hist {
    double count = 0;
    uint64_t step = 0;  // layer step of the latest counted use
    uint64_t tick = 0;  // latest access, for ties
    bool provisional = false;
  };
  struct LayerState {
    uint64_t steps = 0;  // forward steps seen at this layer
    double norm = 0;     // decayed number of steps
  };
  LayerState& layer_state(int layer) {
    if (static_cast<size_t>(layer) >= layers_.size()) layers_.resize(static_cast<size_t>(layer) + 1);
    return layers_[static_cast<size_t>(layer)];
  }
  void new_step(int layer) {
    cur_layer_ = layer;
    LayerState& ls = layer_state(layer);
    ++ls.steps;
    ls.norm = ls.norm * decay_ + 1.0;
  }
  void access(int slot, uint64_t key, bool demand) {
    at(slot_key_, slot) = key;
    const int layer = key_layer(key);
    // Without on_step (plain acquire() use) a change of layer is the best step signal.
    if (demand && !explicit_steps_ && layer != cur_layer_) new_step(layer);
    LayerState& ls = layer_state(layer);
    Hist& h = hist_[key];
    h.tick = ++tick_;
    if (demand && h.provisional) {
      h.provisional = false;
      return;
    }
    h.count = h.count * std::pow(decay_, static_cast<double>(ls.steps - h.step)) + 1.0;
    h.step = ls.steps;
    h.provisional = !demand;
  }

  double decay_;
  bool explicit_steps_ = false;
  uint64_t tick_ = 0;
  int cur_layer_ = -1;
  std::vector<LayerState> layers_;
  std::unordered_map<uint64_t, Hist> hist_;
  std::vector<uint64_t> slot_key_;
};

}  // namespace

std::unique_ptr<CachePolicy> make_policy(const std::string& name, int n_slots, const PolicyOptions& opts) {
  if (name == "lru") return std::make_unique<LruPolicy>();
  if (name == "lfu") {
    const double hl = opts.lfu_half_life > 0 ? opts.lfu_half_life : 16.0 * std::max(n_slots, 1);
    return std::make_unique<LfuDecayPolicy>(hl);
  }
  if (name == "lru2") return std::make_unique<Lru2Policy>();
  if (name == "nextuse") return std::make_unique<NextUsePolicy>(opts.nextuse_half_life > 0 ? opts.nextuse_half_life : 16.0);
  fail("unknown cache policy '", name, "' (use lru, lfu, lru2 or nextuse)");
}

}  // namespace swapmoe
