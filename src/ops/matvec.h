#pragma once
// Matrix-vector products on quantized weights, multi-threaded over output rows.

#include <cstdint>
#include <vector>

#include "quant/quant.h"
#include "util/thread_pool.h"

namespace swapmoe {

// A 2-D weight matrix as stored in GGUF: `rows` rows of `cols` elements, row-major,
// each row ggml_row_size(type, cols) bytes. (GGUF ne[0] = cols, ne[1] = rows.)
struct MatrixRef {
  GgmlType type = GgmlType::F32;
  int64_t cols = 0;
  int64_t rows = 0;
  const void* data = nullptr;
  size_t row_bytes() const { return ggml_row_size(type, cols); }
};

// An activation vector converted once to a given vec_dot_type, so that several
// matrices (e.g. all experts of a layer) can reuse the conversion.
struct QuantizedActivation {
  GgmlType type = GgmlType::F32;
  int64_t n = 0;
  std::vector<uint8_t> bytes;
};

void quantize_activation(const float* x, int64_t n, GgmlType vec_dot_type, QuantizedActivation& out);

// y[rows] = W x. x has W.cols elements.
void matvec(const MatrixRef& w, const float* x, float* y, ThreadPool& pool);
// Same with the activation already converted (a.type must be W's vec_dot_type).
void matvec(const MatrixRef& w, const QuantizedActivation& a, float* y, ThreadPool& pool);
// Single-threaded version, for callers that parallelise at a coarser level.
void matvec_st(const MatrixRef& w, const QuantizedActivation& a, float* y, int64_t row_begin, int64_t row_end);

}  // namespace swapmoe
