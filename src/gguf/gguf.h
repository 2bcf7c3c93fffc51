#pragma once
// GGUF reader (versions 2 and 3). The header is parsed with positioned reads (pread);
// tensor data is never mapped. Everything read is validated against the file size, and
// every problem throws swapmoe::Error naming the file, what was wrong and the byte offset.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/ggml_type.h"

namespace swapmoe {

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);
// Size in bytes of one value of a fixed-size kind; 0 for STRING and ARRAY.
size_t gguf_type_size(GgufType t);

// One metadata value. Scalars use the field matching their kind; arrays store their
// elements in the vector for their element kind (ints, floats, bools as ints, strings).
struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType elem_type = GgufType::UINT8;  // for ARRAY
  uint64_t u = 0;     // UINT*, BOOL
  int64_t i = 0;      // INT*
  double f = 0;       // FLOAT*
  std::string s;      // STRING
  std::vector<int64_t> arr_int;      // integer and bool arrays (uint64 stored bitwise)
  std::vector<double> arr_float;     // float arrays
  std::vector<std::string> arr_str;  // string arrays
  uint64_t arr_len = 0;

  bool is_int() const;
  bool is_float() const;
};

// Short human-readable rendering of a value for dumps (`swapmoe info`): scalars in full,
// strings quoted (cut at max_str bytes), arrays as "[type x N] a, b, c, ..." showing at
// most max_elems elements.
std::string gguf_value_to_string(const GgufValue& v, size_t max_elems = 8, size_t max_str = 80);

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> ne;  // dims, ne[0] fastest-varying (= row length)
  // Where the data lies: the part (index into GgufFile::parts(); always 0 for a whole
  // file) and the absolute offset inside that part's file. Read it with
  // GgufFile::read_at(part, offset, ...).
  uint32_t part = 0;
  uint64_t offset = 0;
  uint64_t nbytes = 0;

  int64_t n_elements() const;
  // For 3-D expert tensors [cols, rows, n_expert]: bytes of one expert's slice and
  // its absolute offset in the tensor's part.
  uint64_t expert_bytes() const;
  uint64_t expert_offset(int64_t e) const;
};

// One file of a model: the whole model, or one part of a split set (gguf_split.h).
struct GgufPart {
  std::string path;
  uint64_t file_size = 0;
  uint64_t data_offset = 0;  // start of the part's tensor data
  uint64_t alignment = 32;
  size_t n_tensors = 0;
  int fd = -1;               // -1 for images parsed from memory
};

class GgufFile {
 public:
  // Opens a model: a whole file, or the first part of a split set
  // ("NAME-00001-of-00003.gguf", as llama.cpp's gguf-split writes them), whose other
  // parts are found by name and validated with gguf_join_split (below). Any other
  // part's path is refused with a pointer to the first. Throws Error on any problem.
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Parses exactly one file, whatever its split.* keys say (a split part stays a part).
  static std::unique_ptr<GgufFile> open_file(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  // The model's path: the whole file, or the first part of a split set.
  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  // Bytes of all parts together (the file size for a whole file).
  uint64_t file_size() const { return total_size_; }
  // Alignment and data offset of the first part (the whole file).
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // The files holding the model, in split order; one entry for a whole file.
  const std::vector<GgufPart>& parts() const { return parts_; }
  std::vector<std::string> part_paths() const;
  bool is_split() const { return parts_.size() > 1; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed getters: throw Error naming the key if it is missing or has the wrong kind.
  // Integer getters accept any integer type (range-checked); float getters accept ints too.
  uint64_t get_u64(const std::string& key) const;
  int64_t get_i64(const std::string& key) const;
  double get_f64(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string get_str(const std::string& key) const;
  std::vector<std::string> get_str_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<float> get_f32_array(const std::string& key) const;
  // With defaults when the key is absent (still throw on a wrong kind).
  uint64_t get_u64(const std::string& key, uint64_t def) const;
  double get_f64(const std::string& key, double def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_str(const std::string& key, const std::string& def) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;

  // pread exactly n bytes at an absolute offset of part `part` (a tensor's .part and
  // .offset); throws Error (file, offset, n) on a short read, an I/O error or a range
  // beyond that part's size. Safe to call concurrently from several threads (the
  // GgufFile is immutable after parsing).
  void read_at(uint32_t part, uint64_t offset, void* dst, size_t n) const;

 private:
  GgufFile() = default;
  friend class GgufParser;
  friend std::unique_ptr<GgufFile> gguf_join_split(std::vector<std::unique_ptr<GgufFile>> parts);
  void describe_single_part();
  std::string path_;
  int fd_ = -1;
  uint32_t version_ = 0;
  uint64_t file_size_ = 0;   // of this file (part 0)
  uint64_t total_size_ = 0;  // of all parts
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  // Images parsed by gguf_parse_memory keep their bytes here so read_at works (fd_ == -1).
  std::vector<uint8_t> mem_;
  std::vector<GgufPart> parts_;
  // Parts 1.. of a split set, each parsed on its own; they own their descriptors.
  std::vector<std::unique_ptr<GgufFile>> others_;
};

// Validates a split set given its parts in split order (each parsed alone, with
// GgufFile::open_file or gguf_parse_memory) and joins them into one GgufFile: metadata
// from the first part, tensors from all, each tensor's .part set. Checks: every part
// carries split.no (its index) and the same split.count (= number of parts), each tensor
// is in exactly one part, the total equals the first part's split.tensors.count. Each
// failure throws a one-line Error naming the part. Declared here because it is a friend.
std::unique_ptr<GgufFile> gguf_join_split(std::vector<std::unique_ptr<GgufFile>> parts);

// Parses a GGUF image held in memory (used by the fuzzer and by tests). Same checks.
std::unique_ptr<GgufFile> gguf_parse_memory(const uint8_t* data, size_t size, const std::string& name);

}  // namespace swapmoe
