// The fuzz seeds are produced by an independent Python encoder (fuzz/make_gguf_seeds.py),
// so parsing them checks the reader against a second implementation of the format, and
// re-creating one with GgufWriter checks the writer byte for byte.

#include <gtest/gtest.h>

#include "../require.h"

#include <filesystem>

#include "gguf/gguf_writer.h"
#include "gguf_test_util.h"

namespace swapmoe {
namespace {

const std::string kSeeds = std::string(SWAPMOE_TEST_DATA) + "/../../fuzz/corpus/gguf/";

TEST(GgufSeeds, AllSeedsParse) {
  if (!std::filesystem::exists(kSeeds)) SWAPMOE_SKIP_OR_FAIL("data", kSeeds << " not found");
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(kSeeds)) {
    SCOPED_TRACE(e.path().string());
    EXPECT_NO_THROW(GgufFile::open(e.path().string()));
    ++n;
  }
  EXPECT_GE(n, 7);
}

TEST(GgufSeeds, ScalarsAndArraysDecode) {
  if (!std::filesystem::exists(kSeeds)) SWAPMOE_SKIP_OR_FAIL("data", kSeeds << " not found");
  auto f = GgufFile::open(kSeeds + "scalars.gguf");
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->get_i64("a.i8"), -7);
  EXPECT_EQ(f->get_u64("a.u16"), 7u);
  EXPECT_EQ(f->get_f64("a.f32"), 0.5);
  EXPECT_EQ(f->get_f64("a.f64"), 0.25);
  EXPECT_TRUE(f->get_bool("a.bool"));
  EXPECT_EQ(f->get_str("a.str"), "hello");
  EXPECT_EQ(f->get_i64("a.i64"), -7);
  auto a = GgufFile::open(kSeeds + "arrays.gguf");
  EXPECT_EQ(a->get_str_array("b.strs"), (std::vector<std::string>{"a", "", "xyz"}));
  EXPECT_EQ(a->get_int_array("b.i32"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(a->get_f32_array("b.f32"), (std::vector<float>{1.0f, -2.5f}));
  EXPECT_EQ(a->get_int_array("b.u8"), (std::vector<int64_t>{1, 255}));
  EXPECT_EQ(a->get_int_array("b.bool"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(static_cast<uint64_t>(a->find("b.u64")->arr_int[0]), UINT64_MAX);
  EXPECT_EQ(a->find("b.f64")->arr_float[0], 1e300);
  EXPECT_EQ(gguf_value_to_string(*a->find("b.strs")), "[str x 3] \"a\", \"\", \"xyz\"");
  EXPECT_EQ(a->get_str_array("b.empty").size(), 0u);
  EXPECT_EQ(GgufFile::open(kSeeds + "empty_v2.gguf")->version(), 2u);
}

TEST(GgufSeeds, ExpertSlices) {
  if (!std::filesystem::exists(kSeeds)) SWAPMOE_SKIP_OR_FAIL("data", kSeeds << " not found");
  auto f = GgufFile::open(kSeeds + "mixed_tensors.gguf");
  EXPECT_EQ(f->alignment(), 64u);
  const auto* e = f->find_tensor("exps");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->type, GgmlType::Q4_K);
  EXPECT_EQ(e->nbytes, 288u);
  EXPECT_EQ(e->expert_bytes(), 144u);
  EXPECT_EQ(e->offset, f->data_offset() + 192);
  EXPECT_EQ(e->expert_offset(1), f->data_offset() + 192 + 144);
  auto q = GgufFile::open(kSeeds + "q4k_experts.gguf");
  const auto* up = q->find_tensor("blk.0.ffn_up_exps.weight");
  EXPECT_EQ(up->expert_bytes(), 288u);  // 2 rows of one Q4_K block
  const auto* down = q->find_tensor("blk.0.ffn_down_exps.weight");
  EXPECT_EQ(down->type, GgmlType::Q6_K);
  EXPECT_EQ(down->expert_bytes(), 210u);
  EXPECT_EQ(down->offset, q->data_offset() + 576);
}

TEST(GgufSeeds, WriterMatchesIndependentEncoder) {
  if (!std::filesystem::exists(kSeeds)) SWAPMOE_SKIP_OR_FAIL("data", kSeeds << " not found");
  auto ref = test::read_file(kSeeds + "one_f32.gguf");
  std::string p = test::temp_path("one_f32.gguf");
  GgufWriter w;
  w.set_str("general.architecture", "t");
  w.add_tensor_info("w", GgmlType::F32, {4});
  w.begin(p);
  float v[4] = {1, 2, 3, 4};
  w.write_tensor_data(v, sizeof v);
  w.finish();
  auto got = test::read_file(p);
  // The writer also pads the end of the data section; the Python encoder does not.
  ASSERT_GE(got.size(), ref.size());
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(ref.size())), ref);
  std::filesystem::remove(p);
}

}  // namespace
}  // namespace swapmoe
