// GGUF header parser. Every length and count read from the file is checked against the
// bytes that remain before anything is allocated, so a hostile or truncated file ends in
// a swapmoe::Error (path, what, byte offset) rather than a crash or a huge allocation.
//
// Layout parsed (all little-endian):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv x { string key, u32 type, value },
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 rel offset },
//   padding to alignment, tensor data (data_offset + rel offset).
// A string is u64 length + bytes; an array is u32 element type + u64 count + elements.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <numeric>

#include "gguf/gguf.h"
#include "gguf/gguf_source.h"
#include "util/error.h"
#include "util/regular_file.h"

namespace swapmoe {

using gguf_detail::ByteSource;

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
// The header is read through a buffer of this size, so parsing costs a few large preads
// rather than one syscall per field.
constexpr size_t kChunk = 1 << 20;
// Smallest possible records: they bound counts by the bytes left before allocating.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;               // empty key, type, 1-byte value
constexpr uint64_t kMinTensorBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims=1
// Parsed metadata can take more memory than its bytes in the file (a u8 array element
// becomes an int64, an empty string 32 bytes), so a hostile file could make the parser
// allocate many times its size. Everything the parser keeps is charged against this
// budget before it is allocated. Real headers need a few tens of MiB (a 256k-token vocab).
constexpr uint64_t kMemBudget = uint64_t{1} << 30;
// Rough per-entry costs of the containers (vector slot + map node + key).
constexpr uint64_t kKvCost = sizeof(std::pair<std::string, GgufValue>) + 96;
constexpr uint64_t kTensorCost = sizeof(GgufTensorInfo) + 96 + 4 * 8 + 16;
constexpr uint32_t kMaxDims = 4;

// Buffered sequential reader over a ByteSource, tracking the absolute position for
// error messages.
class Cursor {
 public:
  Cursor(const ByteSource& src, const std::string& path) : src_(src), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return src_.size() - pos_; }

  template <typename... Args>
  [[noreturn]] void fail_at(uint64_t off, const Args&... args) const {
    fail(path_, ": ", args..., " (at byte offset ", off, ")");
  }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail_at(pos_, "truncated file: ", what, " needs ", n, " bytes but only ", remaining(),
              " remain (file size ", src_.size(), ")");
  }

  void read(void* dst, uint64_t n, const char* what) {
    // Fast path: the bytes are already buffered (the buffer never extends past the end
    // of the source, so no bounds check is needed here).
    if (pos_ >= buf_start_ && n <= buf_start_ + buf_.size() - pos_) {
      if (n) std::memcpy(dst, buf_.data() + (pos_ - buf_start_), static_cast<size_t>(n));
      pos_ += n;
      return;
    }
    need(n, what);
    auto* out = static_cast<uint8_t*>(dst);
    while (n > 0) {
      if (pos_ < buf_start_ || pos_ >= buf_start_ + buf_.size()) refill();
      size_t off = static_cast<size_t>(pos_ - buf_start_);
      size_t k = static_cast<size_t>(std::min<uint64_t>(n, buf_.size() - off));
      std::memcpy(out, buf_.data() + off, k);
      out += k;
      pos_ += k;
      n -= k;
    }
  }

  uint8_t u8(const char* what) {
    uint8_t b;
    read(&b, 1, what);
    return b;
  }
  uint16_t u16(const char* what) { return static_cast<uint16_t>(le(2, what)); }
  uint32_t u32(const char* what) { return static_cast<uint32_t>(le(4, what)); }
  uint64_t u64(const char* what) { return le(8, what); }

  // Charges n items of `each` bytes to the memory budget; throws when it would be exceeded.
  template <typename... What>
  void charge(uint64_t n, uint64_t each, uint64_t off, const What&... what) {
    if (each && n > (kMemBudget - used_) / each)
      fail_at(off, "header too large: ", what..., " (", n, " x ", each, " bytes) would exceed the ",
              kMemBudget >> 20, " MiB memory limit for metadata and tensor infos");
    used_ += n * each;
  }

  std::string str(const char* what) {
    uint64_t start = pos_;
    uint64_t len = u64(what);
    if (len > remaining())
      fail_at(start, "string length ", len, " of ", what, " exceeds the ", remaining(),
              " bytes remaining in the file");
    charge(len, 1, start, what);
    std::string s(static_cast<size_t>(len), '\0');
    read(s.data(), len, what);
    return s;
  }

 private:
  // Decodes a little-endian integer byte by byte so the parser is endian-neutral.
  uint64_t le(int n, const char* what) {
    uint8_t b[8];
    read(b, n, what);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }

  void refill() {
    buf_start_ = pos_;
    buf_.resize(static_cast<size_t>(std::min<uint64_t>(kChunk, src_.size() - pos_)));
    src_.read(pos_, buf_.data(), buf_.size());
  }

  const ByteSource& src_;
  const std::string& path_;
  uint64_t pos_ = 0;
  uint64_t used_ = 0;  // bytes charged to kMemBudget
  uint64_t buf_start_ = 0;
  std::vector<uint8_t> buf_;
};

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::FLOAT64); }

bool is_signed(GgufType t) {
  return t == GgufType::INT8 || t == GgufType::INT16 || t == GgufType::INT32 || t == GgufType::INT64;
}

bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

// Parses one GGUF image from a ByteSource into a GgufFile (friend, so it can fill the
// private fields directly).
class GgufParser {
 public:
  GgufParser(const ByteSource& src, GgufFile& out) : src_(src), f_(out), c_(src, out.path_) {}

  // GgufFile's constructor is private; the parser is its friend and the only factory.
  static std::unique_ptr<GgufFile> make() { return std::unique_ptr<GgufFile>(new GgufFile()); }

  // The image is copied into the GgufFile first, so read_at keeps working after the
  // caller's buffer is gone.
  static std::unique_ptr<GgufFile> parse_memory(const uint8_t* data, size_t size, const std::string& name) {
    std::unique_ptr<GgufFile> f = make();
    f->path_ = name;
    f->file_size_ = size;
    if (size) f->mem_.assign(data, data + size);
    gguf_detail::MemSource src(f->mem_.data(), f->mem_.size());
    GgufParser p(src, *f);
    p.parse();
    return f;
  }

  void parse() {
    parse_preamble();
    parse_metadata();
    parse_alignment();
    parse_tensor_infos();
    place_tensors();
    f_.describe_single_part();
  }

 private:
  void parse_preamble() {
    uint32_t magic = c_.u32("magic");
    if (magic != kMagic)
      c_.fail_at(0, "bad magic 0x", hex(magic), ": not a GGUF file (expected \"GGUF\")");
    uint32_t version = c_.u32("version");
    uint32_t swapped = __builtin_bswap32(version);
    if (version == 1)
      c_.fail_at(4, "GGUF version 1 is not supported (only versions 2 and 3 are)");
    if (version != 2 && version != 3) {
      if (swapped >= 1 && swapped <= 3)
        c_.fail_at(4, "big-endian GGUF (version ", swapped, ") is not supported");
      c_.fail_at(4, "unsupported GGUF version ", version, " (only versions 2 and 3 are)");
    }
    f_.version_ = version;
    n_tensors_ = c_.u64("tensor count");
    n_kv_ = c_.u64("metadata count");
    // Both counts are bounded by the bytes left, so the reserves below stay small.
    if (n_kv_ > c_.remaining() / kMinKvBytes)
      c_.fail_at(16, "absurd metadata count n_kv=", n_kv_, ": needs at least ", kMinKvBytes,
                 " bytes each but only ", c_.remaining(), " bytes remain (file truncated or corrupt)");
    if (n_tensors_ > c_.remaining() / kMinTensorBytes)
      c_.fail_at(8, "absurd tensor count n_tensors=", n_tensors_, ": needs at least ", kMinTensorBytes,
                 " bytes each but only ", c_.remaining(), " bytes remain (file truncated or corrupt)");
  }

  void parse_metadata() {
    c_.charge(n_kv_, kKvCost, 16, "metadata count");
    f_.kv_.reserve(static_cast<size_t>(n_kv_));
    for (uint64_t k = 0; k < n_kv_; ++k) {
      uint64_t key_off = c_.pos();
      std::string key = c_.str("metadata key");
      if (f_.kv_index_.count(key)) c_.fail_at(key_off, "duplicate metadata key '", key, "'");
      uint64_t type_off = c_.pos();
      uint32_t type = c_.u32("metadata value type");
      if (!valid_type(type))
        c_.fail_at(type_off, "metadata key '", key, "' has unknown value type ", type);
      GgufValue v;
      read_value(static_cast<GgufType>(type), key, v);
      if (key == "general.alignment") alignment_off_ = type_off;
      f_.kv_index_[key] = f_.kv_.size();
      f_.kv_.emplace_back(std::move(key), std::move(v));
    }
  }

  void read_value(GgufType t, const std::string& key, GgufValue& v) {
    v.type = t;
    switch (t) {
      case GgufType::UINT8: v.u = c_.u8("u8 value"); break;
      case GgufType::INT8: v.i = static_cast<int8_t>(c_.u8("i8 value")); break;
      case GgufType::UINT16: v.u = c_.u16("u16 value"); break;
      case GgufType::INT16: v.i = static_cast<int16_t>(c_.u16("i16 value")); break;
      case GgufType::UINT32: v.u = c_.u32("u32 value"); break;
      case GgufType::INT32: v.i = static_cast<int32_t>(c_.u32("i32 value")); break;
      case GgufType::UINT64: v.u = c_.u64("u64 value"); break;
      case GgufType::INT64: v.i = static_cast<int64_t>(c_.u64("i64 value")); break;
      case GgufType::FLOAT32: v.f = f32(); break;
      case GgufType::FLOAT64: v.f = f64(); break;
      case GgufType::BOOL: v.u = c_.u8("bool value") != 0; break;
      case GgufType::STRING: v.s = c_.str("string value"); break;
      case GgufType::ARRAY: read_array(key, v); break;
    }
  }

  void read_array(const std::string& key, GgufValue& v) {
    uint64_t elem_off = c_.pos();
    uint32_t et = c_.u32("array element type");
    if (!valid_type(et))
      c_.fail_at(elem_off, "array '", key, "' has unknown element type ", et);
    v.elem_type = static_cast<GgufType>(et);
    if (v.elem_type == GgufType::ARRAY)
      c_.fail_at(elem_off, "array '", key, "': nested arrays are not supported");
    uint64_t len_off = c_.pos();
    uint64_t n = c_.u64("array length");
    size_t esz = gguf_type_size(v.elem_type);
    uint64_t min_sz = esz ? esz : 8;  // a string element is at least its u64 length
    if (n > c_.remaining() / min_sz)
      c_.fail_at(len_off, "absurd array length ", n, " of '", key, "': elements need at least ",
                 min_sz, " bytes each and only ", c_.remaining(), " bytes remain");
    c_.charge(n, v.elem_type == GgufType::STRING ? sizeof(std::string) : 8, len_off, "array '", key, "'");
    v.arr_len = n;
    size_t count = static_cast<size_t>(n);
    switch (v.elem_type) {
      case GgufType::STRING:
        v.arr_str.reserve(count);
        for (size_t j = 0; j < count; ++j) v.arr_str.push_back(c_.str("array string"));
        break;
      case GgufType::FLOAT32:
        v.arr_float.reserve(count);
        for (size_t j = 0; j < count; ++j) v.arr_float.push_back(f32());
        break;
      case GgufType::FLOAT64:
        v.arr_float.reserve(count);
        for (size_t j = 0; j < count; ++j) v.arr_float.push_back(f64());
        break;
      default: {
        // Integer and bool elements: decode through a scalar so signedness is handled in
        // one place. uint64 values above INT64_MAX are kept bitwise.
        v.arr_int.reserve(count);
        GgufValue e;
        for (size_t j = 0; j < count; ++j) {
          read_value(v.elem_type, key, e);
          v.arr_int.push_back(is_signed(e.type) ? e.i : static_cast<int64_t>(e.u));
        }
        break;
      }
    }
  }

  float f32() {
    uint32_t bits = c_.u32("f32 value");
    float x;
    std::memcpy(&x, &bits, 4);
    return x;
  }
  double f64() {
    uint64_t bits = c_.u64("f64 value");
    double x;
    std::memcpy(&x, &bits, 8);
    return x;
  }

  void parse_alignment() {
    const GgufValue* a = f_.find("general.alignment");
    if (!a) return;
    uint64_t al = 0;
    bool ok = false;
    if (a->type == GgufType::UINT8 || a->type == GgufType::UINT16 || a->type == GgufType::UINT32 ||
        a->type == GgufType::UINT64) {
      al = a->u;
      ok = true;
    } else if (a->is_int() && a->i > 0) {
      al = static_cast<uint64_t>(a->i);
      ok = true;
    }
    if (!ok || !is_pow2(al))
      c_.fail_at(alignment_off_, "general.alignment must be a nonzero power of two, got ",
                 gguf_value_to_string(*a), " (", gguf_type_name(a->type), ")");
    f_.alignment_ = al;
  }

  void parse_tensor_infos() {
    if (n_tensors_ > c_.remaining() / kMinTensorBytes)
      c_.fail_at(8, "absurd tensor count n_tensors=", n_tensors_, ": only ", c_.remaining(),
                 " bytes remain for the tensor infos at byte ", c_.pos(), " (file truncated or corrupt)");
    c_.charge(n_tensors_, kTensorCost, 8, "tensor count");
    f_.tensors_.reserve(static_cast<size_t>(n_tensors_));
    rel_.reserve(static_cast<size_t>(n_tensors_));
    field_off_.reserve(static_cast<size_t>(n_tensors_));
    for (uint64_t k = 0; k < n_tensors_; ++k) {
      GgufTensorInfo t;
      uint64_t name_off = c_.pos();
      t.name = c_.str("tensor name");
      if (f_.tensor_index_.count(t.name)) c_.fail_at(name_off, "duplicate tensor name '", t.name, "'");
      uint64_t dims_off = c_.pos();
      uint32_t n_dims = c_.u32("tensor n_dims");
      if (n_dims < 1 || n_dims > kMaxDims)
        c_.fail_at(dims_off, "tensor '", t.name, "': n_dims ", n_dims, " is outside 1..", kMaxDims);
      int64_t n_el = 1;
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t ne_off = c_.pos();
        uint64_t ne = c_.u64("tensor dimension");
        if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          c_.fail_at(ne_off, "tensor '", t.name, "': dimension ", d, " = ", ne, " is negative or too large");
        if (__builtin_mul_overflow(n_el, static_cast<int64_t>(ne), &n_el))
          c_.fail_at(ne_off, "tensor '", t.name, "': element count overflows int64 at dimension ", d);
        t.ne.push_back(static_cast<int64_t>(ne));
      }
      uint64_t type_off = c_.pos();
      uint32_t type_id = c_.u32("tensor type");
      auto info = ggml_type_info(type_id);
      if (!info)
        c_.fail_at(type_off, "tensor '", t.name, "': unknown or unsupported ggml type id ", type_id);
      t.type = static_cast<GgmlType>(type_id);
      if (t.ne[0] % info->block_size != 0)
        c_.fail_at(dims_off, "tensor '", t.name, "': ne[0]=", t.ne[0], " is not a multiple of the ",
                   info->name, " block size ", info->block_size);
      // nbytes = (ne0 / block) * type_size * ne1 * ne2 * ne3, all overflow-checked.
      uint64_t nb = static_cast<uint64_t>(t.ne[0] / info->block_size);
      bool ovf = __builtin_mul_overflow(nb, static_cast<uint64_t>(info->type_size), &nb);
      for (size_t d = 1; d < t.ne.size(); ++d)
        ovf = ovf || __builtin_mul_overflow(nb, static_cast<uint64_t>(t.ne[d]), &nb);
      if (ovf) c_.fail_at(dims_off, "tensor '", t.name, "': byte size overflows uint64");
      t.nbytes = nb;
      field_off_.push_back(c_.pos());
      rel_.push_back(c_.u64("tensor offset"));
      f_.tensor_index_[t.name] = f_.tensors_.size();
      f_.tensors_.push_back(std::move(t));
    }
  }

  void place_tensors() {
    uint64_t end = c_.pos();
    uint64_t al = f_.alignment_;
    uint64_t pad = (al - end % al) % al;
    if (__builtin_add_overflow(end, pad, &f_.data_offset_))
      c_.fail_at(end, "data offset overflows with alignment ", al);
    const uint64_t size = src_.size();
    for (size_t k = 0; k < f_.tensors_.size(); ++k) {
      GgufTensorInfo& t = f_.tensors_[k];
      if (rel_[k] % al != 0)
        c_.fail_at(field_off_[k], "tensor '", t.name, "': offset ", rel_[k],
                   " is misaligned (not a multiple of alignment ", al, ")");
      uint64_t abs = 0, tend = 0;
      if (__builtin_add_overflow(f_.data_offset_, rel_[k], &abs) ||
          __builtin_add_overflow(abs, t.nbytes, &tend) || tend > size)
        c_.fail_at(field_off_[k], "tensor '", t.name, "': data [data_offset ", f_.data_offset_, " + ",
                   rel_[k], ", ", t.nbytes, " bytes) is out of range: beyond the end of the file (size ",
                   size, ")");
      t.offset = abs;
    }
    // Overlap check on tensors sorted by offset; empty tensors cannot overlap anything.
    std::vector<size_t> order(f_.tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return f_.tensors_[a].offset < f_.tensors_[b].offset; });
    const GgufTensorInfo* prev = nullptr;
    for (size_t idx : order) {
      const GgufTensorInfo& t = f_.tensors_[idx];
      if (t.nbytes == 0) continue;
      if (prev && prev->offset + prev->nbytes > t.offset)
        c_.fail_at(field_off_[idx], "tensors '", prev->name, "' [", prev->offset, ", ",
                   prev->offset + prev->nbytes, ") and '", t.name, "' [", t.offset, ", ",
                   t.offset + t.nbytes, ") overlap");
      prev = &t;
    }
  }

  static std::string hex(uint32_t v) {
    static const char* d = "0123456789abcdef";
    std::string s(8, '0');
    for (int i = 7; i >= 0; --i, v >>= 4) s[i] = d[v & 15];
    return s;
  }

  const ByteSource& src_;
  GgufFile& f_;
  Cursor c_;
  uint64_t n_tensors_ = 0;
  uint64_t n_kv_ = 0;
  uint64_t alignment_off_ = 0;
  std::vector<uint64_t> rel_;        // relative offsets as read, per tensor
  std::vector<uint64_t> field_off_;  // file offset of each tensor's offset field
};

// Declared here (not in the header) because it needs the friend GgufParser.
std::unique_ptr<GgufFile> gguf_parse_source(const ByteSource& src, std::unique_ptr<GgufFile> f) {
  GgufParser p(src, *f);
  p.parse();
  return f;
}

std::unique_ptr<GgufFile> GgufFile::open_file(const std::string& path) {
  std::unique_ptr<GgufFile> f = GgufParser::make();
  f->path_ = path;
  // Non-blocking open then fstat: a FIFO named as the model must not hang here.
  f->fd_ = open_regular_file(path, O_RDONLY, "a GGUF model file");
  if (f->fd_ < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (fstat(f->fd_, &st) != 0) fail(path, ": fstat failed: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  f->file_size_ = static_cast<uint64_t>(st.st_size);
  gguf_detail::FdSource src(f->fd_, f->file_size_, path);
  return gguf_parse_source(src, std::move(f));
}

std::unique_ptr<GgufFile> gguf_parse_memory(const uint8_t* data, size_t size, const std::string& name) {
  return GgufParser::parse_memory(data, size, name);
}

}  // namespace swapmoe
