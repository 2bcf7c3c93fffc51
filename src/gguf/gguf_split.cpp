// Split GGUF sets (see gguf_split.h): naming, opening a model from its first part, and
// the validation that joins parsed parts into one GgufFile.

#include "gguf/gguf_split.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>

#include "gguf/gguf.h"
#include "util/error.h"

namespace swapmoe {

std::string gguf_split_path(const std::string& prefix, uint32_t no, uint32_t count) {
  char tail[64];
  std::snprintf(tail, sizeof tail, "-%05u-of-%05u.gguf", no + 1, count);
  return prefix + tail;
}

namespace {

// Reads the decimal number that ends just before `end` in s; sets *begin to its first digit.
bool digits_before(const std::string& s, size_t end, size_t* begin, uint64_t* value) {
  size_t b = end;
  while (b > 0 && s[b - 1] >= '0' && s[b - 1] <= '9' && end - b < 12) --b;
  if (b == end || (b > 0 && s[b - 1] >= '0' && s[b - 1] <= '9')) return false;
  uint64_t v = 0;
  for (size_t k = b; k < end; ++k) v = v * 10 + static_cast<uint64_t>(s[k] - '0');
  *begin = b;
  *value = v;
  return true;
}

bool ends_with(const std::string& s, size_t end, const char* tail) {
  const size_t n = std::strlen(tail);
  return end >= n && s.compare(end - n, n, tail) == 0;
}

}  // namespace

bool gguf_split_name(const std::string& path, std::string* prefix, uint32_t* no, uint32_t* count) {
  if (!ends_with(path, path.size(), ".gguf")) return false;
  size_t b_count = 0, b_no = 0;
  uint64_t n_count = 0, n_no = 0;
  if (!digits_before(path, path.size() - 5, &b_count, &n_count)) return false;
  if (!ends_with(path, b_count, "-of-")) return false;
  if (!digits_before(path, b_count - 4, &b_no, &n_no)) return false;
  if (!ends_with(path, b_no, "-")) return false;
  if (n_count < 1 || n_count > kMaxSplitCount || n_no < 1 || n_no > n_count) return false;
  const std::string pre = path.substr(0, b_no - 1);
  // Only the canonical spelling (five digits, zero-padded): the siblings are found by
  // formatting their names the same way.
  if (gguf_split_path(pre, static_cast<uint32_t>(n_no - 1), static_cast<uint32_t>(n_count)) != path) return false;
  *prefix = pre;
  *no = static_cast<uint32_t>(n_no - 1);
  *count = static_cast<uint32_t>(n_count);
  return true;
}

namespace {

// A split key as an integer in [lo, hi]. gguf-split writes u16/i32; any integer kind is
// accepted, a wrong kind or an out-of-range value is an error naming the part.
uint64_t split_key(const GgufFile& f, const char* key, uint64_t lo, uint64_t hi) {
  const GgufValue* v = f.find(key);
  if (!v) fail(f.path(), ": split part without the key ", key);
  bool ok = false;
  uint64_t x = 0;
  if (v->is_int()) {
    if (v->type == GgufType::UINT8 || v->type == GgufType::UINT16 || v->type == GgufType::UINT32 ||
        v->type == GgufType::UINT64) {
      x = v->u;
      ok = true;
    } else if (v->i >= 0) {
      x = static_cast<uint64_t>(v->i);
      ok = true;
    }
  }
  if (!ok || x < lo || x > hi)
    fail(f.path(), ": ", key, " must be an integer in ", lo, "..", hi, ", got ", gguf_value_to_string(*v), " (",
         gguf_type_name(v->type), ")");
  return x;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

}  // namespace

std::unique_ptr<GgufFile> gguf_join_split(std::vector<std::unique_ptr<GgufFile>> parts) {
  if (parts.empty()) fail("split GGUF: no parts given");
  GgufFile& first = *parts[0];
  const uint64_t count = split_key(first, kSplitCountKey, 1, kMaxSplitCount);
  if (parts.size() != count)
    fail(first.path(), ": split.count is ", count, " but ", parts.size(), " part", parts.size() == 1 ? " was" : "s were",
         " given");
  const uint64_t want_tensors =
      split_key(first, kSplitTensorsCountKey, 0, static_cast<uint64_t>(std::numeric_limits<int32_t>::max()));

  std::map<std::string, size_t> owner;  // tensor name -> part index
  uint64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const GgufFile& p = *parts[i];
    const uint64_t no = split_key(p, kSplitNoKey, 0, kMaxSplitCount - 1);
    const uint64_t c = split_key(p, kSplitCountKey, 1, kMaxSplitCount);
    if (c != count)
      fail(p.path(), ": split.count is ", c, " but the first part ", first.path(), " says ", count);
    if (no != i)
      fail(p.path(), ": split.no is ", no, " (part ", no + 1, " of ", count, ") where part ", i + 1, " of ", count,
           " was expected");
    if (i > 0 && p.has(kSplitTensorsCountKey)) {
      const uint64_t t = split_key(p, kSplitTensorsCountKey, 0, static_cast<uint64_t>(std::numeric_limits<int32_t>::max()));
      if (t != want_tensors)
        fail(p.path(), ": split.tensors.count is ", t, " but the first part ", first.path(), " says ", want_tensors);
    }
    for (const GgufTensorInfo& t : p.tensors()) {
      auto [it, fresh] = owner.emplace(t.name, i);
      if (!fresh)
        fail(p.path(), ": tensor '", t.name, "' is also in ", parts[it->second]->path(),
             " (each tensor must be in exactly one part)");
    }
    total += p.tensors().size();
  }
  if (total != want_tensors)
    fail(first.path(), ": split.tensors.count is ", want_tensors, " but the ", count, " part", count == 1 ? "" : "s",
         " hold ", total, " tensor", total == 1 ? "" : "s");

  // Join: the first part keeps its metadata and gains the others' tensors, each tagged
  // with its part. (Tensor data was already checked against its own part's size when
  // that part was parsed.)
  std::unique_ptr<GgufFile> out = std::move(parts[0]);
  out->tensors_.reserve(static_cast<size_t>(total));
  for (size_t i = 1; i < parts.size(); ++i) {
    std::unique_ptr<GgufFile>& p = parts[i];
    for (GgufTensorInfo& t : p->tensors_) {
      t.part = static_cast<uint32_t>(i);
      out->tensor_index_[t.name] = out->tensors_.size();
      out->tensors_.push_back(t);
    }
    out->parts_.push_back(p->parts_[0]);
    out->total_size_ += p->file_size_;
    out->others_.push_back(std::move(p));
  }
  return out;
}

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> first = open_file(path);
  // A whole file: the common case costs one key lookup.
  if (!first->has(kSplitCountKey)) return first;

  // llama-gguf-split --merge writes split.count = 0 into the merged file (and keeps the other
  // split keys), and llama.cpp's loader treats a count below 2 as a whole file: so do we for 0.
  const uint64_t count = split_key(*first, kSplitCountKey, 0, kMaxSplitCount);
  if (count == 0) return first;
  const uint64_t no = split_key(*first, kSplitNoKey, 0, kMaxSplitCount - 1);
  std::string prefix;
  uint32_t name_no = 0, name_count = 0;
  const bool named = gguf_split_name(path, &prefix, &name_no, &name_count);
  if (no != 0) {
    if (named && name_count == count)
      fail(path, ": this is part ", no + 1, " of ", count, " of a split model; open its first part, ",
           gguf_split_path(prefix, 0, static_cast<uint32_t>(count)));
    fail(path, ": this is part ", no + 1, " of ", count,
         " of a split model (split.no); open its first part (the one with split.no = 0)");
  }
  if (count == 1) {
    std::vector<std::unique_ptr<GgufFile>> one;
    one.push_back(std::move(first));
    return gguf_join_split(std::move(one));
  }
  if (!named || name_no != 0 || name_count != count)
    fail(path, ": the first part of a split model of ", count,
         " parts (split.count) must be named as gguf-split names it, PREFIX",
         gguf_split_path("", 0, static_cast<uint32_t>(count)), ", so that the other parts can be found");

  std::vector<std::unique_ptr<GgufFile>> parts;
  parts.reserve(static_cast<size_t>(count));
  parts.push_back(std::move(first));
  for (uint32_t i = 1; i < count; ++i) {
    const std::string p = gguf_split_path(prefix, i, static_cast<uint32_t>(count));
    if (!file_exists(p)) fail(p, ": part ", i + 1, " of ", count, " of the split model ", path, " is missing");
    parts.push_back(open_file(p));
  }
  return gguf_join_split(std::move(parts));
}

}  // namespace swapmoe
