#include "store/confine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "util/error.h"

namespace swapmoe::store {

std::string real_path_or_empty(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (!r) {
    if (errno == ENOENT || errno == ENOTDIR) return "";
    fail(path, ": ", std::strerror(errno));
  }
  std::string out(r);
  std::free(r);
  return out;
}

std::string confined_path(const std::string& root_real, const std::string& path, const std::string& what) {
  const std::string real = real_path_or_empty(path);
  if (real.empty()) fail(what, " is missing: ", path);
  const std::string prefix = root_real.back() == '/' ? root_real : root_real + "/";
  if (real.compare(0, prefix.size(), prefix) != 0)
    fail(what, " (", path, ") resolves to ", real, ", outside the store ", root_real, "; refusing to open it");
  return real;
}

std::string read_small_file(const std::string& path, uint64_t max_bytes, const std::string& what) {
  // O_NOFOLLOW: the path is canonical, so a symlink here means the file was swapped since.
  // O_NONBLOCK: a FIFO planted in a store must not hang open() (issue 15); fstat refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) fail("cannot open ", what, " ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(what, " ", path, " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    fail(what, " ", path, " is ", st.st_size, " bytes, more than the ", max_bytes, " such a file can have");
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

bool has_gguf_magic(const std::string& path) {
  // O_NONBLOCK: a FIFO must not hang the store listing; pread() fails on it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  char m[4] = {};
  const ssize_t n = ::pread(fd, m, 4, 0);
  ::close(fd);
  return n == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

uint64_t file_size_or_zero(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace swapmoe::store
