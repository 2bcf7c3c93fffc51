#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "io/engine_base.h"
#include "util/error.h"

namespace swapmoe::io {

// ---- Fault injection -----------------------------------------------------------------

namespace {
std::atomic<uint64_t> g_fault_target{0};  // 0: disarmed
std::atomic<uint64_t> g_fault_count{0};
std::mutex g_fault_env_mu;
std::string g_fault_env_seen;  // the value of SWAPMOE_FAULT_READ last applied

// Arms the fault from the environment when an engine is created and the variable holds a
// value not applied before (so one setting fails one read, not one read per engine).
void fault_read_env() {
  const char* s = std::getenv("SWAPMOE_FAULT_READ");
  std::lock_guard<std::mutex> lk(g_fault_env_mu);
  const std::string v = s ? s : "";
  if (v == g_fault_env_seen) return;
  g_fault_env_seen = v;
  const uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
  if (n > 0) fail_nth_read(n);
}
}  // namespace

void fail_nth_read(uint64_t n) {
  g_fault_count.store(0);
  g_fault_target.store(n);
}

bool fault_should_fail() {
  const uint64_t target = g_fault_target.load();
  if (target == 0) return false;
  return g_fault_count.fetch_add(1) + 1 == target;
}

// ---- Completion hold (tests) ---------------------------------------------------------

namespace {
std::atomic<bool> g_hold{false};
std::mutex g_hold_mu;
std::vector<std::pair<detail::EngineBase*, ReadCompletion>> g_held;  // in completion order

// Delivers the held completions of `engine` (all engines when null), newest first.
size_t deliver_held(detail::EngineBase* engine) {
  std::vector<std::pair<detail::EngineBase*, ReadCompletion>> mine;
  {
    std::lock_guard<std::mutex> lk(g_hold_mu);
    for (auto it = g_held.begin(); it != g_held.end();) {
      if (!engine || it->first == engine) {
        mine.push_back(*it);
        it = g_held.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = mine.rbegin(); it != mine.rend(); ++it) it->first->deliver(it->second);
  return mine.size();
}

// True when the completion was kept back.
bool maybe_hold(detail::EngineBase* engine, const ReadCompletion& c) {
  if (!g_hold.load()) return false;
  std::lock_guard<std::mutex> lk(g_hold_mu);
  if (!g_hold.load()) return false;
  g_held.emplace_back(engine, c);
  return true;
}
}  // namespace

void hold_completions(bool on) {
  std::lock_guard<std::mutex> lk(g_hold_mu);  // no completion is held after this returns false
  g_hold.store(on);
}

size_t release_held_completions() { return deliver_held(nullptr); }

// ---- Names and messages --------------------------------------------------------------

std::string read_error_message(const ReadCompletion& c, const std::string& path, const std::string& what) {
  std::string reason;
  if (c.error == ENODATA) reason = cat("short read (", c.bytes, " of ", c.len, " bytes; file truncated?)");
  else reason = std::strerror(c.error);
  return cat(path, ": read of ", c.len, " bytes at offset ", c.offset, what.empty() ? "" : " for ", what, " failed: ", reason);
}

const char* engine_kind_name(EngineKind k) {
  switch (k) {
    case EngineKind::Auto: return "auto";
    case EngineKind::Uring: return "uring";
    case EngineKind::PreadPool: return "pread";
  }
  return "?";
}

EngineKind parse_engine_kind(const std::string& s) {
  if (s == "auto") return EngineKind::Auto;
  if (s == "uring" || s == "io_uring") return EngineKind::Uring;
  if (s == "pread") return EngineKind::PreadPool;
  fail("unknown I/O engine '", s, "' (use auto, uring or pread)");
}

// ---- Shared engine machinery ---------------------------------------------------------

namespace detail {

EngineBase::EngineBase(const EngineOptions& opts, CompletionFn fn) : opts_(opts), fn_(std::move(fn)) {
  if (opts_.chunk_bytes < 4096 || opts_.chunk_bytes % 4096 != 0)
    fail("I/O chunk size ", opts_.chunk_bytes, " must be a nonzero multiple of 4096");
  fault_read_env();
}

std::vector<Chunk*> EngineBase::make_chunks(const ReadRequest& r) {
  auto* op = new Op;
  op->req = r;
  if (op->req.min_len == 0 || op->req.min_len > r.len) op->req.min_len = r.len;
  op->fault = fault_should_fail();
  std::vector<Chunk*> chunks;
  for (uint64_t pos = 0; pos < r.len || (r.len == 0 && chunks.empty()); pos += opts_.chunk_bytes) {
    auto* c = new Chunk;
    c->op = op;
    c->offset = r.offset + pos;
    c->len = std::min<uint64_t>(opts_.chunk_bytes, r.len - pos);
    c->dst = static_cast<uint8_t*>(r.dst) + pos;
    chunks.push_back(c);
    if (r.len == 0) break;
  }
  op->chunks_left.store(static_cast<int>(chunks.size()));
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++pending_;
  }
  return chunks;
}

void EngineBase::chunk_done(Chunk* c, int err) {
  Op* op = c->op;
  op->bytes.fetch_add(c->done);
  if (err != 0) {
    int expected = 0;
    op->error.compare_exchange_strong(expected, err);
  }
  delete c;
  if (op->chunks_left.fetch_sub(1) == 1) finish(op);
}

void EngineBase::finish(Op* op) {
  ReadCompletion c;
  c.tag = op->req.tag;
  c.bytes = op->bytes.load();
  c.error = op->error.load();
  c.offset = op->req.offset;
  c.len = op->req.len;
  if (op->fault) c.error = EIO;
  if (c.error == 0 && c.bytes < op->req.min_len) c.error = ENODATA;
  delete op;
  if (!maybe_hold(this, c)) deliver(c);
}

void EngineBase::deliver(const ReadCompletion& c) {
  if (fn_) {
    fn_(c);
    std::lock_guard<std::mutex> lk(mu_);
    --pending_;
    cv_.notify_all();
  } else {
    std::lock_guard<std::mutex> lk(mu_);
    done_.push_back(c);
    --pending_;
    cv_.notify_all();
  }
}

size_t EngineBase::poll(std::vector<ReadCompletion>& out) {
  std::lock_guard<std::mutex> lk(mu_);
  const size_t n = done_.size();
  out.insert(out.end(), done_.begin(), done_.end());
  done_.clear();
  return n;
}

size_t EngineBase::wait(std::vector<ReadCompletion>& out, size_t min_count) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return done_.size() >= std::min(min_count, done_.size() + pending_); });
  const size_t n = done_.size();
  out.insert(out.end(), done_.begin(), done_.end());
  done_.clear();
  return n;
}

size_t EngineBase::in_flight() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pending_;
}

void EngineBase::drain() {
  // Completions kept back by a test's hold would never arrive otherwise. Reads still in
  // flight may be held after this pass, so look again until none is pending (a 1 ms
  // poll: only destruction waits here).
  for (;;) {
    deliver_held(this);
    std::unique_lock<std::mutex> lk(mu_);
    if (cv_.wait_for(lk, std::chrono::milliseconds(1), [&] { return pending_ == 0; })) return;
  }
}

}  // namespace detail

// Defined in pread_engine.cpp and uring_engine.cpp.
std::unique_ptr<ReadEngine> make_pread_engine(const EngineOptions& opts, CompletionFn fn);
std::unique_ptr<ReadEngine> make_uring_engine(const EngineOptions& opts, CompletionFn fn);  // throws Error

std::unique_ptr<ReadEngine> make_read_engine(const EngineOptions& opts, CompletionFn on_complete) {
  switch (opts.kind) {
    case EngineKind::PreadPool: return make_pread_engine(opts, std::move(on_complete));
    case EngineKind::Uring: return make_uring_engine(opts, std::move(on_complete));
    case EngineKind::Auto:
      try {
        return make_uring_engine(opts, on_complete);
      } catch (const Error& e) {
        std::fprintf(stderr, "swapmoe: note: %s; using a pool of pread threads\n", e.what());
        return make_pread_engine(opts, std::move(on_complete));
      }
  }
  fail("invalid engine kind");
}

}  // namespace swapmoe::io
