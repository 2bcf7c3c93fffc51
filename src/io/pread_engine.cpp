// The portable engine: worker threads that each take one chunk at a time and pread it.
// Many threads give many reads in flight even without io_uring; they cost little CPU
// because they spend their time blocked in the kernel.

#include <unistd.h>

#include <cerrno>
#include <thread>

#include "io/engine_base.h"
#include "util/error.h"

namespace swapmoe::io {
namespace {

class PreadEngine final : public detail::EngineBase {
 public:
  PreadEngine(const EngineOptions& opts, CompletionFn fn) : EngineBase(opts, std::move(fn)) {
    const int n = opts.n_threads > 0 ? opts.n_threads : 1;
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { worker(); });
  }

  ~PreadEngine() override {
    drain();
    {
      std::lock_guard<std::mutex> lk(qmu_);
      stop_ = true;
    }
    qcv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  const char* name() const override { return "pread"; }

  void submit(const ReadRequest& r) override {
    std::vector<detail::Chunk*> chunks = make_chunks(r);
    {
      std::lock_guard<std::mutex> lk(qmu_);
      for (auto* c : chunks) queue_.push_back(c);
    }
    if (chunks.size() == 1) qcv_.notify_one();
    else qcv_.notify_all();
  }

 private:
  void worker() {
    for (;;) {
      detail::Chunk* c = nullptr;
      {
        std::unique_lock<std::mutex> lk(qmu_);
        qcv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and nothing left
        c = queue_.front();
        queue_.pop_front();
      }
      int err = 0;
      while (c->done < c->len) {
        const ssize_t r = ::pread(c->op->req.fd, c->dst + c->done, c->len - c->done, static_cast<off_t>(c->offset + c->done));
        if (r < 0) {
          if (errno == EINTR) continue;
          err = errno;
          break;
        }
        if (r == 0) break;  // end of file: the base class checks min_len
        c->done += static_cast<uint64_t>(r);
      }
      chunk_done(c, err);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex qmu_;
  std::condition_variable qcv_;
  std::deque<detail::Chunk*> queue_;
  bool stop_ = false;
};

}  // namespace

std::unique_ptr<ReadEngine> make_pread_engine(const EngineOptions& opts, CompletionFn fn) {
  return std::make_unique<PreadEngine>(opts, std::move(fn));
}

}  // namespace swapmoe::io
