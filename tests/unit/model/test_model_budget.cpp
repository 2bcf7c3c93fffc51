// The MoE block (model/moe.cpp) computes experts as the store hands them out: whatever the
// order and grouping of arrival, a token's logits are bitwise those of the resident store
// (the weighted sum runs in selection order), and on an error everything acquired is
// released.

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "expert/expert_store.h"
#include "model/model.h"
#include "tiny_model.h"
#include "util/error.h"

namespace swapmoe {
namespace {

// Wraps a store and hands out the pending experts one at a time, the last requested
// first. fail_at: the nth acquire_ready throws.
class ReverseStore final : public ExpertStore {
 public:
  explicit ReverseStore(std::unique_ptr<ExpertStore> inner) : inner_(std::move(inner)) {}
  int fail_at = -1;
  std::map<int32_t, int> pins;
  int64_t capacity() const override { return inner_->capacity(); }
  ExpertView acquire(int l, int32_t e) override {
    ++pins[e];
    return inner_->acquire(l, e);
  }
  size_t acquire_ready(int l, std::span<const int32_t> pending, std::vector<AcquiredExpert>& out) override {
    if (n_++ == fail_at) fail("injected read error");
    const int32_t e = pending.back();
    out.push_back({e, acquire(l, e)});
    return 1;
  }
  void release(int l, int32_t e) override {
    --pins[e];
    inner_->release(l, e);
  }

 private:
  std::unique_ptr<ExpertStore> inner_;
  int n_ = 0;
};

struct Forged {
  std::string path;
  explicit Forged(Arch a) : path(test::temp_path(std::string("reverse_") + arch_name(a))) {
    test::TinyOptions o;
    o.seed = 5;
    test::write_tiny_model(path, test::tiny_config(a), o);
  }
  ~Forged() { std::remove(path.c_str()); }
};

ModelOptions one_thread() {
  ModelOptions o;
  o.n_threads = 1;
  o.n_ctx = 64;
  return o;
}

TEST(StreamedExperts, AnyArrivalOrderGivesTheResidentLogits) {
  for (Arch a : {Arch::Qwen3Moe, Arch::Qwen2Moe, Arch::Deepseek2, Arch::Glm4Moe}) {
    Forged f(a);
    auto want = Model::load(f.path, one_thread());
    auto got = Model::load(f.path, one_thread());
    ReverseStore* rs = nullptr;
    got->wrap_experts([&](std::unique_ptr<ExpertStore> inner) {
      auto s = std::make_unique<ReverseStore>(std::move(inner));
      rs = s.get();
      return s;
    });
    const std::vector<int32_t> prompt = {10, 200, 33, 47, 5, 99};
    const int64_t V = want->config().n_vocab;
    const float* lw = want->forward_batch(prompt, 0);
    const std::vector<float> w0(lw, lw + V);
    const float* lg = got->forward_batch(prompt, 0);
    for (int64_t i = 0; i < V; ++i) ASSERT_EQ(lg[i], w0[i]) << arch_name(a) << " prompt, logit " << i;
    for (int64_t pos = 6; pos < 10; ++pos) {
      lw = want->forward(static_cast<int32_t>(pos * 7), pos);
      const std::vector<float> w1(lw, lw + V);
      lg = got->forward(static_cast<int32_t>(pos * 7), pos);
      for (int64_t i = 0; i < V; ++i) ASSERT_EQ(lg[i], w1[i]) << arch_name(a) << " position " << pos << ", logit " << i;
    }
    for (const auto& [e, n] : rs->pins) EXPECT_EQ(n, 0) << e;
  }
}

TEST(StreamedExperts, ReleasesEverythingOnError) {
  Forged f(Arch::Qwen3Moe);
  auto m = Model::load(f.path, one_thread());
  ReverseStore* rs = nullptr;
  m->wrap_experts([&](std::unique_ptr<ExpertStore> inner) {
    auto s = std::make_unique<ReverseStore>(std::move(inner));
    s->fail_at = 1;
    rs = s.get();
    return s;
  });
  EXPECT_THROW(m->forward(3, 0), Error);
  ASSERT_FALSE(rs->pins.empty());
  for (const auto& [e, n] : rs->pins) EXPECT_EQ(n, 0) << e;
}

}  // namespace
}  // namespace swapmoe
