// The expert cache and the SwapMoE store on a split model (gguf-split set): the expert
// tensors of one layer lie in different parts, each part is opened once for O_DIRECT, and
// every view must equal the bytes of the same expert in the whole file; a failed read names
// the part it came from.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "cache/expert_cache.h"
#include "gguf/gguf.h"
#include "gguf/gguf_split_writer.h"
#include "gguf/gguf_writer.h"
#include "io/read_engine.h"
#include "util/error.h"

using namespace swapmoe;

namespace {

constexpr int kExperts = 5;

// Declares a 3-layer model (layer 0 dense) whose slices start at unaligned offsets.
void declare(GgufWriter& w) {
  w.set_str("general.architecture", "test");
  w.add_tensor_info("token_embd.weight", GgmlType::F32, {37});
  for (int l = 1; l <= 2; ++l) {
    w.add_tensor_info(cat("blk.", l, ".ffn_gate_exps.weight"), GgmlType::F32, {32, 12, kExperts});
    w.add_tensor_info(cat("blk.", l, ".ffn_up_exps.weight"), GgmlType::Q8_0, {32, 12, kExperts});
    w.add_tensor_info(cat("blk.", l, ".ffn_down_exps.weight"), GgmlType::F16, {12, 32, kExperts});
  }
}

// Writes the same random tensor bytes whole (limits inactive) or split.
std::vector<std::string> write(const std::string& path, const GgufSplitLimits& lim) {
  GgufWriter w;
  declare(w);
  GgufOutput out(w, path, lim);
  out.begin();
  std::mt19937 rng(9);
  for (const auto& t : w.tensors()) {
    std::vector<uint8_t> b(t.nbytes);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    out.write_tensor_data(b.data(), b.size());
  }
  out.finish();
  return out.paths();
}

std::vector<ExpertTensors> expert_tensors(const GgufFile& f) {
  std::vector<ExpertTensors> t(3);
  for (int l = 1; l <= 2; ++l) {
    t[l].gate = f.find_tensor(cat("blk.", l, ".ffn_gate_exps.weight"));
    t[l].up = f.find_tensor(cat("blk.", l, ".ffn_up_exps.weight"));
    t[l].down = f.find_tensor(cat("blk.", l, ".ffn_down_exps.weight"));
  }
  return t;
}

class SplitCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::string(SWAPMOE_BUILD_DIR) + "/test_expert_cache_split." + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    write(dir_ + "/whole.gguf", {});
    GgufSplitLimits lim;
    lim.max_tensors = 2;  // parts: [embd, gate1] [up1, down1] [gate2, up2] [down2]
    parts_ = write(dir_ + "/split.gguf", lim);
    whole_ = GgufFile::open(dir_ + "/whole.gguf");
    split_ = GgufFile::open(parts_[0]);
    cfg_.n_layer = 3;
    cfg_.n_expert = kExperts;
    cfg_.n_expert_used = 2;
  }
  void TearDown() override {
    io::fail_nth_read(0);
    std::filesystem::remove_all(dir_);
  }

  void expect_same(const MatrixRef& m, const GgufTensorInfo* t, int e) {
    const GgufTensorInfo* w = whole_->find_tensor(t->name);
    ASSERT_NE(w, nullptr);
    std::vector<uint8_t> want(w->expert_bytes());
    whole_->read_at(w->part, w->expert_offset(e), want.data(), want.size());
    ASSERT_EQ(m.row_bytes() * static_cast<size_t>(m.rows), want.size());
    EXPECT_EQ(std::memcmp(m.data, want.data(), want.size()), 0) << t->name << " expert " << e;
  }

  std::string dir_;
  std::vector<std::string> parts_;
  std::unique_ptr<GgufFile> whole_, split_;
  ModelConfig cfg_;
};

}  // namespace

TEST_F(SplitCache, ExpertsOfOneLayerComeFromSeveralParts) {
  ASSERT_EQ(split_->parts().size(), 4u);
  const std::vector<ExpertTensors> t = expert_tensors(*split_);
  EXPECT_EQ(t[1].gate->part, 0u);
  EXPECT_EQ(t[1].up->part, 1u);
  EXPECT_EQ(t[2].down->part, 3u);
  std::vector<io::EngineKind> kinds{io::EngineKind::PreadPool};
#ifdef SWAPMOE_HAVE_URING
  kinds.push_back(io::EngineKind::Uring);
#endif
  for (io::EngineKind k : kinds) {
    ExpertCacheOptions o;
    o.n_slots = 3;  // fewer than the experts: slots are reused across parts
    o.engine.kind = k;
    o.engine.n_threads = 2;
    ExpertCache c(split_->part_paths(), cfg_, t, o);
    for (int round = 0; round < 2; ++round)
      for (int l = 1; l <= 2; ++l)
        for (int e = 0; e < kExperts; ++e) {
          const ExpertView v = c.acquire(l, e);
          expect_same(v.gate, t[l].gate, e);
          expect_same(v.up, t[l].up, e);
          expect_same(v.down, t[l].down, e);
          c.release(l, e);
        }
    EXPECT_GT(c.stats().loads, 0u);
  }
}

TEST_F(SplitCache, AFailedReadNamesItsPart) {
  const std::vector<ExpertTensors> t = expert_tensors(*split_);
  ExpertCacheOptions o;
  o.n_slots = 2;
  o.engine.kind = io::EngineKind::PreadPool;
  o.engine.n_threads = 1;
  ExpertCache c(split_->part_paths(), cfg_, t, o);
  io::fail_nth_read(3);  // the third read of the first expert loaded: its down slice
  try {
    c.acquire(2, 1);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(parts_[3]), std::string::npos) << m;  // layer 2's down tensor is in part 4
    EXPECT_NE(m.find("layer 2 expert 1 (ffn_down_exps)"), std::string::npos) << m;
  }
}

TEST_F(SplitCache, ATensorInAPartThatIsNotOpenIsRefused) {
  const std::vector<ExpertTensors> t = expert_tensors(*split_);
  ExpertCacheOptions o;
  o.n_slots = 2;
  // Only the first part given: the layout check must refuse the tensors of the others.
  EXPECT_THROW(ExpertCache(parts_[0], cfg_, t, o), Error);
}
