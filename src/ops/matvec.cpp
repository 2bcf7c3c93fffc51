// Matrix-vector products: the activation is converted once to the weight type's
// vec_dot_type (exactly as ggml does, so quantized activations match llama.cpp's), then
// every output row is one vec_dot call. Rows are split across the pool; each row is
// computed by one thread with the same kernel, so results do not depend on thread count.

#include "ops/matvec.h"

#include "util/error.h"

namespace swapmoe {
namespace {

// Rows per scheduling unit: 16 floats of y are one cache line, so threads never write
// the same line, and the per-range overhead stays negligible next to 16 dot products.
constexpr int64_t kRowGrain = 16;

void check_matrix(const MatrixRef& w) {
  if (w.rows < 0 || w.cols < 0) fail("matvec: negative matrix shape ", w.rows, "x", w.cols);
  if (w.rows > 0 && w.cols > 0 && w.data == nullptr) fail("matvec: ", w.rows, "x", w.cols, " matrix has no data");
}

void check_activation(const MatrixRef& w, const QuantizedActivation& a, const QuantTraits& t) {
  if (a.type != t.vec_dot_type)
    fail("matvec: ", ggml_type_name(w.type), " weights need ", ggml_type_name(t.vec_dot_type), " activations, got ",
         ggml_type_name(a.type));
  if (a.n != w.cols) fail("matvec: activation has ", a.n, " elements, matrix has ", w.cols, " columns");
  if (a.bytes.size() < ggml_row_size(a.type, a.n))
    fail("matvec: activation buffer holds ", a.bytes.size(), " bytes, expected ", ggml_row_size(a.type, a.n));
}

}  // namespace

void quantize_activation(const float* x, int64_t n, GgmlType vec_dot_type, QuantizedActivation& out) {
  const QuantTraits& t = quant_traits(vec_dot_type);
  const size_t bytes = ggml_row_size(vec_dot_type, n);  // throws unless n fits the block size
  out.type = vec_dot_type;
  out.n = n;
  out.bytes.resize(bytes);
  if (n > 0) t.from_float(x, out.bytes.data(), n);
}

void matvec(const MatrixRef& w, const float* x, float* y, ThreadPool& pool) {
  // One scratch buffer per calling thread: decode calls this hundreds of times per token
  // with the same few sizes, so the allocation is paid once.
  thread_local QuantizedActivation a;
  quantize_activation(x, w.cols, quant_traits(w.type).vec_dot_type, a);
  matvec(w, a, y, pool);
}

void matvec(const MatrixRef& w, const QuantizedActivation& a, float* y, ThreadPool& pool) {
  check_matrix(w);
  check_activation(w, a, quant_traits(w.type));
  pool.parallel_for(
      w.rows, [&](int64_t begin, int64_t end, int) { matvec_st(w, a, y, begin, end); }, kRowGrain);
}

void matvec_st(const MatrixRef& w, const QuantizedActivation& a, float* y, int64_t row_begin, int64_t row_end) {
  check_matrix(w);
  const QuantTraits& t = quant_traits(w.type);
  check_activation(w, a, t);
  if (row_begin < 0 || row_end > w.rows || row_begin > row_end)
    fail("matvec_st: row range [", row_begin, ", ", row_end, ") outside matrix of ", w.rows, " rows");
  const size_t row_bytes = w.row_bytes();
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  const void* act = a.bytes.data();
  for (int64_t r = row_begin; r < row_end; ++r) y[r] = t.vec_dot(w.cols, base + static_cast<size_t>(r) * row_bytes, act);
}

}  // namespace swapmoe
