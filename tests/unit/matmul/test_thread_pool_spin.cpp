// The thread pool's spin-then-sleep hand-off (util/thread_pool.cpp): many back-to-back
// regions (the spinning path), regions after pauses long enough for the workers to fall
// asleep (the condition-variable path), and every thread count. Each region must see all
// of the previous region's writes and cover [0, n) exactly once.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "util/thread_pool.h"

namespace swapmoe {
namespace {

TEST(ThreadPoolSpin, BackToBackAndAfterSleepRegionsCoverEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    std::vector<int> v(1000, 0);
    for (int it = 0; it < 400; ++it) {
      pool.parallel_for(1000, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; ++i) v[i] += 1;
      }, 16);
      // Every element incremented exactly once per region, and visible to this thread.
      ASSERT_EQ(v[0], it + 1);
      ASSERT_EQ(v[999], it + 1);
      if (it % 100 == 50) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // > the spin budget
    }
    for (int x : v) ASSERT_EQ(x, 400);
  }
}

TEST(ThreadPoolSpin, RunOnAllReachesEveryThread) {
  ThreadPool pool(4);
  for (int it = 0; it < 200; ++it) {
    std::atomic<int> mask{0};
    pool.run_on_all([&](int t, int n) {
      EXPECT_EQ(n, 4);
      mask.fetch_or(1 << t);
    });
    ASSERT_EQ(mask.load(), 0xF);
  }
}

}  // namespace
}  // namespace swapmoe
