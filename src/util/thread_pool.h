#pragma once
// A persistent pool of worker threads. parallel_for splits [0, n) into one contiguous
// range per thread; the calling thread takes the first range itself, so a pool of
// size 1 runs everything inline with no synchronisation at all. Threads are created
// once; each call costs one wake-up and one join barrier.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace swapmoe {

class ThreadPool {
 public:
  // n_threads <= 0 means all hardware threads.
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

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int, int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace swapmoe
