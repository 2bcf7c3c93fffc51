#pragma once
// Asynchronous positioned reads: the caller submits many reads at once and learns about
// each one's completion separately, so that experts can be computed as they arrive and
// the disk sees many requests in flight (an NVMe drive needs dozens to reach its
// bandwidth; one 4 MiB stream gets about half of it).
//
// Two implementations behind one interface:
//   - io_uring (liburing; only when built with SWAPMOE_HAVE_URING): one ring of depth
//     `queue_depth`, one internal reaper thread;
//   - a pool of `n_threads` worker threads calling pread, used when io_uring is not
//     available (old kernel, seccomp sandbox) or when asked for.
// Both split a request into chunks of `chunk_bytes` that are read in parallel, and both
// retry short reads that are not at end of file.
//
// Thread safety: submit(), poll() and wait() may be called from any threads. Completions
// go either to the callback given at construction (called on an engine thread, with no
// engine lock held, so the callback may submit more reads) or, without a callback, to an
// internal queue drained by poll()/wait().
//
// Errors never throw from engine threads: a failed or short read produces a completion
// with `error` set; the caller turns it into swapmoe::Error with read_error_message(),
// naming the file, offset, length and what the read was for.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace swapmoe::io {

struct ReadRequest {
  int fd = -1;
  uint64_t offset = 0;  // for an O_DIRECT fd: offset, len and dst aligned to its alignment
  uint64_t len = 0;
  void* dst = nullptr;
  // At least this many bytes must arrive (reads past the end of the file return fewer
  // than len; that is only an error when fewer than min_len bytes came). 0 means len.
  uint64_t min_len = 0;
  uint64_t tag = 0;  // returned in the completion, opaque to the engine
};

struct ReadCompletion {
  uint64_t tag = 0;
  int error = 0;       // 0, or an errno value (EIO for injected faults, ENODATA for short reads)
  uint64_t bytes = 0;  // bytes read (contiguous from the start of the request)
  uint64_t offset = 0, len = 0;  // of the request, for error messages
};

// "model.gguf: read of 8192 bytes at offset 4096 for layer 3 expert 17 failed: <reason>"
std::string read_error_message(const ReadCompletion& c, const std::string& path, const std::string& what);

enum class EngineKind {
  Auto,       // io_uring when it can be set up, else the pread pool
  Uring,      // io_uring or throw Error
  PreadPool,  // thread pool of pread workers
};
const char* engine_kind_name(EngineKind k);
// "auto" | "uring" | "pread"; throws Error on anything else.
EngineKind parse_engine_kind(const std::string& s);

struct EngineOptions {
  EngineKind kind = EngineKind::Auto;
  unsigned queue_depth = 64;         // io_uring: reads in flight at once
  int n_threads = 8;                 // pread pool: worker threads (they mostly sleep in the kernel)
  uint64_t chunk_bytes = 1u << 20;   // requests larger than this are split (multiple of 4096)
};

using CompletionFn = std::function<void(const ReadCompletion&)>;

class ReadEngine {
 public:
  virtual ~ReadEngine() = default;  // waits for reads in flight to finish
  virtual const char* name() const = 0;
  // Queues a read; never blocks on I/O (requests beyond the queue depth wait internally).
  virtual void submit(const ReadRequest& r) = 0;
  // Without a callback: moves finished completions into out (appends); returns how many.
  virtual size_t poll(std::vector<ReadCompletion>& out) = 0;
  // Blocks until at least min(min_count, in_flight()) completions are available, then
  // drains them all into out; returns immediately with 0 when nothing is in flight.
  virtual size_t wait(std::vector<ReadCompletion>& out, size_t min_count = 1) = 0;
  // Requests submitted whose completion has not yet been delivered or queued.
  virtual size_t in_flight() const = 0;
};

// Creates an engine. Auto falls back to the pread pool (with a note on stderr) when
// io_uring_queue_init fails. `on_complete` may be empty (then use poll/wait).
std::unique_ptr<ReadEngine> make_read_engine(const EngineOptions& opts, CompletionFn on_complete = {});

// ---- Test-only fault injection. When armed with n > 0, the nth request submitted after
// arming (counted across all engines, 1-based) completes with EIO without touching the
// disk. The environment variable SWAPMOE_FAULT_READ=<n> arms it when an engine is created
// and the variable's value differs from the one last applied. fail_nth_read(0) disarms.
void fail_nth_read(uint64_t n);
// Called by engines once per submitted request; true when this one must fail.
bool fault_should_fail();

// ---- Test-only completion hold. While held, finished requests of every engine are kept
// back instead of being delivered (the data is in place, the completion is not reported).
// release_held_completions() delivers everything kept back so far in REVERSE order of
// completion, so the consumer sees reads finish out of order and only when the test says;
// it returns how many it delivered. An engine being destroyed delivers its own held
// completions first (in the same reverse order), so a forgotten hold cannot hang.
void hold_completions(bool on);
size_t release_held_completions();

}  // namespace swapmoe::io
