#pragma once
// Writing a model as one file or as a split set in gguf-split's format and naming
// (gguf_split.h). The caller declares metadata and tensor infos on a GgufWriter as usual,
// then streams the tensor bytes through a GgufOutput instead of the writer itself:
//
//   GgufWriter w;  ... w.set_*(...); w.add_tensor_info(...); ...
//   GgufOutput out(w, "model.gguf", limits);   // plans the parts, no I/O yet
//   out.begin();
//   out.write_tensor_data(bytes, n);            // or out.skip_tensor(), in declaration order
//   out.finish();
//
// Without limits this is exactly w.begin(path) ... w.finish(). With limits, OUT.gguf
// becomes OUT-00001-of-0000N.gguf ... (".gguf" is stripped from OUT to get the prefix).
// Each part is written by its own GgufWriter (temporary name, renamed when complete);
// the first part is renamed last (and an older first part of the same name is removed at
// begin()), so a set whose first part exists is complete, and a set abandoned half-way
// removes the parts it had already renamed.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"

namespace swapmoe {

struct GgufSplitLimits {
  // Tensor bytes per part (each tensor counted padded to 32 bytes, metadata not counted),
  // as gguf-split --split-max-size; a part closes before the tensor that would pass it.
  // A tensor larger than the limit gets a part of its own. 0: no limit.
  uint64_t max_bytes = 0;
  // Tensors per part, as gguf-split --split-max-tensors. 0: no limit.
  uint64_t max_tensors = 0;
  bool active() const { return max_bytes != 0 || max_tensors != 0; }
};

// gguf-split's spelling of --split-max-size: a positive integer followed by M (10^6 bytes)
// or G (10^9 bytes); K (10^3) is accepted too, for small test models. Throws Error.
uint64_t parse_split_size(const std::string& s);

// The part index of each tensor (given in writing order) under the limits; parts are
// consecutive runs, never empty.
std::vector<uint32_t> plan_split(const std::vector<GgufTensorInfo>& tensors, const GgufSplitLimits& limits);

class GgufOutput {
 public:
  // `declared` holds the metadata and tensor infos and must not have begun; it is used
  // directly for a whole file, as a template for split parts. No I/O happens here.
  GgufOutput(GgufWriter& declared, const std::string& path, const GgufSplitLimits& limits);
  ~GgufOutput();
  GgufOutput(const GgufOutput&) = delete;
  GgufOutput& operator=(const GgufOutput&) = delete;

  // The final paths that finish() produces, in part order (one for a whole file).
  const std::vector<std::string>& paths() const { return paths_; }
  bool split() const { return !parts_.empty(); }

  void begin();
  // As GgufWriter's: the next n bytes of tensor data (may cross tensors and parts).
  void write_tensor_data(const void* data, size_t n);
  // Leaves the rest of the current tensor as a hole (sparse files).
  void skip_tensor();
  void finish();
  // Bytes of all parts (valid after begin()).
  uint64_t file_size() const;
  // Tensors per part (one entry for a whole file).
  std::vector<size_t> part_tensor_counts() const;

 private:
  struct Part {
    std::unique_ptr<GgufWriter> w;
    uint64_t bytes = 0;  // declared tensor bytes (unpadded)
    uint64_t done = 0;   // supplied so far
    bool begun = false, finished = false;
  };
  void step_over_full_parts();
  void start(size_t i);
  void close(size_t i);

  GgufWriter& declared_;
  std::vector<std::string> paths_;
  std::vector<Part> parts_;  // empty for a whole file
  size_t cur_ = 0;
  bool finished_ = false;
};

}  // namespace swapmoe
