#include "util/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace swapmoe {

std::string read_whole_file(const std::string& path, const char* what, uint64_t max_bytes) {
  const int fd = open_regular_file(path, O_RDONLY, what);
  if (fd < 0) fail(path, ": cannot open ", what, " (", std::strerror(errno), ")");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) fail(path, ": cannot stat ", what, " (", std::strerror(errno), ")");
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    fail(path, ": ", what, " is ", st.st_size, " bytes, more than the limit of ", max_bytes, " bytes");
  // The size can change while we read (a file being written); the limit holds regardless.
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path, ": read error in ", what, " (", std::strerror(errno), ")");
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes)
      fail(path, ": ", what, " grew past the limit of ", max_bytes, " bytes while being read");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace swapmoe
