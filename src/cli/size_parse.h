#pragma once
// Human-written byte sizes for options such as --mem: "123", "512K", "4G", "1.5GiB",
// "2gb" (binary units whatever the spelling). swapmoe has one size parser, in the budget
// accountant (cache/budget.h); the CLI names it here for the commands and the forge.

#include <cstdint>
#include <string>

#include "cache/budget.h"

namespace swapmoe::cli {

using swapmoe::parse_size;

// "1.50 GiB", "512.00 MiB", "17 B": for logs and `swapmoe info`.
inline std::string format_size(uint64_t bytes) { return format_bytes(bytes); }

}  // namespace swapmoe::cli
