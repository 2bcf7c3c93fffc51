// GgufOutput: one file or a gguf-split set (see gguf_split_writer.h).

#include "gguf/gguf_split_writer.h"

#include <unistd.h>

#include <algorithm>
#include <limits>

#include "gguf/gguf_split.h"
#include "util/error.h"

namespace swapmoe {

namespace {

// gguf-split sizes its parts with tensors padded to GGUF's default alignment, whatever
// the file's own alignment; the same rule gives the same split points.
constexpr uint64_t kSplitPad = 32;

}  // namespace

uint64_t parse_split_size(const std::string& s) {
  if (s.size() < 2) fail("--split-max-size '", s, "': expected a positive integer followed by M or G (e.g. 500M, 2G)");
  const char unit = s.back();
  uint64_t mult = unit == 'K' ? 1000ull : unit == 'M' ? 1000ull * 1000 : unit == 'G' ? 1000ull * 1000 * 1000 : 0;
  if (!mult) fail("--split-max-size '", s, "': the unit must be M (10^6 bytes) or G (10^9 bytes), as for gguf-split");
  uint64_t n = 0;
  for (size_t k = 0; k + 1 < s.size(); ++k) {
    if (s[k] < '0' || s[k] > '9' || n > std::numeric_limits<uint64_t>::max() / 10 / mult)
      fail("--split-max-size '", s, "': expected a positive integer followed by M or G (e.g. 500M, 2G)");
    n = n * 10 + static_cast<uint64_t>(s[k] - '0');
  }
  if (n == 0) fail("--split-max-size '", s, "': the size must be positive");
  return n * mult;
}

std::vector<uint32_t> plan_split(const std::vector<GgufTensorInfo>& tensors, const GgufSplitLimits& limits) {
  std::vector<uint32_t> part(tensors.size(), 0);
  uint32_t p = 0;
  uint64_t bytes = 0, count = 0;  // in the current part
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t nb = (tensors[i].nbytes + kSplitPad - 1) / kSplitPad * kSplitPad;
    const bool over_size = limits.max_bytes && bytes + nb > limits.max_bytes;
    const bool over_count = limits.max_tensors && count >= limits.max_tensors;
    if (count > 0 && (over_size || over_count)) {
      if (p + 1 >= kMaxSplitCount)
        fail("gguf split: more than ", kMaxSplitCount, " parts; raise --split-max-size or --split-max-tensors");
      ++p;
      bytes = 0;
      count = 0;
    }
    part[i] = p;
    bytes += nb;
    ++count;
  }
  return part;
}

GgufOutput::GgufOutput(GgufWriter& declared, const std::string& path, const GgufSplitLimits& limits)
    : declared_(declared) {
  if (!limits.active()) {
    paths_.push_back(path);
    return;
  }
  const std::vector<GgufTensorInfo>& ts = declared.tensors();
  const std::vector<uint32_t> plan = plan_split(ts, limits);
  const uint32_t n = plan.empty() ? 1 : plan.back() + 1;
  std::string prefix = path;
  if (prefix.size() > 5 && prefix.compare(prefix.size() - 5, 5, ".gguf") == 0) prefix.resize(prefix.size() - 5);
  const uint64_t a = declared.alignment();
  parts_.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    paths_.push_back(gguf_split_path(prefix, i, n));
    Part& P = parts_[i];
    P.w = std::make_unique<GgufWriter>();
    if (i == 0) {
      for (const auto& [key, v] : declared.metadata()) P.w->set(key, v);
    } else if (a != 32) {
      // The other parts carry no metadata but the split keys; a non-default alignment
      // must still be stated for their tensor offsets to be read right.
      P.w->set_alignment(static_cast<uint32_t>(a));
    }
    P.w->set_u16(kSplitNoKey, static_cast<uint16_t>(i));
    P.w->set_u16(kSplitCountKey, static_cast<uint16_t>(n));
    P.w->set_i32(kSplitTensorsCountKey, static_cast<int32_t>(ts.size()));
  }
  if (ts.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail("gguf split: ", ts.size(), " tensors do not fit split.tensors.count (i32)");
  for (size_t k = 0; k < ts.size(); ++k) {
    Part& P = parts_[plan[k]];
    P.w->add_tensor_info(ts[k].name, ts[k].type, ts[k].ne);
    P.bytes += ts[k].nbytes;
  }
}

GgufOutput::~GgufOutput() {
  if (finished_ || parts_.empty()) return;
  // Abandoned: the unfinished writers remove their temporary files themselves; the
  // parts already renamed into place would be a stray, incomplete set.
  for (size_t i = 0; i < parts_.size(); ++i)
    if (parts_[i].finished) ::unlink(paths_[i].c_str());
}

void GgufOutput::start(size_t i) {
  parts_[i].w->begin(paths_[i]);
  parts_[i].begun = true;
}

// The first part is closed by finish(), after all others.
void GgufOutput::close(size_t i) {
  if (i == 0 || parts_[i].finished) return;
  parts_[i].w->finish();
  parts_[i].finished = true;
}

void GgufOutput::begin() {
  if (parts_.empty()) {
    declared_.begin(paths_[0]);
    return;
  }
  // An older set under the same names stops being loadable now: were this one abandoned
  // half-way, its renamed parts must not pair up with the old first part.
  ::unlink(paths_[0].c_str());
  start(0);
  cur_ = 0;
}

// Moves to the next part while the current one has all its bytes.
void GgufOutput::step_over_full_parts() {
  while (cur_ + 1 < parts_.size() && parts_[cur_].done == parts_[cur_].bytes) {
    close(cur_);
    start(++cur_);
  }
}

void GgufOutput::write_tensor_data(const void* data, size_t n) {
  if (parts_.empty()) return declared_.write_tensor_data(data, n);
  const auto* p = static_cast<const uint8_t*>(data);
  while (true) {
    step_over_full_parts();
    Part& P = parts_[cur_];
    // The last part takes any excess, so its writer reports it.
    const uint64_t k = cur_ + 1 < parts_.size() ? std::min<uint64_t>(n, P.bytes - P.done) : n;
    P.w->write_tensor_data(p, static_cast<size_t>(k));
    P.done += k;
    p += k;
    n -= static_cast<size_t>(k);
    if (n == 0) return;
  }
}

void GgufOutput::skip_tensor() {
  if (parts_.empty()) return declared_.skip_tensor();
  step_over_full_parts();
  Part& P = parts_[cur_];
  // Bytes left of the writer's current tensor: the first non-empty one not yet complete.
  const std::vector<GgufTensorInfo>& ts = P.w->tensors();
  uint64_t end = 0;
  for (const GgufTensorInfo& t : ts) {
    end += t.nbytes;
    if (end > P.done) break;
  }
  P.w->skip_tensor();
  P.done = std::max(P.done, end);
}

void GgufOutput::finish() {
  if (parts_.empty()) {
    declared_.finish();
    finished_ = true;
    return;
  }
  // Trailing parts whose tensors are all empty still have to be written.
  step_over_full_parts();
  for (size_t i = 1; i < parts_.size(); ++i) {
    if (!parts_[i].begun) fail("gguf split: ", paths_[i], ": its tensor data was never written");
    close(i);
  }
  parts_[0].w->finish();
  parts_[0].finished = true;
  finished_ = true;
}

uint64_t GgufOutput::file_size() const {
  if (parts_.empty()) return declared_.file_size();
  uint64_t total = 0;
  for (const Part& P : parts_)
    if (P.begun) total += P.w->file_size();
  return total;
}

std::vector<size_t> GgufOutput::part_tensor_counts() const {
  if (parts_.empty()) return {declared_.tensors().size()};
  std::vector<size_t> out;
  for (const Part& P : parts_) out.push_back(P.w->tensors().size());
  return out;
}

}  // namespace swapmoe
