// GgufFile accessors (typed metadata getters, read_at), value helpers and the byte
// sources. Parsing lives in gguf_reader.cpp.

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "gguf/gguf.h"
#include "gguf/gguf_source.h"
#include "util/error.h"

namespace swapmoe {

namespace gguf_detail {

void pread_exact(int fd, uint64_t offset, void* dst, size_t n, const std::string& path) {
  auto* out = static_cast<uint8_t*>(dst);
  uint64_t off = offset;
  size_t left = n;
  while (left > 0) {
    ssize_t r = ::pread(fd, out, left, static_cast<off_t>(off));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail(path, ": read of ", n, " bytes at byte offset ", offset, " failed: ", std::strerror(errno));
    }
    if (r == 0)
      fail(path, ": short read: ", n, " bytes at byte offset ", offset, " hit end of file after ",
           n - left, " bytes");
    out += r;
    off += static_cast<uint64_t>(r);
    left -= static_cast<size_t>(r);
  }
}

void FdSource::read(uint64_t offset, void* dst, size_t n) const { pread_exact(fd_, offset, dst, n, path_); }

void MemSource::read(uint64_t offset, void* dst, size_t n) const {
  if (n) std::memcpy(dst, data_ + offset, n);
}

}  // namespace gguf_detail

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "str";
    case GgufType::ARRAY: return "arr";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "?";
}

size_t gguf_type_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    case GgufType::STRING: case GgufType::ARRAY: return 0;
  }
  return 0;
}

namespace {

bool int_kind(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
      return true;
    default:
      return false;
  }
}
bool unsigned_kind(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}
bool float_kind(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

std::string quote(const std::string& s, size_t max) {
  std::string out = "\"";
  for (size_t k = 0; k < s.size() && k < max; ++k) {
    unsigned char ch = static_cast<unsigned char>(s[k]);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      out += cat("\\x", "0123456789abcdef"[ch >> 4], "0123456789abcdef"[ch & 15]);
    } else {
      out += static_cast<char>(ch);
    }
  }
  out += s.size() > max ? "\"..." : "\"";
  return out;
}

}  // namespace

bool GgufValue::is_int() const { return int_kind(type); }
bool GgufValue::is_float() const { return float_kind(type); }

std::string gguf_value_to_string(const GgufValue& v, size_t max_elems, size_t max_str) {
  if (unsigned_kind(v.type)) return cat(v.u);
  if (int_kind(v.type)) return cat(v.i);
  if (float_kind(v.type)) return cat(v.f);
  if (v.type == GgufType::BOOL) return v.u ? "true" : "false";
  if (v.type == GgufType::STRING) return quote(v.s, max_str);
  std::string out = cat("[", gguf_type_name(v.elem_type), " x ", v.arr_len, "]");
  size_t n = static_cast<size_t>(std::min<uint64_t>(v.arr_len, max_elems));
  for (size_t k = 0; k < n; ++k) {
    out += k ? ", " : " ";
    if (v.elem_type == GgufType::STRING && k < v.arr_str.size()) out += quote(v.arr_str[k], max_str);
    else if (float_kind(v.elem_type) && k < v.arr_float.size()) out += cat(v.arr_float[k]);
    else if (v.elem_type == GgufType::UINT64 && k < v.arr_int.size()) out += cat(static_cast<uint64_t>(v.arr_int[k]));
    else if (v.elem_type == GgufType::BOOL && k < v.arr_int.size()) out += v.arr_int[k] ? "true" : "false";
    else if (k < v.arr_int.size()) out += cat(v.arr_int[k]);
  }
  if (v.arr_len > n) out += ", ...";
  return out;
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // the parser guarantees this does not overflow
  return n;
}

uint64_t GgufTensorInfo::expert_bytes() const {
  if (ne.size() != 3)
    fail("tensor '", name, "': expert slices need a 3-D tensor [cols, rows, n_expert], it has ",
         ne.size(), " dimensions");
  return static_cast<uint64_t>(ggml_row_size(type, ne[0])) * static_cast<uint64_t>(ne[1]);
}

uint64_t GgufTensorInfo::expert_offset(int64_t e) const {
  uint64_t eb = expert_bytes();
  if (e < 0 || e >= ne[2]) fail("tensor '", name, "': expert ", e, " out of range 0..", ne[2] - 1);
  return offset + static_cast<uint64_t>(e) * eb;
}

GgufFile::~GgufFile() {
  if (fd_ >= 0) ::close(fd_);
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

const GgufValue& must(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) fail(f.path(), ": metadata key '", key, "' is missing");
  return *v;
}

[[noreturn]] void wrong_kind(const GgufFile& f, const std::string& key, const GgufValue& v, const char* want) {
  if (v.type == GgufType::ARRAY)
    fail(f.path(), ": metadata key '", key, "' should be ", want, " but is an array of ",
         gguf_type_name(v.elem_type));
  fail(f.path(), ": metadata key '", key, "' should be ", want, " but is ", gguf_type_name(v.type));
}

}  // namespace

uint64_t GgufFile::get_u64(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (unsigned_kind(v.type)) return v.u;
  if (int_kind(v.type)) {
    if (v.i < 0) fail(path_, ": metadata key '", key, "' should be non-negative but is ", v.i);
    return static_cast<uint64_t>(v.i);
  }
  wrong_kind(*this, key, v, "an integer");
}

int64_t GgufFile::get_i64(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (unsigned_kind(v.type)) {
    if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(path_, ": metadata key '", key, "' value ", v.u, " does not fit in int64");
    return static_cast<int64_t>(v.u);
  }
  if (int_kind(v.type)) return v.i;
  wrong_kind(*this, key, v, "an integer");
}

double GgufFile::get_f64(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (float_kind(v.type)) return v.f;
  if (unsigned_kind(v.type)) return static_cast<double>(v.u);
  if (int_kind(v.type)) return static_cast<double>(v.i);
  wrong_kind(*this, key, v, "a number");
}

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type == GgufType::BOOL) return v.u != 0;
  wrong_kind(*this, key, v, "a bool");
}

std::string GgufFile::get_str(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type == GgufType::STRING) return v.s;
  wrong_kind(*this, key, v, "a string");
}

std::vector<std::string> GgufFile::get_str_array(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type == GgufType::ARRAY && v.elem_type == GgufType::STRING) return v.arr_str;
  wrong_kind(*this, key, v, "an array of strings");
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type == GgufType::ARRAY && (int_kind(v.elem_type) || v.elem_type == GgufType::BOOL)) {
    if (v.elem_type == GgufType::UINT64)
      for (int64_t x : v.arr_int)
        if (x < 0)
          fail(path_, ": metadata key '", key, "' holds u64 value ", static_cast<uint64_t>(x),
               " that does not fit in int64");
    return v.arr_int;
  }
  wrong_kind(*this, key, v, "an array of integers");
}

std::vector<float> GgufFile::get_f32_array(const std::string& key) const {
  const GgufValue& v = must(*this, key);
  if (v.type == GgufType::ARRAY && float_kind(v.elem_type))
    return std::vector<float>(v.arr_float.begin(), v.arr_float.end());
  if (v.type == GgufType::ARRAY && int_kind(v.elem_type)) {
    std::vector<float> out;
    out.reserve(v.arr_int.size());
    for (int64_t x : v.arr_int)
      out.push_back(v.elem_type == GgufType::UINT64 ? static_cast<float>(static_cast<uint64_t>(x))
                                                    : static_cast<float>(x));
    return out;
  }
  wrong_kind(*this, key, v, "an array of numbers");
}

uint64_t GgufFile::get_u64(const std::string& key, uint64_t def) const {
  return has(key) ? get_u64(key) : def;
}
double GgufFile::get_f64(const std::string& key, double def) const {
  return has(key) ? get_f64(key) : def;
}
bool GgufFile::get_bool(const std::string& key, bool def) const {
  return has(key) ? get_bool(key) : def;
}
std::string GgufFile::get_str(const std::string& key, const std::string& def) const {
  return has(key) ? get_str(key) : def;
}

void GgufFile::read_at(uint32_t part, uint64_t offset, void* dst, size_t n) const {
  if (part != 0) {
    if (part >= parts_.size())
      fail(path_, ": read from part ", part + 1, " but the model has ", parts_.size(), " part",
           parts_.size() == 1 ? "" : "s");
    others_[part - 1]->read_at(0, offset, dst, n);
    return;
  }
  uint64_t end = 0;
  if (__builtin_add_overflow(offset, static_cast<uint64_t>(n), &end) || end > file_size_)
    fail(path_, ": read of ", n, " bytes at byte offset ", offset, " is beyond the end of the file (size ",
         file_size_, ")");
  if (n == 0) return;
  if (fd_ >= 0) {
    gguf_detail::pread_exact(fd_, offset, dst, n, path_);
  } else {
    std::memcpy(dst, mem_.data() + offset, n);
  }
}

std::vector<std::string> GgufFile::part_paths() const {
  std::vector<std::string> out;
  out.reserve(parts_.size());
  for (const GgufPart& p : parts_) out.push_back(p.path);
  return out;
}

// A freshly parsed file is a model of one part until gguf_join_split adds others.
void GgufFile::describe_single_part() {
  GgufPart p;
  p.path = path_;
  p.file_size = file_size_;
  p.data_offset = data_offset_;
  p.alignment = alignment_;
  p.n_tensors = tensors_.size();
  p.fd = fd_;
  parts_.assign(1, std::move(p));
  total_size_ = file_size_;
}

}  // namespace swapmoe
