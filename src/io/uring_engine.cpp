// The io_uring engine: chunks are queued as read SQEs, at most queue_depth in flight; one
// reaper thread waits for CQEs, continues short reads and tops the ring up from the
// backlog. The submission side (any caller thread, under sq_mu_) and the reaper (sole
// consumer of the completion ring) touch different rings, which io_uring allows without
// further locking as long as there is no SQPOLL thread.

#include "util/error.h"

#ifdef SWAPMOE_HAVE_URING

#include <liburing.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "io/engine_base.h"

namespace swapmoe::io {
namespace {

class UringEngine final : public detail::EngineBase {
 public:
  UringEngine(const EngineOptions& opts, CompletionFn fn) : EngineBase(opts, std::move(fn)) {
    depth_ = opts.queue_depth < 1 ? 1 : opts.queue_depth;
    // One extra entry so the stop marker always fits.
    const int r = io_uring_queue_init(depth_ + 1, &ring_, 0);
    if (r < 0) fail("io_uring_queue_init failed: ", std::strerror(-r));
    reaper_ = std::thread([this] { reap(); });
  }

  ~UringEngine() override {
    drain();
    {
      std::lock_guard<std::mutex> lk(sq_mu_);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe) {
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, nullptr);  // nullptr: stop marker
        io_uring_submit(&ring_);
      }
    }
    reaper_.join();
    io_uring_queue_exit(&ring_);
  }

  const char* name() const override { return "io_uring"; }

  void submit(const ReadRequest& r) override {
    std::vector<detail::Chunk*> chunks = make_chunks(r);
    std::lock_guard<std::mutex> lk(sq_mu_);
    for (auto* c : chunks) backlog_.push_back(c);
    pump_locked();
  }

 private:
  // Moves chunks from the backlog into the ring while there is room. Caller holds sq_mu_.
  void pump_locked() {
    unsigned queued = 0;
    while (in_ring_ < depth_ && !backlog_.empty()) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (!sqe) break;
      detail::Chunk* c = backlog_.front();
      backlog_.pop_front();
      io_uring_prep_read(sqe, c->op->req.fd, c->dst + c->done, static_cast<unsigned>(c->len - c->done), c->offset + c->done);
      io_uring_sqe_set_data(sqe, c);
      ++in_ring_;
      ++queued;
    }
    if (queued) {
      const int r = io_uring_submit(&ring_);
      (void)r;  // A failed submit leaves the SQEs queued; the next submit retries them.
    }
  }

  void reap() {
    for (;;) {
      io_uring_cqe* cqe = nullptr;
      const int r = io_uring_wait_cqe(&ring_, &cqe);
      if (r == -EINTR) continue;
      if (r < 0) {
        // The ring itself failed, which should not happen; fail everything outstanding
        // rather than hang the callers.
        fail_all(-r);
        return;
      }
      auto* c = static_cast<detail::Chunk*>(io_uring_cqe_get_data(cqe));
      const int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (c == nullptr) return;  // stop marker

      bool finished = true;
      int err = 0;
      {
        // The chunk was filled in by a submitting thread under sq_mu_; taking it here
        // orders those writes before our reads for the memory model (and for TSan, which
        // cannot see the hand-over through the kernel's ring).
        std::lock_guard<std::mutex> lk(sq_mu_);
        if (res == -EINTR || res == -EAGAIN) {
          finished = false;  // retry the same range
        } else if (res < 0) {
          err = -res;
        } else if (res > 0) {
          c->done += static_cast<uint64_t>(res);
          finished = c->done >= c->len;  // else a short read not at EOF: continue it
        }  // res == 0: end of file
        --in_ring_;
        if (!finished) backlog_.push_front(c);
        pump_locked();
      }
      if (finished) chunk_done(c, err);
    }
  }

  void fail_all(int err) {
    std::deque<detail::Chunk*> left;
    {
      std::lock_guard<std::mutex> lk(sq_mu_);
      left.swap(backlog_);
    }
    for (auto* c : left) chunk_done(c, err);
    // Chunks already inside the dead ring cannot be recovered; their requests never
    // complete. Only a kernel bug leads here, and the backlog at least fails loudly.
  }

  io_uring ring_{};
  unsigned depth_ = 64;
  std::mutex sq_mu_;
  std::deque<detail::Chunk*> backlog_;
  unsigned in_ring_ = 0;
  std::thread reaper_;
};

}  // namespace

std::unique_ptr<ReadEngine> make_uring_engine(const EngineOptions& opts, CompletionFn fn) {
  return std::make_unique<UringEngine>(opts, std::move(fn));
}

}  // namespace swapmoe::io

#else  // !SWAPMOE_HAVE_URING

#include "io/read_engine.h"

namespace swapmoe::io {
std::unique_ptr<ReadEngine> make_uring_engine(const EngineOptions&, CompletionFn) {
  fail("io_uring support was not compiled in (liburing not found at build time)");
}
}  // namespace swapmoe::io

#endif
