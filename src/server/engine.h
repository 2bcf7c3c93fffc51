#pragma once
// The generation engine behind `swapmoe serve` and `swapmoe chat`: one Model with N
// sequences (ModelOptions::n_sequences, `--parallel N`), one worker thread that owns it,
// and a FIFO queue of jobs in front of it.
//
// Slots: each model sequence is a slot with its own KV cache. A queued job takes a free
// slot (the one whose cached tokens share the longest prefix with its prompt, else the
// least recently used); when every slot is busy it waits in the queue, in arrival order.
//
// Continuous batching: the worker runs steps. A step is ONE forward pass
// (Model::forward_multi) over the busy slots' next tokens: one decode token for every
// generating slot, plus prompt chunks of the slots still reading their prompts, within a
// per-step token budget (kStepTokens when nothing decodes, kStepPromptTokensShared prompt
// tokens next to decoding slots), so a long prompt is prefilled over several steps while
// the others keep decoding. The products of a step run over all its tokens, attention per
// sequence against its own cache, and each MoE expert once over every token that chose it
// (under --mem: read once for all slots). New jobs join between steps. Each slot keeps its
// own sampler, stop rules, KV cache and cancellation, and a token's logits do not depend
// on the other tokens of its step (tested: every answer is identical to the request run
// alone, greedy and seeded). EngineOptions::batching = false (serve --no-batching) runs
// the old way instead: the busy slots take turns, one step each per round.
// Prefix reuse: each slot remembers which tokens its KV cache holds. A new prompt that
// shares a prefix with them (the next turn of the same conversation, the same system
// prompt) evaluates only the rest.
//
// Cancellation: a cancelled job (its client disconnected) ends at its next step and frees
// its slot; a cancelled job still in the queue is dropped at the next round.
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
  bool harmony = false;          // the reply is in harmony format (gpt-oss): route its channels
  std::shared_ptr<void> hold;    // kept until the job is destroyed (the server's model lease)
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
  int slot = -1;                 // the slot (model sequence) that ran it
  int64_t shared_steps = 0;      // its decode steps taken while another slot was busy too
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

struct EngineOptions {
  int max_queue = 64;     // jobs allowed to wait; submit() refuses more
  bool batching = true;   // one forward pass per step for all slots (else slots take turns)
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
  int64_t active = 0;               // being generated (busy slots)
  int64_t slots = 1;                // model sequences
  uint64_t decode_steps_total = 0;  // decode tokens evaluated
  uint64_t decode_steps_shared = 0; // of those, taken while two or more slots were busy
  double decode_step_seconds = 0;   // time inside decode steps (overlapping requests counted once)
  // Steps (forward passes of the batching engine; without batching, one per slot turn).
  uint64_t steps_total = 0;
  uint64_t step_tokens_total = 0;     // tokens evaluated in them (prompt and decode)
  uint64_t tokens_sampled_total = 0;  // tokens generated so far (finished or not)
  uint64_t mixed_steps = 0;           // steps holding prompt and decode tokens together
  // Steps that decoded only (no prompt tokens): their count, decode tokens, and the expert
  // cache's figures during them; the per-step and per-token read figures come from these.
  uint64_t decode_only_steps = 0, decode_only_tokens = 0;
  uint64_t decode_only_loads = 0, decode_only_bytes_read = 0, decode_only_hits = 0, decode_only_misses = 0;
  // The last step: tokens, decode tokens, experts read, bytes read, hits and misses.
  uint64_t last_step_tokens = 0, last_step_decode = 0, last_step_loads = 0, last_step_bytes = 0;
  uint64_t last_step_hits = 0, last_step_misses = 0;
  // Expert cache (zero when the model keeps all experts resident).
  bool has_expert_cache = false;
  uint64_t cache_hits = 0, cache_misses = 0, cache_bytes_read = 0, cache_loads = 0;
  uint64_t speculative_reads = 0, speculative_used = 0;  // idle-disk reads into spare buffers
  double cache_hit_rate = 0;
};

class Engine {
 public:
  // max_queue: jobs allowed to wait; submit() refuses more.
  Engine(std::unique_ptr<Model> model, int max_queue);
  Engine(std::unique_ptr<Model> model, const EngineOptions& opts);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The model, for immutable things only (config, tokenizer, file, n_ctx): never forward() it.
  const Model& model() const { return *model_; }
  int n_slots() const { return static_cast<int>(slots_.size()); }
  // Queues a job; returns false (and counts a rejection) when the queue is full.
  bool submit(const std::shared_ptr<Job>& job);
  // Queues several jobs at once, all or none, so that free slots start them in the same
  // round (tests of interleaving rely on it).
  bool submit(const std::vector<std::shared_ptr<Job>>& jobs);
  EngineMetrics metrics() const;
  // Makes the next jobs start from empty KV caches (swapmoe chat's /reset).
  void forget_cache();
  // Cancels the running jobs and every queued one (server shutdown).
  void cancel_all();

 private:
  // One model sequence and the job it runs. Worker thread only, except `job`, which
  // cancel_all() reads under mu_.
  struct Slot {
    std::shared_ptr<Job> job;
    std::vector<int32_t> cached;   // tokens the sequence's KV cache holds
    uint64_t last_used = 0;        // round of its last step (least recently used goes first)
    bool forget = false;           // start the next job from an empty cache
    // The running job's state.
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<OutputFilter> filter;
    GenResult result;
    size_t prefill_next = 0;       // next prompt index to evaluate
    int32_t pending = -1;          // sampled token to evaluate at the next step (-1: none)
    std::chrono::steady_clock::time_point t_prompt, t_decode;
  };

  void worker();
  // Moves queued jobs into free slots and drops cancelled queued ones; returns the number
  // of busy slots. Called with mu_ held.
  int admit_locked(std::vector<std::shared_ptr<Job>>& dropped);
  void start(int s);
  // One step of slot s (selected in the model): a prompt chunk or a decode token.
  void step(int s, int busy);
  // One batched step over every busy slot (continuous batching).
  void step_batched();
  // Counts a step of `tokens` tokens (`decode` of them decode tokens) and the expert
  // cache's figures since the previous step.
  void count_step(uint64_t tokens, uint64_t decode, double seconds);
  // Handles a freshly sampled token; returns false when the job is over.
  bool accept_token(Slot& slot, int32_t id);
  void finish(int s, std::string reason, const std::string& error = {});
  void snapshot_cache_stats();

  std::unique_ptr<Model> model_;
  const int max_queue_;
  const bool batching_;
  ExpertRunStats last_stats_;  // the store's figures after the previous step
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::vector<Slot> slots_;
  uint64_t round_ = 0;
  bool stop_ = false;
  bool forget_ = false;
  EngineMetrics m_;
  std::thread thread_;
};

}  // namespace swapmoe::server
