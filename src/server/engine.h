#pragma once
// The generation engine behind `swapmoe serve` and `swapmoe chat`: one Model, one worker
// thread that owns it, and a FIFO queue of jobs in front of it.
//
// Why one request at a time: a Model holds a single KV cache and is not thread-safe.
// Interleaving requests token by token would need each request's KV state saved and
// restored (the Model cannot) or recomputed at every switch (quadratic cost), so requests
// are served strictly in arrival order, each to completion, cancellation or error. That is
// fair (first come, first served; nobody overtakes) and correct. --parallel N is the
// number of logical slots reported to clients; it becomes real concurrency when the Model
// gains per-sequence KV state.
//
// Prefix reuse: the worker remembers which tokens the KV cache holds. When a new prompt
// begins with exactly those tokens (the next turn of the same conversation), only the new
// tokens are evaluated.
//
// Threads: submit(), Job's consumer side and metrics() may be called from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/model.h"
#include "sample/sampler.h"
#include "server/output_filter.h"

namespace swapmoe::server {

struct GenRequest {
  std::vector<int32_t> prompt;   // full prompt, BOS included when the model wants one
  SamplerParams sampling;
  int64_t max_tokens = -1;       // < 0: until end-of-generation or a full context
  std::vector<std::string> stop;
  bool start_in_think = false;   // the prompt ends inside a <think> block
  bool split_think = true;       // route <think>...</think> to reasoning
};

struct GenResult {
  std::string finish_reason;     // "stop", "length", "cancelled" or "error"
  std::string error;             // message when finish_reason == "error"
  int64_t prompt_tokens = 0;
  int64_t prompt_evaluated = 0;  // prompt tokens actually computed (the rest were reused)
  int64_t completion_tokens = 0;
  double queue_seconds = 0;
  double prompt_seconds = 0;
  double decode_seconds = 0;
  std::vector<int32_t> tokens;   // generated ids (ollama's `context` wants them)
};

// One request's life: the submitter fills `request`, the worker streams text into it,
// the consumer collects text with wait() until done.
class Job {
 public:
  explicit Job(GenRequest r) : request_(std::move(r)) {}

  const GenRequest& request() const { return request_; }
  void cancel() { cancelled_ = true; cv_.notify_all(); }
  bool cancelled() const { return cancelled_; }

  // Waits up to `timeout` for new text or the end; moves new text into `out`. Returns true
  // once the job is finished (all its text delivered).
  bool wait(std::chrono::milliseconds timeout, TextDelta& out);
  // Valid once wait() returned true.
  const GenResult& result() const { return result_; }

  // Worker side.
  void publish(const TextDelta& d);
  void finish(GenResult r);
  std::chrono::steady_clock::time_point submitted;

 private:
  GenRequest request_;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  TextDelta pending_;
  bool done_ = false;
  GenResult result_;
};

struct EngineMetrics {
  uint64_t requests_total = 0;      // jobs finished in any way
  uint64_t requests_cancelled = 0;
  uint64_t requests_failed = 0;
  uint64_t requests_rejected = 0;   // queue full
  uint64_t prompt_tokens_total = 0;
  uint64_t prompt_tokens_evaluated = 0;
  uint64_t tokens_generated_total = 0;
  double decode_seconds_total = 0;
  double prompt_seconds_total = 0;
  double last_tokens_per_second = 0;  // decode rate of the last finished request
  int64_t queue_depth = 0;          // waiting, not yet started
  int64_t active = 0;               // being generated (0 or 1)
  // Expert cache (zero when the model keeps all experts resident).
  bool has_expert_cache = false;
  uint64_t cache_hits = 0, cache_misses = 0, cache_bytes_read = 0, cache_loads = 0;
  double cache_hit_rate = 0;
};

class Engine {
 public:
  // max_queue: jobs allowed to wait; submit() refuses more.
  Engine(std::unique_ptr<Model> model, int max_queue);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The model, for immutable things only (config, tokenizer, file): never forward() it.
  const Model& model() const { return *model_; }
  // Queues a job; returns false (and counts a rejection) when the queue is full.
  bool submit(const std::shared_ptr<Job>& job);
  EngineMetrics metrics() const;
  // Makes the next job start from an empty KV cache (swapmoe chat's /reset).
  void forget_cache();
  // Cancels the running job and every queued one (server shutdown).
  void cancel_all();

 private:
  void worker();
  void run_job(Job& job);
  void snapshot_cache_stats();

  std::unique_ptr<Model> model_;
  const int max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::shared_ptr<Job> current_;
  bool stop_ = false;
  bool forget_ = false;
  EngineMetrics m_;
  std::vector<int32_t> cached_;  // tokens the KV cache holds (worker thread only)
  std::thread thread_;
};

}  // namespace swapmoe::server
