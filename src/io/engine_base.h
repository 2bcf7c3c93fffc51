#pragma once
// Internal: what the io_uring and pread-pool engines share. A request becomes an Op split
// into Chunks; each engine only has to execute chunks and call chunk_done(). The base
// class counts chunks, detects short reads, applies fault injection, and delivers the
// completion (to the callback or the queue behind poll/wait).

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "io/read_engine.h"

namespace swapmoe::io::detail {

struct Op {
  ReadRequest req;
  std::atomic<int> chunks_left{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<int> error{0};
  bool fault = false;  // injected failure: reported as EIO whatever the disk says
};

struct Chunk {
  Op* op = nullptr;
  uint64_t offset = 0;  // absolute file offset of the chunk
  uint64_t len = 0;
  uint8_t* dst = nullptr;
  uint64_t done = 0;  // bytes already read (short reads are continued from here)
};

class EngineBase : public ReadEngine {
 public:
  // Reports a completion (to the callback or the queue) and counts the request as done.
  void deliver(const ReadCompletion& c);

  size_t poll(std::vector<ReadCompletion>& out) override;
  size_t wait(std::vector<ReadCompletion>& out, size_t min_count) override;
  size_t in_flight() const override;

 protected:
  EngineBase(const EngineOptions& opts, CompletionFn fn);
  // Splits a request into chunks (each to be executed exactly once by the engine).
  std::vector<Chunk*> make_chunks(const ReadRequest& r);
  // A chunk finished: err is 0 or an errno; c->done holds the bytes read. Deletes c.
  void chunk_done(Chunk* c, int err);
  // Blocks until every submitted request has been completed and delivered.
  void drain();

  EngineOptions opts_;

 private:
  void finish(Op* op);

  CompletionFn fn_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ReadCompletion> done_;
  size_t pending_ = 0;  // ops submitted and not yet queued/delivered
};

}  // namespace swapmoe::io::detail
