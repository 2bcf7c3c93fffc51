// Tests of the row conversions shared by `swapmoe quantize` and the forge.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "convert/row_convert.h"
#include "util/error.h"
#include "util/fp16.h"

using namespace swapmoe;
using namespace swapmoe::cli;

TEST(RowConvert, Q8_0WeightsRoundTiesAwayFromZeroLikeLlamaQuantize) {
  // amax = 127 gives d = 1 exactly, so x / d = k + 0.5 is a tie. llama-quantize's
  // quantize_row_q8_0_ref uses roundf (away from zero): 0.5 -> 1, 1.5 -> 2, -2.5 -> -3.
  // (The activation quantizer rounds half to even and would give 0, 2, -2.)
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 0.5f;
  x[2] = 1.5f;
  x[3] = -2.5f;
  uint8_t block[34];
  row_from_float(GgmlType::Q8_0, x.data(), block, 32);
  uint16_t d;
  std::memcpy(&d, block, 2);
  EXPECT_EQ(fp16_to_fp32(d), 1.0f);
  const auto* q = reinterpret_cast<const int8_t*>(block + 2);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], 1);
  EXPECT_EQ(q[2], 2);
  EXPECT_EQ(q[3], -3);
}

TEST(RowConvert, FloatFormatsRoundTrip) {
  ThreadPool pool(2);
  const int64_t rows = 5, cols = 7;
  std::vector<float> x(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::ldexp(static_cast<float>(i) - 17.0f, -3);  // exact in f16/bf16
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    std::vector<uint8_t> bytes(rows * ggml_row_size(t, cols));
    std::vector<float> back(x.size());
    rows_from_float(t, x.data(), bytes.data(), rows, cols, pool);
    rows_to_float(t, bytes.data(), back.data(), rows, cols, pool);
    EXPECT_EQ(back, x) << ggml_type_name(t);
  }
}

TEST(RowConvert, BlockFormatsRoundTripWithinTheirError) {
  ThreadPool pool(2);
  const int64_t rows = 3, cols = 512;
  std::vector<float> x(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  // Bounds on max |error| for values in [-1, 1], loose enough for every block layout.
  const std::pair<GgmlType, float> cases[] = {{GgmlType::Q8_0, 0.01f}, {GgmlType::Q6_K, 0.04f}, {GgmlType::Q5_K, 0.07f},
                                              {GgmlType::Q4_K, 0.15f}, {GgmlType::Q4_0, 0.15f}, {GgmlType::Q5_1, 0.07f}};
  for (auto [t, tol] : cases) {
    std::vector<uint8_t> bytes(rows * ggml_row_size(t, cols));
    std::vector<float> back(x.size());
    rows_from_float(t, x.data(), bytes.data(), rows, cols, pool);
    rows_to_float(t, bytes.data(), back.data(), rows, cols, pool);
    float err = 0;
    for (size_t i = 0; i < x.size(); ++i) err = std::max(err, std::fabs(back[i] - x[i]));
    EXPECT_LT(err, tol) << ggml_type_name(t);
    EXPECT_GT(err, 0.0f) << ggml_type_name(t);  // really quantized
  }
}

TEST(RowConvert, RejectsRowsThatDoNotFitTheBlocks) {
  ThreadPool pool(1);
  std::vector<float> x(100);
  std::vector<uint8_t> out(1024);
  EXPECT_THROW(rows_from_float(GgmlType::Q4_K, x.data(), out.data(), 1, 100, pool), Error);
}
