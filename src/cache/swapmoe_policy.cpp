#include "cache/swapmoe_policy.h"

#include <algorithm>
#include <numeric>

#include "util/error.h"

namespace swapmoe {

void update_importance(std::vector<double>& importance, const float* probs, const int32_t* chosen, int64_t k,
                       bool normalise, double gamma) {
  const size_t n = importance.size();
  double scale = 1.0;
  if (normalise) {
    double sum = 0.0;
    for (size_t e = 0; e < n; ++e) sum += static_cast<double>(probs[e]);
    scale = sum > 0.0 ? 1.0 / sum : 0.0;
  }
  for (size_t e = 0; e < n; ++e) importance[e] *= gamma;
  for (int64_t j = 0; j < k; ++j) {
    const auto e = static_cast<size_t>(chosen[j]);
    if (e < n) importance[e] += scale * static_cast<double>(probs[e]);
  }
}

std::vector<int64_t> apportion_slots(int64_t total, const std::vector<double>& weight, int64_t lo, int64_t hi) {
  const int64_t n = static_cast<int64_t>(weight.size());
  if (n == 0) return {};
  if (lo > hi) fail("apportion_slots: minimum ", lo, " above maximum ", hi);
  if (total < n * lo) fail("apportion_slots: ", total, " slots cannot give ", n, " layers ", lo, " each");
  total = std::min(total, n * hi);
  std::vector<int64_t> s(static_cast<size_t>(n), lo);
  int64_t left = total - n * lo;
  // Layer order for rounding leftovers: largest weight first, lowest index on ties.
  std::vector<size_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return weight[a] > weight[b]; });
  while (left > 0) {
    double wsum = 0.0;
    int64_t n_open = 0;
    for (int64_t l = 0; l < n; ++l)
      if (s[l] < hi) {
        wsum += std::max(0.0, weight[l]);
        ++n_open;
      }
    if (n_open == 0) break;
    int64_t given = 0;
    for (int64_t l = 0; l < n; ++l) {
      if (s[l] >= hi) continue;
      const double w = wsum > 0.0 ? std::max(0.0, weight[l]) / wsum : 1.0 / static_cast<double>(n_open);
      const int64_t add = std::min(hi - s[l], static_cast<int64_t>(static_cast<double>(left) * w));
      s[l] += add;
      given += add;
    }
    if (given == 0) {
      // Every share rounded down to 0: one slot each to the heaviest open layers.
      for (size_t l : order) {
        if (left - given == 0) break;
        if (s[l] < hi) {
          ++s[l];
          ++given;
        }
      }
    }
    left -= given;
  }
  return s;
}

int64_t experts_to_cover(const std::vector<double>& mass, double share) {
  std::vector<double> m(mass);
  std::sort(m.begin(), m.end(), std::greater<double>());
  const double total = std::accumulate(m.begin(), m.end(), 0.0);
  if (total <= 0.0) return static_cast<int64_t>(m.size());
  double acc = 0.0;
  for (size_t i = 0; i < m.size(); ++i) {
    acc += m[i];
    if (acc >= share * total) return static_cast<int64_t>(i + 1);
  }
  return static_cast<int64_t>(m.size());
}

}  // namespace swapmoe
