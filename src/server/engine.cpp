#include "server/engine.h"

#include <algorithm>

#include "cache/expert_cache.h"
#include "model/model_impl.h"
#include "util/error.h"

namespace swapmoe::server {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Prompt tokens are evaluated in chunks so that a cancelled request stops within one
// chunk instead of after a long prompt.
constexpr size_t kPrefillChunk = 64;

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
    : model_(std::move(model)), max_queue_(std::max(1, max_queue)) {
  snapshot_cache_stats();
  thread_ = std::thread([this] { worker(); });
}

Engine::~Engine() {
  std::deque<std::shared_ptr<Job>> left;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    left.swap(queue_);
    if (current_) current_->cancel();  // the running job ends at its next token
  }
  cv_.notify_all();
  for (auto& j : left) {
    GenResult r;
    r.finish_reason = "cancelled";
    j->finish(r);
  }
  if (thread_.joinable()) thread_.join();
}

bool Engine::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ || static_cast<int>(queue_.size()) >= max_queue_) {
      ++m_.requests_rejected;
      return false;
    }
    job->submitted = Clock::now();
    queue_.push_back(job);
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
  std::lock_guard<std::mutex> lk(mu_);
  if (current_) current_->cancel();
  for (auto& j : queue_) j->cancel();
}

void Engine::snapshot_cache_stats() {
  auto* impl = dynamic_cast<ModelImpl*>(model_.get());
  auto* cache = impl ? dynamic_cast<ExpertCache*>(&impl->experts()) : nullptr;
  if (!cache) return;
  const ExpertCacheStats s = cache->stats();
  std::lock_guard<std::mutex> lk(mu_);
  m_.has_expert_cache = true;
  m_.cache_hits = s.hits;
  m_.cache_misses = s.misses;
  m_.cache_bytes_read = s.bytes_read;
  m_.cache_loads = s.loads;
  m_.cache_hit_rate = s.hit_rate();
}

void Engine::worker() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      m_.queue_depth = static_cast<int64_t>(queue_.size());
      m_.active = 1;
      current_ = job;
      if (forget_) {
        cached_.clear();
        forget_ = false;
      }
    }
    run_job(*job);
    snapshot_cache_stats();
    std::lock_guard<std::mutex> lk(mu_);
    m_.active = 0;
    current_.reset();
  }
}

void Engine::run_job(Job& job) {
  const GenRequest& req = job.request();
  GenResult r;
  r.queue_seconds = seconds_since(job.submitted);
  r.prompt_tokens = static_cast<int64_t>(req.prompt.size());
  OutputFilter filter(req.stop, req.start_in_think, req.split_think);
  try {
    if (job.cancelled()) {
      r.finish_reason = "cancelled";
    } else {
      const Tokenizer& tok = model_->tokenizer();
      const int64_t n_ctx = model_->n_ctx();
      const auto n_prompt = static_cast<int64_t>(req.prompt.size());
      if (n_prompt == 0) fail("empty prompt");
      if (n_prompt > n_ctx) fail("the prompt has ", n_prompt, " tokens; the context holds ", n_ctx);

      // Reuse the KV cache when the prompt extends exactly what it holds.
      size_t start = 0;
      if (!cached_.empty() && cached_.size() < req.prompt.size() &&
          std::equal(cached_.begin(), cached_.end(), req.prompt.begin())) {
        start = cached_.size();
      } else {
        model_->reset();
        cached_.clear();
      }
      const auto t_prompt = Clock::now();
      const float* logits = nullptr;
      for (size_t i = start; i < req.prompt.size() && !job.cancelled(); i += kPrefillChunk) {
        const size_t end = std::min(req.prompt.size(), i + kPrefillChunk);
        std::vector<int32_t> chunk(req.prompt.begin() + static_cast<std::ptrdiff_t>(i),
                                   req.prompt.begin() + static_cast<std::ptrdiff_t>(end));
        logits = model_->forward_batch(chunk, static_cast<int64_t>(i));
        cached_.insert(cached_.end(), chunk.begin(), chunk.end());
      }
      r.prompt_seconds = seconds_since(t_prompt);
      r.prompt_evaluated = n_prompt - static_cast<int64_t>(start);

      Sampler sampler(req.sampling);
      const int n_vocab = static_cast<int>(model_->config().n_vocab);
      int64_t pos = n_prompt;
      const auto t_decode = Clock::now();
      while (r.finish_reason.empty()) {
        if (job.cancelled()) {
          r.finish_reason = "cancelled";
          break;
        }
        const int32_t id = sampler.sample(logits, n_vocab);
        if (tok.is_eog(id)) {
          r.finish_reason = "stop";
          break;
        }
        r.tokens.push_back(id);
        ++r.completion_tokens;
        TextDelta d;
        // Control tokens (<|im_start|> and the like) are markup, not text for the user.
        if (!tok.is_control(id)) filter.push(tok.token_to_piece(id), d);
        job.publish(d);
        if (filter.stopped()) {
          r.finish_reason = "stop";
          break;
        }
        if (req.max_tokens >= 0 && r.completion_tokens >= req.max_tokens) {
          r.finish_reason = "length";
          break;
        }
        if (pos >= n_ctx) {
          r.finish_reason = "length";
          break;
        }
        logits = model_->forward(id, pos++);
        cached_.push_back(id);
      }
      r.decode_seconds = seconds_since(t_decode);
      TextDelta d;
      filter.finish(d);
      job.publish(d);
    }
  } catch (const std::exception& e) {
    // The KV cache may be half-written; start the next job from scratch.
    model_->reset();
    cached_.clear();
    r.finish_reason = "error";
    r.error = e.what();
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
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
  }
  job.finish(std::move(r));
}

}  // namespace swapmoe::server
