#pragma once
// Conversion of rows between float and any GGUF tensor type, single rows or many rows
// split over a thread pool. Used by `swapmoe quantize` (dequantize a source tensor,
// quantize it to the target type) and by swapmoe-forge (quantize generated weights).
// Header-only so both tools share it. F32/F16/BF16 are handled here directly; block
// formats go through src/quant's trait table.

#include <cstdint>
#include <cstring>

#include "quant/quant.h"
#include "util/fp16.h"
#include "util/ggml_type.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace swapmoe::cli {

// out[ncols] = float(row), where row holds ggml_row_size(t, ncols) bytes.
inline void row_to_float(GgmlType t, const void* row, float* out, int64_t ncols) {
  switch (t) {
    case GgmlType::F32: std::memcpy(out, row, static_cast<size_t>(ncols) * 4); break;
    case GgmlType::F16: {
      const auto* h = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < ncols; ++i) out[i] = fp16_to_fp32(h[i]);
      break;
    }
    case GgmlType::BF16: {
      const auto* h = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < ncols; ++i) out[i] = bf16_to_fp32(h[i]);
      break;
    }
    default: quant_traits(t).to_float(row, out, ncols); break;
  }
}

// row = type-t encoding of in[ncols]; ncols must fit t's block size. Weights use the
// reference quantizers (llama-quantize's quantize_row_*_ref): the trait's from_float is
// the activation path, which for Q8_0 rounds ties differently (x86 SIMD rounding).
inline void row_from_float(GgmlType t, const float* in, void* row, int64_t ncols) {
  switch (t) {
    case GgmlType::F32: std::memcpy(row, in, static_cast<size_t>(ncols) * 4); break;
    case GgmlType::F16: {
      auto* h = static_cast<uint16_t*>(row);
      for (int64_t i = 0; i < ncols; ++i) h[i] = fp32_to_fp16(in[i]);
      break;
    }
    case GgmlType::BF16: {
      auto* h = static_cast<uint16_t*>(row);
      for (int64_t i = 0; i < ncols; ++i) h[i] = fp32_to_bf16(in[i]);
      break;
    }
    default: quant_traits(t).from_float_ref(in, row, ncols); break;
  }
}

// dst[nrows * ncols] = float(src rows), src holding nrows rows of ggml_row_size(t, ncols) bytes.
inline void rows_to_float(GgmlType t, const void* src, float* dst, int64_t nrows, int64_t ncols, ThreadPool& pool) {
  const size_t row_bytes = ggml_row_size(t, ncols);
  if (t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16) (void)quant_traits(t);  // throw before threading
  const auto* in = static_cast<const uint8_t*>(src);
  pool.parallel_for(nrows, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) row_to_float(t, in + r * row_bytes, dst + r * ncols, ncols);
  });
}

// Quantizes nrows rows of ncols floats to type t into dst (nrows * ggml_row_size(t, ncols)
// bytes). Throws Error if ncols does not fit t's block size.
inline void rows_from_float(GgmlType t, const float* src, void* dst, int64_t nrows, int64_t ncols, ThreadPool& pool) {
  const size_t row_bytes = ggml_row_size(t, ncols);
  if (t != GgmlType::F32 && t != GgmlType::F16 && t != GgmlType::BF16) (void)quant_traits(t);
  auto* out = static_cast<uint8_t*>(dst);
  pool.parallel_for(nrows, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) row_from_float(t, src + r * ncols, out + r * row_bytes, ncols);
  });
}

}  // namespace swapmoe::cli
