// The SSD-backed expert cache against a small GGUF written here with known random expert
// bytes: every view handed out must equal the file's bytes for that expert (read back
// independently with GgufFile::read_at) and describe the matrix like the resident store.
// Tensor sizes are chosen so that expert slices start at unaligned offsets.

#include <unistd.h>
#include <gtest/gtest.h>

#include "../require.h"

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "cache/expert_cache.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "io/read_engine.h"
#include "util/error.h"

using namespace swapmoe;

namespace {

constexpr int kExperts = 6;

class CacheFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = std::string(SWAPMOE_BUILD_DIR) + "/test_expert_cache." + std::to_string(::getpid()) + ".gguf";
    GgufWriter w;
    w.set_str("general.architecture", "test");
    // Layer 0 is dense (no expert tensors); layers 1 and 2 have experts. Slice sizes:
    // gate F32 32x12 = 1536 B, up Q8_0 32x12 = 408 B, down F16 12x32 = 768 B.
    w.add_tensor_info("token_embd.weight", GgmlType::F32, {37});
    for (int l = 1; l <= 2; ++l) {
      w.add_tensor_info(cat("blk.", l, ".ffn_gate_exps.weight"), GgmlType::F32, {32, 12, kExperts});
      w.add_tensor_info(cat("blk.", l, ".ffn_up_exps.weight"), GgmlType::Q8_0, {32, 12, kExperts});
      w.add_tensor_info(cat("blk.", l, ".ffn_down_exps.weight"), GgmlType::F16, {12, 32, kExperts});
    }
    w.begin(path_);
    std::mt19937 rng(5);
    std::vector<uint8_t> bytes(w.data_size());
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    uint64_t total = 0;
    for (const auto& t : w.tensors()) total += t.nbytes;
    w.write_tensor_data(bytes.data(), total);
    w.finish();
    file_ = GgufFile::open(path_).release();
    cfg_.n_layer = 3;
    cfg_.n_expert = kExperts;
    cfg_.n_expert_used = 2;
    tensors_.resize(3);
    for (int l = 1; l <= 2; ++l) {
      tensors_[l].gate = file_->find_tensor(cat("blk.", l, ".ffn_gate_exps.weight"));
      tensors_[l].up = file_->find_tensor(cat("blk.", l, ".ffn_up_exps.weight"));
      tensors_[l].down = file_->find_tensor(cat("blk.", l, ".ffn_down_exps.weight"));
      ASSERT_TRUE(tensors_[l].gate && tensors_[l].up && tensors_[l].down);
    }
  }
  static void TearDownTestSuite() {
    delete file_;
    std::remove(path_.c_str());
  }
  void TearDown() override { io::fail_nth_read(0); }

  static std::unique_ptr<ExpertCache> make(int64_t slots, const std::string& policy = "lru", bool per_layer = false,
                                           io::EngineKind k = io::EngineKind::PreadPool, int spares = 0) {
    ExpertCacheOptions o;
    o.n_slots = slots;
    o.spare_slots = spares;
    o.policy = policy;
    o.per_layer = per_layer;
    o.engine.kind = k;
    o.engine.n_threads = 3;
    o.engine.chunk_bytes = 4096;
    return std::make_unique<ExpertCache>(path_, cfg_, tensors_, o);
  }
  // make() with engine k; null when io_uring cannot be set up here and that skip is
  // allowed (else a failure), so that a test goes on with the next engine.
  static std::unique_ptr<ExpertCache> make_for(io::EngineKind k, int64_t slots, const std::string& policy,
                                               bool per_layer = false, int spares = 0) {
    try {
      return make(slots, policy, per_layer, k, spares);
    } catch (const Error& e) {
      if (k != io::EngineKind::Uring) throw;
      if (!test::skip_allowed("uring", std::string("io_uring cannot be set up here: ") + e.what()))
        ADD_FAILURE() << "io_uring cannot be set up: " << e.what();
      return nullptr;
    }
  }

  // Checks one matrix of a view against the file.
  static void expect_part(const MatrixRef& m, const GgufTensorInfo* t, int e) {
    EXPECT_EQ(m.type, t->type);
    EXPECT_EQ(m.cols, t->ne[0]);
    EXPECT_EQ(m.rows, t->ne[1]);
    ASSERT_EQ(m.row_bytes() * static_cast<size_t>(m.rows), t->expert_bytes());
    std::vector<uint8_t> want(t->expert_bytes());
    file_->read_at(t->part, t->expert_offset(e), want.data(), want.size());
    ASSERT_EQ(std::memcmp(m.data, want.data(), want.size()), 0) << t->name << " expert " << e;
  }
  static void expect_view(const ExpertView& v, int layer, int e) {
    expect_part(v.gate, tensors_[layer].gate, e);
    expect_part(v.up, tensors_[layer].up, e);
    expect_part(v.down, tensors_[layer].down, e);
  }

  static std::string path_;
  static GgufFile* file_;
  static ModelConfig cfg_;
  static std::vector<ExpertTensors> tensors_;
};
std::string CacheFile::path_;
GgufFile* CacheFile::file_ = nullptr;
ModelConfig CacheFile::cfg_;
std::vector<ExpertTensors> CacheFile::tensors_;

std::vector<io::EngineKind> kinds() {
  std::vector<io::EngineKind> k{io::EngineKind::PreadPool};
#ifdef SWAPMOE_HAVE_URING
  k.push_back(io::EngineKind::Uring);
#else
  // Built without liburing: the io_uring engine is not tested at all, which CI must not allow.
  if (!test::skip_allowed("uring", "built without liburing (SWAPMOE_HAVE_URING unset)"))
    ADD_FAILURE() << "io_uring engine not built; install liburing-dev";
#endif
  return k;
}

}  // namespace

TEST_F(CacheFile, ExpertSlicesAreUnalignedInTheFile) {
  // The point of this file: slices must not all sit on alignment boundaries.
  int unaligned = 0;
  for (int e = 0; e < kExperts; ++e) unaligned += tensors_[1].up->expert_offset(e) % 512 != 0;
  EXPECT_GT(unaligned, 0);
}

TEST_F(CacheFile, ViewsEqualFileBytesForEveryPolicyLayoutAndEngine) {
  for (io::EngineKind k : kinds()) {
    for (const char* policy : {"lru", "lfu", "lru2", "nextuse"}) {
      for (bool per_layer : {false, true}) {
        SCOPED_TRACE(cat(io::engine_kind_name(k), " ", policy, per_layer ? " per-layer" : " shared"));
        std::unique_ptr<ExpertCache> c = make_for(k, 5, policy, per_layer);
        if (!c) continue;
        EXPECT_EQ(c->n_slots(), 5);
        EXPECT_GE(c->slot_bytes(), 1536u + 408u + 768u);
        std::mt19937 rng(11);
        for (int step = 0; step < 60; ++step) {
          const int layer = 1 + static_cast<int>(rng() % 2);
          int32_t ex[2] = {static_cast<int32_t>(rng() % kExperts), 0};
          do ex[1] = static_cast<int32_t>(rng() % kExperts); while (ex[1] == ex[0]);
          c->request(layer, ex);
          int got = 0;
          while (auto a = c->acquire_any(layer)) {
            EXPECT_TRUE(a->expert == ex[0] || a->expert == ex[1]);
            expect_view(a->view, layer, a->expert);
            c->release(layer, a->expert);
            ++got;
          }
          EXPECT_EQ(got, 2);
          // And the plain interface, without request().
          const int32_t e = static_cast<int32_t>(rng() % kExperts);
          expect_view(c->acquire(layer, e), layer, e);
          c->release(layer, e);
        }
        const ExpertCacheStats s = c->stats();
        EXPECT_EQ(s.hits + s.misses, 180u);
        EXPECT_EQ(s.loads, s.misses);
        EXPECT_GT(s.hits, 0u);
        EXPECT_GT(s.bytes_read, s.loads * (1536u + 408u + 768u) - 1);
      }
    }
  }
}

TEST_F(CacheFile, LruEvictionOrderAndStats) {
  auto c = make(2, "lru");
  auto use = [&](int e) {
    expect_view(c->acquire(1, e), 1, e);
    c->release(1, e);
  };
  use(0);
  use(1);
  use(0);  // hit; 1 is now least recent
  use(2);  // evicts 1
  EXPECT_TRUE(c->resident(1, 0));
  EXPECT_FALSE(c->resident(1, 1));
  EXPECT_TRUE(c->resident(1, 2));
  use(3);  // evicts 0
  EXPECT_FALSE(c->resident(1, 0));
  const ExpertCacheStats s = c->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 4u);
  EXPECT_EQ(s.evictions, 2u);
  // Bytes read: the aligned supersets of the four experts' three slices.
  uint64_t want = 0;
  const uint64_t a = io::DirectFile::open(path_).alignment();
  for (int e : {0, 1, 2, 3})
    for (const GgufTensorInfo* t : {tensors_[1].gate, tensors_[1].up, tensors_[1].down})
      want += io::aligned_span(t->expert_offset(e), t->expert_bytes(), a).length;
  EXPECT_EQ(s.bytes_read, want);
}

TEST_F(CacheFile, PinnedExpertsAreNeverEvicted) {
  auto c = make(2, "lru");
  ExpertView v0 = c->acquire(1, 0);
  ExpertView v1 = c->acquire(1, 1);
  EXPECT_THROW(c->acquire(1, 2), Error);  // both slots pinned
  int32_t two[1] = {2};
  c->prefetch(1, two);                    // dropped, not an error
  EXPECT_EQ(c->stats().prefetch_dropped, 1u);
  EXPECT_THROW(c->request(1, two), Error);
  c->release(1, 1);
  expect_view(c->acquire(1, 2), 1, 2);    // takes 1's slot, never 0's
  expect_view(v0, 1, 0);                  // still intact
  c->release(1, 2);
  c->release(1, 0);
  EXPECT_THROW(c->release(1, 0), Error);  // not held any more
  (void)v1;
}

TEST_F(CacheFile, RequestPinsUntilAcquired) {
  auto c = make(3, "lru");
  const int32_t ex[2] = {4, 5};
  c->request(1, ex);
  // Unrelated traffic cannot evict the requested experts before the layer takes them.
  for (int e = 0; e < 4; ++e) {
    c->acquire(1, e);
    c->release(1, e);
  }
  EXPECT_TRUE(c->resident(1, 4));
  EXPECT_TRUE(c->resident(1, 5));
  expect_view(c->acquire(1, 5), 1, 5);
  expect_view(c->acquire(1, 4), 1, 4);
  EXPECT_FALSE(c->acquire_any(1).has_value());  // nothing requested left
  c->release(1, 4);
  c->release(1, 5);
  c->request(1, ex);
  c->cancel(1);  // unpins both
  for (int e = 0; e < 4; ++e) {
    c->acquire(1, e);
    c->release(1, e);
  }
  EXPECT_FALSE(c->resident(1, 4) && c->resident(1, 5));
}

TEST_F(CacheFile, PrefetchAccounting) {
  auto c = make(4, "lru");
  const int32_t pf[2] = {1, 2};
  c->prefetch(2, pf);
  c->wait_idle();  // a slot still loading cannot be evicted; make the order deterministic
  expect_view(c->acquire(2, 1), 2, 1);  // used
  c->release(2, 1);
  for (int e = 3; e < 6; ++e) {  // pushes 2 (prefetched, unused) out
    c->acquire(2, e);
    c->release(2, e);
  }
  const ExpertCacheStats s = c->stats();
  EXPECT_EQ(s.prefetch_issued, 2u);
  EXPECT_EQ(s.prefetch_used, 1u);
  EXPECT_EQ(s.prefetch_wasted, 1u);
  EXPECT_FALSE(c->resident(2, 2));
}

TEST_F(CacheFile, ReadFailureBecomesErrorAndIsRetried) {
  for (io::EngineKind k : kinds()) {
    std::unique_ptr<ExpertCache> c = make_for(k, 3, "lru");
    if (!c) continue;
    SCOPED_TRACE(c->engine_name());
    io::fail_nth_read(2);  // the second read: the up slice of the first expert loaded
    try {
      c->acquire(2, 3);
      FAIL() << "expected Error";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("test_expert_cache."), std::string::npos) << m;
      EXPECT_NE(m.find("layer 2 expert 3 (ffn_up_exps)"), std::string::npos) << m;
      EXPECT_NE(m.find("offset"), std::string::npos) << m;
    }
    EXPECT_FALSE(c->resident(2, 3));
    expect_view(c->acquire(2, 3), 2, 3);  // the next access reads it again
    c->release(2, 3);
    // Through request/acquire_any as well.
    io::fail_nth_read(4);
    const int32_t ex[2] = {0, 1};
    c->request(1, ex);
    int errors = 0, ok = 0;
    for (;;) {
      try {
        auto a = c->acquire_any(1);
        if (!a) break;
        expect_view(a->view, 1, a->expert);
        c->release(1, a->expert);
        ++ok;
      } catch (const Error&) {
        ++errors;
      }
    }
    EXPECT_EQ(errors, 1);
    EXPECT_EQ(ok, 1);
  }
}

TEST_F(CacheFile, TooFewSlotsIsRefusedUpFront) {
  EXPECT_THROW(make(1), Error);               // a layer needs 2 at once
  EXPECT_THROW(make(3, "lru", true), Error);  // per-layer: 2 + 1
  EXPECT_NO_THROW(make(4, "lru", true));
  EXPECT_EQ(make(100)->n_slots(), 2 * kExperts);  // capped at every expert
  EXPECT_THROW(make(4, "nope"), Error);
}

TEST_F(CacheFile, ConcurrentAcquireFromTwoThreads) {
  for (io::EngineKind k : kinds()) {
    std::unique_ptr<ExpertCache> c = make_for(k, 5, "lfu");
    if (!c) continue;
    SCOPED_TRACE(c->engine_name());
    std::atomic<int> bad{0};
    auto worker = [&](int seed) {
      std::mt19937 rng(seed);
      for (int i = 0; i < 150; ++i) {
        const int layer = 1 + static_cast<int>(rng() % 2);
        const int32_t e = static_cast<int32_t>(rng() % kExperts);
        // At most 2 pinned per thread at a time, so 5 slots always leave room.
        const ExpertView v = c->acquire(layer, e);
        std::vector<uint8_t> want(tensors_[layer].down->expert_bytes());
        file_->read_at(tensors_[layer].down->part, tensors_[layer].down->expert_offset(e), want.data(), want.size());
        if (std::memcmp(v.down.data, want.data(), want.size()) != 0) bad.fetch_add(1);
        c->release(layer, e);
      }
    };
    std::thread t1(worker, 1), t2(worker, 2);
    t1.join();
    t2.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(c->stats().hits + c->stats().misses, 300u);
  }
}

// Speculation (expert_cache.h): reads into spare buffers start only while no other read
// is in flight, never evict a cached expert, and a speculated expert enters the cache,
// without a second read, when it is asked for; the buffers change places with slots, so
// every view must still equal the file's bytes.
TEST_F(CacheFile, SpeculationUsesIdleDiskAndSpareBuffersOnly) {
  for (io::EngineKind k : kinds()) {
    std::unique_ptr<ExpertCache> c = make_for(k, 6, "lru", false, 2);
    if (!c) continue;
    SCOPED_TRACE(c->engine_name());
    ASSERT_TRUE(c->speculates());
    EXPECT_EQ(c->n_slots(), 4);  // the 2 spares come out of the 6
    const int32_t req[2] = {0, 1}, guess[3] = {3, 4, 5};
    io::hold_completions(true);
    c->request(1, req);
    c->speculate(2, guess);
    EXPECT_EQ(c->stats().speculative_issued, 0u);  // the disk is busy with the demand reads
    io::hold_completions(false);
    io::release_held_completions();
    c->wait_idle();
    // Idle now: the two spares take the first two guesses; the third waits for the next
    // list, since a list never overwrites its own guesses.
    ExpertCacheStats s = c->stats();
    EXPECT_EQ(s.speculative_issued, 2u);
    EXPECT_EQ(s.loads, 2u + s.speculative_issued);
    EXPECT_FALSE(c->resident(2, 3));
    EXPECT_TRUE(c->speculated(2, 3) && c->speculated(2, 4));
    EXPECT_FALSE(c->speculated(2, 5));
    while (auto a = c->acquire_any(1)) {
      expect_view(a->view, 1, a->expert);
      c->release(1, a->expert);
    }
    // Fill the cache: (1,0) (1,1) (2,0) (2,1).
    for (int e = 0; e < 2; ++e) {
      expect_view(c->acquire(2, e), 2, e);
      c->release(2, e);
    }
    const int32_t again[2] = {4, 5};
    c->speculate(2, again);  // (2,5) replaces the older guess (2,3)
    c->wait_idle();
    ASSERT_TRUE(c->speculated(2, 4) && c->speculated(2, 5));
    for (int l = 1; l <= 2; ++l)
      for (int e = 0; e < 2; ++e) EXPECT_TRUE(c->resident(l, e)) << "a speculative read evicted " << l << "," << e;
    // Asked for: taken over, not read again, and its bytes are right.
    s = c->stats();
    expect_view(c->acquire(2, 4), 2, 4);
    c->release(2, 4);
    ExpertCacheStats t = c->stats();
    EXPECT_EQ(t.loads, s.loads);
    EXPECT_EQ(t.hits, s.hits + 1);
    EXPECT_EQ(t.speculative_used, s.speculative_used + 1);
    EXPECT_TRUE(c->resident(2, 4));
    EXPECT_FALSE(c->speculated(2, 4));
    EXPECT_FALSE(c->resident(1, 0));  // the LRU victim; its buffer is a spare now
    // The evicted expert's old buffer takes the next guess; the experts in slots keep
    // their bytes.
    const int32_t next[1] = {0};
    c->speculate(1, next);
    c->wait_idle();
    EXPECT_TRUE(c->speculated(1, 0));
    for (const auto& [l, e] : std::vector<std::pair<int, int>>{{1, 1}, {2, 0}, {2, 1}, {2, 4}}) {
      expect_view(c->acquire(l, e), l, e);
      c->release(l, e);
    }
    // A prefetch takes a speculated expert over as well.
    s = c->stats();
    c->prefetch(1, next);
    c->wait_idle();
    t = c->stats();
    if (c->resident(1, 0)) {  // only where the policy offered a cold slot
      EXPECT_EQ(t.prefetch_issued, s.prefetch_issued);
      EXPECT_EQ(t.speculative_used, s.speculative_used + 1);
      EXPECT_EQ(t.loads, s.loads);
      expect_view(c->acquire(1, 0), 1, 0);
      c->release(1, 0);
    }
    // Guesses overwritten without use are counted.
    EXPECT_GE(t.speculative_wasted, 1u);
  }
}

TEST_F(CacheFile, SpeculationIsOffWithoutRoomAndWhenEverythingFits) {
  EXPECT_FALSE(make(5, "lru", false, io::EngineKind::PreadPool, 2)->speculates());  // 3 left < 2 x 2
  EXPECT_EQ(make(5, "lru", false, io::EngineKind::PreadPool, 2)->n_slots(), 5);
  EXPECT_FALSE(make(12, "lru", false, io::EngineKind::PreadPool, 2)->speculates());  // every expert fits
  EXPECT_EQ(make(12, "lru", false, io::EngineKind::PreadPool, 2)->n_slots(), 12);
  EXPECT_TRUE(make(11, "lru", true, io::EngineKind::PreadPool, 2)->speculates());  // per layer: 5 + 4
  EXPECT_FALSE(make(11, "lru", false, io::EngineKind::PreadPool, 0)->speculates());
}

// A failed speculative read is forgotten silently; asking for the expert reads it again.
TEST_F(CacheFile, FailedSpeculativeReadIsReadAgainOnDemand) {
  for (io::EngineKind k : kinds()) {
    std::unique_ptr<ExpertCache> c = make_for(k, 6, "lru", false, 2);
    if (!c) continue;
    SCOPED_TRACE(c->engine_name());
    io::fail_nth_read(1);
    const int32_t guess[1] = {2};
    c->speculate(1, guess);
    c->wait_idle();
    EXPECT_FALSE(c->speculated(1, 2));
    EXPECT_EQ(c->stats().speculative_wasted, 1u);
    expect_view(c->acquire(1, 2), 1, 2);
    c->release(1, 2);
    EXPECT_EQ(c->stats().misses, 1u);
  }
}

// Random use from two threads with speculation, prefetch and demand reads mixed, buffers
// changing places all the time: every view equals the file, and the cache is destroyed
// with reads still in flight.
TEST_F(CacheFile, SpeculationUnderRandomUseKeepsEveryViewExact) {
  for (io::EngineKind k : kinds()) {
    std::unique_ptr<ExpertCache> c = make_for(k, 7, "nextuse", false, 3);
    if (!c) continue;
    SCOPED_TRACE(c->engine_name());
    std::atomic<int> bad{0};
    auto worker = [&](int seed) {
      std::mt19937 rng(seed);
      for (int i = 0; i < 200; ++i) {
        const int layer = 1 + static_cast<int>(rng() % 2);
        const int32_t e = static_cast<int32_t>(rng() % kExperts);
        const int32_t g[2] = {static_cast<int32_t>(rng() % kExperts), static_cast<int32_t>(rng() % kExperts)};
        switch (rng() % 3) {
          case 0: c->speculate(3 - layer, g); break;
          case 1: c->prefetch(3 - layer, {g, 1}); break;
          default: break;
        }
        const ExpertView v = c->acquire(layer, e);
        for (int p = 0; p < 3; ++p) {
          const GgufTensorInfo* t = p == 0 ? tensors_[layer].gate : p == 1 ? tensors_[layer].up : tensors_[layer].down;
          const MatrixRef& m = p == 0 ? v.gate : p == 1 ? v.up : v.down;
          std::vector<uint8_t> want(t->expert_bytes());
          file_->read_at(t->part, t->expert_offset(e), want.data(), want.size());
          if (std::memcmp(m.data, want.data(), want.size()) != 0) bad.fetch_add(1);
        }
        c->release(layer, e);
      }
    };
    std::thread t1(worker, 3), t2(worker, 4);
    t1.join();
    t2.join();
    EXPECT_EQ(bad.load(), 0);
    const ExpertCacheStats s = c->stats();
    EXPECT_GT(s.speculative_issued, 0u);
    EXPECT_GT(s.speculative_used, 0u);
    const int32_t last[3] = {0, 1, 2};
    c->speculate(1, last);  // in flight when the cache goes
  }
}
