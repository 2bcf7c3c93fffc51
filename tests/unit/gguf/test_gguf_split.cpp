// Split GGUF sets (gguf/gguf_split.h, gguf_split_writer.h): naming, the split plan,
// writing a set and reading it back as the same tensors as the whole file, and the set
// validation: every broken set gives a one-line Error naming the part concerned.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "gguf/gguf_split.h"
#include "gguf/gguf_split_writer.h"
#include "gguf/gguf_writer.h"
#include "gguf_test_util.h"

namespace swapmoe {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> pattern(size_t n, size_t k) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 13 + k * 29 + 3);
  return v;
}

// A fresh directory per test; removed at the end.
class SplitDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_path(std::string("split_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string at(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// Opens the model and returns the error message ("" when it opened).
std::string open_error(const std::string& path) {
  try {
    GgufFile::open(path);
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
    return m;
  }
  return "";
}

// Tensors of assorted types and shapes, declared on w (nbytes as the writer computes them).
void declare_model(GgufWriter& w, size_t n) {
  w.set_str("general.architecture", "test");
  w.set_u32("test.block_count", 7);
  for (size_t k = 0; k < n; ++k) {
    if (k % 3 == 0) w.add_tensor_info("t" + std::to_string(k), GgmlType::F32, {16, static_cast<int64_t>(k + 1)});
    else if (k % 3 == 1) w.add_tensor_info("t" + std::to_string(k), GgmlType::Q8_0, {64, 3, 4});
    else w.add_tensor_info("t" + std::to_string(k), GgmlType::F16, {6});  // 12 bytes: padding inside parts
  }
}

// Writes the declared tensors' bytes (pattern(k)) through out, in two chunks each.
void write_model(GgufOutput& out, const GgufWriter& w) {
  out.begin();
  for (size_t k = 0; k < w.tensors().size(); ++k) {
    const std::vector<uint8_t> b = pattern(w.tensors()[k].nbytes, k);
    const size_t h = b.size() / 2;
    out.write_tensor_data(b.data(), h);
    out.write_tensor_data(b.data() + h, b.size() - h);
  }
  out.finish();
}

// A hand-made part for the validation tests (GgufWriter, no GgufOutput): F32 tensors of
// 8 elements each.
struct PartSpec {
  int64_t no = 0, count = 2, tensors_count = 2;
  std::vector<std::string> tensors;
  bool with_no = true, with_count = true, with_total = true, meta = false;
};
void write_part(const std::string& path, const PartSpec& s) {
  GgufWriter w;
  if (s.meta) w.set_str("general.architecture", "test");
  if (s.with_no) w.set_u16(kSplitNoKey, static_cast<uint16_t>(s.no));
  if (s.with_count) w.set_u16(kSplitCountKey, static_cast<uint16_t>(s.count));
  if (s.with_total) w.set_i32(kSplitTensorsCountKey, static_cast<int32_t>(s.tensors_count));
  for (const auto& n : s.tensors) w.add_tensor_info(n, GgmlType::F32, {8});
  w.begin(path);
  for (size_t k = 0; k < s.tensors.size(); ++k) {
    const std::vector<uint8_t> b = pattern(32, k);
    w.write_tensor_data(b.data(), b.size());
  }
  w.finish();
}

// ---------------------------------------------------------------- naming and planning

TEST(GgufSplitName, FormatAndParse) {
  EXPECT_EQ(gguf_split_path("dir/model", 0, 3), "dir/model-00001-of-00003.gguf");
  EXPECT_EQ(gguf_split_path("m", 65534, 65535), "m-65535-of-65535.gguf");
  std::string prefix;
  uint32_t no = 9, count = 9;
  ASSERT_TRUE(gguf_split_name("a/b-c-00002-of-00003.gguf", &prefix, &no, &count));
  EXPECT_EQ(prefix, "a/b-c");
  EXPECT_EQ(no, 1u);
  EXPECT_EQ(count, 3u);
  for (const char* bad : {"model.gguf", "m-00001-of-00003.bin", "m-0001-of-00003.gguf", "m-00004-of-00003.gguf",
                          "m-00000-of-00003.gguf", "m-00001-of-00000.gguf", "m00001-of-00003.gguf",
                          "m-00001-of-99999.gguf", "m-000001-of-00003.gguf", "-of-00003.gguf", ""})
    EXPECT_FALSE(gguf_split_name(bad, &prefix, &no, &count)) << bad;
}

TEST(GgufSplitPlan, SizeAndCountLimitsAsGgufSplit) {
  auto infos = [](std::vector<uint64_t> sizes) {
    std::vector<GgufTensorInfo> v(sizes.size());
    for (size_t k = 0; k < sizes.size(); ++k) v[k].nbytes = sizes[k];
    return v;
  };
  GgufSplitLimits by_size;
  by_size.max_bytes = 256;
  // Tensors count padded to 32: 100 -> 128, so two fit exactly, the third starts a part.
  EXPECT_EQ(plan_split(infos({100, 100, 100}), by_size), (std::vector<uint32_t>{0, 0, 1}));
  // A tensor over the limit gets a part of its own, wherever it is (first included).
  EXPECT_EQ(plan_split(infos({1000, 10, 1000, 10, 10}), by_size), (std::vector<uint32_t>{0, 1, 2, 3, 3}));
  GgufSplitLimits by_count;
  by_count.max_tensors = 2;
  EXPECT_EQ(plan_split(infos({1, 2, 3, 4, 5}), by_count), (std::vector<uint32_t>{0, 0, 1, 1, 2}));
  EXPECT_TRUE(plan_split(infos({}), by_count).empty());
}

TEST(GgufSplitPlan, ParseSize) {
  EXPECT_EQ(parse_split_size("500M"), 500'000'000u);
  EXPECT_EQ(parse_split_size("2G"), 2'000'000'000u);
  EXPECT_EQ(parse_split_size("64K"), 64'000u);
  for (const char* bad : {"", "2", "M", "0M", "1.5G", "-1G", "10X", "2g", "99999999999999999999G"})
    EXPECT_THROW(parse_split_size(bad), Error) << bad;
}

// ---------------------------------------------------------------- round trip

TEST_F(SplitDir, WriteSplitReadsBackAsTheWholeFile) {
  GgufWriter whole_w;
  declare_model(whole_w, 10);
  GgufOutput whole(whole_w, at("whole.gguf"), {});
  ASSERT_FALSE(whole.split());
  write_model(whole, whole_w);

  GgufWriter split_w;
  declare_model(split_w, 10);
  GgufSplitLimits lim;
  lim.max_tensors = 3;
  GgufOutput split(split_w, at("model.gguf"), lim);
  ASSERT_TRUE(split.split());
  ASSERT_EQ(split.paths().size(), 4u);
  EXPECT_EQ(split.paths()[0], at("model-00001-of-00004.gguf"));
  EXPECT_EQ(split.paths()[3], at("model-00004-of-00004.gguf"));
  write_model(split, split_w);
  EXPECT_EQ(split.part_tensor_counts(), (std::vector<size_t>{3, 3, 3, 1}));
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().extension(), ".gguf") << "left behind: " << e.path();

  auto a = GgufFile::open(at("whole.gguf"));
  auto b = GgufFile::open(at("model-00001-of-00004.gguf"));
  EXPECT_FALSE(a->is_split());
  ASSERT_TRUE(b->is_split());
  ASSERT_EQ(b->parts().size(), 4u);
  uint64_t total = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b->parts()[i].path, split.paths()[i]);
    EXPECT_EQ(b->parts()[i].file_size, fs::file_size(split.paths()[i]));
    total += b->parts()[i].file_size;
  }
  EXPECT_EQ(b->file_size(), total);
  EXPECT_EQ(b->get_str("general.architecture"), "test");
  EXPECT_EQ(b->get_u64("test.block_count"), 7u);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (size_t k = 0; k < a->tensors().size(); ++k) {
    const GgufTensorInfo& x = a->tensors()[k];
    const GgufTensorInfo* y = b->find_tensor(x.name);
    ASSERT_NE(y, nullptr) << x.name;
    EXPECT_EQ(y->type, x.type);
    EXPECT_EQ(y->ne, x.ne);
    EXPECT_EQ(y->part, k / 3) << x.name;
    std::vector<uint8_t> bx(x.nbytes), by(y->nbytes);
    a->read_at(x.part, x.offset, bx.data(), bx.size());
    b->read_at(y->part, y->offset, by.data(), by.size());
    EXPECT_EQ(bx, by) << x.name;
    EXPECT_EQ(bx, pattern(x.nbytes, k));
  }
  // A read beyond a part, or from a part that does not exist, is refused.
  uint8_t byte;
  EXPECT_THROW(b->read_at(1, b->parts()[1].file_size, &byte, 1), Error);
  EXPECT_THROW(b->read_at(4, 0, &byte, 1), Error);

  // The parts carry what gguf-split writes: split.no u16, split.count u16,
  // split.tensors.count i32; metadata only in the first.
  for (uint32_t i = 0; i < 4; ++i) {
    auto p = GgufFile::open_file(split.paths()[i]);
    ASSERT_NE(p->find(kSplitNoKey), nullptr);
    EXPECT_EQ(p->find(kSplitNoKey)->type, GgufType::UINT16);
    EXPECT_EQ(p->find(kSplitNoKey)->u, i);
    EXPECT_EQ(p->find(kSplitCountKey)->type, GgufType::UINT16);
    EXPECT_EQ(p->find(kSplitCountKey)->u, 4u);
    EXPECT_EQ(p->find(kSplitTensorsCountKey)->type, GgufType::INT32);
    EXPECT_EQ(p->find(kSplitTensorsCountKey)->i, 10);
    EXPECT_EQ(p->metadata().size(), i == 0 ? 5u : 3u);
  }
}

TEST_F(SplitDir, SparseSkipsAndBySizeLimit) {
  GgufWriter w;
  declare_model(w, 7);
  GgufSplitLimits lim;
  lim.max_bytes = 1000;
  GgufOutput out(w, at("s"), lim);  // no .gguf suffix: the prefix is taken as is
  out.begin();
  for (size_t k = 0; k < w.tensors().size(); ++k) {
    if (k % 2) {
      out.skip_tensor();
    } else {
      const std::vector<uint8_t> b = pattern(w.tensors()[k].nbytes, k);
      out.write_tensor_data(b.data(), b.size());
    }
  }
  out.finish();
  ASSERT_GT(out.paths().size(), 1u);
  EXPECT_EQ(out.paths()[0], at("s-00001-of-0000" + std::to_string(out.paths().size()) + ".gguf"));
  auto f = GgufFile::open(out.paths()[0]);
  for (size_t k = 0; k < f->tensors().size(); ++k) {
    const GgufTensorInfo& t = f->tensors()[k];
    std::vector<uint8_t> got(t.nbytes);
    f->read_at(t.part, t.offset, got.data(), got.size());
    EXPECT_EQ(got, k % 2 ? std::vector<uint8_t>(t.nbytes, 0) : pattern(t.nbytes, k)) << t.name;
  }
}

TEST_F(SplitDir, NonDefaultAlignmentIsStatedInEveryPart) {
  GgufWriter w;
  w.set_alignment(256);
  declare_model(w, 5);
  GgufSplitLimits lim;
  lim.max_tensors = 2;
  GgufOutput out(w, at("a.gguf"), lim);
  write_model(out, w);
  for (const std::string& p : out.paths()) {
    auto part = GgufFile::open_file(p);
    EXPECT_EQ(part->alignment(), 256u) << p;
    for (const auto& t : part->tensors()) EXPECT_EQ((t.offset - part->data_offset()) % 256, 0u) << t.name;
  }
  auto f = GgufFile::open(out.paths()[0]);
  for (size_t k = 0; k < f->tensors().size(); ++k) {
    const GgufTensorInfo& t = f->tensors()[k];
    std::vector<uint8_t> got(t.nbytes);
    f->read_at(t.part, t.offset, got.data(), got.size());
    EXPECT_EQ(got, pattern(t.nbytes, k)) << t.name;
  }
}

TEST_F(SplitDir, AbandonedSetLeavesNothing) {
  // An older first part under the same name goes when the new set begins, so the parts
  // the abandoned set had renamed cannot pair up with it.
  write_part(at("m-00001-of-00003.gguf"), {0, 3, 6, {"old"}, true, true, true, true});
  {
    GgufWriter w;
    declare_model(w, 6);
    GgufSplitLimits lim;
    lim.max_tensors = 2;
    GgufOutput out(w, at("m.gguf"), lim);
    out.begin();
    for (size_t k = 0; k < 5; ++k) {  // the last tensor never comes
      const std::vector<uint8_t> b = pattern(w.tensors()[k].nbytes, k);
      out.write_tensor_data(b.data(), b.size());
    }
    EXPECT_THROW(out.finish(), Error);
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(SplitDir, TooMuchDataIsRefused) {
  GgufWriter w;
  declare_model(w, 3);
  GgufSplitLimits lim;
  lim.max_tensors = 1;
  GgufOutput out(w, at("m.gguf"), lim);
  out.begin();
  uint64_t all = 0;
  for (const auto& t : w.tensors()) all += t.nbytes;
  const std::vector<uint8_t> b(all + 1, 7);
  EXPECT_THROW(out.write_tensor_data(b.data(), b.size()), Error);
}

// ---------------------------------------------------------------- validation

TEST_F(SplitDir, NonFirstPartPointsToTheFirst) {
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 2, {"a"}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {1, 2, 2, {"b"}});
  EXPECT_EQ(open_error(at("m-00001-of-00002.gguf")), "");
  const std::string e = open_error(at("m-00002-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00002.gguf") + ": this is part 2 of 2"), std::string::npos) << e;
  EXPECT_NE(e.find("open its first part, " + at("m-00001-of-00002.gguf")), std::string::npos) << e;
  // Renamed away from gguf-split's naming: still refused, with what to look for.
  fs::rename(at("m-00002-of-00002.gguf"), at("second.gguf"));
  const std::string e2 = open_error(at("second.gguf"));
  EXPECT_NE(e2.find("split.no = 0"), std::string::npos) << e2;
}

TEST_F(SplitDir, FirstPartWithoutTensors) {
  // gguf-split --no-tensor-first-split: the first part holds only metadata.
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 2, {}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {1, 2, 2, {"a", "b"}});
  auto f = GgufFile::open(at("m-00001-of-00002.gguf"));
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->parts()[0].n_tensors, 0u);
  EXPECT_EQ(f->find_tensor("b")->part, 1u);
  std::vector<uint8_t> got(32);
  f->read_at(1, f->find_tensor("b")->offset, got.data(), got.size());
  EXPECT_EQ(got, pattern(32, 1));
}

TEST_F(SplitDir, MissingPart) {
  write_part(at("m-00001-of-00003.gguf"), {0, 3, 3, {"a"}, true, true, true, true});
  write_part(at("m-00003-of-00003.gguf"), {2, 3, 3, {"c"}});
  const std::string e = open_error(at("m-00001-of-00003.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00003.gguf") + ": part 2 of 3"), std::string::npos) << e;
  EXPECT_NE(e.find("is missing"), std::string::npos) << e;
}

TEST_F(SplitDir, WrongCountInAPart) {
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 2, {"a"}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {1, 3, 2, {"b"}});
  const std::string e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00002.gguf") + ": split.count is 3 but the first part"), std::string::npos) << e;
}

TEST_F(SplitDir, CountDisagreesWithTheName) {
  // The header says 3 parts, the name says 2: the siblings cannot be found.
  write_part(at("m-00001-of-00002.gguf"), {0, 3, 2, {"a"}, true, true, true, true});
  const std::string e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00001-of-00002.gguf") + ": the first part of a split model of 3 parts"), std::string::npos)
      << e;
  EXPECT_NE(e.find("-00001-of-00003.gguf"), std::string::npos) << e;
}

TEST_F(SplitDir, PartNumberDisagreesWithTheName) {
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 2, {"a"}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {0, 2, 2, {"b"}});  // says it is the first
  const std::string e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00002.gguf") + ": split.no is 0 (part 1 of 2) where part 2 of 2 was expected"),
            std::string::npos)
      << e;
}

TEST_F(SplitDir, MissingSplitKeys) {
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 2, {"a"}, true, true, true, true});
  PartSpec no_no{1, 2, 2, {"b"}};
  no_no.with_no = false;
  write_part(at("m-00002-of-00002.gguf"), no_no);
  std::string e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00002.gguf") + ": split part without the key split.no"), std::string::npos) << e;

  PartSpec no_total{0, 2, 2, {"a"}};
  no_total.with_total = false;
  no_total.meta = true;
  write_part(at("m-00001-of-00002.gguf"), no_total);
  write_part(at("m-00002-of-00002.gguf"), {1, 2, 2, {"b"}});
  e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00001-of-00002.gguf") + ": split part without the key split.tensors.count"),
            std::string::npos)
      << e;
}

TEST_F(SplitDir, DuplicateTensor) {
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 3, {"a", "x"}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {1, 2, 3, {"x"}});
  const std::string e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00002.gguf") + ": tensor 'x' is also in " + at("m-00001-of-00002.gguf")),
            std::string::npos)
      << e;
}

TEST_F(SplitDir, TensorTotalMismatch) {
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 5, {"a"}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {1, 2, 5, {"b", "c"}});
  std::string e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00001-of-00002.gguf") + ": split.tensors.count is 5 but the 2 parts hold 3 tensors"),
            std::string::npos)
      << e;
  // A later part stating a different total is named too.
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 3, {"a"}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {1, 2, 4, {"b", "c"}});
  e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00002.gguf") + ": split.tensors.count is 4"), std::string::npos) << e;
}

TEST_F(SplitDir, OutOfBoundsDataInAPart) {
  write_part(at("m-00001-of-00002.gguf"), {0, 2, 3, {"a"}, true, true, true, true});
  write_part(at("m-00002-of-00002.gguf"), {1, 2, 3, {"b", "c"}});
  fs::resize_file(at("m-00002-of-00002.gguf"), fs::file_size(at("m-00002-of-00002.gguf")) - 8);
  const std::string e = open_error(at("m-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("m-00002-of-00002.gguf") + ": tensor 'c'"), std::string::npos) << e;
  EXPECT_NE(e.find("beyond the end of the file"), std::string::npos) << e;
}

TEST_F(SplitDir, BadSplitValues) {
  PartSpec zero{0, 0, 1, {"a"}};
  zero.meta = true;
  write_part(at("m-00001-of-00001.gguf"), zero);
  // split.count 0 is what llama-gguf-split --merge writes into the merged file (the other split
  // keys kept): a whole file, as llama.cpp's loader reads it.
  std::string e = open_error(at("m-00001-of-00001.gguf"));
  EXPECT_EQ(e, "");
  {
    auto merged = GgufFile::open(at("m-00001-of-00001.gguf"));
    EXPECT_FALSE(merged->is_split());
    EXPECT_NE(merged->find_tensor("a"), nullptr);
  }
  // A set of one part is a whole model (and its tensor count is still checked).
  write_part(at("m-00001-of-00001.gguf"), {0, 1, 1, {"a"}, true, true, true, true});
  EXPECT_EQ(open_error(at("m-00001-of-00001.gguf")), "");
  auto f = GgufFile::open(at("m-00001-of-00001.gguf"));
  EXPECT_FALSE(f->is_split());
  // Wrong kind.
  GgufWriter w;
  w.set_str(kSplitCountKey, "two");
  w.set_u16(kSplitNoKey, 0);
  w.begin(at("k-00001-of-00002.gguf"));
  w.finish();
  e = open_error(at("k-00001-of-00002.gguf"));
  EXPECT_NE(e.find(at("k-00001-of-00002.gguf") + ": split.count must be an integer"), std::string::npos) << e;
}

TEST(GgufSplitJoin, InMemoryPartsAndCorruptHeaders) {
  // The validation runs on parts parsed from memory (what a fuzzer feeds it). Build a
  // valid three-part set in memory, then corrupt bytes of each part's header: parsing and
  // joining must end in a valid model or an Error naming that part, never a crash.
  const std::string dir = test::temp_path("split_mem");
  fs::remove_all(dir);
  fs::create_directories(dir);
  GgufWriter w;
  declare_model(w, 6);
  GgufSplitLimits lim;
  lim.max_tensors = 2;
  GgufOutput out(w, dir + "/m.gguf", lim);
  write_model(out, w);
  std::vector<std::vector<uint8_t>> images;
  for (const auto& p : out.paths()) images.push_back(test::read_file(p));
  fs::remove_all(dir);
  ASSERT_EQ(images.size(), 3u);

  auto join = [&](const std::vector<std::vector<uint8_t>>& imgs) {
    std::vector<std::unique_ptr<GgufFile>> parts;
    for (size_t i = 0; i < imgs.size(); ++i)
      parts.push_back(gguf_parse_memory(imgs[i].data(), imgs[i].size(), "part" + std::to_string(i + 1)));
    return gguf_join_split(std::move(parts));
  };
  auto f = join(images);
  EXPECT_EQ(f->tensors().size(), 6u);
  EXPECT_EQ(f->parts().size(), 3u);
  EXPECT_EQ(f->path(), "part1");

  // Parts out of order or one missing: errors naming a part.
  try {
    join({images[0], images[2], images[1]});
    ADD_FAILURE() << "out of order parts accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("part2: split.no is 2"), std::string::npos) << e.what();
  }
  try {
    join({images[0], images[1]});
    ADD_FAILURE() << "two of three parts accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("part1: split.count is 3 but 2 parts were given"), std::string::npos) << e.what();
  }

  std::mt19937 rng(1234);
  int accepted = 0, refused = 0;
  for (size_t victim = 0; victim < images.size(); ++victim) {
    auto probe = gguf_parse_memory(images[victim].data(), images[victim].size(), "x");
    const size_t header = static_cast<size_t>(probe->data_offset());
    for (int iter = 0; iter < 400; ++iter) {
      std::vector<std::vector<uint8_t>> imgs = images;
      std::vector<uint8_t>& b = imgs[victim];
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) b[rng() % header] = static_cast<uint8_t>(rng());
      if (rng() % 8 == 0) b.resize(rng() % b.size());  // truncated too
      try {
        auto g = join(imgs);
        ++accepted;
        // Whatever was accepted is consistent and readable.
        for (const auto& t : g->tensors()) {
          ASSERT_LT(t.part, g->parts().size());
          ASSERT_LE(t.offset + t.nbytes, g->parts()[t.part].file_size);
          std::vector<uint8_t> buf(std::min<uint64_t>(t.nbytes, 64));
          g->read_at(t.part, t.offset, buf.data(), buf.size());
        }
      } catch (const Error& e) {
        ++refused;
        const std::string m = e.what();
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
        EXPECT_EQ(m.rfind("part", 0), 0u) << "names no part: " << m;
      }
    }
  }
  EXPECT_GT(refused, 0);
  std::printf("corrupt headers: %d accepted, %d refused\n", accepted, refused);
}

}  // namespace
}  // namespace swapmoe
