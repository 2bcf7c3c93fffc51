#pragma once
// Parsing of human-written byte sizes for options such as --mem: "123", "512K", "4G",
// "1.5GiB", "2gb". Suffixes are binary (K = 1024, M = 1024^2, G = 1024^3, T = 1024^4)
// whether or not they carry "i"/"B", because memory budgets are naturally binary and a
// user typing "4G" means the same as "4GiB". Header-only so the unit tests can use it.

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <string>

#include "util/error.h"

namespace swapmoe::cli {

inline uint64_t parse_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  const size_t num_begin = i;
  bool seen_digit = false, seen_dot = false;
  while (i < text.size()) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      seen_digit = true;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      break;
    }
    ++i;
  }
  if (!seen_digit) fail("invalid size '", text, "': expected a number with an optional K/M/G/T suffix, e.g. 4G");
  const double value = std::stod(text.substr(num_begin, i - num_begin));
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;

  std::string unit;
  for (; i < text.size(); ++i) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  double mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else {
    const char p = unit[0];
    const std::string rest = unit.substr(1);
    if (rest != "" && rest != "B" && rest != "I" && rest != "IB")
      fail("invalid size '", text, "': unknown unit '", unit, "' (use K, M, G or T)");
    switch (p) {
      case 'K': mult = 1024.0; break;
      case 'M': mult = 1024.0 * 1024; break;
      case 'G': mult = 1024.0 * 1024 * 1024; break;
      case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
      default: fail("invalid size '", text, "': unknown unit '", unit, "' (use K, M, G or T)");
    }
  }
  const double bytes = std::floor(value * mult);
  if (!(bytes < 18446744073709551616.0)) fail("invalid size '", text, "': too large");
  if (seen_dot && mult == 1 && bytes != value) fail("invalid size '", text, "': a byte count must be whole");
  return static_cast<uint64_t>(bytes);
}

// "1.50 GiB", "512.00 MiB", "17 B": for logs and `swapmoe info`.
inline std::string format_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

}  // namespace swapmoe::cli
