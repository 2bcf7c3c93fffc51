#pragma once
// The tensor element types of GGUF files. Numeric values are the on-disk ids used by
// ggml/llama.cpp, so they must never be renumbered. This file only knows sizes and
// names; the arithmetic for each block format lives in src/quant/.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace swapmoe {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

constexpr int QK_K = 256;  // super-block size of the k-quants

struct GgmlTypeInfo {
  const char* name;
  int64_t block_size;  // elements per block
  size_t type_size;    // bytes per block
};

// Returns nullopt for ids we do not support (the GGUF reader turns that into an error
// that names the id and the tensor).
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id);
const GgmlTypeInfo& ggml_type_info(GgmlType t);  // t must be a supported type
const char* ggml_type_name(GgmlType t);
// Parses "Q4_K", "q8_0", "f32", ... ; nullopt when unknown.
std::optional<GgmlType> ggml_type_from_name(const std::string& name);
// Bytes of a row of n elements; throws Error if n is not a multiple of the block size.
size_t ggml_row_size(GgmlType t, int64_t n);

}  // namespace swapmoe
