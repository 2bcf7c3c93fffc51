// Model loading and the forward pass: binding errors, determinism, thread-count
// independence, and agreement with the naive reference (reference_model.cpp) for every
// standard-attention architecture.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "expert/expert_store_resident.h"
#include "model/model_impl.h"
#include "reference_model.h"
#include "tiny_model.h"
#include "util/error.h"

namespace swapmoe {
namespace {

using test::temp_path;
using test::tiny_config;
using test::TinyOptions;
using test::write_tiny_model;

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& stem) : path(temp_path(stem)) {}
  ~TempFile() { std::remove(path.c_str()); }
};

// Thread count and context; every expert resident.
ModelOptions opts(int threads, int64_t ctx = 0) {
  ModelOptions o;
  o.n_threads = threads;
  o.n_ctx = ctx;
  return o;
}
ModelOptions one_thread() { return opts(1); }

std::string load_error(const std::string& path) {
  try {
    Model::load(path, one_thread());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<float> run(Model& m, const std::vector<int32_t>& toks) {
  m.reset();
  std::vector<float> all;
  for (size_t i = 0; i < toks.size(); ++i) {
    const float* l = m.forward(toks[i], static_cast<int64_t>(i));
    all.insert(all.end(), l, l + m.config().n_vocab);
  }
  return all;
}

const std::vector<int32_t> kTokens = {72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100};

TEST(ModelLoad, WrongShapeNamesTensorAndBothShapes) {
  TempFile f("wrongshape");
  TinyOptions o;
  o.edit = [](std::string& name, std::vector<int64_t>& ne, GgmlType&) {
    if (name == "blk.1.attn_q.weight") ne[1] = 32;
  };
  write_tiny_model(f.path, tiny_config(Arch::Qwen3Moe), o);
  const std::string e = load_error(f.path);
  EXPECT_NE(e.find("blk.1.attn_q.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[64, 64]"), std::string::npos) << e;
  EXPECT_NE(e.find("[64, 32]"), std::string::npos) << e;
}

TEST(ModelLoad, MissingTensor) {
  TempFile f("missing");
  TinyOptions o;
  o.edit = [](std::string& name, std::vector<int64_t>&, GgmlType&) {
    if (name == "blk.0.ffn_up_exps.weight") name.clear();
  };
  write_tiny_model(f.path, tiny_config(Arch::Qwen3Moe), o);
  const std::string e = load_error(f.path);
  EXPECT_NE(e.find("missing tensor blk.0.ffn_up_exps.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[64, 32, 8]"), std::string::npos) << e;
}

TEST(ModelLoad, NormMustBeFloat) {
  TempFile f("normtype");
  TinyOptions o;
  o.edit = [](std::string& name, std::vector<int64_t>&, GgmlType& t) {
    if (name == "blk.0.attn_norm.weight") t = GgmlType::Q8_0;
  };
  write_tiny_model(f.path, tiny_config(Arch::Qwen3Moe), o);
  const std::string e = load_error(f.path);
  EXPECT_NE(e.find("blk.0.attn_norm.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("Q8_0"), std::string::npos) << e;
}

TEST(ModelLoad, UnsupportedArchitecture) {
  TempFile f("arch");
  {
    GgufWriter w;
    w.set_str("general.architecture", "gpt2");
    w.begin(f.path);
    w.finish();
  }
  const std::string e = load_error(f.path);
  EXPECT_NE(e.find("unsupported architecture 'gpt2'"), std::string::npos) << e;
}

TEST(ModelLoad, ExtraTensorIsIgnored) {
  TempFile f("extra");
  TinyOptions o;
  o.add_extra = true;
  write_tiny_model(f.path, tiny_config(Arch::Llama), o);
  EXPECT_NO_THROW(Model::load(f.path, one_thread()));
}

TEST(ModelForward, DeterministicAndResettable) {
  TempFile f("det");
  write_tiny_model(f.path, tiny_config(Arch::Qwen3Moe), TinyOptions{});
  auto a = Model::load(f.path, one_thread());
  auto b = Model::load(f.path, one_thread());
  const std::vector<float> la = run(*a, kTokens);
  EXPECT_EQ(la, run(*b, kTokens));
  EXPECT_EQ(la, run(*a, kTokens));  // after reset
}

TEST(ModelForward, ThreadCountDoesNotChangeLogits) {
  for (GgmlType t : {GgmlType::F32, GgmlType::Q8_0}) {
    TempFile f("threads");
    TinyOptions o;
    o.matrix_type = t;
    write_tiny_model(f.path, tiny_config(t == GgmlType::F32 ? Arch::Deepseek2 : Arch::Qwen2Moe), o);
    auto one = Model::load(f.path, one_thread());
    auto two = Model::load(f.path, opts(2));
    auto three = Model::load(f.path, opts(3));
    const std::vector<float> l1 = run(*one, kTokens);
    EXPECT_EQ(l1, run(*two, kTokens)) << ggml_type_name(t);
    EXPECT_EQ(l1, run(*three, kTokens)) << ggml_type_name(t);
  }
}

TEST(ModelForward, ContextFullAndBadPositionThrow) {
  TempFile f("ctx");
  write_tiny_model(f.path, tiny_config(Arch::Olmoe), TinyOptions{});
  auto m = Model::load(f.path, opts(1, 3));
  EXPECT_EQ(m->n_ctx(), 3);
  EXPECT_THROW(m->forward(1, 1), Error);  // position must follow the cache
  m->forward(1, 0);
  m->forward(2, 1);
  m->forward(3, 2);
  EXPECT_THROW(m->forward(4, 3), Error);
  EXPECT_THROW(m->forward(9999, 3), Error);
  m->reset();
  EXPECT_NO_THROW(m->forward(1, 0));
}

// max |a - b| / max(1, max |b|) over all positions' logits.
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  double mx = 1.0, d = 0.0;
  for (double v : b) mx = std::max(mx, std::fabs(v));
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d / mx;
}

struct RefCase {
  Arch arch;
  GgmlType type;
  bool tie;
  double tol;
  int variant = 0;
};

class ModelVsReference : public ::testing::TestWithParam<RefCase> {};

TEST_P(ModelVsReference, LogitsAgree) {
  const RefCase rc = GetParam();
  TempFile f("ref");
  TinyOptions o;
  o.matrix_type = rc.type;
  o.embd_type = rc.type;
  o.tie_output = rc.tie;
  o.seed = 7 + static_cast<uint32_t>(rc.arch);
  write_tiny_model(f.path, tiny_config(rc.arch, 64, rc.variant), o);
  auto m = Model::load(f.path, opts(2));
  test::ReferenceModel ref(f.path);
  const std::vector<float> got = run(*m, kTokens);
  std::vector<double> want;
  for (int32_t t : kTokens) {
    const std::vector<double> l = ref.step(t);
    want.insert(want.end(), l.begin(), l.end());
  }
  ASSERT_EQ(got.size(), want.size());
  std::printf("rel err %s %s: %.3g\n", arch_name(rc.arch), ggml_type_name(rc.type), rel_err(got, want));
  EXPECT_LT(rel_err(got, want), rc.tol) << arch_name(rc.arch) << " " << ggml_type_name(rc.type);
}

INSTANTIATE_TEST_SUITE_P(
    AllArchs, ModelVsReference,
    ::testing::Values(RefCase{Arch::Qwen3Moe, GgmlType::F32, false, 2e-4}, RefCase{Arch::Qwen2Moe, GgmlType::F32, false, 2e-4},
                      RefCase{Arch::Llama, GgmlType::F32, false, 2e-4}, RefCase{Arch::Olmoe, GgmlType::F32, false, 2e-4},
                      RefCase{Arch::Qwen3Moe, GgmlType::F32, true, 2e-4}, RefCase{Arch::Qwen3Moe, GgmlType::F16, false, 2e-3},
                      RefCase{Arch::Llama, GgmlType::Q8_0, false, 2e-2}, RefCase{Arch::Qwen2Moe, GgmlType::Q8_0, false, 2e-2},
                      RefCase{Arch::Deepseek2, GgmlType::F32, false, 2e-4}, RefCase{Arch::Deepseek2, GgmlType::F32, false, 2e-4, 1}));

}  // namespace
}  // namespace swapmoe

namespace swapmoe {
namespace {

// Wraps the model's resident store and counts the calls the forward pass makes.
class CountingStore : public ExpertStore {
 public:
  explicit CountingStore(std::unique_ptr<ExpertStore> inner) : inner_(std::move(inner)) {}
  void request(int layer, std::span<const int32_t> e) override { requested += static_cast<int>(e.size()); inner_->request(layer, e); }
  ExpertView acquire(int layer, int32_t e) override {
    ++acquired;
    ++pinned;
    return inner_->acquire(layer, e);
  }
  void release(int layer, int32_t e) override {
    --pinned;
    inner_->release(layer, e);
  }
  int requested = 0, acquired = 0, pinned = 0;

 private:
  std::unique_ptr<ExpertStore> inner_;
};

TEST(ModelForward, ExpertStoreCallsAreBalancedAndRoutingIsReported) {
  TempFile f("store");
  const ModelConfig cfg = tiny_config(Arch::Deepseek2);
  write_tiny_model(f.path, cfg, TinyOptions{});
  auto m = Model::load(f.path, opts(2));
  auto* impl = dynamic_cast<ModelImpl*>(m.get());
  ASSERT_NE(impl, nullptr);
  const std::vector<float> before = run(*m, kTokens);
  auto counting = std::make_unique<CountingStore>(
      std::make_unique<ResidentExpertStore>(m->file(), m->config(), impl->weights().experts));
  CountingStore* cs = counting.get();
  impl->set_expert_store(std::move(counting));
  EXPECT_EQ(run(*m, kTokens), before);  // same experts, same logits
  const int moe_layers = static_cast<int>(cfg.n_moe_layers());
  const int calls = static_cast<int>(kTokens.size()) * moe_layers * static_cast<int>(cfg.n_expert_used);
  EXPECT_EQ(cs->acquired, calls);
  EXPECT_EQ(cs->requested, calls);
  EXPECT_EQ(cs->pinned, 0);
  const auto& routing = impl->last_routing();
  ASSERT_EQ(routing.size(), static_cast<size_t>(cfg.n_layer));
  for (int il = 0; il < cfg.n_layer; ++il) {
    EXPECT_EQ(routing[il].size(), cfg.is_moe_layer(il) ? static_cast<size_t>(cfg.n_expert_used) : 0u);
    for (int32_t e : routing[il]) EXPECT_TRUE(e >= 0 && e < cfg.n_expert);
  }
}

}  // namespace
}  // namespace swapmoe
