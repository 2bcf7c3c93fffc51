#include "util/ggml_type.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "util/error.h"

namespace swapmoe {
namespace {

struct Entry {
  GgmlType type;
  GgmlTypeInfo info;
};

// Block layouts as defined by ggml: e.g. Q4_K is 256 elements in 144 bytes
// (d, dmin as f16, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles).
constexpr std::array<Entry, 27> kTypes{{
    {GgmlType::F32, {"F32", 1, 4}},
    {GgmlType::F16, {"F16", 1, 2}},
    {GgmlType::Q4_0, {"Q4_0", 32, 2 + 16}},
    {GgmlType::Q4_1, {"Q4_1", 32, 2 + 2 + 16}},
    {GgmlType::Q5_0, {"Q5_0", 32, 2 + 4 + 16}},
    {GgmlType::Q5_1, {"Q5_1", 32, 2 + 2 + 4 + 16}},
    {GgmlType::Q8_0, {"Q8_0", 32, 2 + 32}},
    {GgmlType::Q8_1, {"Q8_1", 32, 2 + 2 + 32}},
    {GgmlType::Q2_K, {"Q2_K", QK_K, QK_K / 16 + QK_K / 4 + 2 + 2}},
    {GgmlType::Q3_K, {"Q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2}},
    {GgmlType::Q4_K, {"Q4_K", QK_K, 2 + 2 + 12 + QK_K / 2}},
    {GgmlType::Q5_K, {"Q5_K", QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2}},
    {GgmlType::Q6_K, {"Q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2}},
    {GgmlType::Q8_K, {"Q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2}},
    // i-quants with grids: fp16 d, then grid indices, signs and scales (see src/quant/blocks.h).
    {GgmlType::IQ2_XXS, {"IQ2_XXS", QK_K, 2 + QK_K / 4}},
    {GgmlType::IQ2_XS, {"IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32}},
    {GgmlType::IQ3_XXS, {"IQ3_XXS", QK_K, 2 + 3 * QK_K / 8}},
    {GgmlType::IQ1_S, {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16}},
    {GgmlType::IQ3_S, {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64}},
    {GgmlType::IQ2_S, {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16}},
    {GgmlType::IQ1_M, {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32}},
    {GgmlType::BF16, {"BF16", 1, 2}},
    // Non-linear 4-bit: IQ4_NL is f16 d + 16 bytes of indices into a 16-entry table;
    // IQ4_XS is f16 d, 8 6-bit sub-block scales (2 high bits in a u16, 4 low in 4 bytes),
    // 128 bytes of indices.
    {GgmlType::IQ4_NL, {"IQ4_NL", 32, 2 + 16}},
    {GgmlType::IQ4_XS, {"IQ4_XS", QK_K, 2 + 2 + QK_K / 64 + QK_K / 2}},
    // Ternary: TQ1_0 packs 5 trits per byte (240 values in 48 bytes, 16 more in 4 bytes at
    // 4 per byte), then f16 d; TQ2_0 is 2 bits per value, then f16 d.
    {GgmlType::TQ1_0, {"TQ1_0", QK_K, (QK_K - 4 * QK_K / 64) / 5 + QK_K / 64 + 2}},
    {GgmlType::TQ2_0, {"TQ2_0", QK_K, QK_K / 4 + 2}},
    // OCP microscaling FP4: one E8M0 exponent byte, 16 bytes of E2M1 nibbles.
    {GgmlType::MXFP4, {"MXFP4", 32, 1 + 16}},
}};

}  // namespace

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id) {
  for (const auto& e : kTypes)
    if (static_cast<uint32_t>(e.type) == id) return e.info;
  return std::nullopt;
}

const GgmlTypeInfo& ggml_type_info(GgmlType t) {
  for (const auto& e : kTypes)
    if (e.type == t) return e.info;
  fail("unsupported ggml type id ", static_cast<uint32_t>(t));
}

const char* ggml_type_name(GgmlType t) { return ggml_type_info(t).name; }

std::optional<GgmlType> ggml_type_from_name(const std::string& name) {
  std::string up = name;
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
  for (const auto& e : kTypes)
    if (up == e.info.name) return e.type;
  return std::nullopt;
}

size_t ggml_row_size(GgmlType t, int64_t n) {
  const auto& info = ggml_type_info(t);
  if (n < 0 || n % info.block_size != 0)
    fail("row of ", n, " elements is not a multiple of the ", info.name, " block size ", info.block_size);
  return static_cast<size_t>(n / info.block_size) * info.type_size;
}

}  // namespace swapmoe
