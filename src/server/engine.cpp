#include "server/engine.h"

#include <algorithm>

#include "runtime/model_budget.h"
#include "util/error.h"

namespace swapmoe::server {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Prompt tokens are evaluated in chunks (forward_batch computes a chunk as a batch) so
// that a cancelled request stops within one chunk instead of after a long prompt, and,
// while other slots are busy, in smaller chunks so that their next tokens are not held up
// for long.
constexpr size_t kPrefillChunk = 256;
constexpr size_t kPrefillChunkShared = 32;
// Continuous batching: a step's token budget. Alone, prompts go in chunks of up to
// kStepTokens; next to decoding slots, kStepPromptTokensShared prompt tokens join their
// decode tokens, so a step with a prompt chunk takes a few decode steps' time, not a
// whole prompt's. Both are capped by what one pass may carry (Model::max_batch_tokens).
constexpr size_t kStepTokens = 256;
constexpr size_t kStepPromptTokensShared = 32;

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

bool Job::wait(std::chrono::milliseconds timeout, TextDelta& out) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return done_ || !pending_.empty(); });
  out.content += pending_.content;
  out.reasoning += pending_.reasoning;
  pending_ = TextDelta{};
  return done_;
}

void Job::publish(const TextDelta& d) {
  if (d.empty()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    pending_.content += d.content;
    pending_.reasoning += d.reasoning;
  }
  cv_.notify_all();
}

void Job::finish(GenResult r) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    result_ = std::move(r);
    done_ = true;
  }
  cv_.notify_all();
}

Engine::Engine(std::unique_ptr<Model> model, int max_queue)
    : Engine(std::move(model), EngineOptions{max_queue, true}) {}

Engine::Engine(std::unique_ptr<Model> model, const EngineOptions& opts)
    : model_(std::move(model)), max_queue_(std::max(1, opts.max_queue)), batching_(opts.batching) {
  slots_.resize(static_cast<size_t>(std::max(1, model_->n_sequences())));
  m_.slots = static_cast<int64_t>(slots_.size());
  last_stats_ = expert_run_stats(*model_);
  snapshot_cache_stats();
  thread_ = std::thread([this] { worker(); });
}

Engine::~Engine() {
  std::deque<std::shared_ptr<Job>> left;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    left.swap(queue_);
    m_.queue_depth = 0;
  }
  cv_.notify_all();
  // The worker finishes the running jobs as cancelled when it sees stop_.
  if (thread_.joinable()) thread_.join();
  for (auto& j : left) {
    GenResult r;
    r.finish_reason = "cancelled";
    j->finish(r);
  }
}

bool Engine::submit(const std::shared_ptr<Job>& job) { return submit(std::vector<std::shared_ptr<Job>>{job}); }

bool Engine::submit(const std::vector<std::shared_ptr<Job>>& jobs) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || queue_.size() + jobs.size() > static_cast<size_t>(max_queue_)) {
      m_.requests_rejected += jobs.size();
      return false;
    }
    for (const auto& job : jobs) {
      job->submitted = Clock::now();
      queue_.push_back(job);
    }
    m_.queue_depth = static_cast<int64_t>(queue_.size());
  }
  cv_.notify_all();
  return true;
}

EngineMetrics Engine::metrics() const {
  std::lock_guard<std::mutex> lk(mu_);
  return m_;
}

void Engine::forget_cache() {
  std::lock_guard<std::mutex> lk(mu_);
  forget_ = true;
}

void Engine::cancel_all() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& slot : slots_)
      if (slot.job) slot.job->cancel();
    for (auto& j : queue_) j->cancel();
  }
  cv_.notify_all();
}

void Engine::snapshot_cache_stats() {
  const ExpertRunStats s = expert_run_stats(*model_);
  if (!s.cached) return;
  std::lock_guard<std::mutex> lk(mu_);
  m_.has_expert_cache = true;
  m_.cache_hits = s.cache.hits;
  m_.cache_misses = s.cache.misses;
  m_.cache_bytes_read = s.cache.bytes_read;
  m_.cache_loads = s.cache.loads;
  m_.speculative_reads = s.cache.speculative_issued;
  m_.speculative_used = s.cache.speculative_used;
  m_.cache_hit_rate = s.cache.hit_rate();
}

int Engine::admit_locked(std::vector<std::shared_ptr<Job>>& dropped) {
  // A job whose client left while it waited never runs.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->cancelled()) {
      dropped.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  if (forget_) {
    for (auto& slot : slots_) slot.forget = true;
    forget_ = false;
  }
  while (!queue_.empty()) {
    // The free slot whose cache shares the longest prefix with the prompt; on a tie the
    // least recently used, so that other conversations' caches survive longer.
    const std::vector<int32_t>& prompt = queue_.front()->request().prompt;
    int best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& sl = slots_[i];
      if (sl.job) continue;
      const size_t len = sl.forget ? 0 : common_prefix(sl.cached, prompt);
      if (best < 0 || len > best_len || (len == best_len && sl.last_used < slots_[static_cast<size_t>(best)].last_used)) {
        best = static_cast<int>(i);
        best_len = len;
      }
    }
    if (best < 0) break;
    slots_[static_cast<size_t>(best)].job = std::move(queue_.front());
    queue_.pop_front();
  }
  int busy = 0;
  for (const auto& slot : slots_) busy += slot.job ? 1 : 0;
  m_.queue_depth = static_cast<int64_t>(queue_.size());
  m_.active = busy;
  return busy;
}

void Engine::worker() {
  for (;;) {
    std::vector<std::shared_ptr<Job>> dropped;
    int busy = 0;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] {
        if (stop_ || !queue_.empty()) return true;
        for (const auto& slot : slots_)
          if (slot.job) return true;
        return false;
      });
      stopping = stop_;
      if (!stopping) busy = admit_locked(dropped);
    }
    for (auto& j : dropped) {
      GenResult r;
      r.finish_reason = "cancelled";
      r.prompt_tokens = static_cast<int64_t>(j->request().prompt.size());
      r.queue_seconds = seconds_since(j->submitted);
      {
        std::lock_guard<std::mutex> lk(mu_);
        ++m_.requests_total;
        ++m_.requests_cancelled;
        m_.prompt_tokens_total += static_cast<uint64_t>(r.prompt_tokens);
      }
      j->finish(std::move(r));
    }
    if (stopping) {
      for (size_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].job) finish(static_cast<int>(i), "cancelled");
      return;
    }
    ++round_;
    if (batching_) {
      step_batched();
      continue;
    }
    // Without batching, one round: every busy slot takes one step, in slot order.
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (!slot.job) continue;
      const int s = static_cast<int>(i);
      try {
        model_->select_sequence(s);
        if (slot.result.slot != s) start(s);
        if (slot.job) step(s, busy);
      } catch (const std::exception& e) {
        // The sequence's KV cache may be half-written: the slot starts over next time.
        if (slot.job) finish(s, "error", e.what());
        slot.cached.clear();
        slot.forget = true;
      }
      slot.last_used = round_;
    }
  }
}

void Engine::count_step(uint64_t tokens, uint64_t decode, double seconds) {
  const ExpertRunStats now = expert_run_stats(*model_);
  const ExpertCacheStats& a = last_stats_.cache;
  const ExpertCacheStats& b = now.cache;
  auto delta = [](uint64_t x, uint64_t y) { return y >= x ? y - x : y; };  // a stats reset restarts the count
  const uint64_t loads = delta(a.loads, b.loads), bytes = delta(a.bytes_read, b.bytes_read);
  const uint64_t hits = delta(a.hits, b.hits), misses = delta(a.misses, b.misses);
  last_stats_ = now;
  std::lock_guard<std::mutex> lk(mu_);
  ++m_.steps_total;
  m_.step_tokens_total += tokens;
  m_.last_step_tokens = tokens;
  m_.last_step_decode = decode;
  m_.last_step_loads = loads;
  m_.last_step_bytes = bytes;
  m_.last_step_hits = hits;
  m_.last_step_misses = misses;
  if (decode > 0) m_.decode_step_seconds += seconds;
  if (decode > 0 && decode < tokens) ++m_.mixed_steps;
  if (decode > 0 && decode == tokens) {
    ++m_.decode_only_steps;
    m_.decode_only_tokens += decode;
    m_.decode_only_loads += loads;
    m_.decode_only_bytes_read += bytes;
    m_.decode_only_hits += hits;
    m_.decode_only_misses += misses;
  }
}

void Engine::step_batched() {
  // Newly admitted jobs start (prefix reuse, sampler); cancelled ones end here.
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.job) continue;
    const int s = static_cast<int>(i);
    try {
      if (slot.result.slot != s) {
        model_->select_sequence(s);
        start(s);
      }
      if (slot.job->cancelled()) finish(s, "cancelled");
    } catch (const std::exception& e) {
      if (slot.job) finish(s, "error", e.what());
      slot.cached.clear();
      slot.forget = true;
    }
  }
  // The step: a decode token of every generating slot, then prompt chunks within the
  // budget, the prompting slots taken in turn from a rotating start so that several long
  // prompts advance together.
  std::vector<SequenceTokens> batch;
  std::vector<int> who;
  size_t n_decode = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = slots_[i];
    if (!slot.job || slot.prefill_next < slot.job->request().prompt.size()) continue;
    batch.push_back({static_cast<int>(i), std::span<const int32_t>(&slot.pending, 1),
                     static_cast<int64_t>(slot.cached.size()), true});
    who.push_back(static_cast<int>(i));
    ++n_decode;
  }
  const size_t cap = static_cast<size_t>(std::max<int64_t>(1, model_->max_batch_tokens()));
  const size_t step_cap = std::min(n_decode > 0 ? n_decode + kStepPromptTokensShared : kStepTokens, std::max(cap, n_decode + 1));
  size_t room = step_cap - n_decode;
  for (size_t k = 0; k < slots_.size() && room > 0; ++k) {
    const size_t i = (k + round_) % slots_.size();
    Slot& slot = slots_[i];
    if (!slot.job) continue;
    const std::vector<int32_t>& prompt = slot.job->request().prompt;
    if (slot.prefill_next >= prompt.size()) continue;
    const size_t len = std::min(prompt.size() - slot.prefill_next, room);
    const bool last = slot.prefill_next + len == prompt.size();
    batch.push_back({static_cast<int>(i), std::span<const int32_t>(prompt.data() + slot.prefill_next, len),
                     static_cast<int64_t>(slot.prefill_next), last});
    who.push_back(static_cast<int>(i));
    room -= len;
  }
  if (batch.empty()) return;
  uint64_t n_tokens = 0;
  for (const SequenceTokens& b : batch) n_tokens += b.tokens.size();

  const auto t0 = Clock::now();
  std::vector<const float*> logits;
  try {
    logits = model_->forward_multi(batch);
  } catch (const std::exception& e) {
    // The step's caches may be half-written: its slots fail and start over next time.
    for (int s : who) {
      Slot& slot = slots_[static_cast<size_t>(s)];
      if (slot.job) finish(s, "error", e.what());
      slot.cached.clear();
      slot.forget = true;
    }
    return;
  }
  const double dt = seconds_since(t0);
  count_step(n_tokens, n_decode, dt);
  const int n_vocab = static_cast<int>(model_->config().n_vocab);
  for (size_t b = 0; b < batch.size(); ++b) {
    const int s = who[b];
    Slot& slot = slots_[static_cast<size_t>(s)];
    slot.last_used = round_;
    slot.cached.insert(slot.cached.end(), batch[b].tokens.begin(), batch[b].tokens.end());
    if (b >= n_decode) {
      // A prompt chunk: the first token is sampled once the prompt is complete.
      slot.prefill_next += batch[b].tokens.size();
      if (!batch[b].want_logits) continue;
      slot.result.prompt_seconds = seconds_since(slot.t_prompt);
      slot.t_decode = Clock::now();
    } else {
      // Shared: another slot's tokens were in the same step.
      const bool shared = batch.size() > 1;
      if (shared) ++slot.result.shared_steps;
      std::lock_guard<std::mutex> lk(mu_);
      ++m_.decode_steps_total;
      if (shared) ++m_.decode_steps_shared;
    }
    if (!accept_token(slot, slot.sampler->sample(logits[b], n_vocab))) finish(s, slot.result.finish_reason);
  }
}

// Takes the job just admitted to slot s: reuses the cached prefix, sets up sampling.
void Engine::start(int s) {
  Slot& slot = slots_[static_cast<size_t>(s)];
  const GenRequest& req = slot.job->request();
  slot.result = GenResult{};
  slot.result.slot = s;
  slot.result.queue_seconds = seconds_since(slot.job->submitted);
  slot.result.prompt_tokens = static_cast<int64_t>(req.prompt.size());
  slot.pending = -1;
  slot.filter = std::make_unique<OutputFilter>(req.stop, req.start_in_think, req.split_think, req.harmony);
  slot.sampler = std::make_unique<Sampler>(req.sampling);
  const auto n_prompt = static_cast<int64_t>(req.prompt.size());
  if (n_prompt == 0) fail("empty prompt");
  if (n_prompt > model_->n_ctx()) fail("the prompt has ", n_prompt, " tokens; the context holds ", model_->n_ctx());
  // Reuse the longest prefix the sequence holds, but evaluate at least the last prompt
  // token: its logits give the first generated token.
  size_t keep = 0;
  if (!slot.forget && static_cast<int64_t>(slot.cached.size()) == model_->n_past())
    keep = std::min(common_prefix(slot.cached, req.prompt), req.prompt.size() - 1);
  slot.forget = false;
  if (keep == 0) {
    model_->reset();
  } else {
    model_->rewind(static_cast<int64_t>(keep));
  }
  slot.cached.resize(keep);
  slot.prefill_next = keep;
  slot.result.prompt_evaluated = n_prompt - static_cast<int64_t>(keep);
  slot.t_prompt = Clock::now();
}

void Engine::step(int s, int busy) {
  Slot& slot = slots_[static_cast<size_t>(s)];
  Job& job = *slot.job;
  if (job.cancelled()) {
    finish(s, "cancelled");
    return;
  }
  const GenRequest& req = job.request();
  const int n_vocab = static_cast<int>(model_->config().n_vocab);
  if (slot.prefill_next < req.prompt.size()) {
    const size_t chunk_len = busy > 1 ? kPrefillChunkShared : kPrefillChunk;
    const size_t i = slot.prefill_next;
    const size_t end = std::min(req.prompt.size(), i + chunk_len);
    std::vector<int32_t> chunk(req.prompt.begin() + static_cast<std::ptrdiff_t>(i),
                               req.prompt.begin() + static_cast<std::ptrdiff_t>(end));
    const auto t_chunk = Clock::now();
    const float* logits = model_->forward_batch(chunk, static_cast<int64_t>(i));
    count_step(chunk.size(), 0, seconds_since(t_chunk));
    slot.cached.insert(slot.cached.end(), chunk.begin(), chunk.end());
    slot.prefill_next = end;
    if (end < req.prompt.size()) return;
    slot.result.prompt_seconds = seconds_since(slot.t_prompt);
    slot.t_decode = Clock::now();
    // The logits are valid until the next forward, which may be another slot's: sample now.
    if (!accept_token(slot, slot.sampler->sample(logits, n_vocab))) finish(s, slot.result.finish_reason);
    return;
  }
  const auto t0 = Clock::now();
  const int32_t id = slot.pending;
  const float* logits = model_->forward(id, static_cast<int64_t>(slot.cached.size()));
  slot.cached.push_back(id);
  const int32_t next = slot.sampler->sample(logits, n_vocab);
  const double dt = seconds_since(t0);
  if (busy > 1) ++slot.result.shared_steps;
  count_step(1, 1, dt);
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++m_.decode_steps_total;
    if (busy > 1) ++m_.decode_steps_shared;
  }
  if (!accept_token(slot, next)) finish(s, slot.result.finish_reason);
}

bool Engine::accept_token(Slot& slot, int32_t id) {
  GenResult& r = slot.result;
  const GenRequest& req = slot.job->request();
  const Tokenizer& tok = model_->tokenizer();
  if (tok.is_eog(id)) {
    r.finish_reason = "stop";
    return false;
  }
  r.tokens.push_back(id);
  ++r.completion_tokens;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++m_.tokens_sampled_total;
  }
  TextDelta d;
  // Control tokens (<|im_start|> and the like) are markup, not text for the user.
  if (!tok.is_control(id)) slot.filter->push(tok.token_to_piece(id), d);
  slot.job->publish(d);
  if (slot.filter->stopped()) {
    r.finish_reason = "stop";
    return false;
  }
  if (req.max_tokens >= 0 && r.completion_tokens >= req.max_tokens) {
    r.finish_reason = "length";
    return false;
  }
  // The sampled token goes at position cached.size(); it needs room in the context.
  if (static_cast<int64_t>(slot.cached.size()) >= model_->n_ctx()) {
    r.finish_reason = "length";
    return false;
  }
  slot.pending = id;
  return true;
}

void Engine::finish(int s, std::string reason, const std::string& error) {
  Slot& slot = slots_[static_cast<size_t>(s)];
  GenResult r = std::move(slot.result);
  r.finish_reason = std::move(reason);
  r.error = error;
  r.slot = s;
  if (r.prompt_tokens == 0) r.prompt_tokens = static_cast<int64_t>(slot.job->request().prompt.size());
  if (slot.pending >= 0 || r.completion_tokens > 0) r.decode_seconds = seconds_since(slot.t_decode);
  if (r.finish_reason == "error") r.prompt_evaluated = 0;
  if (slot.filter) {
    TextDelta d;
    slot.filter->finish(d);
    slot.job->publish(d);
  }
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lk(mu_);
    job = std::move(slot.job);
    slot.job.reset();
    ++m_.requests_total;
    if (r.finish_reason == "cancelled") ++m_.requests_cancelled;
    if (r.finish_reason == "error") ++m_.requests_failed;
    m_.prompt_tokens_total += static_cast<uint64_t>(r.prompt_tokens);
    m_.prompt_tokens_evaluated += static_cast<uint64_t>(std::max<int64_t>(0, r.prompt_evaluated));
    m_.tokens_generated_total += static_cast<uint64_t>(r.completion_tokens);
    m_.decode_seconds_total += r.decode_seconds;
    m_.prompt_seconds_total += r.prompt_seconds;
    if (r.completion_tokens > 1 && r.decode_seconds > 0)
      m_.last_tokens_per_second = static_cast<double>(r.completion_tokens - 1) / r.decode_seconds;
    --m_.active;
  }
  slot.result = GenResult{};
  slot.filter.reset();
  slot.sampler.reset();
  slot.pending = -1;
  snapshot_cache_stats();
  job->finish(std::move(r));
}

}  // namespace swapmoe::server
