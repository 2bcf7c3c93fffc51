// Batched prefill (model/forward_batch.cpp, moe_batch.cpp) against the per-token forward
// pass: for every architecture and weight type, the logits of forward_batch and of every
// token decoded after it are bitwise equal to those of forward() token by token (so the
// KV cache rows written by the batch are those forward() writes: any difference would
// change the later logits), with all experts resident and under a tight ExpertCache.

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../model/tiny_model.h"
#include "cache/expert_cache.h"
#include "model/footprint.h"
#include "model/forward_batch.h"
#include "model/model.h"
#include "model/model_impl.h"
#include "util/error.h"

namespace swapmoe {
namespace {

using test::temp_path;
using test::tiny_config;
using test::TinyOptions;
using test::write_tiny_model;

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& stem) : path(temp_path("prefill_" + stem)) {}
  ~TempFile() { std::remove(path.c_str()); }
};

ModelOptions opts(int threads) {
  ModelOptions o;
  o.n_threads = threads;
  return o;
}

// A deterministic prompt of n ids spread over the 256 byte tokens.
std::vector<int32_t> prompt(int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back((i * 37 + 11) % 256);
  return p;
}

// Logits of the prompt's last token, then of `extra` tokens decoded one by one after it.
std::vector<float> per_token(Model& m, const std::vector<int32_t>& p, int extra) {
  m.reset();
  const float* l = nullptr;
  for (size_t i = 0; i < p.size(); ++i) l = m.forward(p[i], static_cast<int64_t>(i));
  const int64_t V = m.config().n_vocab;
  std::vector<float> all(l, l + V);
  for (int i = 0; i < extra; ++i) {
    l = m.forward((i * 5 + 3) % 256, static_cast<int64_t>(p.size()) + i);
    all.insert(all.end(), l, l + V);
  }
  return all;
}

// The same with the prompt through forward_batch, split at `split` (0: one call).
std::vector<float> batched(Model& m, const std::vector<int32_t>& p, int extra, size_t split = 0) {
  m.reset();
  const float* l = nullptr;
  if (split > 0) {
    m.forward_batch(std::vector<int32_t>(p.begin(), p.begin() + static_cast<long>(split)), 0);
    l = m.forward_batch(std::vector<int32_t>(p.begin() + static_cast<long>(split), p.end()),
                        static_cast<int64_t>(split));
  } else {
    l = m.forward_batch(p, 0);
  }
  const int64_t V = m.config().n_vocab;
  std::vector<float> all(l, l + V);
  for (int i = 0; i < extra; ++i) {
    l = m.forward((i * 5 + 3) % 256, static_cast<int64_t>(p.size()) + i);
    all.insert(all.end(), l, l + V);
  }
  return all;
}

// "Q4_K_M-like": k-quants where the row length allows (Q6_K for attn_v / ffn_up, Q4_K
// elsewhere), Q8_0 for rows of a multiple of 32, F32 for the rest.
void mixed_types(std::string& name, std::vector<int64_t>& ne, GgmlType& type) {
  if (type == GgmlType::F32 || ne.size() < 2) return;
  if (ne[0] % 256 == 0)
    type = name.find("attn_v") != std::string::npos || name.find("ffn_up") != std::string::npos ? GgmlType::Q6_K
                                                                                                 : GgmlType::Q4_K;
  else if (ne[0] % 32 == 0) type = GgmlType::Q8_0;
  else type = GgmlType::F32;
}

struct Case {
  Arch arch;
  int variant;
  const char* type;  // F32, Q8_0, Q4_K_M
};

std::string describe(const Case& c) {
  return std::string(arch_name(c.arch)) + (c.variant ? "/v1" : "") + "/" + c.type;
}

void write_case(const std::string& path, const Case& c) {
  TinyOptions o;
  int64_t embd = 64;
  if (std::string(c.type) == "Q8_0") {
    o.matrix_type = GgmlType::Q8_0;
    o.edit = [](std::string&, std::vector<int64_t>& ne, GgmlType& t) {
      if (t == GgmlType::Q8_0 && ne[0] % 32 != 0) t = GgmlType::F32;
    };
  } else if (std::string(c.type) == "Q4_K_M") {
    embd = 256;
    o.matrix_type = GgmlType::Q8_0;  // placeholder, refined per tensor
    o.embd_type = GgmlType::Q4_K;
    o.edit = mixed_types;
  }
  write_tiny_model(path, tiny_config(c.arch, embd, c.variant), o);
}

const std::vector<Case>& cases() {
  static const std::vector<Case> v = [] {
    std::vector<Case> r;
    for (const char* t : {"F32", "Q8_0", "Q4_K_M"}) {
      for (Arch a : {Arch::Qwen3Moe, Arch::Qwen2Moe, Arch::Llama, Arch::Olmoe, Arch::Deepseek2}) r.push_back({a, 0, t});
      r.push_back({Arch::Deepseek2, 1, t});
      r.push_back({Arch::Glm4Moe, 0, t});
      r.push_back({Arch::Glm4Moe, 1, t});
    }
    return r;
  }();
  return v;
}

TEST(ForwardBatch, BitwiseEqualToForwardEveryArchitectureAndType) {
  const std::vector<int32_t> p = prompt(21);
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    TempFile f("all");
    write_case(f.path, c);
    auto ref = Model::load(f.path, opts(2));
    auto bat = Model::load(f.path, opts(2));
    const std::vector<float> want = per_token(*ref, p, 3);
    EXPECT_EQ(want, batched(*bat, p, 3));
    EXPECT_EQ(want, batched(*bat, p, 3, 8));  // a second chunk starting at position 8
    // The routing reported for the last prompt token matches.
    per_token(*ref, p, 0);
    batched(*bat, p, 0);
    auto* ri = dynamic_cast<ModelImpl*>(ref.get());
    auto* bi = dynamic_cast<ModelImpl*>(bat.get());
    EXPECT_EQ(ri->last_routing(), bi->last_routing());
  }
}

TEST(ForwardBatch, ThreadCountDoesNotChangeResults) {
  const Case c{Arch::Deepseek2, 0, "Q4_K_M"};
  TempFile f("threads");
  write_case(f.path, c);
  auto one = Model::load(f.path, opts(1));
  auto three = Model::load(f.path, opts(3));
  const std::vector<int32_t> p = prompt(13);
  EXPECT_EQ(batched(*one, p, 2), batched(*three, p, 2));
}

// Experts from an SSD-backed cache with as few slots as exactness allows: one layer's
// n_expert_used experts (shared pool), or that many per layer (per-layer pools).
TEST(ForwardBatch, TightExpertCacheGivesTheSameLogitsAndLoadsEachExpertOncePerLayer) {
  for (Case c : {Case{Arch::Qwen2Moe, 0, "Q8_0"}, Case{Arch::Deepseek2, 0, "Q4_K_M"}, Case{Arch::Qwen3Moe, 0, "F32"}}) {
    for (bool per_layer : {false, true}) {
      SCOPED_TRACE(describe(c) + (per_layer ? " per-layer pools" : " shared pool"));
      TempFile f("cache");
      write_case(f.path, c);
      auto ref = Model::load(f.path, opts(2));
      auto bat = Model::load(f.path, opts(2));
      auto* bi = dynamic_cast<ModelImpl*>(bat.get());
      const ModelConfig& cfg = bi->config();
      ExpertCacheOptions co;
      co.per_layer = per_layer;
      co.n_slots = cfg.n_expert_used * (per_layer ? cfg.n_moe_layers() : 1);
      co.policy = "lru";
      co.open_mode = io::OpenMode::Buffered;
      auto cache = std::make_unique<ExpertCache>(f.path, cfg, bi->weights().experts, co);
      ExpertCache* cp = cache.get();
      bi->set_expert_store(std::move(cache));

      const std::vector<int32_t> p = prompt(40);
      // The prompt alone: every chosen expert of every layer is read exactly once.
      bat->reset();
      cp->reset_stats();
      const float* l = bat->forward_batch(p, 0);
      const std::vector<float> got(l, l + cfg.n_vocab);
      const ExpertCacheStats s = cp->stats();
      EXPECT_LE(s.loads, static_cast<uint64_t>(cfg.n_moe_layers() * cfg.n_expert));
      EXPECT_EQ(s.loads, s.misses);
      const std::vector<float> want = per_token(*ref, p, 3);
      EXPECT_EQ(std::vector<float>(want.begin(), want.begin() + cfg.n_vocab), got);
      EXPECT_EQ(want, batched(*bat, p, 3, 17));
    }
  }
}

TEST(ForwardBatch, Errors) {
  TempFile f("err");
  write_case(f.path, {Arch::Olmoe, 0, "F32"});
  ModelOptions o = opts(1);
  o.n_ctx = 16;
  auto m = Model::load(f.path, o);
  EXPECT_THROW(m->forward_batch({}, 0), Error);
  EXPECT_THROW(m->forward_batch({1, 2}, 3), Error);        // position != n_past
  EXPECT_THROW(m->forward_batch({1, 258}, 0), Error);      // token out of range
  EXPECT_THROW(m->forward_batch(prompt(17), 0), Error);    // past the context
  m->forward(1, 0);                                        // nothing was evaluated
  m->reset();
  m->forward_batch(prompt(16), 0);                          // exactly fills it
  EXPECT_THROW(m->forward(1, 16), Error);
}

TEST(ForwardBatch, ChunkSizes) {
  const ModelConfig big = tiny_config(Arch::Deepseek2, 256);
  EXPECT_EQ(prefill_chunk_tokens(big, 0), 512);
  const uint64_t per = prefill_bytes_per_token(big);
  EXPECT_GT(per, 0u);
  EXPECT_EQ(prefill_chunk_tokens(big, 10 * per + per / 2), 10);
  EXPECT_EQ(prefill_chunk_tokens(big, 1), 1);
  EXPECT_EQ(prefill_chunk_tokens(big, 10000 * per), 512);
}

}  // namespace
}  // namespace swapmoe
