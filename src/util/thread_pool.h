#pragma once
// A persistent pool of worker threads. parallel_for splits [0, n) into one contiguous
// range per thread; the calling thread takes the first range itself, so a pool of
// size 1 runs everything inline with no synchronisation at all. Threads are created
// once; each call costs one wake-up and one join barrier.
//
// Wake-up cost: a decode step issues hundreds of parallel regions a few microseconds
// apart, and a condition-variable wake-up costs ~5-20 us (futex + scheduler). So idle
// workers first spin on an atomic for a short while (SWAPMOE_SPIN_US, default 50 us;
// 0 disables) and only then sleep; the caller likewise spins before blocking on the join.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace swapmoe {

// The thread count the engine runs with for a requested n: n itself when positive, else all
// hardware threads (at least 1). ThreadPool and the planners that must predict its size
// share it.
// Throws Error when n exceeds max_thread_count().
int resolve_thread_count(int n);

// The most threads a pool may have: 8 per hardware thread, at least 64. More only adds
// context switches, and `-t 1000000` used to hang the process while it tried to start them.
int max_thread_count();

class ThreadPool {
 public:
  // n_threads <= 0 means all hardware threads. Throws Error above max_thread_count() or when
  // the system refuses to start a thread (the ones already started are joined first).
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // fn(begin, end, thread_index) is called for disjoint ranges covering [0, n).
  // Ranges are rounded to multiples of `grain` (except the last).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain = 1);

  // fn(thread_index, n_threads) on every thread, for work that partitions itself.
  void run_on_all(const std::function<void(int, int)>& fn);

 private:
  void worker(int index);
  void stop_workers();

  int n_threads_;
  std::vector<std::thread> workers_;
  // Spins until pred() holds or the spin budget is spent; returns pred().
  template <typename Pred>
  bool spin_until(Pred pred) const;

  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  // job_ is written before generation_ is bumped (release) and read after it is seen (acquire).
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  int64_t spin_ns_ = 50000;
};

}  // namespace swapmoe
