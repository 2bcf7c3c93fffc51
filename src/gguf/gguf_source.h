#pragma once
// Byte sources for the GGUF parser. The parser reads through this interface so that files
// (pread) and in-memory images (fuzzer, tests) go through exactly the same checks.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace swapmoe::gguf_detail {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Copies exactly n bytes at offset into dst; the caller has already checked that
  // [offset, offset + n) lies within size(). Throws Error on an I/O failure.
  virtual void read(uint64_t offset, void* dst, size_t n) const = 0;
};

// Reads a file descriptor with pread; does not own the descriptor.
class FdSource : public ByteSource {
 public:
  FdSource(int fd, uint64_t size, const std::string& path) : fd_(fd), size_(size), path_(path) {}
  uint64_t size() const override { return size_; }
  void read(uint64_t offset, void* dst, size_t n) const override;

 private:
  int fd_;
  uint64_t size_;
  std::string path_;
};

class MemSource : public ByteSource {
 public:
  MemSource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint64_t size() const override { return size_; }
  void read(uint64_t offset, void* dst, size_t n) const override;

 private:
  const uint8_t* data_;
  size_t size_;
};

// pread loop shared by FdSource and GgufFile::read_at: retries on EINTR and short reads,
// throws Error naming the file, offset and length on failure or end of file.
void pread_exact(int fd, uint64_t offset, void* dst, size_t n, const std::string& path);

}  // namespace swapmoe::gguf_detail
