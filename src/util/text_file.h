#pragma once
// Whole-file reads for the small text inputs of the CLI (prompts, chat templates, eval
// texts, sweep CSVs). Model files never go through here: they are read with pread.

#include <string>

namespace swapmoe {

// The bytes of `path`. Throws swapmoe::Error naming the path and `what` it was meant to be
// (e.g. "the text file") when it cannot be opened or read.
std::string read_whole_file(const std::string& path, const char* what = "the file");

}  // namespace swapmoe
