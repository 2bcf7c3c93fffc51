// statx lives in its own file because glibc 2.36's <sys/stat.h> struct statx lacks the
// direct-I/O alignment fields; the kernel header's definition has them, and the two
// definitions cannot be included together.
#include <linux/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>

namespace swapmoe::io {

size_t query_dio_alignment(int fd) {
#if defined(SYS_statx) && defined(STATX_DIOALIGN)
  struct statx st {};
  // AT_EMPTY_PATH (0x1000) with an empty path asks about the descriptor itself.
  if (syscall(SYS_statx, fd, "", 0x1000, STATX_DIOALIGN, &st) != 0) return 0;
  if (!(st.stx_mask & STATX_DIOALIGN) || st.stx_dio_offset_align == 0) return 0;
  return std::max<size_t>(st.stx_dio_offset_align, st.stx_dio_mem_align);
#else
  (void)fd;
  return 0;
#endif
}

}  // namespace swapmoe::io
