// SwapMoeStore on forged tiny models (qwen3moe: softmax top-2 of 8; deepseek2: sigmoid +
// bias, shared expert, a dense leading layer):
//   (a) a budget that holds every expert gives exactly the exact-mode logits;
//   (b) instrumented: no expert is ever computed while it is not resident (masked);
//   (c) pure mode: no synchronous read and no stall after start-up, while swaps happen;
//   (d) τ = 0 gives exactly the exact-mode logits under a tight budget;
//   route() = select_experts with the store's eligibility mask; refusal with numbers;
//   profile recording, save/load and profile-driven slot shares and initial sets.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "cache/swapmoe_profile.h"
#include "cache/swapmoe_store.h"
#include "runtime/model_budget.h"
#include "model/model_impl.h"
#include "../model/tiny_model.h"
#include "util/error.h"

namespace swapmoe {
namespace {

using test::temp_path;
using test::tiny_config;
using test::write_tiny_model;

struct Forged {
  std::string path;
  // deepseek2: sigmoid + selection bias + 4 groups of 2 experts, 2 groups used (so that
  // masking meets groups with one and with no resident expert); F32 because its MLA
  // widths are not multiples of 32.
  explicit Forged(Arch arch, const std::string& stem) {
    path = temp_path("swapmoe_" + stem);
    test::TinyOptions o;
    o.matrix_type = arch == Arch::Deepseek2 ? GgmlType::F32 : GgmlType::Q8_0;
    ModelConfig c = tiny_config(arch);
    if (arch == Arch::Deepseek2) {
      c.n_expert_groups = 4;
      c.n_expert_groups_used = 2;
    }
    write_tiny_model(path, c, o);
  }
  ~Forged() { std::remove(path.c_str()); }
};

std::unique_ptr<Model> load_plain(const std::string& path) {
  ModelOptions o;
  o.n_threads = 1;
  o.prefetch = false;
  return Model::load(path, o);
}

ModelImpl& impl(Model& m) { return dynamic_cast<ModelImpl&>(m); }

// Replaces the model's store by a SwapMoeStore; returns it (owned by the model or `wrap`).
SwapMoeStore* install(Model& m, SwapMoeOptions so) {
  so.open_mode = io::OpenMode::Buffered;  // tmpfs/overlay test dirs
  ModelImpl& mi = impl(m);
  auto s = std::make_unique<SwapMoeStore>(mi.file().path(), mi.config(), mi.weights().experts, so);
  SwapMoeStore* raw = s.get();
  mi.set_expert_store(std::move(s));
  return raw;
}

// A fixed pseudo-random token stream.
std::vector<int32_t> tokens(int n, int64_t vocab, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

std::vector<std::vector<float>> run(Model& m, const std::vector<int32_t>& toks) {
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < toks.size(); ++i) {
    const float* l = m.forward(toks[i], static_cast<int64_t>(i));
    out.emplace_back(l, l + m.config().n_vocab);
  }
  return out;
}

void expect_bitwise(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(0, std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float))) << "position " << i;
}

int64_t n_moe(const ModelConfig& c) { return c.n_moe_layers(); }

class SwapMoeArch : public ::testing::TestWithParam<Arch> {};

// (a) Every expert fits: swapmoe output = exact output, bit for bit (through Model::load
// with --mem and --policy swapmoe, the CLI's path).
TEST_P(SwapMoeArch, BudgetHoldingEveryExpertIsExact) {
  Forged f(GetParam(), "all");
  const auto toks = tokens(40, 258);
  auto ref = load_plain(f.path);
  const auto want = run(*ref, toks);
  ModelOptions o;
  o.n_threads = 1;
  o.prefetch = false;
  o.mem_budget = 512ull << 20;
  o.policy = "swapmoe";
  o.io_engine = "pread";
  auto m = Model::load(f.path, o);
  auto* s = dynamic_cast<SwapMoeStore*>(&impl(*m).experts());
  ASSERT_NE(s, nullptr);
  const auto got = run(*m, toks);
  expect_bitwise(want, got);
  const SwapMoeStats st = s->stats();
  EXPECT_EQ(st.masked, 0u);
  EXPECT_EQ(st.hits, st.chosen);
  EXPECT_EQ(st.chosen, static_cast<uint64_t>(40 * n_moe(m->config()) * m->config().n_expert_used));
}

// (d) τ = 0 under a tight budget (n_used + 1 slots per layer, swaps on): exact.
TEST_P(SwapMoeArch, ExactnessZeroIsExact) {
  Forged f(GetParam(), "tau0");
  const auto toks = tokens(48, 258, 11);
  auto ref = load_plain(f.path);
  const auto want = run(*ref, toks);
  auto m = load_plain(f.path);
  SwapMoeOptions so;
  so.n_slots = n_moe(m->config()) * (m->config().n_expert_used + 1);
  so.exactness = 0.0;
  so.swap_rate = 2.0;
  SwapMoeStore* s = install(*m, so);
  const auto got = run(*m, toks);
  expect_bitwise(want, got);
  const SwapMoeStats st = s->stats();
  EXPECT_EQ(st.masked + st.sync_no_slot, 0u);
  EXPECT_GT(st.sync_loads, 0u);  // the budget really was tight
  EXPECT_EQ(st.hits + st.sync_loads, st.chosen);
}

// τ = 0 through forward_batch (a prompt): still exact. The batched path would route the
// whole chunk first and find no slot for a synchronous read, so the store asks for token-
// by-token evaluation (ExpertStore::batch_routing).
TEST_P(SwapMoeArch, ExactnessZeroIsExactForABatchedPrompt) {
  Forged f(GetParam(), "tau0b");
  const auto toks = tokens(48, 258, 13);
  auto ref = load_plain(f.path);
  const float* l = ref->forward_batch(toks, 0);
  const std::vector<float> want(l, l + ref->config().n_vocab);
  auto m = load_plain(f.path);
  SwapMoeOptions so;
  so.n_slots = n_moe(m->config()) * (m->config().n_expert_used + 1);
  so.exactness = 0.0;
  SwapMoeStore* s = install(*m, so);
  EXPECT_FALSE(s->batch_routing());
  l = m->forward_batch(toks, 0);
  ASSERT_EQ(0, std::memcmp(want.data(), l, want.size() * sizeof(float)));
  const SwapMoeStats st = s->stats();
  EXPECT_EQ(st.masked + st.sync_no_slot, 0u);
  EXPECT_GT(st.sync_loads, 0u);
  so.exactness = 1.0;
  EXPECT_TRUE(install(*m, so)->batch_routing());
}

// An ExpertStore decorator that checks that what route() returns, and each expert at
// acquire, is resident in the SwapMoeStore (so a masked expert is never computed).
class Checker final : public ExpertStore {
 public:
  explicit Checker(std::unique_ptr<SwapMoeStore> s) : s_(std::move(s)) {}
  void route(int l, const RouterParams& p, const float* logits, int32_t* ids, float* w) override {
    // route() itself throws if it hands out an expert that is not eligible under its lock
    // (a staged swap may retire a chosen expert right after route() returns; it then stays
    // resident until released, which is what is checked here and at acquire).
    s_->route(l, p, logits, ids, w);
    for (int64_t j = 0; j < p.n_used; ++j)
      if (!s_->resident(l, ids[j])) ++bad_routes;
  }
  ExpertView acquire(int l, int32_t e) override {
    // Eligible when routed (checked in route()); here its bytes must still be in a slot.
    if (!s_->resident(l, e)) ++computed_masked;
    computed.insert({l, e});
    ++n_acquired;
    return s_->acquire(l, e);
  }
  void release(int l, int32_t e) override { s_->release(l, e); }
  SwapMoeStore& store() { return *s_; }
  int bad_routes = 0, computed_masked = 0, n_acquired = 0;
  std::set<std::pair<int, int32_t>> computed;

 private:
  std::unique_ptr<SwapMoeStore> s_;
};

// (b) and (c): pure SwapMoE under a tight budget with frequent swaps.
TEST_P(SwapMoeArch, PureModeNeverComputesMaskedExpertsAndNeverWaits) {
  Forged f(GetParam(), "pure");
  auto m = load_plain(f.path);
  ModelImpl& mi = impl(*m);
  const ModelConfig& c = m->config();
  SwapMoeOptions so;
  so.n_slots = n_moe(c) * (c.n_expert_used + 2);
  so.exactness = 1.0;
  so.swap_rate = 4.0;
  so.decay = 0.8;  // a short window, so that importance moves and swaps happen
  so.open_mode = io::OpenMode::Buffered;
  auto chk = std::make_unique<Checker>(std::make_unique<SwapMoeStore>(f.path, c, mi.weights().experts, so));
  Checker* k = chk.get();
  mi.set_expert_store(std::move(chk));
  const SwapMoeStats start = k->store().stats();
  EXPECT_GT(start.startup_bytes, 0u);
  const auto toks = tokens(160, 258, 3);
  for (size_t i = 0; i < toks.size(); ++i) {
    const float* l = m->forward(toks[i], static_cast<int64_t>(i));
    for (int64_t v = 0; v < c.n_vocab; ++v) ASSERT_TRUE(std::isfinite(l[v]));
    // The first 96 tokens let each token's swaps finish before the next token (as on a
    // slow decode), so that which experts get swapped in is deterministic; the rest run
    // with reads completing whenever they do, concurrently with decoding.
    if (i < 96) k->store().wait_idle();
  }
  k->store().wait_idle();
  const SwapMoeStats st = k->store().stats();
  EXPECT_EQ(k->bad_routes, 0);
  EXPECT_EQ(k->computed_masked, 0);
  EXPECT_EQ(k->n_acquired, static_cast<int>(toks.size() * n_moe(c) * c.n_expert_used));
  EXPECT_GT(st.swaps_done, 0u);     // the sets did change
  EXPECT_GT(st.masked, 0u);         // and routing was restricted
  EXPECT_EQ(st.sync_loads, 0u);     // (c) no synchronous read after start-up
  EXPECT_EQ(st.sync_bytes, 0u);
  EXPECT_EQ(st.acquire_misses, 0u);
  EXPECT_EQ(st.stall_seconds, 0.0); // never waited on I/O
  EXPECT_EQ(st.tokens, toks.size());
  // The swap budget: at most swap_rate loads per token (plus the initial allowance).
  EXPECT_LE(static_cast<double>(st.swaps_started), 4.0 * static_cast<double>(toks.size()) + 4.0);
  // More experts were computed over the run than fit at once: the resident set moved.
  EXPECT_GT(k->computed.size(), static_cast<size_t>(n_moe(c) * (c.n_expert_used + 2)));
}

// Issue 15, item 12: pure mode's output is a function of the token stream. A swap started at
// token t takes effect at token t + swap_delay whether its read finished long before (here:
// wait_idle() after every token) or is still running (no waiting at all, reads racing the
// decode), and reset_stats() in the middle does not move the schedule. Before the fix swaps
// took effect when their reads completed, and these runs differed.
TEST_P(SwapMoeArch, PureModeOutputDoesNotDependOnReadTiming) {
  Forged f(GetParam(), "timing");
  const auto toks = tokens(120, 258, 11);
  auto pass = [&](int mode, SwapMoeStats* stats) {
    auto m = load_plain(f.path);
    const ModelConfig& c = m->config();
    SwapMoeOptions so;
    so.n_slots = n_moe(c) * (c.n_expert_used + 2);
    so.exactness = 1.0;
    so.swap_rate = 4.0;
    so.decay = 0.8;
    SwapMoeStore* s = install(*m, so);
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < toks.size(); ++i) {
      const float* l = m->forward(toks[i], static_cast<int64_t>(i));
      out.emplace_back(l, l + c.n_vocab);
      if (mode == 0) s->wait_idle();       // every read done before the next token
      if (mode == 2 && i == 40) s->reset_stats();
    }
    s->wait_idle();
    *stats = s->stats();
    return out;
  };
  SwapMoeStats early, racing, reset;
  const auto a = pass(0, &early);
  const auto b = pass(1, &racing);
  const auto r = pass(2, &reset);
  EXPECT_GT(early.swaps_done, 0u);
  EXPECT_EQ(early.swaps_done, racing.swaps_done);
  EXPECT_EQ(early.swap_waits, 0u);  // reads that finished early never make decoding wait
  expect_bitwise(a, b);
  expect_bitwise(a, r);
}

INSTANTIATE_TEST_SUITE_P(Archs, SwapMoeArch, ::testing::Values(Arch::Qwen3Moe, Arch::Deepseek2, Arch::Glm4Moe),
                         [](const ::testing::TestParamInfo<Arch>& i) { return std::string(arch_name(i.param)); });

TEST(SwapMoeStore, RouteIsSelectExpertsWithTheResidentMask) {
  Forged f(Arch::Qwen3Moe, "route");
  auto m = load_plain(f.path);
  const ModelConfig& c = m->config();
  SwapMoeOptions so;
  so.n_slots = n_moe(c) * 3;
  so.swap_rate = 0.0;  // the sets stay put: experts 0, 1, 2 of each layer
  SwapMoeStore* s = install(*m, so);
  const RouterParams p = router_params(c);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(c.n_expert));
  const std::vector<uint8_t> mask = {1, 1, 1, 0, 0, 0, 0, 0};
  for (int t = 0; t < 50; ++t) {
    for (float& x : logits) x = nd(rng);
    int32_t ids[2], want_ids[2];
    float w[2], want_w[2];
    s->route(0, p, logits.data(), ids, w);
    select_experts(p, logits.data(), want_ids, want_w, mask.data());
    for (int j = 0; j < 2; ++j) {
      EXPECT_EQ(ids[j], want_ids[j]);
      EXPECT_EQ(w[j], want_w[j]);
    }
  }
  EXPECT_EQ(s->layer_slots()[0], 3);
}

TEST(SwapMoeStore, RefusesFewerThanNUsedSlotsPerLayer) {
  Forged f(Arch::Qwen3Moe, "refuse");
  auto m = load_plain(f.path);
  SwapMoeOptions so;
  so.n_slots = 3;  // 2 layers x 2 needed
  so.open_mode = io::OpenMode::Buffered;
  ModelImpl& mi = impl(*m);
  try {
    SwapMoeStore s(f.path, mi.config(), mi.weights().experts, so);
    FAIL() << "accepted 3 slots";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("room for 3 expert slots"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("needs 2 resident experts (4 slots"), std::string::npos) << e.what();
  }
}

TEST(SwapMoeStore, ProfileRoundTripAndAllocation) {
  Forged f(Arch::Qwen3Moe, "profile");
  auto m = load_plain(f.path);
  ModelImpl& mi = impl(*m);
  const ModelConfig& c = m->config();
  // Record a profile through the recorder around a resident store.
  auto rec = std::make_unique<RoutingRecorder>(make_expert_store(mi.file(), c, mi.weights().experts, ModelOptions{}, nullptr), c);
  RoutingRecorder* r = rec.get();
  mi.set_expert_store(std::move(rec));
  const auto toks = tokens(30, 258, 9);
  for (size_t i = 0; i < toks.size(); ++i) m->forward(toks[i], static_cast<int64_t>(i));
  RoutingProfile prof = r->profile();
  ASSERT_EQ(prof.layers.size(), 2u);
  EXPECT_EQ(prof.tokens, 30u);
  for (const LayerProfile& L : prof.layers) {
    uint64_t n = 0;
    double mass = 0;
    for (uint64_t x : L.counts) n += x;
    for (double x : L.mass) mass += x;
    EXPECT_EQ(n, 30u * 2u);
    EXPECT_NEAR(mass, 30.0, 1e-3);  // softmax: one unit of mass per token
    double chosen = 0;
    for (double x : L.chosen_mass) chosen += x;
    EXPECT_GT(chosen, 30.0 * 2.0 / 8.0);  // the top-2 of 8 hold more than their share
    EXPECT_LT(chosen, mass);
    EXPECT_GT(L.entropy(), 0.0);
    EXPECT_LE(L.entropy(), std::log(8.0) + 1e-9);
  }
  const std::string path = temp_path("profile") + ".json";
  prof.save(path);
  const RoutingProfile back = RoutingProfile::load(path);
  std::remove(path.c_str());
  ASSERT_EQ(back.layers.size(), 2u);
  EXPECT_EQ(back.layers[1].counts, prof.layers[1].counts);
  EXPECT_EQ(back.layers[1].mass, prof.layers[1].mass);
  EXPECT_EQ(back.layers[1].chosen_mass, prof.layers[1].chosen_mass);

  // Make layer 0 concentrated (one expert holds all mass) and layer 1 flat: layer 1 must
  // get the larger share, and layer 0's first resident expert must be its heavy one.
  RoutingProfile skew = back;
  skew.layers[0].chosen_mass.assign(8, 0.0);
  skew.layers[0].chosen_mass[5] = 30.0;
  skew.layers[1].chosen_mass.assign(8, 30.0 / 8);
  SwapMoeOptions so;
  so.n_slots = 10;
  so.swap_rate = 0.0;
  so.profile = &skew;
  SwapMoeStore* s = install(*m, so);
  const auto share = s->layer_slots();
  EXPECT_EQ(share[0], 2);  // n_used minimum (cover90 = 1)
  EXPECT_EQ(share[1], 8);  // flat: cover90 = 8, gets the rest
  EXPECT_TRUE(s->eligible(0, 5));
  const auto imp = s->importance(0);
  EXPECT_NEAR(imp[5], 1.0 / (1.0 - 0.95), 1e-9);  // seeded with the steady state

  // A profile of another shape is refused.
  RoutingProfile wrong = back;
  wrong.n_expert = 16;
  so.profile = &wrong;
  EXPECT_THROW(install(*m, so), Error);
  EXPECT_THROW(RoutingProfile::from_json(nlohmann::json::parse(R"({"format":"x"})"), "p.json"), Error);
}

TEST(SwapMoeStore, StatsLine) {
  SwapMoeStats s;
  s.chosen = 100;
  s.hits = 80;
  s.masked = 15;
  s.sync_loads = 5;
  s.swaps_done = 3;
  s.swap_bytes = 3 * 1024;
  const std::string line = format_swapmoe_stats(s, 10);
  EXPECT_NE(line.find("resident 80.0% of chosen"), std::string::npos) << line;
  EXPECT_NE(line.find("masked 15.0% (15)"), std::string::npos) << line;
  EXPECT_NE(line.find("sync loads 5.0% (5)"), std::string::npos) << line;
  EXPECT_NE(line.find("swaps 3 (307 B/token)"), std::string::npos) << line;
  EXPECT_NE(line.find("stall 0.00 ms/token"), std::string::npos) << line;
}

}  // namespace
}  // namespace swapmoe
