#include "eval/eval_spill.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/error.h"

namespace swapmoe::cli {

namespace {

// Written pages are synced and dropped once this many bytes have accumulated.
constexpr uint64_t kFlushBytes = 16ull << 20;

std::string spill_dir(const std::string& dir) {
  if (!dir.empty()) return dir;
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

}  // namespace

LogitSpill::LogitSpill(int n_vocab, const std::string& dir) : n_vocab_(n_vocab) {
  if (n_vocab <= 0) fail("logit spill: n_vocab must be positive, got ", n_vocab);
  std::string tmpl = spill_dir(dir) + "/swapmoe-eval-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  fd_ = ::mkstemp(name.data());
  if (fd_ < 0) fail("logit spill: cannot create a temporary file in ", spill_dir(dir), ": ", std::strerror(errno));
  path_ = name.data();
  if (::unlink(path_.c_str()) != 0) {
    const int e = errno;
    ::close(fd_);
    fd_ = -1;
    fail("logit spill: cannot unlink ", path_, ": ", std::strerror(e));
  }
  buf_.resize(record_bytes());
}

LogitSpill::~LogitSpill() {
  if (fd_ >= 0) ::close(fd_);
}

void LogitSpill::drop_cache(uint64_t from, uint64_t to) const {
  if (to > from) (void)::posix_fadvise(fd_, static_cast<off_t>(from), static_cast<off_t>(to - from), POSIX_FADV_DONTNEED);
}

void LogitSpill::append(const float* logits, double lse) {
  std::memcpy(buf_.data(), &lse, 8);
  std::memcpy(buf_.data() + 8, logits, 4 * static_cast<size_t>(n_vocab_));
  const uint64_t off = static_cast<uint64_t>(count_) * record_bytes();
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t w = ::pwrite(fd_, buf_.data() + done, buf_.size() - done, static_cast<off_t>(off + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("logit spill ", path_, ": write of record ", count_, " failed: ", w < 0 ? std::strerror(errno) : "no progress");
    done += static_cast<size_t>(w);
  }
  ++count_;
  // Dirty pages count against a memory cgroup until written back: write them back and
  // drop them in chunks (dropping needs the pages clean).
  const uint64_t end = off + record_bytes();
  if (end - flushed_ >= kFlushBytes) {
    if (::fdatasync(fd_) != 0) fail("logit spill ", path_, ": fdatasync failed: ", std::strerror(errno));
    drop_cache(flushed_, end);
    flushed_ = end;
  }
}

void LogitSpill::read(int64_t i, float* logits, double& lse) const {
  if (i < 0 || i >= count_) fail("logit spill: record ", i, " requested, the file holds ", count_);
  const uint64_t off = static_cast<uint64_t>(i) * record_bytes();
  char* dst = buf_.data();
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t r = ::pread(fd_, dst + done, buf_.size() - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) fail("logit spill ", path_, ": read of record ", i, " came back short: ", r < 0 ? std::strerror(errno) : "end of file");
    done += static_cast<size_t>(r);
  }
  std::memcpy(&lse, dst, 8);
  std::memcpy(logits, dst + 8, 4 * static_cast<size_t>(n_vocab_));
  // Records are read once, in order: drop what was read (clean pages only; the unsynced
  // tail stays cached until the file is closed, at most kFlushBytes).
  if (off + record_bytes() <= flushed_) drop_cache(off, off + record_bytes());
}

}  // namespace swapmoe::cli
