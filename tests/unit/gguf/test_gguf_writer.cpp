// Writer -> reader round trips: every metadata kind, tensor layout and data, chunked
// and sparse writing, and the writer's own misuse errors.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

#include "gguf/gguf_writer.h"
#include "gguf_test_util.h"

namespace swapmoe {
namespace {

using test::temp_path;

// Deterministic bytes for tensor k so every tensor's content is distinguishable.
std::vector<uint8_t> pattern(size_t n, int k) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 31 + k * 7 + 1);
  return v;
}

TEST(GgufWriter, RoundTripEveryValueType) {
  std::string p = temp_path("types.gguf");
  GgufWriter w;
  w.set_u8("t.u8", 200);
  w.set_i8("t.i8", -100);
  w.set_u16("t.u16", 60000);
  w.set_i16("t.i16", -30000);
  w.set_u32("t.u32", 4000000000u);
  w.set_i32("t.i32", -2000000000);
  w.set_u64("t.u64", 18000000000000000000ull);
  w.set_i64("t.i64", -9000000000000000000ll);
  w.set_f32("t.f32", 0.1f);
  w.set_f64("t.f64", 1e-300);
  w.set_bool("t.bool_t", true);
  w.set_bool("t.bool_f", false);
  w.set_str("t.str", std::string("h\xC3\xA9llo\0x", 8));  // UTF-8 and an embedded NUL
  w.set_str("t.empty", "");
  w.set_arr_str("t.astr", {"a", "", "\xE2\x82\xAC", std::string(1000, 'z')});
  w.set_arr_i32("t.ai32", {1, -2, std::numeric_limits<int32_t>::min()});
  w.set_arr_u32("t.au32", {0, 4294967295u});
  w.set_arr_f32("t.af32", {1.5f, -0.25f, 3e38f});
  w.set_arr_int("t.au8", GgufType::UINT8, {0, 255});
  w.set_arr_int("t.ai8", GgufType::INT8, {-128, 127});
  w.set_arr_int("t.au16", GgufType::UINT16, {65535});
  w.set_arr_int("t.ai16", GgufType::INT16, {-32768});
  w.set_arr_int("t.ai64", GgufType::INT64, {std::numeric_limits<int64_t>::min()});
  w.set_arr_int("t.au64", GgufType::UINT64, {-1});  // bitwise 2^64-1
  w.set_arr_int("t.abool", GgufType::BOOL, {1, 0, 1});
  w.set_arr_float("t.af64", GgufType::FLOAT64, {0.1, -1e300});
  w.set_arr_str("t.aempty", {});
  GgufValue g;  // generic setter
  g.type = GgufType::ARRAY;
  g.elem_type = GgufType::INT16;
  g.arr_int = {5, 6};
  w.set("t.generic", g);
  w.begin(p);
  w.finish();

  auto f = GgufFile::open(p);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata().size(), 28u);
  EXPECT_EQ(f->metadata()[0].first, "t.u8");  // file order is declaration order
  EXPECT_EQ(f->metadata()[27].first, "t.generic");
  EXPECT_EQ(f->get_u64("t.u8"), 200u);
  EXPECT_EQ(f->find("t.u8")->type, GgufType::UINT8);
  EXPECT_EQ(f->get_i64("t.i8"), -100);
  EXPECT_EQ(f->find("t.i8")->type, GgufType::INT8);
  EXPECT_EQ(f->get_u64("t.u16"), 60000u);
  EXPECT_EQ(f->get_i64("t.i16"), -30000);
  EXPECT_EQ(f->get_u64("t.u32"), 4000000000u);
  EXPECT_EQ(f->get_i64("t.i32"), -2000000000);
  EXPECT_EQ(f->get_u64("t.u64"), 18000000000000000000ull);
  EXPECT_EQ(f->get_i64("t.i64"), -9000000000000000000ll);
  EXPECT_EQ(f->get_f64("t.f64"), 1e-300);
  EXPECT_EQ(static_cast<float>(f->get_f64("t.f32")), 0.1f);
  EXPECT_EQ(f->find("t.f32")->type, GgufType::FLOAT32);
  EXPECT_TRUE(f->get_bool("t.bool_t"));
  EXPECT_FALSE(f->get_bool("t.bool_f"));
  EXPECT_EQ(f->get_str("t.str"), std::string("h\xC3\xA9llo\0x", 8));
  EXPECT_EQ(f->get_str("t.empty"), "");
  EXPECT_EQ(f->get_str_array("t.astr"),
            (std::vector<std::string>{"a", "", "\xE2\x82\xAC", std::string(1000, 'z')}));
  EXPECT_EQ(f->get_int_array("t.ai32"), (std::vector<int64_t>{1, -2, std::numeric_limits<int32_t>::min()}));
  EXPECT_EQ(f->get_int_array("t.au32"), (std::vector<int64_t>{0, 4294967295ll}));
  EXPECT_EQ(f->get_f32_array("t.af32"), (std::vector<float>{1.5f, -0.25f, 3e38f}));
  EXPECT_EQ(f->get_int_array("t.au8"), (std::vector<int64_t>{0, 255}));
  EXPECT_EQ(f->get_int_array("t.ai8"), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(f->get_int_array("t.au16"), (std::vector<int64_t>{65535}));
  EXPECT_EQ(f->get_int_array("t.ai16"), (std::vector<int64_t>{-32768}));
  EXPECT_EQ(f->get_int_array("t.ai64"), (std::vector<int64_t>{std::numeric_limits<int64_t>::min()}));
  EXPECT_EQ(f->find("t.au64")->arr_int, (std::vector<int64_t>{-1}));
  EXPECT_THROW(f->get_int_array("t.au64"), Error);  // 2^64-1 does not fit int64
  EXPECT_EQ(f->get_int_array("t.abool"), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f->find("t.af64")->arr_float, (std::vector<double>{0.1, -1e300}));
  EXPECT_EQ(f->find("t.aempty")->arr_len, 0u);
  EXPECT_EQ(f->find("t.aempty")->elem_type, GgufType::STRING);
  EXPECT_EQ(f->find("t.generic")->elem_type, GgufType::INT16);
  EXPECT_EQ(f->find("t.generic")->arr_len, 2u);
  EXPECT_EQ(f->get_int_array("t.generic"), (std::vector<int64_t>{5, 6}));

  // Re-writing the parsed metadata with the generic setter gives a byte-identical file.
  std::string p2 = temp_path("types2.gguf");
  GgufWriter w2;
  w2.copy_metadata(*f);
  w2.begin(p2);
  w2.finish();
  EXPECT_EQ(test::read_file(p), test::read_file(p2));
  std::filesystem::remove(p);
  std::filesystem::remove(p2);
}

TEST(GgufWriter, GetterKindChecks) {
  std::string p = temp_path("getters.gguf");
  GgufWriter w;
  w.set_i32("neg", -1);
  w.set_u64("big", std::numeric_limits<uint64_t>::max());
  w.set_u32("n", 7);
  w.set_str("s", "x");
  w.set_arr_i32("ai", {1, 2});
  w.begin(p);
  w.finish();
  auto f = GgufFile::open(p);
  EXPECT_EQ(f->get_u64("n"), 7u);
  EXPECT_EQ(f->get_i64("n"), 7);
  EXPECT_EQ(f->get_f64("n"), 7.0);  // float getters accept integers
  EXPECT_EQ(f->get_f32_array("ai"), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(f->get_u64("missing", 5), 5u);
  EXPECT_EQ(f->get_str("missing", "d"), "d");
  EXPECT_EQ(f->get_bool("missing", true), true);
  EXPECT_EQ(f->get_f64("missing", 2.5), 2.5);
  auto msg = [&](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(msg([&] { f->get_u64("neg"); }).find("non-negative"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_i64("big"); }).find("int64"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_str("n"); }).find("'n' should be a string"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_u64("nokey"); }).find("'nokey' is missing"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_str_array("ai"); }).find("array of i32"), std::string::npos);
  EXPECT_NE(msg([&] { f->get_bool("s"); }).find("a bool"), std::string::npos);
  EXPECT_THROW(f->get_u64("s", 1), Error);  // present with the wrong kind: no default
  std::filesystem::remove(p);
}

TEST(GgufWriter, TensorLayoutAndDataChunked) {
  std::string p = temp_path("tensors.gguf");
  GgufWriter w;
  w.set_str("general.architecture", "test");
  // Sizes chosen so every tensor needs padding: 3*4=12 bytes, Q8_0 2 blocks = 68 bytes.
  w.add_tensor_info("a", GgmlType::F32, {3});
  w.add_tensor_info("empty", GgmlType::F16, {0, 4});
  w.add_tensor_info("b", GgmlType::Q8_0, {64});
  w.add_tensor_info("c", GgmlType::F16, {5, 3, 2});
  w.add_tensor_info("d", GgmlType::Q4_K, {256, 2});
  w.begin(p);
  const auto& ts = w.tensors();
  std::vector<std::vector<uint8_t>> data;
  for (size_t k = 0; k < ts.size(); ++k) data.push_back(pattern(ts[k].nbytes, static_cast<int>(k)));
  // Stream all bytes in odd-sized chunks that straddle tensor boundaries.
  std::vector<uint8_t> all;
  for (auto& d : data) all.insert(all.end(), d.begin(), d.end());
  for (size_t i = 0; i < all.size(); i += 7) w.write_tensor_data(all.data() + i, std::min<size_t>(7, all.size() - i));
  w.finish();

  auto f = GgufFile::open(p);
  ASSERT_EQ(f->tensors().size(), 5u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  EXPECT_EQ(f->file_size(), w.file_size());
  EXPECT_EQ(f->file_size() % 32, 0u);
  const uint64_t expect_nbytes[] = {12, 0, 68, 60, 288};
  for (size_t k = 0; k < 5; ++k) {
    const auto& t = f->tensors()[k];
    EXPECT_EQ(t.name, ts[k].name);
    EXPECT_EQ(t.ne, ts[k].ne);
    EXPECT_EQ(t.type, ts[k].type);
    EXPECT_EQ(t.nbytes, expect_nbytes[k]) << t.name;
    EXPECT_EQ(t.offset, ts[k].offset);
    EXPECT_EQ((t.offset - f->data_offset()) % 32, 0u);
    std::vector<uint8_t> got(t.nbytes);
    f->read_at(t.part, t.offset, got.data(), got.size());
    EXPECT_EQ(got, data[k]) << t.name;
  }
  EXPECT_EQ(f->find_tensor("c")->n_elements(), 30);
  EXPECT_EQ(f->find_tensor("c")->expert_bytes(), 30u);  // row 5*2 bytes * 3 rows
  EXPECT_EQ(f->find_tensor("c")->expert_offset(1), f->find_tensor("c")->offset + 30);
  EXPECT_THROW(f->find_tensor("c")->expert_offset(2), Error);
  EXPECT_THROW(f->find_tensor("a")->expert_bytes(), Error);
  EXPECT_EQ(f->find_tensor("zz"), nullptr);
  // read_at refuses to read past the end.
  uint8_t x;
  EXPECT_THROW(f->read_at(0, f->file_size(), &x, 1), Error);
  EXPECT_THROW(f->read_at(0, std::numeric_limits<uint64_t>::max(), &x, 1), Error);
  std::filesystem::remove(p);
}

TEST(GgufWriter, CustomAlignmentAndMemoryParse) {
  std::string p = temp_path("align.gguf");
  GgufWriter w;
  w.set_alignment(64);
  w.add_tensor_info("x", GgmlType::F32, {1});
  w.add_tensor_info("y", GgmlType::F32, {1});
  w.begin(p);
  float a = 1.5f, b = -2.f;
  w.write_tensor_data(&a, 4);
  w.write_tensor_data(&b, 4);
  w.finish();
  auto bytes = test::read_file(p);
  auto f = gguf_parse_memory(bytes.data(), bytes.size(), "mem");
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("y")->offset - f->find_tensor("x")->offset, 64u);
  float got = 0;
  f->read_at(0, f->find_tensor("y")->offset, &got, 4);
  EXPECT_EQ(got, -2.f);
  EXPECT_EQ(f->parts()[0].fd, -1);
  std::filesystem::remove(p);
}

TEST(GgufWriter, SparseSkipLeavesHoleOfZeros) {
  std::string p = temp_path("sparse.gguf");
  GgufWriter w;
  // 64 MiB of Q4_K "experts" that we skip, then a small tensor we write.
  w.add_tensor_info("big", GgmlType::Q4_K, {4096, 1024, 16});
  w.add_tensor_info("small", GgmlType::F32, {4});
  w.begin(p);
  const uint64_t big = w.tensors()[0].nbytes;
  EXPECT_EQ(big, 4096u / 256 * 144 * 1024 * 16);
  w.skip_tensor_data(1000);  // partial skip, then skip the rest
  w.skip_tensor();
  float v[4] = {1, 2, 3, 4};
  w.write_tensor_data(v, sizeof v);
  w.finish();
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  // The hole is not backed by disk blocks (allow generous slack for the file system).
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, big / 4);
  auto f = GgufFile::open(p);
  const auto* t = f->find_tensor("big");
  std::vector<uint8_t> buf(4096);
  f->read_at(t->part, t->expert_offset(7), buf.data(), buf.size());
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t c) { return c == 0; }));
  float got[4];
  f->read_at(0, f->find_tensor("small")->offset, got, sizeof got);
  EXPECT_EQ(got[3], 4.f);
  std::filesystem::remove(p);
}

TEST(GgufWriter, TrailingSkipExtendsFile) {
  std::string p = temp_path("sparse_tail.gguf");
  GgufWriter w;
  w.add_tensor_info("a", GgmlType::F32, {8});
  w.add_tensor_info("b", GgmlType::F32, {1 << 20});
  w.begin(p);
  std::vector<float> a(8, 1.f);
  w.write_tensor_data(a.data(), 32);
  w.skip_tensor();
  w.finish();
  EXPECT_EQ(std::filesystem::file_size(p), w.file_size());
  auto f = GgufFile::open(p);
  EXPECT_EQ(f->find_tensor("b")->nbytes, 4u << 20);
  std::filesystem::remove(p);
}

// The reader buffers the header in 1 MiB chunks; a 2.5 MB string array makes strings and
// numbers straddle chunk boundaries at many different alignments.
TEST(GgufWriter, LargeHeaderCrossesReadChunks) {
  std::string p = temp_path("large_header.gguf");
  std::vector<std::string> strs;
  std::vector<float> scores;
  for (int k = 0; k < 5000; ++k) {
    strs.push_back(std::string(static_cast<size_t>(k % 997), static_cast<char>('a' + k % 26)) + std::to_string(k));
    scores.push_back(static_cast<float>(k) * 0.5f);
  }
  GgufWriter w;
  w.set_arr_str("big.strs", strs);
  w.set_arr_f32("big.scores", scores);
  w.set_u64("after", 42);
  w.add_tensor_info("t", GgmlType::F32, {2});
  w.begin(p);
  float v[2] = {3, 4};
  w.write_tensor_data(v, 8);
  w.finish();
  auto f = GgufFile::open(p);
  EXPECT_GT(f->data_offset(), 2u << 20);
  EXPECT_EQ(f->get_str_array("big.strs"), strs);
  EXPECT_EQ(f->get_f32_array("big.scores"), scores);
  EXPECT_EQ(f->get_u64("after"), 42u);
  float got[2];
  f->read_at(0, f->find_tensor("t")->offset, got, 8);
  EXPECT_EQ(got[1], 4.f);
  std::filesystem::remove(p);
}

TEST(GgufWriter, MisuseErrors) {
  std::string p = temp_path("misuse.gguf");
  {
    GgufWriter w;
    EXPECT_THROW(w.set_alignment(48), Error);
    EXPECT_THROW(w.add_tensor_info("q", GgmlType::Q4_K, {100}), Error);  // not a block multiple
    EXPECT_THROW(w.add_tensor_info("q", GgmlType::F32, {}), Error);
    EXPECT_THROW(w.add_tensor_info("q", GgmlType::F32, {1, 1, 1, 1, 1}), Error);
    EXPECT_THROW(w.add_tensor_info("q", GgmlType::F32, {INT64_MAX, 2}), Error);
    GgufValue bad;
    bad.type = GgufType::UINT8;
    bad.u = 256;
    EXPECT_THROW(w.set("k", bad), Error);
    EXPECT_THROW(w.set_arr_int("k", GgufType::INT8, {128}), Error);
    EXPECT_THROW(w.set_arr_int("k", GgufType::FLOAT32, {1}), Error);
    w.add_tensor_info("a", GgmlType::F32, {2});
    EXPECT_THROW(w.add_tensor_info("a", GgmlType::F32, {2}), Error);
    EXPECT_THROW(w.write_tensor_data("x", 1), Error);  // before begin
    w.begin(p);
    EXPECT_THROW(w.set_u32("late", 1), Error);
    float x[3] = {};
    EXPECT_THROW(w.write_tensor_data(x, 12), Error);  // 4 bytes too many
  }
  // The abandoned writer removed its temp file and never created the target.
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(p));
  {
    GgufWriter w;
    w.add_tensor_info("a", GgmlType::F32, {2});
    w.add_tensor_info("b", GgmlType::F32, {2});
    w.begin(p);
    float x = 0;
    w.write_tensor_data(&x, 4);
    try {
      w.finish();
      ADD_FAILURE() << "finish() accepted missing bytes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'a' got 4 of 8 bytes"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(std::filesystem::exists(p));
}

}  // namespace
}  // namespace swapmoe
