// acquire_experts (model/model_budget.h): views come back in selection order whatever
// order a streaming store delivers them in, and on an error everything acquired is
// released.

#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "model/model_budget.h"
#include "util/error.h"

namespace swapmoe {
namespace {

// Hands out the requested experts in reverse order; each view's gate.rows carries the
// expert id so the test can tell them apart. fail_at: the nth acquire_any throws.
class ReverseStore final : public StreamingExpertStore {
 public:
  int fail_at = -1;
  std::map<int32_t, int> pins;
  void request(int, std::span<const int32_t> ids) override { pending_.assign(ids.begin(), ids.end()); }
  ExpertView acquire(int, int32_t e) override {
    ++pins[e];
    return view(e);
  }
  std::optional<AcquiredExpert> acquire_any(int) override {
    if (pending_.empty()) return std::nullopt;
    if (n_++ == fail_at) fail("injected read error");
    const int32_t e = pending_.back();
    pending_.pop_back();
    ++pins[e];
    return AcquiredExpert{e, view(e)};
  }
  void release(int, int32_t e) override { --pins[e]; }

 private:
  static ExpertView view(int32_t e) {
    ExpertView v;
    v.gate.rows = e;
    return v;
  }
  std::vector<int32_t> pending_;
  int n_ = 0;
};

TEST(AcquireExperts, SelectionOrderWhateverArrivalOrder) {
  ReverseStore s;
  const std::vector<int32_t> ids = {5, 1, 7, 3};
  s.request(0, ids);
  std::vector<ExpertView> views;
  acquire_experts(s, 0, ids, views);
  ASSERT_EQ(views.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(views[i].gate.rows, ids[i]) << i;
  for (int32_t e : ids) EXPECT_EQ(s.pins[e], 1) << e;
}

TEST(AcquireExperts, ReleasesEverythingOnError) {
  ReverseStore s;
  s.fail_at = 2;
  const std::vector<int32_t> ids = {5, 1, 7, 3};
  s.request(0, ids);
  std::vector<ExpertView> views;
  EXPECT_THROW(acquire_experts(s, 0, ids, views), Error);
  for (const auto& [e, n] : s.pins) EXPECT_EQ(n, 0) << e;
}

}  // namespace
}  // namespace swapmoe
