#include "io/direct_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "util/error.h"
#include "util/regular_file.h"

namespace swapmoe::io {

namespace {
std::atomic<bool> g_refuse_direct{false};
}  // namespace

void simulate_direct_refused(bool on) { g_refuse_direct.store(on); }

AlignedBuffer::AlignedBuffer(size_t size, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) fail("AlignedBuffer: alignment ", alignment, " is not a power of two");
  size_ = align_up(size, alignment);
  if (size_ == 0) return;
  void* p = nullptr;
  if (posix_memalign(&p, alignment, size_) != 0) fail("cannot allocate ", size_, " bytes aligned to ", alignment);
  data_ = static_cast<uint8_t*>(p);
  // Touching the memory now makes allocation failures and cgroup charges happen here,
  // at setup, rather than in the middle of the first token.
  std::memset(data_, 0, size_);
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& o) noexcept : data_(o.data_), size_(o.size_) {
  o.data_ = nullptr;
  o.size_ = 0;
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

DirectFile DirectFile::open(const std::string& path, OpenMode mode) {
  DirectFile f;
  f.path_ = path;
  if (mode == OpenMode::Direct) {
    if (g_refuse_direct.load()) {
      errno = EINVAL;
    } else {
      f.fd_ = open_regular_file(path, O_RDONLY | O_DIRECT, "a model file");
    }
    if (f.fd_ >= 0) {
      f.direct_ = true;
    } else if (errno == EINVAL) {
      // The filesystem refuses O_DIRECT (older tmpfs, some FUSE/overlay setups).
      std::fprintf(stderr, "swapmoe: warning: %s: O_DIRECT not supported by this filesystem; "
                   "using buffered reads (the page cache will hold extra copies)\n", path.c_str());
    } else {
      fail("cannot open ", path, ": ", std::strerror(errno));
    }
  }
  if (f.fd_ < 0) {
    f.fd_ = open_regular_file(path, O_RDONLY, "a model file");
    if (f.fd_ < 0) fail("cannot open ", path, ": ", std::strerror(errno));
  }
  struct stat st {};
  if (fstat(f.fd_, &st) != 0) fail("cannot stat ", path, ": ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  f.size_ = static_cast<uint64_t>(st.st_size);
  const size_t a = query_dio_alignment(f.fd_);
  f.alignment_ = a != 0 && (a & (a - 1)) == 0 ? a : 4096;
  return f;
}

DirectFile::~DirectFile() {
  if (fd_ >= 0) ::close(fd_);
}

DirectFile::DirectFile(DirectFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), direct_(o.direct_), alignment_(o.alignment_), size_(o.size_), path_(std::move(o.path_)) {}

DirectFile& DirectFile::operator=(DirectFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    direct_ = o.direct_;
    alignment_ = o.alignment_;
    size_ = o.size_;
    path_ = std::move(o.path_);
  }
  return *this;
}

const uint8_t* DirectFile::read_range(uint64_t off, uint64_t len, AlignedBuffer& buf) const {
  if (off > size_ || len > size_ - off)
    fail(path_, ": read of ", len, " bytes at offset ", off, " goes past the end of the file (size ", size_, ")");
  const AlignedSpan s = aligned_span(off, len);
  if (buf.size() < s.length || reinterpret_cast<uintptr_t>(buf.data()) % alignment_ != 0)
    fail(path_, ": buffer of ", buf.size(), " bytes is too small or misaligned for ", s.length, " bytes");
  // The aligned superset may extend past the end of the file; the kernel then returns
  // fewer bytes, which is fine as long as everything up to off + len arrived.
  const uint64_t need = s.skip + len;
  uint64_t got = 0;
  while (got < need) {
    const ssize_t r = ::pread(fd_, buf.data() + got, s.length - got, static_cast<off_t>(s.start + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(path_, ": read of ", len, " bytes at offset ", off, " failed: ", std::strerror(errno));
    }
    if (r == 0) fail(path_, ": short read of ", len, " bytes at offset ", off, " (end of file after ", got, " of ", need, " bytes)");
    got += static_cast<uint64_t>(r);
  }
  return buf.data() + s.skip;
}

DirectFileSet DirectFileSet::open(const std::vector<std::string>& paths, OpenMode mode) {
  if (paths.empty()) fail("DirectFileSet: no files to open");
  DirectFileSet s;
  s.files_.reserve(paths.size());
  size_t a = 0;
  for (const std::string& p : paths) {
    s.files_.push_back(DirectFile::open(p, mode));
    a = std::max(a, s.files_.back().alignment());
  }
  s.alignment_ = a;
  return s;
}

const DirectFile& DirectFileSet::part(uint32_t i) const {
  if (i >= files_.size()) fail("read from part ", i + 1, " of a model of ", files_.size(), " file", files_.size() == 1 ? "" : "s");
  return files_[i];
}

bool DirectFileSet::is_direct() const {
  for (const DirectFile& f : files_)
    if (!f.is_direct()) return false;
  return !files_.empty();
}

}  // namespace swapmoe::io
