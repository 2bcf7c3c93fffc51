#pragma once
// Opening input files without trusting what the path names. A FIFO or a character device
// given as MODEL, --text or --chat-template-file used to hang in open() (a FIFO blocks until
// a writer appears) or read without end (/dev/zero). Every input is opened with O_NONBLOCK,
// so open() returns at once whatever the path is, then checked with fstat: only a regular
// file is accepted, and O_NONBLOCK is cleared again (io_uring would otherwise answer EAGAIN
// on a non-blocking descriptor instead of waiting for the disk).

#include <cstdint>
#include <string>

namespace swapmoe {

// open(path, flags | O_NONBLOCK | O_CLOEXEC), then fstat. Returns the descriptor of a regular
// file, opened for `flags` and blocking again. Returns -1 with errno set when open() itself
// fails (the caller words that error; O_DIRECT callers retry without it). Throws Error naming
// the path and `what` it was meant to be when the path is not a regular file.
int open_regular_file(const std::string& path, int flags, const char* what = "the file");

// The size limit read_whole_file applies to text inputs unless told otherwise.
inline constexpr uint64_t kMaxTextFileBytes = uint64_t{256} << 20;

}  // namespace swapmoe
