#pragma once
// Dynamic work distribution over a thread pool, for the products of ops/.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>

#include "util/thread_pool.h"

namespace swapmoe {

// Calls fn(b, e) for ranges covering [0, total), handed out dynamically: each thread takes
// the next chunk (a multiple of grain, about total / (chunks_per_thread * threads)) from an
// atomic counter until none is left. On a machine shared with other work, a thread that
// was descheduled simply takes fewer chunks instead of making the others wait at the join
// (a static split waits for the slowest thread). Which thread computes an item does not
// change its result.
inline void dynamic_for(int64_t total, int64_t grain, ThreadPool& pool, const std::function<void(int64_t, int64_t)>& fn,
                        int64_t chunks_per_thread = 8) {
  const int threads = pool.size();
  if (threads <= 1 || total <= grain) {
    if (total > 0) fn(0, total);
    return;
  }
  int64_t chunk = (total + chunks_per_thread * threads - 1) / (chunks_per_thread * threads);
  chunk = std::max(grain, (chunk + grain - 1) / grain * grain);
  std::atomic<int64_t> next{0};
  pool.run_on_all([&](int, int) {
    for (;;) {
      const int64_t b = next.fetch_add(chunk, std::memory_order_relaxed);
      if (b >= total) break;
      fn(b, std::min(total, b + chunk));
    }
  });
}

}  // namespace swapmoe
