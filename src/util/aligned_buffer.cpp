#include "util/aligned_buffer.h"

#include <cstdlib>

#include "util/error.h"

namespace swapmoe {

AlignedBuffer::AlignedBuffer(size_t n) : n_(n) {
  if (n == 0) return;
  const size_t rounded = (n + 63) / 64 * 64;
  p_ = static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
  if (!p_) fail("out of memory allocating ", n, " bytes");
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_;
    n_ = o.n_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() { std::free(p_); }

}  // namespace swapmoe
