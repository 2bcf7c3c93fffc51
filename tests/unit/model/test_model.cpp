// Model loading and the forward pass: binding errors, determinism, thread-count
// independence, and agreement with the naive reference (reference_model.cpp) for every
// standard-attention architecture.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cache/budget.h"
#include "runtime/model_budget.h"
#include "ops/mla_legacy.h"
#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "arch/arch.h"
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
                      RefCase{Arch::Deepseek2, GgmlType::F32, false, 2e-4}, RefCase{Arch::Deepseek2, GgmlType::F32, false, 2e-4, 1},
                      RefCase{Arch::Glm4Moe, GgmlType::F32, false, 2e-4}, RefCase{Arch::Glm4Moe, GgmlType::F32, false, 2e-4, 1},
                      RefCase{Arch::Glm4Moe, GgmlType::Q8_0, false, 2e-2}));

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

// ---- The legacy MLA layout (attn_kv_b split at load) ----

namespace swapmoe {
namespace {

// Rewrites a legacy file into the split layout with the tensors ops/mla_legacy derives,
// so that the split loader path runs the same weights.
void write_split_twin(const std::string& legacy, const std::string& out) {
  auto f = GgufFile::open(legacy);
  const ModelConfig c = config_from_gguf(*f);
  const MlaLegacyShape s{c.kv_lora_rank, c.n_head, c.head_dim_k_mla - c.n_rot, c.head_dim_v_mla};
  GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set(k, v);
  w.set_u32("deepseek2.attention.head_count_kv", 1);
  w.set_u32("deepseek2.attention.key_length", static_cast<uint32_t>(c.kv_lora_rank + c.n_rot));
  w.set_u32("deepseek2.attention.value_length", static_cast<uint32_t>(c.kv_lora_rank));
  w.set_u32("deepseek2.attention.key_length_mla", static_cast<uint32_t>(c.head_dim_k_mla));
  w.set_u32("deepseek2.attention.value_length_mla", static_cast<uint32_t>(c.head_dim_v_mla));
  for (const auto& t : f->tensors()) {
    const size_t at = t.name.find(".attn_kv_b.");
    if (at == std::string::npos) {
      w.add_tensor_info(t.name, t.type, t.ne);
      continue;
    }
    w.add_tensor_info(t.name.substr(0, at) + ".attn_k_b.weight", mla_legacy_k_b_type(t.type),
                      {s.nope, s.kv_lora_rank, s.n_head});
    w.add_tensor_info(t.name.substr(0, at) + ".attn_v_b.weight", t.type, {s.kv_lora_rank, s.head_dim_v, s.n_head});
  }
  w.begin(out);
  for (const auto& t : f->tensors()) {
    std::vector<uint8_t> b(t.nbytes);
    f->read_at(t.part, t.offset, b.data(), b.size());
    if (t.name.find(".attn_kv_b.") == std::string::npos) {
      w.write_tensor_data(b.data(), b.size());
      continue;
    }
    std::vector<uint8_t> k(mla_legacy_k_b_bytes(s, mla_legacy_k_b_type(t.type))), v(mla_legacy_v_b_bytes(s, t.type));
    mla_legacy_derive(s, t.type, b.data(), mla_legacy_k_b_type(t.type), k.data(), v.data());
    w.write_tensor_data(k.data(), k.size());
    w.write_tensor_data(v.data(), v.size());
  }
  w.finish();
}

TEST(ModelLegacyMla, SameLogitsAsTheSplitTwin) {
  // Both deepseek2 variants, F32 (k_b stays F32) and Q8_0 (k_b F16, v_b Q8_0 rows): the legacy
  // file loads as the split layout of the same weights, bit for bit. (This checks the loader's
  // binding of the derived tensors; the derivation itself is checked in tests/unit/mla.)
  for (int variant : {0, 1}) {
    for (GgmlType t : {GgmlType::F32, GgmlType::Q8_0}) {
      SCOPED_TRACE(std::string("variant ") + std::to_string(variant) + " " + ggml_type_name(t));
      ModelConfig c = tiny_config(Arch::Deepseek2, 64, variant);
      c.mla_legacy = true;
      c.kv_lora_rank = 64;  // Q8_0 rows of attn_kv_b
      c.head_dim_k = c.kv_lora_rank + c.n_rot;
      c.head_dim_v = c.kv_lora_rank;
      c.head_dim_k_mla = 16 + 32;  // nope 32: F16 / Q8_0 rows of attn_k_b
      c.head_dim_v_mla = 32;       // attn_output rows of 4 x 32
      if (c.q_lora_rank > 0) c.q_lora_rank = 64;
      TempFile legacy("legacy"), split("split");
      TinyOptions o;
      o.matrix_type = t;
      write_tiny_model(legacy.path, c, o);
      write_split_twin(legacy.path, split.path);
      auto a = Model::load(legacy.path, opts(2));
      auto b = Model::load(split.path, opts(2));
      EXPECT_TRUE(a->config().mla_legacy);
      EXPECT_FALSE(b->config().mla_legacy);
      EXPECT_EQ(a->config().head_dim_k_mla, b->config().head_dim_k_mla);
      EXPECT_EQ(a->config().n_head_kv, 1);
      const std::vector<float> la = run(*a, kTokens);
      EXPECT_EQ(la, run(*b, kTokens));
    }
  }
}

TEST(ModelLegacyMla, BudgetCountsTheDerivedTensors) {
  // The plan of a legacy file counts what stays resident, the derived attn_k_b / attn_v_b, not
  // attn_kv_b: its dense bytes equal those of the split twin, and exceed the file's by the split.
  ModelConfig c = tiny_config(Arch::Deepseek2, 64, 0);
  c.mla_legacy = true;
  c.kv_lora_rank = 64;
  c.head_dim_k = c.kv_lora_rank + c.n_rot;
  c.head_dim_v = c.kv_lora_rank;
  c.head_dim_k_mla = 16 + 32;
  c.head_dim_v_mla = 32;
  c.q_lora_rank = 64;
  TempFile legacy("legacy-budget"), split("split-budget");
  TinyOptions o;
  o.matrix_type = GgmlType::Q8_0;
  write_tiny_model(legacy.path, c, o);
  write_split_twin(legacy.path, split.path);
  BudgetRequest req;
  req.n_ctx = 64;
  auto fl = GgufFile::open(legacy.path);
  auto fs = GgufFile::open(split.path);
  const BudgetPlan pl = measure_model(config_from_gguf(*fl), *fl, req);
  const BudgetPlan ps = measure_model(config_from_gguf(*fs), *fs, req);
  EXPECT_EQ(pl.dense_bytes, ps.dense_bytes);
  EXPECT_EQ(pl.kv_bytes, ps.kv_bytes);
  uint64_t kv_b = 0;
  for (const auto& t : fl->tensors())
    if (t.name.find("attn_kv_b") != std::string::npos) kv_b += t.nbytes;
  EXPECT_EQ(pl.mla_legacy_kv_b_bytes, kv_b);
  EXPECT_GT(pl.mla_legacy_derived_bytes, kv_b);  // k_b in F16 is wider than Q8_0
  EXPECT_EQ(ps.mla_legacy_kv_b_bytes, 0u);
  // And what the loader keeps is what the plan counted for those tensors.
  auto m = Model::load(legacy.path, one_thread());
  const auto* impl = dynamic_cast<ModelImpl*>(m.get());
  ASSERT_NE(impl, nullptr);
  const MlaLegacyLoad& l = impl->weights().mla_legacy();
  EXPECT_EQ(l.layers, c.n_layer);
  EXPECT_EQ(l.kv_b_bytes, kv_b);
  EXPECT_EQ(l.derived_bytes, pl.mla_legacy_derived_bytes);
  EXPECT_EQ(impl->weights().tensor("blk.0.attn_kv_b.weight"), nullptr);  // dropped after the split
  EXPECT_NE(impl->weights().tensor("blk.0.attn_k_b.weight"), nullptr);
}

TEST(ModelLegacyMla, MissingKvBIsNamed) {
  ModelConfig c = tiny_config(Arch::Deepseek2, 64, 1);
  c.mla_legacy = true;
  TempFile f("legacy-broken");
  TinyOptions o;
  o.edit = [](std::string& name, std::vector<int64_t>&, GgmlType&) {
    if (name == "blk.0.attn_kv_b.weight") name = "blk.0.attn_kv_x.weight";
  };
  write_tiny_model(f.path, c, o);
  EXPECT_NE(load_error(f.path).find("attn_kv_b"), std::string::npos) << load_error(f.path);
}

}  // namespace
}  // namespace swapmoe

namespace swapmoe {
namespace {

// glm4moe's NextN/MTP layer is in the file but not run: a file with it gives bit for bit the
// logits of the same model without it (tiny_model draws the tensors in file order, and the
// NextN layer's come last), its tensors are not loaded and the plan does not count them, and
// a malformed NextN tensor is still an error that names it (checked as llama.cpp checks it).
TEST(ModelNextN, CheckedNotLoadedNotRunNotBudgeted) {
  for (int variant : {0, 1}) {
    const ModelConfig with = tiny_config(Arch::Glm4Moe, 64, variant);
    ModelConfig without = with;
    without.n_layer_nextn = 0;
    TempFile a("nextn"), b("no-nextn");
    TinyOptions o;
    o.matrix_type = GgmlType::Q8_0;
    write_tiny_model(a.path, with, o);
    write_tiny_model(b.path, without, o);
    auto fa = GgufFile::open(a.path);
    const ModelConfig ca = config_from_gguf(*fa);
    EXPECT_EQ(ca.n_layer, 3);
    EXPECT_EQ(ca.n_layer_nextn, 1);
    EXPECT_EQ(fa->get_i64("glm4moe.block_count"), 4);
    EXPECT_EQ(ca.arch.qk_norm, variant == 0 ? QkNorm::PerHead : QkNorm::None);  // from the file's tensors
    EXPECT_NE(fa->find_tensor("blk.3.nextn.eh_proj.weight"), nullptr);

    auto ma = Model::load(a.path, one_thread());
    auto mb = Model::load(b.path, one_thread());
    EXPECT_EQ(run(*ma, kTokens), run(*mb, kTokens)) << "variant " << variant;
    const auto* ia = dynamic_cast<ModelImpl*>(ma.get());
    const auto* ib = dynamic_cast<ModelImpl*>(mb.get());
    ASSERT_TRUE(ia && ib);
    EXPECT_EQ(ia->weights().bytes(), ib->weights().bytes());
    EXPECT_EQ(ia->weights().tensor("blk.3.nextn.eh_proj.weight"), nullptr);

    BudgetRequest req;
    req.n_ctx = 64;
    auto fb = GgufFile::open(b.path);
    const BudgetPlan pa = measure_model(ca, *fa, req), pb = measure_model(config_from_gguf(*fb), *fb, req);
    EXPECT_EQ(pa.dense_bytes, pb.dense_bytes);
    EXPECT_EQ(pa.expert_bytes_total, pb.expert_bytes_total);
    EXPECT_EQ(pa.layers.size(), 2u);
    ASSERT_FALSE(pa.notes.empty());
    EXPECT_NE(pa.notes.front().find("NextN/MTP layer blk.3"), std::string::npos) << pa.notes.front();
  }
  TempFile bad("nextn-bad");
  TinyOptions o;
  o.edit = [](std::string& name, std::vector<int64_t>& ne, GgmlType&) {
    if (name == "blk.3.nextn.eh_proj.weight") ne[0] /= 2;
  };
  write_tiny_model(bad.path, tiny_config(Arch::Glm4Moe, 64, 0), o);
  EXPECT_NE(load_error(bad.path).find("blk.3.nextn.eh_proj.weight"), std::string::npos) << load_error(bad.path);
}

// config_from_gguf reads back what config_to_kv wrote, NextN layers and routing included.
TEST(ModelNextN, KeysRoundTrip) {
  const ModelConfig c = tiny_config(Arch::Glm4Moe, 64, 1);
  TempFile f("glm-keys");
  write_tiny_model(f.path, c, TinyOptions{});
  auto g = GgufFile::open(f.path);
  const ModelConfig r = config_from_gguf(*g);
  EXPECT_EQ(r.n_layer, c.n_layer);
  EXPECT_EQ(r.n_layer_nextn, c.n_layer_nextn);
  EXPECT_EQ(r.n_layer_dense_lead, c.n_layer_dense_lead);
  EXPECT_EQ(r.n_expert_shared, 1);
  EXPECT_EQ(r.gating, GatingFunc::Sigmoid);
  EXPECT_TRUE(r.expert_weights_norm);
  EXPECT_EQ(r.expert_weights_scale, 1.0f);
  EXPECT_EQ(r.n_rot, c.head_dim_k / 2);
  EXPECT_EQ(r.head_dim_k, 32);
}

}  // namespace
}  // namespace swapmoe
