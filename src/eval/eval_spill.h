#pragma once
// A temporary file of per-position logits, so that `eval --reference` can compare two
// passes over the same text without holding the reference distributions in memory: the
// exact pass appends every scored position's logits, its model is freed, and the policy
// pass reads them back one position at a time. Per position that is n_vocab floats plus
// the log-sum-exp (Qwen3: 152k x 4 B = 0.6 MB), so 1000 positions would be 0.6 GB of RAM
// but are only disk here.
//
// The file is created with mkstemp and unlinked at once: it has no name while it is in
// use, so it disappears when the descriptor is closed, on any exit path (an exception, a
// crash or a kill included). Pages written or read are dropped from the page cache in
// chunks, so the spill does not grow the process's memory footprint under --mem.
//
// Record i, at offset i * (8 + 4 n_vocab): double log_sum_exp, then float logits[n_vocab].

#include <cstdint>
#include <string>
#include <vector>

namespace swapmoe::cli {

class LogitSpill {
 public:
  // Creates the file in `dir` (empty: $TMPDIR, else /tmp). Throws Error naming the
  // directory when it cannot.
  explicit LogitSpill(int n_vocab, const std::string& dir = "");
  ~LogitSpill();
  LogitSpill(const LogitSpill&) = delete;
  LogitSpill& operator=(const LogitSpill&) = delete;

  int n_vocab() const { return n_vocab_; }
  int64_t size() const { return count_; }
  // The name the file had before it was unlinked (for messages and tests).
  const std::string& created_path() const { return path_; }

  void append(const float* logits, double lse);
  // Reads record i into logits[n_vocab] and lse. Throws Error when i is out of range or
  // the read comes back short.
  void read(int64_t i, float* logits, double& lse) const;

 private:
  uint64_t record_bytes() const { return 8 + 4 * static_cast<uint64_t>(n_vocab_); }
  void drop_cache(uint64_t from, uint64_t to) const;

  int fd_ = -1;
  int n_vocab_ = 0;
  int64_t count_ = 0;
  std::string path_;
  mutable std::vector<char> buf_;    // one record, reused (scratch for read as well)
  uint64_t flushed_ = 0;             // bytes already synced and dropped from the page cache
};

}  // namespace swapmoe::cli
