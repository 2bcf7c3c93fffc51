#pragma once
// Whole-file reads for the small text inputs of the CLI (prompts, chat templates, eval
// texts, sweep CSVs). Model files never go through here: they are read with pread.

#include <cstdint>
#include <string>

#include "util/regular_file.h"

namespace swapmoe {

// The bytes of `path`. Throws swapmoe::Error naming the path and `what` it was meant to be
// (e.g. "the text file") when it cannot be opened or read, when it is not a regular file
// (a FIFO or device is refused without blocking, see util/regular_file.h), or when it is
// larger than max_bytes.
std::string read_whole_file(const std::string& path, const char* what = "the file",
                            uint64_t max_bytes = kMaxTextFileBytes);

}  // namespace swapmoe
