#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <system_error>

#include "util/error.h"

namespace swapmoe {

int max_thread_count() {
  return static_cast<int>(std::max(64u, 8u * std::max(1u, std::thread::hardware_concurrency())));
}

int resolve_thread_count(int n) {
  if (n > max_thread_count())
    fail("--threads ", n, ": at most ", max_thread_count(), " (8 per hardware thread; this machine has ",
         std::max(1u, std::thread::hardware_concurrency()), ")");
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

ThreadPool::ThreadPool(int n_threads) {
  n_threads_ = resolve_thread_count(n_threads);
  if (const char* s = std::getenv("SWAPMOE_SPIN_US")) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end != s && v >= 0) spin_ns_ = std::min<long>(v, 1000000) * 1000;  // at most 1 s; bad values keep the default
  }
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  try {
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
  } catch (const std::system_error& e) {
    // The destructor does not run for a half-built object: stop and join what started.
    const size_t started = workers_.size();
    stop_workers();
    fail("cannot start worker thread ", started + 1, " of ", n_threads_, ": ", e.what());
  }
}

void ThreadPool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

ThreadPool::~ThreadPool() { stop_workers(); }

template <typename Pred>
bool ThreadPool::spin_until(Pred pred) const {
  if (pred()) return true;
  if (spin_ns_ <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(spin_ns_);
  for (;;) {
    // sched_yield rather than a pause loop: on an idle core it returns at once (a spin
    // of ~0.2 us per turn), but on an oversubscribed machine it hands the core to a
    // runnable thread, often the very one we wait for; a pure pause spin measured 15x
    // slower per region there (2 busy cores shared by many processes).
    for (int i = 0; i < 8; ++i) {
      std::this_thread::yield();
      if (pred()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto ready = [&] { return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_start_.wait(lock, ready);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_.load(std::memory_order_acquire);
    const std::function<void(int, int)>* job = job_;
    (*job)(index, n_threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Last one out: wake the caller in case it stopped spinning. Taking the lock
      // orders this notify after the caller's predicate check (no lost wake-up).
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // Under the lock so a worker between its predicate check and its wait cannot miss it.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  fn(0, n_threads_);
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, done);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t chunks = (n + grain - 1) / grain;
  const int used = static_cast<int>(std::min<int64_t>(n_threads_, chunks));
  if (used <= 1) {
    fn(0, n, 0);
    return;
  }
  run_on_all([&](int t, int) {
    if (t >= used) return;
    const int64_t c0 = chunks * t / used, c1 = chunks * (t + 1) / used;
    const int64_t b = c0 * grain, e = std::min(n, c1 * grain);
    if (b < e) fn(b, e, t);
  });
}

}  // namespace swapmoe
