#pragma once
// Direct (page-cache-bypassing) reads of byte ranges from a file.
//
// Why O_DIRECT: under a memory budget the page cache would silently hold a second copy of
// every expert we read (and count against the cgroup), so expert bytes must go straight
// from the disk into our own slots. O_DIRECT requires the file offset, the length and the
// destination address to be multiples of the device's alignment, so an arbitrary range
// [off, off + len) is read as its aligned superset [floor(off), ceil(off + len)) into an
// aligned buffer, and the caller gets a pointer `skip` bytes into it.
//
//   DirectFile f = DirectFile::open("model.gguf");
//   AlignedBuffer buf(f.aligned_span(off, len).length, f.alignment());
//   const uint8_t* p = f.read_range(off, len, buf);   // p[0] is the byte at `off`
//
// Filesystems that refuse O_DIRECT (open fails with EINVAL) are opened buffered instead,
// with a warning on stderr; the alignment rules are still applied so callers need not care.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace swapmoe::io {

enum class OpenMode {
  Direct,    // O_DIRECT, falling back to buffered (with a warning) when refused
  Buffered,  // plain reads through the page cache (tests, benchmarks)
};

// An owned, zero-initialised buffer whose address and size are multiples of `alignment`.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(size_t size, size_t alignment);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The aligned superset of a byte range: read `length` bytes at `start`; the wanted range
// begins `skip` bytes into what was read.
struct AlignedSpan {
  uint64_t start = 0;
  uint64_t length = 0;
  uint64_t skip = 0;
};

inline uint64_t align_down(uint64_t x, uint64_t a) { return x - x % a; }
inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
inline AlignedSpan aligned_span(uint64_t off, uint64_t len, uint64_t alignment) {
  AlignedSpan s;
  s.start = align_down(off, alignment);
  s.length = align_up(off + len, alignment) - s.start;
  s.skip = off - s.start;
  return s;
}

class DirectFile {
 public:
  DirectFile() = default;
  // Throws Error naming the path when the file cannot be opened.
  static DirectFile open(const std::string& path, OpenMode mode = OpenMode::Direct);
  ~DirectFile();
  DirectFile(DirectFile&& o) noexcept;
  DirectFile& operator=(DirectFile&& o) noexcept;
  DirectFile(const DirectFile&) = delete;
  DirectFile& operator=(const DirectFile&) = delete;

  int fd() const { return fd_; }
  bool is_direct() const { return direct_; }
  // Offset, length and memory alignment required for reads (statx STATX_DIOALIGN when
  // the kernel reports it, else 4096; also applied to buffered files so code paths agree).
  size_t alignment() const { return alignment_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  AlignedSpan aligned_span(uint64_t off, uint64_t len) const { return io::aligned_span(off, len, alignment_); }

  // Synchronously reads [off, off + len) (which must lie inside the file) into `buf`,
  // which must be aligned and hold at least aligned_span(off, len).length bytes. Returns
  // the address of byte `off` inside buf. Throws Error naming file, offset and length
  // on an I/O error or short read.
  const uint8_t* read_range(uint64_t off, uint64_t len, AlignedBuffer& buf) const;

 private:
  int fd_ = -1;
  bool direct_ = false;
  size_t alignment_ = 4096;
  uint64_t size_ = 0;
  std::string path_;
};

// The files of one model (the parts of a split GGUF, or just the one file), opened alike.
// Index = part (GgufTensorInfo::part). alignment() is the largest of the parts' direct-I/O
// alignments: they are powers of two, so one superset rule serves every part.
class DirectFileSet {
 public:
  DirectFileSet() = default;
  static DirectFileSet open(const std::vector<std::string>& paths, OpenMode mode = OpenMode::Direct);

  size_t size() const { return files_.size(); }
  // Throws Error when there is no such part.
  const DirectFile& part(uint32_t i) const;
  size_t alignment() const { return alignment_; }
  bool is_direct() const;  // every part
  const std::string& path(uint32_t i) const { return part(i).path(); }

 private:
  std::vector<DirectFile> files_;
  size_t alignment_ = 4096;
};

// Queries the direct-I/O alignment of an open file with statx; 0 when not reported.
size_t query_dio_alignment(int fd);

// Test-only: while set, DirectFile::open behaves as if the filesystem refused O_DIRECT
// with EINVAL (current tmpfs accepts O_DIRECT, so the fallback is otherwise hard to reach).
void simulate_direct_refused(bool on);

}  // namespace swapmoe::io
