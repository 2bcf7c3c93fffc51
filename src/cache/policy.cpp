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

class LfuDecayPolicy final : public CachePolicy {
 public:
  explicit LfuDecayPolicy(double half_life) : half_life_(half_life) {}
  const char* name() const override { return "lfu"; }
  void on_hit(int slot, uint64_t key) override { access(slot, key, true); }
  void on_insert(int slot, uint64_t key, bool demand) override { access(slot, key, demand); }
  void on_evict(int slot, uint64_t) override { at(slot_hist_, slot) = nullptr; }
  int choose_victim(std::span<const int> candidates) override {
    // Compare decayed scores at the current tick in the log domain:
    //   log2(score * 2^-((now - last) / h)) = log2(score) + last / h - now / h,
    // where the now/h term is common to all candidates and drops out.
    int best = candidates[0];
    double best_v = INFINITY;
    uint64_t best_last = UINT64_MAX;
    for (int s : candidates) {
      const KeyHistory& h = *at(slot_hist_, s);
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
  void access(int slot, uint64_t key, bool demand) {
    KeyHistory& h = hist_[key];  // unordered_map: references stay valid as it grows
    at(slot_hist_, slot) = &h;
    const uint64_t now = ++tick_;
    if (demand && h.provisional) {
      h.provisional = false;  // this use was already counted when the prefetch arrived
    } else {
      h.score = h.score * std::exp2(-static_cast<double>(now - h.last) / half_life_) + 1.0;
      h.provisional = !demand;
    }
    h.last = now;
  }

  double half_life_;
  uint64_t tick_ = 0;
  std::unordered_map<uint64_t, KeyHistory> hist_;
  std::vector<KeyHistory*> slot_hist_;  // the history of the key in each slot
};

class Lru2Policy final : public CachePolicy {
 public:
  const char* name() const override { return "lru2"; }
  void on_hit(int slot, uint64_t key) override { access(slot, key, true); }
  void on_insert(int slot, uint64_t key, bool demand) override { access(slot, key, demand); }
  void on_evict(int slot, uint64_t) override { at(slot_hist_, slot) = nullptr; }
  int choose_victim(std::span<const int> candidates) override {
    int best = candidates[0];
    uint64_t best_prev = UINT64_MAX, best_last = UINT64_MAX;
    for (int s : candidates) {
      const KeyHistory& h = *at(slot_hist_, s);
      if (h.prev < best_prev || (h.prev == best_prev && h.last < best_last)) {
        best_prev = h.prev;
        best_last = h.last;
        best = s;
      }
    }
    return best;
  }

 private:
  void access(int slot, uint64_t key, bool demand) {
    KeyHistory& h = hist_[key];  // unordered_map: references stay valid as it grows
    at(slot_hist_, slot) = &h;
    const uint64_t now = ++tick_;
    if (demand && h.provisional) {
      h.provisional = false;
    } else {
      h.prev = h.last;
      h.provisional = !demand;
    }
    h.last = now;
  }

  uint64_t tick_ = 0;
  std::unordered_map<uint64_t, KeyHistory> hist_;
  std::vector<KeyHistory*> slot_hist_;  // the history of the key in each slot
};

}  // namespace

std::unique_ptr<CachePolicy> make_policy(const std::string& name, int n_slots, const PolicyOptions& opts) {
  if (name == "lru") return std::make_unique<LruPolicy>();
  if (name == "lfu") {
    const double hl = opts.lfu_half_life > 0 ? opts.lfu_half_life : 16.0 * std::max(n_slots, 1);
    return std::make_unique<LfuDecayPolicy>(hl);
  }
  if (name == "lru2") return std::make_unique<Lru2Policy>();
  fail("unknown cache policy '", name, "' (use lru, lfu or lru2)");
}

}  // namespace swapmoe
