#pragma once
// Small helpers shared by the store readers (internal to src/store).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace swapmoe::store {

using json_t = nlohmann::json;

// Names in a directory, sorted, without "." and ".." (empty if it cannot be read).
std::vector<std::string> list_dir(const std::string& dir);
bool iequals(const std::string& a, const std::string& b);
std::string to_upper(std::string s);
std::string join(const std::vector<std::string>& v, const std::string& sep);
// A character or string as it may be shown in an error (control bytes escaped).
std::string printable(char c);
std::string printable_string(const std::string& s);
// Greatest nesting of [ and { outside strings (checked before parsing untrusted JSON, so
// a deeply nested file cannot exhaust the parser's stack).
int json_depth(const std::string& text);

}  // namespace swapmoe::store
