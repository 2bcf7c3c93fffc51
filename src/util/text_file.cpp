#include "util/text_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace swapmoe {

std::string read_whole_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open ", what, " (", std::strerror(errno), ")");
  // A directory opens fine on Linux and then reads as nothing; say what it is instead.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, not ", what);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, ": read error in ", what);
  return ss.str();
}

}  // namespace swapmoe
