#pragma once
// Matrix-matrix products on quantized weights for prompt processing (several tokens at
// once). Each weight row is read once per group of kVecDotMultiMax (4) tokens and
// unpacked once for all of them (QuantTraits::vec_dot_multi), instead of once per token.
// Where the table has a row tile (QuantTraits::mat_tile, Q4_K on AVX-512), 16 rows x up to
// 128 tokens go through one call instead.
//
// One token runs the matrix-vector kernel (vec_dot per row), so decode through this API
// is a matrix-vector product. Numerics: y[t][r] is bitwise equal to matvec's y[r] for
// token t alone, for every type, ISA and thread count: the multi-row kernels replay vec_dot's instruction sequence per
// token (see quant.h), and types without a multi kernel loop vec_dot itself.

#include <cstdint>
#include <span>
#include <vector>

#include "ops/matvec.h"

namespace swapmoe {

// `rows` activation rows (tokens) of `n` elements each, converted once to one
// vec_dot_type; row t lives at bytes[t * row_bytes].
struct QuantizedActivations {
  GgmlType type = GgmlType::F32;
  int64_t n = 0;           // elements per row (= the weight matrix's cols)
  int64_t rows = 0;        // tokens
  size_t row_bytes = 0;    // ggml_row_size(type, n)
  std::vector<uint8_t> bytes;
  const void* row(int64_t t) const { return bytes.data() + static_cast<size_t>(t) * row_bytes; }
};

// x: [rows][n] floats. Converts every row with the vec_dot_type's fast quantizer (the same
// one matvec uses), split across `pool` when given.
void quantize_activations(const float* x, int64_t rows, int64_t n, GgmlType vec_dot_type, QuantizedActivations& out,
                          ThreadPool* pool = nullptr);

// out.row(k) = a.row(ids[k]): the tokens routed to one expert. Throws on an id outside
// [0, a.rows).
void gather_activations(const QuantizedActivations& a, std::span<const int32_t> ids, QuantizedActivations& out);

// y: [a.rows][w.rows], y[t * w.rows + r] = dot(W row r, activation row t).
// a.type must be W's vec_dot_type and a.n == W.cols.
void matmul(const MatrixRef& w, const QuantizedActivations& a, float* y, ThreadPool& pool);

// Single-threaded: the same, for weight rows [row_begin, row_end) only (y keeps its full
// [a.rows][w.rows] layout), for callers that parallelise at a coarser level.
void matmul_st(const MatrixRef& w, const QuantizedActivations& a, float* y, int64_t row_begin, int64_t row_end);

// MoE: y[k * w.rows + r] = dot(W row r, a.row(ids[k])) for the ids.size() tokens routed to
// this expert. Gathers the rows into a per-thread scratch buffer, then runs matmul, so the
// expert's weights are read once per batch.
void matmul_rows(const MatrixRef& w, const QuantizedActivations& a, std::span<const int32_t> ids, float* y,
                 ThreadPool& pool);

// Several independent matmuls (e.g. the gate or up projections of every expert hit in
// one prefill batch) under ONE parallel region: the weight rows of all jobs are laid end
// to end and split evenly across the threads. Results equal separate matmul calls.
struct MatmulJob {
  MatrixRef w;
  const QuantizedActivations* a = nullptr;  // of w's vec_dot_type; a->rows may be 0 (job skipped)
  float* y = nullptr;                        // [a->rows][w.rows]
};
void matmul_multi(std::span<const MatmulJob> jobs, ThreadPool& pool);

}  // namespace swapmoe
