// Hostile and broken GGUF images: every class of corruption must end in a swapmoe::Error
// whose message names the problem and the byte offset, never in a crash or a huge
// allocation (these tests also run under ASan+UBSan in CI).

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "gguf/gguf_writer.h"
#include "gguf_test_util.h"

namespace swapmoe {
namespace {

using test::Bytes;
using test::parse_error;

#define EXPECT_ERR(bytes, ...)                                              \
  do {                                                                      \
    std::string m_ = parse_error(bytes);                                    \
    ASSERT_FALSE(m_.empty()) << "parsed without error";                     \
    EXPECT_NE(m_.find("mem.gguf"), std::string::npos) << m_;                \
    for (const char* w_ : {__VA_ARGS__}) EXPECT_NE(m_.find(w_), std::string::npos) << m_; \
  } while (0)

// A small valid file made by the writer with several metadata kinds and three tensors.
std::vector<uint8_t> small_valid_file() {
  std::string p = test::temp_path("small_valid.gguf");
  GgufWriter w;
  w.set_str("general.architecture", "tiny");
  w.set_u32("tiny.n", 3);
  w.set_f32("tiny.eps", 1e-5f);
  w.set_bool("tiny.flag", true);
  w.set_arr_str("tiny.toks", {"a", "bc", ""});
  w.set_arr_f32("tiny.scores", {0.5f, -1});
  w.set_arr_int("tiny.types", GgufType::INT8, {1, -1});
  w.add_tensor_info("t0", GgmlType::F32, {4});
  w.add_tensor_info("t1", GgmlType::Q8_0, {32, 2});
  w.add_tensor_info("t2", GgmlType::F16, {2, 1, 3});
  w.begin(p);
  std::vector<uint8_t> zeros(16 + 68 + 12, 0x11);
  w.write_tensor_data(zeros.data(), zeros.size());
  w.finish();
  auto b = test::read_file(p);
  std::filesystem::remove(p);
  return b;
}

TEST(GgufCorrupt, SmallValidFileParses) {
  auto b = small_valid_file();
  EXPECT_EQ(parse_error(b), "");
  auto f = gguf_parse_memory(b.data(), b.size(), "mem.gguf");
  EXPECT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->get_str_array("tiny.toks").size(), 3u);
}

TEST(GgufCorrupt, TruncatedAtEveryByte) {
  auto b = small_valid_file();
  // Trailing padding after the last tensor is optional, so every prefix shorter than the
  // end of the last tensor's bytes must fail; longer ones parse.
  uint64_t data_end = 0;
  auto parsed = gguf_parse_memory(b.data(), b.size(), "mem.gguf");
  for (const auto& t : parsed->tensors())
    data_end = std::max(data_end, t.offset + t.nbytes);
  ASSERT_LT(data_end, b.size());
  EXPECT_EQ(parse_error(std::vector<uint8_t>(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(data_end))), "");
  for (size_t n = 0; n < data_end; ++n) {
    std::vector<uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    std::string m = parse_error(cut);
    ASSERT_FALSE(m.empty()) << "prefix of " << n << " bytes parsed";
    ASSERT_NE(m.find("byte offset"), std::string::npos) << m;
  }
  // A cut inside the header is reported as truncation.
  std::vector<uint8_t> cut(b.begin(), b.begin() + 30);
  EXPECT_ERR(cut, "truncated");
  // A cut inside the tensor data is reported as a tensor out of range.
  std::vector<uint8_t> cut2(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(data_end - 5));
  EXPECT_ERR(cut2, "'t2'", "beyond the end of the file");
}

TEST(GgufCorrupt, RandomMutationsNeverCrash) {
  auto b = small_valid_file();
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto m = b;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % m.size();
      // Mostly byte noise, sometimes 0xff runs that make lengths and counts huge.
      m[pos] = (rng() % 3 == 0) ? 0xff : static_cast<uint8_t>(rng());
    }
    if (!parse_error(m).empty()) ++errors;
  }
  EXPECT_GT(errors, 1000);  // most mutations of the header are detected
}

TEST(GgufCorrupt, BadMagicAndVersions) {
  EXPECT_ERR(Bytes().u32(0x12345678).u32(3).u64(0).u64(0).b, "bad magic", "not a GGUF file", "byte offset 0");
  EXPECT_ERR(Bytes().header(0, 0, 1).b, "version 1", "not supported");
  EXPECT_ERR(Bytes().header(0, 0, 0x03000000).b, "big-endian");
  EXPECT_ERR(Bytes().header(0, 0, 4).b, "unsupported GGUF version 4");
  EXPECT_ERR(std::vector<uint8_t>{}, "truncated");
  EXPECT_EQ(parse_error(Bytes().header(0, 0, 2).b), "");  // v2 is accepted
  EXPECT_EQ(parse_error(Bytes().header(0, 0, 3).b), "");
}

TEST(GgufCorrupt, AbsurdCountsAndLengths) {
  EXPECT_ERR(Bytes().header(0, UINT64_MAX).b, "absurd metadata count", "byte offset 16");
  EXPECT_ERR(Bytes().header(1ull << 40, 0).b, "absurd tensor count");
  // Key whose length claims more bytes than the file has.
  EXPECT_ERR(Bytes().header(0, 1).u64(1ull << 62).zeros(16).b, "string length", "metadata key", "byte offset 24");
  // String value too long.
  EXPECT_ERR(Bytes().header(0, 1).str("k").u32(8).u64(1000).zeros(10).b, "string length");
  // Array of a billion u32 in a 60-byte file.
  EXPECT_ERR(Bytes().header(0, 1).str("k").u32(9).u32(4).u64(1000000000).zeros(8).b, "absurd array length", "'k'");
  // Array of strings: even empty strings need 8 bytes each.
  EXPECT_ERR(Bytes().header(0, 1).str("k").u32(9).u32(8).u64(5).zeros(32).b, "absurd array length");
  // Tensor count that fits the bytes after the header but not after the metadata.
  EXPECT_ERR(Bytes().header(2, 1).kv_str("k", std::string(40, 'x')).zeros(20).b, "absurd tensor count");
}

TEST(GgufCorrupt, BadValueTypes) {
  EXPECT_ERR(Bytes().header(0, 1).str("k").u32(13).u32(0).b, "unknown value type 13", "byte offset 33");
  EXPECT_ERR(Bytes().header(0, 1).str("k").u32(9).u32(77).u64(0).b, "unknown element type 77");
  EXPECT_ERR(Bytes().header(0, 1).str("k").u32(9).u32(9).u64(0).b, "nested arrays");
  EXPECT_ERR(Bytes().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "duplicate metadata key 'k'");
}

TEST(GgufCorrupt, BadAlignment) {
  EXPECT_ERR(Bytes().header(0, 1).kv_u32("general.alignment", 0).b, "power of two");
  EXPECT_ERR(Bytes().header(0, 1).kv_u32("general.alignment", 48).b, "power of two", "48");
  EXPECT_ERR(Bytes().header(0, 1).kv_str("general.alignment", "32").b, "power of two");
  auto ok = Bytes().header(0, 1).kv_u32("general.alignment", 64).b;
  auto f = gguf_parse_memory(ok.data(), ok.size(), "mem.gguf");
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset(), 64u);  // header of 50 bytes aligned up
}

// One tensor file: header + tensor infos + padding + data bytes.
std::vector<uint8_t> one_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t off, size_t data) {
  return Bytes().header(1, 0).tensor("w", ne, type, off).pad_to(32).zeros(data).b;
}

TEST(GgufCorrupt, BadTensorInfos) {
  EXPECT_EQ(parse_error(one_tensor({4}, 0, 0, 16)), "");
  EXPECT_ERR(one_tensor({4}, 99, 0, 16), "'w'", "unknown", "type id 99", "byte offset 45");
  EXPECT_ERR(one_tensor({}, 0, 0, 16), "'w'", "n_dims 0");
  EXPECT_ERR(one_tensor({1, 1, 1, 1, 1}, 0, 0, 16), "n_dims 5");
  EXPECT_ERR(one_tensor({1ull << 62, 1ull << 62}, 0, 0, 16), "overflows int64");
  EXPECT_ERR(one_tensor({UINT64_MAX}, 0, 0, 16), "negative or too large");
  EXPECT_ERR(one_tensor({1ull << 62}, 0, 0, 16), "overflows uint64");  // 2^62 floats = 2^64 bytes
  EXPECT_ERR(one_tensor({100}, 12, 0, 1000), "not a multiple", "Q4_K", "256");
  EXPECT_ERR(one_tensor({4}, 0, 8, 64), "misaligned", "offset 8");
  EXPECT_ERR(one_tensor({4}, 0, 0, 15), "beyond the end of the file");
  EXPECT_ERR(one_tensor({4}, 0, UINT64_MAX - 31, 16), "beyond the end of the file");
}

TEST(GgufCorrupt, OverlapAndDuplicates) {
  auto two = [](uint64_t off_a, uint64_t off_b, const char* name_b) {
    return Bytes().header(2, 0).tensor("a", {16}, 0, off_a).tensor(name_b, {16}, 0, off_b).pad_to(32).zeros(256).b;
  };
  EXPECT_EQ(parse_error(two(0, 64, "b")), "");
  EXPECT_EQ(parse_error(two(64, 0, "b")), "");  // order in the file may differ from order on disk
  EXPECT_ERR(two(0, 32, "b"), "'a'", "'b'", "overlap");
  EXPECT_ERR(two(64, 32, "b"), "overlap");
  EXPECT_ERR(two(0, 0, "b"), "overlap");
  EXPECT_ERR(two(0, 64, "a"), "duplicate tensor name 'a'");
}

// Counts that fit in the file's bytes but would expand to gigabytes in memory are refused
// before allocating. A sparse file makes a 300 MB input cheap.
TEST(GgufCorrupt, MemoryBudgetOnSparseFile) {
  auto sparse_file = [](const std::vector<uint8_t>& head) {
    std::string p = test::temp_path("sparse_hostile.gguf");
    {
      std::ofstream o(p, std::ios::binary);
      o.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
    }
    std::filesystem::resize_file(p, 300u << 20);
    std::string msg;
    try {
      GgufFile::open(p);
    } catch (const Error& e) {
      msg = e.what();
    }
    std::filesystem::remove(p);
    return msg;
  };
  // 250M u8 elements would be 2 GB as int64.
  std::string m = sparse_file(Bytes().header(0, 1).str("k").u32(9).u32(0).u64(250000000).b);
  EXPECT_NE(m.find("header too large: array 'k'"), std::string::npos) << m;
  EXPECT_NE(m.find("byte offset 41"), std::string::npos) << m;  // the length field
  // 20M metadata entries (each at least 13 bytes in the file) would take gigabytes.
  m = sparse_file(Bytes().header(0, 20000000).b);
  EXPECT_NE(m.find("header too large: metadata count"), std::string::npos) << m;
  m = sparse_file(Bytes().header(9000000, 0).b);
  EXPECT_NE(m.find("header too large: tensor count"), std::string::npos) << m;
}

TEST(GgufCorrupt, OpenErrors) {
  try {
    GgufFile::open("/nonexistent/x.gguf");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.gguf: cannot open"), std::string::npos);
  }
  EXPECT_THROW(GgufFile::open(::testing::TempDir()), Error);  // a directory
  std::string p = test::temp_path("garbage.gguf");
  {
    std::ofstream o(p, std::ios::binary);
    o << "GGUF\x03\x00\x00\x00garbage";
  }
  try {
    GgufFile::open(p);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  std::filesystem::remove(p);
}

}  // namespace
}  // namespace swapmoe
