#pragma once
// Tiny JSON renderers for the machine-readable outputs of the CLI (token id arrays,
// the eval result line). Kept trivial on purpose: the conformance harness parses them.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace swapmoe::cli {

// [1,2,3]
inline std::string ids_to_json(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(ids[i]);
  }
  return s + "]";
}

// {"tokens":N,"nll":x.xxxxxx,"ppl":y.yyyyyy}
inline std::string eval_result_json(int64_t tokens, double nll, double ppl) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "{\"tokens\":%lld,\"nll\":%.6f,\"ppl\":%.6f}", static_cast<long long>(tokens), nll, ppl);
  return buf;
}

}  // namespace swapmoe::cli
