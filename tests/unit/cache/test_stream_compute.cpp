// Computing experts as their reads complete (model/ffn.cpp with the SSD-backed
// ExpertCache). Reads are held back by the I/O layer's test hold (io/read_engine.h) and
// released, newest first, only when the forward pass has nothing ready left to compute:
// so within a layer the missing experts arrive strictly after the resident ones were
// computed, and out of order among themselves. The layer outputs (logits) must be
// bit-identical to the resident model's, and the model's counter must show experts that
// were computed while others of their layer were still being read.
//
// Also: acquire_ready hands out exactly the ready experts, and prefetches take only free
// or cold slots.

#include <gtest/gtest.h>

#include "../require.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "cache/expert_cache.h"
#include "cache/residency.h"
#include "io/read_engine.h"
#include "model/expert_prefetch.h"
#include "model/model.h"
#include "model/model_impl.h"
#include "util/error.h"

namespace swapmoe {
namespace {

const std::string kModel = std::string(SWAPMOE_TEST_DATA) + "/../../models/fortunes-moe.gguf";

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

struct HoldGuard {
  HoldGuard() { io::hold_completions(true); }
  ~HoldGuard() {
    io::hold_completions(false);
    io::release_held_completions();
  }
};

std::vector<float> logits_of(Model& m, int32_t tok, int64_t pos) {
  const float* p = m.forward(tok, pos);
  return std::vector<float>(p, p + m.config().n_vocab);
}

// The resident model's logits for every position of one fixed prompt: what the runs under
// a budget must reproduce bit for bit.
struct Reference {
  std::vector<int32_t> toks;
  std::vector<std::vector<float>> want;
};
Reference resident_reference(const ModelOptions& o) {
  auto ref = Model::load(kModel, o);
  Reference r;
  r.toks = ref->tokenizer().encode("Der Computer ist ein guter Freund, aber", true, false);
  for (size_t i = 0; i < r.toks.size(); ++i) r.want.push_back(logits_of(*ref, r.toks[i], static_cast<int64_t>(i)));
  // Resident, a layer's experts are handed out as one group: nothing is computed early.
  if (dynamic_cast<ModelImpl*>(ref.get())->experts_computed_early() != 0) ADD_FAILURE() << "resident: experts computed early";
  return r;
}

// A cache of n_slots over the model's experts, read in 4 KiB chunks (many per expert part) by
// engine k; null when io_uring cannot be set up and the skip is allowed (else a failure).
std::unique_ptr<ExpertCache> make_cache(ModelImpl& impl, io::EngineKind k, int64_t n_slots, int spares = 0) {
  ExpertCacheOptions co;
  co.n_slots = n_slots;
  co.spare_slots = spares;
  co.policy = "nextuse";
  co.engine.kind = k;
  co.engine.chunk_bytes = 4096;
  try {
    return std::make_unique<ExpertCache>(kModel, impl.config(), impl.weights().experts, co);
  } catch (const Error& e) {
    if (k != io::EngineKind::Uring) throw;
    if (!test::skip_allowed("uring", std::string("io_uring cannot be set up here: ") + e.what()))
      ADD_FAILURE() << "io_uring cannot be set up: " << e.what();
    return nullptr;
  }
}

TEST(StreamCompute, LayerOutputBitIdenticalAndExpertsComputedBeforeReadsFinish) {
  ModelOptions o;
  o.n_threads = 2;
  const auto [toks, want] = resident_reference(o);
  ASSERT_GE(toks.size(), 6u);

  for (io::EngineKind k : kinds()) {
    SCOPED_TRACE(io::engine_kind_name(k));
    auto m = Model::load(kModel, o);
    auto* impl = dynamic_cast<ModelImpl*>(m.get());
    ASSERT_NE(impl, nullptr);
    // 6 slots: 4 MoE layers x top-2 = 8 a token, so hits, misses and mixed layers.
    std::unique_ptr<ExpertCache> cache = make_cache(*impl, k, 6);
    if (!cache) continue;
    size_t released = 0;
    cache->set_wait_hook([&] { released += io::release_held_completions(); });
    ExpertCache* c = cache.get();
    impl->set_expert_store(std::move(cache));
    {
      HoldGuard hold;
      for (size_t i = 0; i < toks.size(); ++i) {
        const std::vector<float> got = logits_of(*m, toks[i], static_cast<int64_t>(i));
        ASSERT_EQ(got.size(), want[i].size());
        EXPECT_EQ(std::memcmp(got.data(), want[i].data(), got.size() * sizeof(float)), 0) << "token " << i;
      }
    }
    const ExpertCacheStats s = c->stats();
    EXPECT_GT(s.hits, 0u);
    EXPECT_GT(s.misses, 0u);
    // Every miss's completions were held until the forward pass had to wait for them.
    EXPECT_GE(released, 3 * s.misses);
    // Experts computed while a read of their layer was still held back: compute did not
    // wait for the layer's reads. (Gathering all experts first would leave this at 0.)
    EXPECT_GT(impl->experts_computed_early(), 0u);
  }
}

// The same with next-layer prediction two layers deep (model/expert_prefetch.h): prefetched
// reads are held back too and delivered newest first, so experts of layers l+1 and l+2
// arrive out of order and late, often while the layer that needs them is computing. The
// logits must still be bit-identical to the resident model's, and the cache's queue
// figures must account for the reads.
TEST(StreamCompute, DeepPrefetchKeepsOutputBitIdentical) {
  ModelOptions o;
  o.n_threads = 2;
  const auto [toks, want] = resident_reference(o);

  for (io::EngineKind k : kinds()) {
    SCOPED_TRACE(io::engine_kind_name(k));
    for (int depth : {1, 2, 3}) {
      SCOPED_TRACE(depth);
      auto m = Model::load(kModel, o);
      auto* impl = dynamic_cast<ModelImpl*>(m.get());
      ASSERT_NE(impl, nullptr);
      // 10 slots: room for a layer's 2 pinned experts and guesses of up to 3 layers.
      std::unique_ptr<ExpertCache> cache = make_cache(*impl, k, 10);
      if (!cache) break;
      cache->set_wait_hook([&] { io::release_held_completions(); });
      ExpertCache* c = cache.get();
      impl->set_expert_store(std::move(cache));
      impl->set_prefetch_depth(depth);
      ASSERT_NE(impl->prefetcher(), nullptr);
      EXPECT_EQ(impl->prefetcher()->depth(), depth);
      {
        HoldGuard hold;
        for (size_t i = 0; i < toks.size(); ++i) {
          const std::vector<float> got = logits_of(*m, toks[i], static_cast<int64_t>(i));
          EXPECT_EQ(std::memcmp(got.data(), want[i].data(), got.size() * sizeof(float)), 0) << "token " << i;
        }
      }
      c->wait_idle();
      const ExpertCacheStats s = c->stats();
      EXPECT_GT(s.prefetch_issued, 0u);
      EXPECT_GT(s.prefetch_used, 0u);
      // Reads were in flight for some time, and the mean queue while busy lies between one
      // expert's bytes and everything read.
      EXPECT_GT(s.busy_seconds, 0.0);
      const double mean_queue = s.inflight_byte_seconds / s.busy_seconds;
      EXPECT_GE(mean_queue, static_cast<double>(s.bytes_read) / static_cast<double>(s.loads) * 0.999);
      EXPECT_LE(mean_queue, static_cast<double>(s.bytes_read) * 1.001);
    }
  }
}

// Speculation (cache/expert_cache.h): with spare buffers the prefetcher also guesses the
// layer after its lookahead, and those reads land in spare buffers that change places
// with slots when a guess is asked for. Completions held and delivered newest first; the
// logits must equal the resident model's bit for bit, and guesses must have been read
// and used.
TEST(StreamCompute, SpeculativeReadsKeepOutputBitIdentical) {
  ModelOptions o;
  o.n_threads = 2;
  const auto [toks, want] = resident_reference(o);

  for (io::EngineKind k : kinds()) {
    SCOPED_TRACE(io::engine_kind_name(k));
    for (int depth : {1, 2}) {
      SCOPED_TRACE(depth);
      auto m = Model::load(kModel, o);
      auto* impl = dynamic_cast<ModelImpl*>(m.get());
      ASSERT_NE(impl, nullptr);
      std::unique_ptr<ExpertCache> cache = make_cache(*impl, k, 10, 4);  // 6 slots, 4 spares
      if (!cache) break;
      ASSERT_TRUE(cache->speculates());
      cache->set_wait_hook([&] { io::release_held_completions(); });
      ExpertCache* c = cache.get();
      impl->set_expert_store(std::move(cache));
      impl->set_prefetch_depth(depth);
      {
        HoldGuard hold;
        for (int round = 0; round < 2; ++round) {  // the second round starts from a warm cache
          m->reset();
          for (size_t i = 0; i < toks.size(); ++i) {
            const std::vector<float> got = logits_of(*m, toks[i], static_cast<int64_t>(i));
            EXPECT_EQ(std::memcmp(got.data(), want[i].data(), got.size() * sizeof(float)), 0) << "token " << i;
          }
        }
      }
      c->wait_idle();
      const ExpertCacheStats s = c->stats();
      EXPECT_GT(s.speculative_issued, 0u);
      EXPECT_GT(s.speculative_used, 0u);
      EXPECT_GT(s.speculative_bytes, 0u);
    }
  }
}

// A store that records what it was asked to prefetch, in order.
class PrefetchRecorder final : public ExpertStore {
 public:
  ExpertView acquire(int, int32_t) override { fail("not used"); }
  void prefetch(int layer, std::span<const int32_t> experts) override {
    calls.emplace_back(layer, std::vector<int32_t>(experts.begin(), experts.end()));
  }
  ExpertStoreStats stats_report() const override { return stats; }
  bool speculates() const override { return spec; }
  void speculate(int layer, std::span<const int32_t> experts) override {
    spec_calls.emplace_back(layer, std::vector<int32_t>(experts.begin(), experts.end()));
  }
  std::vector<std::pair<int, std::vector<int32_t>>> calls, spec_calls;
  ExpertStoreStats stats;  // what the store reports (the batched-read gate reads it)
  bool spec = false;       // whether it takes speculative guesses
};

// The demo model (one thread) and fixed residual states for the prediction tests.
class ExpertPrefetch : public ::testing::Test {
 protected:
  void SetUp() override {
    ModelOptions o;
    o.n_threads = 1;
    m = Model::load(kModel, o);
    impl = dynamic_cast<ModelImpl*>(m.get());
    ASSERT_NE(impl, nullptr);
  }
  // `rows` states [rows][n_embd] of one fixed pattern.
  std::vector<float> states(size_t rows) const {
    std::vector<float> x(rows * static_cast<size_t>(m->config().n_embd));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 113) / 50.0f - 1.1f;
    return x;
  }
  std::unique_ptr<Model> m;
  ModelImpl* impl = nullptr;
};

// Depth d predicts layers il+1 .. il+d, nearest first, each with its own norm and router:
// layer il+2's guess from state x equals what a depth-1 prediction at layer il+1 makes from
// the same x, and a depth-d call stops at the last layer.
TEST_F(ExpertPrefetch, DeepPredictionUsesEachLayersRouterNearestFirst) {
  const ModelConfig& cfg = m->config();
  ASSERT_GE(cfg.n_layer, 4);
  const size_t U = static_cast<size_t>(cfg.n_expert_used);
  const std::vector<float> x = states(1);
  const RouterParams rp = router_params(cfg);

  ExpertPrefetcher deep(cfg, impl->weights(), rp, 2);
  PrefetchRecorder rec;
  deep.predict_next(0, x.data(), rec, m->pool());
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_EQ(rec.calls[0].first, 1);
  EXPECT_EQ(rec.calls[1].first, 2);
  for (const auto& c : rec.calls) EXPECT_EQ(c.second.size(), U);

  ExpertPrefetcher one(cfg, impl->weights(), rp, 1);
  PrefetchRecorder r1, r2;
  one.predict_next(0, x.data(), r1, m->pool());
  one.predict_next(1, x.data(), r2, m->pool());
  ASSERT_EQ(r1.calls.size(), 1u);
  ASSERT_EQ(r2.calls.size(), 1u);
  EXPECT_EQ(r1.calls[0], rec.calls[0]);
  EXPECT_EQ(r2.calls[0], rec.calls[1]);
  // The two layers' routers give different guesses for this state (else the check above
  // could not tell the layers apart).
  EXPECT_NE(rec.calls[0].second, rec.calls[1].second);

  const int last = static_cast<int>(cfg.n_layer) - 1;
  PrefetchRecorder tail;
  ExpertPrefetcher three(cfg, impl->weights(), rp, 3);
  three.predict_next(last - 2, x.data(), tail, m->pool());
  ASSERT_EQ(tail.calls.size(), 2u);
  EXPECT_EQ(tail.calls[0].first, last - 1);
  EXPECT_EQ(tail.calls[1].first, last);
  tail.calls.clear();
  three.predict_next(last, x.data(), tail, m->pool());
  EXPECT_TRUE(tail.calls.empty());
}

// A batched decode step guesses from every row and hands the store the union of the rows'
// guesses (each expert once, row 0's first). Once the store reports that fewer than
// kMinUsedShare of a window of prefetch outcomes were used, batched steps stop reading
// guesses (a single-token step still reads its own), and after kProbeAfter batched
// predictions they try again.
TEST_F(ExpertPrefetch, BatchedGuessIsTheRowsUnionAndIsReadOnlyWhileItPays) {
  const ModelConfig& cfg = m->config();
  const auto E = static_cast<size_t>(cfg.n_embd);
  const std::vector<float> x = states(2);
  const RouterParams rp = router_params(cfg);

  ExpertPrefetcher p(cfg, impl->weights(), rp, 1);
  PrefetchRecorder r0, r1, both;
  p.predict_next(0, x.data(), r0, m->pool());
  p.predict_next(0, x.data() + E, r1, m->pool());
  p.predict_next(0, x.data(), 2, both, m->pool());
  ASSERT_EQ(both.calls.size(), 1u);
  ASSERT_EQ(r0.calls.size(), 1u);
  ASSERT_EQ(r1.calls.size(), 1u);
  std::vector<int32_t> want = r0.calls[0].second;
  for (int32_t e : r1.calls[0].second)
    if (std::find(want.begin(), want.end(), e) == want.end()) want.push_back(e);
  EXPECT_EQ(both.calls[0].first, 1);
  EXPECT_EQ(both.calls[0].second, want);
  ASSERT_GT(want.size(), r0.calls[0].second.size()) << "the rows must guess differently for this test";

  ExpertPrefetcher g(cfg, impl->weights(), rp, 1);
  PrefetchRecorder st;
  st.stats.cached = true;
  auto batched = [&] {
    st.calls.clear();
    g.predict_next(0, x.data(), 2, st, m->pool());
    return st.calls.size();
  };
  EXPECT_EQ(batched(), 1u);  // open at first; this look only takes the baseline
  // A window one outcome short of kGateWindow, mostly unused: not judged yet.
  st.stats.cache.prefetch_used += 10;
  st.stats.cache.prefetch_wasted += ExpertPrefetcher::kGateWindow - 11;
  EXPECT_EQ(batched(), 1u);
  st.stats.cache.prefetch_wasted += 1;  // now a full window, 10 of 256 used: close
  EXPECT_EQ(batched(), 0u);
  EXPECT_FALSE(g.batch_reads());
  st.calls.clear();
  g.predict_next(0, x.data(), st, m->pool());  // one token still reads its guess
  EXPECT_EQ(st.calls.size(), 1u);
  int closed = 1;
  while (batched() == 0 && closed < 10 * ExpertPrefetcher::kProbeAfter) ++closed;
  EXPECT_EQ(closed, ExpertPrefetcher::kProbeAfter);  // then it tries again
  EXPECT_TRUE(g.batch_reads());
  // A window where the reads paid (the share used exactly at the bound) keeps it open.
  const auto used = static_cast<uint64_t>(ExpertPrefetcher::kMinUsedShare * ExpertPrefetcher::kGateWindow + 0.5);
  st.stats.cache.prefetch_used += used;
  st.stats.cache.prefetch_wasted += ExpertPrefetcher::kGateWindow - used;
  EXPECT_EQ(batched(), 1u);
  EXPECT_EQ(batched(), 1u);
  // Stats reset by their owner (counters below the baseline): a new baseline, no judgement.
  st.stats.cache = {};
  EXPECT_EQ(batched(), 1u);
  EXPECT_TRUE(g.batch_reads());
}

// Caches over the demo model's expert tensors (4 MoE layers of 32 experts, top-2).
class ReadyFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ModelOptions o;
    o.n_threads = 1;
    model_ = Model::load(kModel, o).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  static std::unique_ptr<ExpertCache> make(int64_t slots) {
    auto* impl = dynamic_cast<ModelImpl*>(model_);
    ExpertCacheOptions co;
    co.n_slots = slots;
    co.policy = "lru";
    co.engine.kind = io::EngineKind::PreadPool;
    return std::make_unique<ExpertCache>(kModel, model_->config(), impl->weights().experts, co);
  }
  static Model* model_;
};
Model* ReadyFile::model_ = nullptr;

TEST_F(ReadyFile, AcquireReadyHandsOutExactlyTheReadyOnesInRequestOrder) {
  auto c = make(6);
  c->acquire(0, 3);  // resident and ready
  c->release(0, 3);
  c->acquire(0, 9);
  c->release(0, 9);
  HoldGuard hold;
  const int32_t ids[4] = {7, 9, 1, 3};  // 7 and 1 must be read (held back)
  c->request(0, ids);
  std::vector<AcquiredExpert> got;
  ASSERT_EQ(c->acquire_ready(0, got), 2u);  // nothing of 7 or 1 was delivered yet
  EXPECT_EQ(got[0].expert, 9);
  EXPECT_EQ(got[1].expert, 3);
  size_t released = 0;
  c->set_wait_hook([&] { released += io::release_held_completions(); });
  std::vector<AcquiredExpert> rest;
  while (c->acquire_ready(0, rest) > 0) {
  }
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_GT(released, 0u);
  for (const AcquiredExpert& a : got) c->release(0, a.expert);
  for (const AcquiredExpert& a : rest) {
    EXPECT_TRUE(a.expert == 7 || a.expert == 1);
    c->release(0, a.expert);
  }
  EXPECT_EQ(c->acquire_ready(0, rest), 0u);
}

TEST_F(ReadyFile, PrefetchTakesOnlyFreeOrColdSlots) {
  auto c = make(4);
  // Token 1 at layer 0 uses 0 and 1; layer 1 uses 2 and 3: every slot is warm (used by
  // the latest visit of its layer).
  auto step = [&](int layer, std::vector<int32_t> ids) {
    c->request(layer, ids);
    std::vector<AcquiredExpert> got;
    while (c->acquire_ready(layer, got) > 0) {
    }
    for (const AcquiredExpert& a : got) c->release(layer, a.expert);
  };
  step(0, {0, 1});
  step(1, {2, 3});
  const int32_t guess[2] = {4, 5};
  c->prefetch(1, guess);  // no free slot, nothing cold: both dropped
  EXPECT_EQ(c->stats().prefetch_dropped, 2u);
  EXPECT_TRUE(c->resident(0, 0) && c->resident(0, 1) && c->resident(1, 2) && c->resident(1, 3));
  // Token 2 at layer 0 uses 0 and 6: 1 is now cold (its layer's latest visit did not use it).
  step(0, {0, 6});  // 6 evicts 1 (lru: the least recent unpinned slot)
  step(0, {0, 1});  // 1 evicts 2; a third visit of layer 0: 6 is cold now, 0 and 1 warm
  c->wait_idle();
  c->prefetch(1, guess);  // may take only 6's slot
  c->wait_idle();
  const ExpertCacheStats s = c->stats();
  EXPECT_EQ(s.prefetch_issued, 1u);
  EXPECT_EQ(s.prefetch_dropped, 3u);
  EXPECT_FALSE(c->resident(0, 6));
  EXPECT_TRUE(c->resident(0, 0) && c->resident(0, 1) && c->resident(1, 3) && c->resident(1, 4));
}

// With a store that speculates, the prefetcher also guesses the layer after its lookahead
// (the same guess a deeper prefetch would read) and hands it to speculate(); while batched
// reads are off it speculates on the next layer itself, with the rows' union. Nothing after
// the last layer.
TEST_F(ExpertPrefetch, SpeculationGuessesBeyondTheLookaheadOrTheNextLayerWhileBatchedReadsAreOff) {
  const ModelConfig& cfg = m->config();
  ASSERT_GE(cfg.n_layer, 4);
  const std::vector<float> x = states(2);
  const RouterParams rp = router_params(cfg);

  ExpertPrefetcher deep(cfg, impl->weights(), rp, 3);
  PrefetchRecorder far;  // layers 1, 2, 3 from the same state
  deep.predict_next(0, x.data(), far, m->pool());
  ASSERT_EQ(far.calls.size(), 3u);
  for (int depth : {1, 2}) {
    SCOPED_TRACE(depth);
    ExpertPrefetcher p(cfg, impl->weights(), rp, depth);
    PrefetchRecorder rec;
    rec.spec = true;
    p.predict_next(0, x.data(), rec, m->pool());
    ASSERT_EQ(rec.calls.size(), static_cast<size_t>(depth));
    ASSERT_EQ(rec.spec_calls.size(), 1u);
    EXPECT_EQ(rec.spec_calls[0], far.calls[static_cast<size_t>(depth)]);  // layer depth + 1
    PrefetchRecorder plain;  // a store that does not speculate gets no call
    p.predict_next(0, x.data(), plain, m->pool());
    EXPECT_TRUE(plain.spec_calls.empty());
  }
  ExpertPrefetcher p(cfg, impl->weights(), rp, 1);
  PrefetchRecorder tail;
  tail.spec = true;
  p.predict_next(static_cast<int>(cfg.n_layer) - 2, x.data(), tail, m->pool());
  EXPECT_EQ(tail.calls.size(), 1u);
  EXPECT_TRUE(tail.spec_calls.empty());

  // Batched, gate open: the union two layers ahead; gate closed: the union of the next layer.
  PrefetchRecorder union1;
  p.predict_next(0, x.data(), 2, union1, m->pool());  // the rows' union for layer 1
  ASSERT_EQ(union1.calls.size(), 1u);
  ExpertPrefetcher g(cfg, impl->weights(), rp, 1);
  PrefetchRecorder st;
  st.spec = true;
  st.stats.cached = true;
  g.predict_next(0, x.data(), 2, st, m->pool());
  ASSERT_EQ(st.spec_calls.size(), 1u);
  EXPECT_EQ(st.spec_calls[0].first, 2);
  st.stats.cache.prefetch_wasted += ExpertPrefetcher::kGateWindow;  // nothing used: close
  g.predict_next(0, x.data(), 2, st, m->pool());
  ASSERT_FALSE(g.batch_reads());
  st.calls.clear();
  st.spec_calls.clear();
  g.predict_next(0, x.data(), 2, st, m->pool());
  EXPECT_TRUE(st.calls.empty());
  ASSERT_EQ(st.spec_calls.size(), 1u);
  EXPECT_EQ(st.spec_calls[0], union1.calls[0]);
}

}  // namespace
}  // namespace swapmoe
