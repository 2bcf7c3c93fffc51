#pragma once
// Streaming GGUF v3 writer. Metadata and tensor infos are declared first; begin() writes
// the header to a unique temporary file beside <path> (util/atomic_output.h); tensor bytes
// are then streamed in declaration order (any chunking, alignment padding inserted
// automatically); finish() checks that every byte was supplied, fsyncs and renames the
// file into place. Memory use is the header plus a 1 MiB
// buffer, so files of tens of GB can be written with little RAM.
//
//   GgufWriter w;
//   w.set_str("general.architecture", "qwen3moe");
//   w.set_arr_str("tokenizer.ggml.tokens", tokens);
//   w.add_tensor_info("blk.0.ffn_up_exps.weight", GgmlType::Q4_K, {2048, 768, 128});
//   w.begin("model.gguf");
//   w.write_tensor_data(bytes, n);   // repeated, in declaration order
//   w.finish();
//
// Sparse files: skip_tensor_data(n) advances over n bytes by seeking instead of
// writing, leaving a hole that reads back as zeros (used to forge huge test models).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "util/atomic_output.h"

namespace swapmoe {

class GgufWriter {
 public:
  GgufWriter() = default;
  // An unfinished file is abandoned: its temporary file is closed and removed.
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // ---- Metadata (only before begin()). Keys keep the order of their first set; setting
  // an existing key replaces its value in place.
  void set(const std::string& key, GgufValue v);  // arrays: arr_len is recomputed from the vector
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_str(const std::string& key, const std::string& v);
  void set_arr_str(const std::string& key, const std::vector<std::string>& v);
  void set_arr_i32(const std::string& key, const std::vector<int32_t>& v);
  void set_arr_u32(const std::string& key, const std::vector<uint32_t>& v);
  void set_arr_f32(const std::string& key, const std::vector<float>& v);
  // Any integer/bool element kind (values are range-checked against elem) or float kind.
  void set_arr_int(const std::string& key, GgufType elem, const std::vector<int64_t>& v);
  void set_arr_float(const std::string& key, GgufType elem, const std::vector<double>& v);
  // Sets general.alignment (u32); must be a nonzero power of two. Default alignment is 32.
  void set_alignment(uint32_t a);
  // Copies all metadata of another file in its order (e.g. a vocabulary GGUF).
  void copy_metadata(const GgufFile& src);
  bool remove(const std::string& key);
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

  // ---- Tensor infos (only before begin()), in the order their data will be written.
  // ne[0] is the row length (must be a multiple of the type's block size), 1..4 dims.
  // Returns the tensor's index.
  size_t add_tensor_info(const std::string& name, GgmlType type, const std::vector<int64_t>& ne);
  // After begin(), offset holds the absolute file offset; before, the relative one.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  uint64_t alignment() const;
  // Size of the header (valid after begin()), of the data section and of the whole file.
  uint64_t data_offset() const { return data_offset_; }
  uint64_t data_size() const { return data_size_; }
  uint64_t file_size() const { return data_offset_ + data_size_; }

  // ---- Writing.
  void begin(const std::string& path);
  // Appends the next n bytes of tensor data (may span tensors; padding between tensors
  // is inserted automatically). Throws if more bytes are supplied than were declared.
  void write_tensor_data(const void* data, size_t n);
  // Like write_tensor_data but leaves a hole of n bytes (reads as zeros).
  void skip_tensor_data(uint64_t n);
  // Skips whatever remains of the current tensor (the whole next tensor if at a boundary).
  void skip_tensor();
  // Index of the tensor the next byte belongs to (== tensors().size() when all written).
  size_t current_tensor() const { return cur_; }
  void finish();

 private:
  enum class State { Declaring, Writing, Done };
  void require(State s, const char* what) const;
  void put_kv(const std::string& key, GgufValue v);
  void serialize_header(std::vector<uint8_t>& out) const;
  void advance(const uint8_t* data, uint64_t n);  // data == nullptr: skip
  void pass_finished();
  void flush();
  void raw_write(uint64_t off, const void* p, size_t n);
  void close_and_remove();

  State state_ = State::Declaring;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<GgufTensorInfo> tensors_;
  uint64_t data_size_ = 0;  // declared data bytes incl. padding, rounded up to alignment
  uint64_t data_offset_ = 0;

  std::string path_;
  std::unique_ptr<AtomicOutput> out_;  // util/atomic_output.h: unique temp, commit on finish()
  int fd_ = -1;                        // out_->fd() while writing
  std::vector<uint8_t> buf_;  // pending bytes, file position buf_off_
  uint64_t buf_off_ = 0;
  uint64_t pos_ = 0;          // file position of the next data byte (after buffered bytes)
  size_t cur_ = 0;            // current tensor
  uint64_t cur_done_ = 0;     // bytes of the current tensor already supplied
};

}  // namespace swapmoe
