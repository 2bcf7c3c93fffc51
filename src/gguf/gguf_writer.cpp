// Streaming GGUF v3 writer; see gguf_writer.h for the protocol. The header is built in
// memory (it is small: metadata and tensor infos), tensor bytes pass through a 1 MiB
// buffer and are written with pwrite at positions computed from the declared layout.

#include "gguf/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "util/error.h"

namespace swapmoe {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
constexpr uint64_t kDefaultAlignment = 32;
constexpr size_t kBufSize = 1 << 20;

bool is_signed(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}
bool is_unsigned(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 || t == GgufType::UINT64;
}
bool is_float(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Range of an integer kind, used to reject values that would be silently truncated.
void check_signed(const std::string& key, GgufType t, int64_t v) {
  int bits = static_cast<int>(gguf_type_size(t)) * 8;
  if (bits < 64) {
    int64_t lo = -(int64_t{1} << (bits - 1)), hi = (int64_t{1} << (bits - 1)) - 1;
    if (v < lo || v > hi) fail("gguf writer: key '", key, "': value ", v, " does not fit in ", gguf_type_name(t));
  }
}
void check_unsigned(const std::string& key, GgufType t, uint64_t v) {
  int bits = static_cast<int>(gguf_type_size(t)) * 8;
  if (bits < 64 && v >> bits)
    fail("gguf writer: key '", key, "': value ", v, " does not fit in ", gguf_type_name(t));
}

// Little-endian serialization into a growing byte vector.
struct Out {
  std::vector<uint8_t>& b;
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void f32(double d) {
    float x = static_cast<float>(d);
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    u32(bits);
  }
  void f64(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    u64(bits);
  }
  // One scalar of kind t taken from an integer (bitwise) or a double.
  void scalar_int(GgufType t, uint64_t bits) { le(t == GgufType::BOOL ? (bits != 0) : bits, static_cast<int>(gguf_type_size(t))); }
  void scalar_float(GgufType t, double d) { t == GgufType::FLOAT32 ? f32(d) : f64(d); }
};

}  // namespace

GgufWriter::~GgufWriter() {
  if (state_ == State::Writing) close_and_remove();
}

void GgufWriter::require(State s, const char* what) const {
  if (state_ != s) {
    const char* now = state_ == State::Declaring ? "before begin()"
                      : state_ == State::Writing ? "after begin()"
                                                 : "after finish()";
    fail("gguf writer: ", what, " is not allowed ", now);
  }
}

// ---------------------------------------------------------------- metadata

void GgufWriter::put_kv(const std::string& key, GgufValue v) {
  require(State::Declaring, "setting metadata");
  for (auto& kv : kv_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::set(const std::string& key, GgufValue v) {
  if (static_cast<uint32_t>(v.type) > static_cast<uint32_t>(GgufType::FLOAT64))
    fail("gguf writer: key '", key, "': invalid value type ", static_cast<uint32_t>(v.type));
  if (is_signed(v.type)) check_signed(key, v.type, v.i);
  if (is_unsigned(v.type)) check_unsigned(key, v.type, v.u);
  if (v.type == GgufType::ARRAY) {
    GgufType e = v.elem_type;
    if (static_cast<uint32_t>(e) > static_cast<uint32_t>(GgufType::FLOAT64) || e == GgufType::ARRAY)
      fail("gguf writer: key '", key, "': unsupported array element type ", static_cast<uint32_t>(e));
    if (e == GgufType::STRING) {
      v.arr_len = v.arr_str.size();
    } else if (is_float(e)) {
      v.arr_len = v.arr_float.size();
    } else {
      v.arr_len = v.arr_int.size();
      for (int64_t x : v.arr_int) {
        if (is_signed(e)) check_signed(key, e, x);
        else if (e == GgufType::BOOL) {
          if (x != 0 && x != 1) fail("gguf writer: key '", key, "': bool element ", x, " is not 0 or 1");
        } else check_unsigned(key, e, static_cast<uint64_t>(x));
      }
    }
  }
  put_kv(key, std::move(v));
}

namespace {
GgufValue uval(GgufType t, uint64_t u) {
  GgufValue v;
  v.type = t;
  v.u = u;
  return v;
}
GgufValue ival(GgufType t, int64_t i) {
  GgufValue v;
  v.type = t;
  v.i = i;
  return v;
}
GgufValue fval(GgufType t, double f) {
  GgufValue v;
  v.type = t;
  v.f = f;
  return v;
}
}  // namespace

void GgufWriter::set_u8(const std::string& k, uint8_t v) { set(k, uval(GgufType::UINT8, v)); }
void GgufWriter::set_i8(const std::string& k, int8_t v) { set(k, ival(GgufType::INT8, v)); }
void GgufWriter::set_u16(const std::string& k, uint16_t v) { set(k, uval(GgufType::UINT16, v)); }
void GgufWriter::set_i16(const std::string& k, int16_t v) { set(k, ival(GgufType::INT16, v)); }
void GgufWriter::set_u32(const std::string& k, uint32_t v) { set(k, uval(GgufType::UINT32, v)); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { set(k, ival(GgufType::INT32, v)); }
void GgufWriter::set_u64(const std::string& k, uint64_t v) { set(k, uval(GgufType::UINT64, v)); }
void GgufWriter::set_i64(const std::string& k, int64_t v) { set(k, ival(GgufType::INT64, v)); }
void GgufWriter::set_f32(const std::string& k, float v) { set(k, fval(GgufType::FLOAT32, v)); }
void GgufWriter::set_f64(const std::string& k, double v) { set(k, fval(GgufType::FLOAT64, v)); }
void GgufWriter::set_bool(const std::string& k, bool v) { set(k, uval(GgufType::BOOL, v ? 1 : 0)); }

void GgufWriter::set_str(const std::string& k, const std::string& s) {
  GgufValue v;
  v.type = GgufType::STRING;
  v.s = s;
  set(k, std::move(v));
}

void GgufWriter::set_arr_str(const std::string& k, const std::vector<std::string>& a) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = GgufType::STRING;
  v.arr_str = a;
  set(k, std::move(v));
}

void GgufWriter::set_arr_int(const std::string& k, GgufType elem, const std::vector<int64_t>& a) {
  if (!is_signed(elem) && !is_unsigned(elem) && elem != GgufType::BOOL)
    fail("gguf writer: key '", k, "': ", gguf_type_name(elem), " is not an integer element type");
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem;
  v.arr_int = a;
  set(k, std::move(v));
}

void GgufWriter::set_arr_float(const std::string& k, GgufType elem, const std::vector<double>& a) {
  if (!is_float(elem)) fail("gguf writer: key '", k, "': ", gguf_type_name(elem), " is not a float element type");
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = elem;
  v.arr_float = a;
  set(k, std::move(v));
}

void GgufWriter::set_arr_i32(const std::string& k, const std::vector<int32_t>& a) {
  set_arr_int(k, GgufType::INT32, std::vector<int64_t>(a.begin(), a.end()));
}
void GgufWriter::set_arr_u32(const std::string& k, const std::vector<uint32_t>& a) {
  set_arr_int(k, GgufType::UINT32, std::vector<int64_t>(a.begin(), a.end()));
}
void GgufWriter::set_arr_f32(const std::string& k, const std::vector<float>& a) {
  set_arr_float(k, GgufType::FLOAT32, std::vector<double>(a.begin(), a.end()));
}

void GgufWriter::set_alignment(uint32_t a) {
  if (a == 0 || (a & (a - 1)) != 0) fail("gguf writer: alignment ", a, " is not a nonzero power of two");
  set_u32("general.alignment", a);
}

void GgufWriter::copy_metadata(const GgufFile& src) {
  for (const auto& kv : src.metadata()) set(kv.first, kv.second);
}

bool GgufWriter::remove(const std::string& key) {
  require(State::Declaring, "removing metadata");
  for (auto it = kv_.begin(); it != kv_.end(); ++it)
    if (it->first == key) {
      kv_.erase(it);
      return true;
    }
  return false;
}

uint64_t GgufWriter::alignment() const {
  for (const auto& kv : kv_) {
    if (kv.first != "general.alignment") continue;
    const GgufValue& v = kv.second;
    uint64_t a = is_unsigned(v.type) ? v.u : is_signed(v.type) && v.i > 0 ? static_cast<uint64_t>(v.i) : 0;
    if (a == 0 || (a & (a - 1)) != 0)
      fail("gguf writer: general.alignment must be a nonzero power of two, got ", gguf_value_to_string(v));
    return a;
  }
  return kDefaultAlignment;
}

// ---------------------------------------------------------------- tensor infos

size_t GgufWriter::add_tensor_info(const std::string& name, GgmlType type, const std::vector<int64_t>& ne) {
  require(State::Declaring, "adding a tensor");
  for (const auto& t : tensors_)
    if (t.name == name) fail("gguf writer: duplicate tensor name '", name, "'");
  if (ne.empty() || ne.size() > 4) fail("gguf writer: tensor '", name, "': ", ne.size(), " dims, need 1..4");
  const GgmlTypeInfo& info = ggml_type_info(type);
  int64_t n_el = 1;
  for (int64_t d : ne)
    if (d < 0 || __builtin_mul_overflow(n_el, d, &n_el))
      fail("gguf writer: tensor '", name, "': bad or overflowing dimension ", d);
  if (ne[0] % info.block_size != 0)
    fail("gguf writer: tensor '", name, "': ne[0]=", ne[0], " is not a multiple of the ", info.name,
         " block size ", info.block_size);
  GgufTensorInfo t;
  t.name = name;
  t.type = type;
  t.ne = ne;
  uint64_t nb = static_cast<uint64_t>(ne[0] / info.block_size);
  bool ovf = __builtin_mul_overflow(nb, static_cast<uint64_t>(info.type_size), &nb);
  for (size_t d = 1; d < ne.size(); ++d) ovf = ovf || __builtin_mul_overflow(nb, static_cast<uint64_t>(ne[d]), &nb);
  if (ovf) fail("gguf writer: tensor '", name, "': byte size overflows");
  t.nbytes = nb;
  // Relative offset with the current alignment; begin() recomputes it in case the
  // alignment is changed afterwards.
  uint64_t a = alignment();
  t.offset = tensors_.empty() ? 0 : align_up(tensors_.back().offset + tensors_.back().nbytes, a);
  tensors_.push_back(std::move(t));
  return tensors_.size() - 1;
}

// ---------------------------------------------------------------- writing

void GgufWriter::serialize_header(std::vector<uint8_t>& b) const {
  Out o{b};
  o.u32(kMagic);
  o.u32(kVersion);
  o.u64(tensors_.size());
  o.u64(kv_.size());
  for (const auto& [key, v] : kv_) {
    o.str(key);
    o.u32(static_cast<uint32_t>(v.type));
    if (is_signed(v.type)) o.scalar_int(v.type, static_cast<uint64_t>(v.i));
    else if (is_unsigned(v.type) || v.type == GgufType::BOOL) o.scalar_int(v.type, v.u);
    else if (is_float(v.type)) o.scalar_float(v.type, v.f);
    else if (v.type == GgufType::STRING) o.str(v.s);
    else {
      o.u32(static_cast<uint32_t>(v.elem_type));
      o.u64(v.arr_len);
      if (v.elem_type == GgufType::STRING)
        for (const auto& s : v.arr_str) o.str(s);
      else if (is_float(v.elem_type))
        for (double d : v.arr_float) o.scalar_float(v.elem_type, d);
      else
        for (int64_t x : v.arr_int) o.scalar_int(v.elem_type, static_cast<uint64_t>(x));
    }
  }
  for (const auto& t : tensors_) {
    o.str(t.name);
    o.u32(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) o.u64(static_cast<uint64_t>(d));
    o.u32(static_cast<uint32_t>(t.type));
    o.u64(t.offset);  // relative at this point
  }
}

void GgufWriter::begin(const std::string& path) {
  require(State::Declaring, "begin()");
  const uint64_t a = alignment();
  // Final layout: tensors back to back, each starting on an aligned relative offset.
  uint64_t end = 0;
  for (auto& t : tensors_) {
    t.offset = align_up(end, a);
    end = t.offset + t.nbytes;
  }
  data_size_ = align_up(end, a);

  std::vector<uint8_t> header;
  serialize_header(header);
  data_offset_ = align_up(header.size(), a);
  header.resize(static_cast<size_t>(data_offset_), 0);

  path_ = path;
  out_ = std::make_unique<AtomicOutput>(path);
  fd_ = out_->fd();
  state_ = State::Writing;
  raw_write(0, header.data(), header.size());
  for (auto& t : tensors_) t.offset += data_offset_;
  pos_ = data_offset_;
  buf_off_ = pos_;
  buf_.reserve(kBufSize);
  cur_ = 0;
  cur_done_ = 0;
}

void GgufWriter::raw_write(uint64_t off, const void* p, size_t n) {
  const auto* src = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t w = ::pwrite(fd_, src, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(out_->temp_path(), ": write of ", n, " bytes at byte offset ", off, " failed: ", std::strerror(errno));
    }
    src += w;
    off += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
}

void GgufWriter::flush() {
  if (!buf_.empty()) raw_write(buf_off_, buf_.data(), buf_.size());
  buf_.clear();
  buf_off_ = pos_;
}

// Moves n bytes of the tensor stream forward: copies them from data, or leaves a hole
// when data is null. Padding between tensors is written as zeros (it is < alignment).
void GgufWriter::advance(const uint8_t* data, uint64_t n) {
  while (n > 0) {
    if (cur_ >= tensors_.size())
      fail("gguf writer: ", path_, ": ", n, " bytes of tensor data beyond the ", tensors_.size(),
           " declared tensors");
    const GgufTensorInfo& t = tensors_[cur_];
    uint64_t k = std::min(n, t.nbytes - cur_done_);
    if (data) {
      if (buf_.size() + k > kBufSize) flush();
      if (k >= kBufSize) {
        raw_write(pos_, data, static_cast<size_t>(k));
        pos_ += k;
        buf_off_ = pos_;
      } else {
        buf_.insert(buf_.end(), data, data + k);
        pos_ += k;
      }
      data += k;
    } else {
      flush();
      pos_ += k;
      buf_off_ = pos_;
    }
    cur_done_ += k;
    n -= k;
    pass_finished();
  }
}

// Steps over finished (and empty) tensors, writing the zero padding up to the start of
// the next tensor, or up to the aligned end of the data section after the last one.
void GgufWriter::pass_finished() {
  static const uint8_t zeros[256] = {};
  while (cur_ < tensors_.size() && cur_done_ == tensors_[cur_].nbytes) {
    ++cur_;
    cur_done_ = 0;
    uint64_t next = cur_ < tensors_.size() ? tensors_[cur_].offset : data_offset_ + data_size_;
    while (pos_ < next) {
      size_t z = static_cast<size_t>(std::min<uint64_t>(next - pos_, sizeof zeros));
      if (buf_.size() + z > kBufSize) flush();
      buf_.insert(buf_.end(), zeros, zeros + z);
      pos_ += z;
    }
  }
}

void GgufWriter::write_tensor_data(const void* data, size_t n) {
  require(State::Writing, "write_tensor_data()");
  advance(static_cast<const uint8_t*>(data), n);
}

void GgufWriter::skip_tensor_data(uint64_t n) {
  require(State::Writing, "skip_tensor_data()");
  advance(nullptr, n);
}

void GgufWriter::skip_tensor() {
  require(State::Writing, "skip_tensor()");
  if (cur_ >= tensors_.size()) fail("gguf writer: skip_tensor(): all tensors already written");
  advance(nullptr, tensors_[cur_].nbytes - cur_done_);
}

void GgufWriter::finish() {
  require(State::Writing, "finish()");
  // Trailing empty tensors need no bytes; step over them.
  pass_finished();
  if (cur_ < tensors_.size())
    fail("gguf writer: ", path_, ": tensor '", tensors_[cur_].name, "' got ", cur_done_, " of ",
         tensors_[cur_].nbytes, " bytes (", tensors_.size() - cur_, " tensors incomplete)");
  flush();
  // Extending with ftruncate makes a trailing hole (sparse skip) part of the file size.
  if (::ftruncate(fd_, static_cast<off_t>(file_size())) != 0)
    fail(out_->temp_path(), ": ftruncate failed: ", std::strerror(errno));
  fd_ = -1;
  out_->commit();  // fsync, rename into place, fsync the folder
  out_.reset();
  state_ = State::Done;
}

void GgufWriter::close_and_remove() {
  fd_ = -1;
  out_.reset();  // closes and removes the temporary file
}

}  // namespace swapmoe
