// Model::open and the construction of ModelImpl: configure, plan, bind, read, allocate.
// (Model::load, which adds the memory budget's expert store, is src/runtime/load.cpp.)

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <utility>

#include "arch/arch.h"
#include "expert/store_provider.h"
#include "model/expert_prefetch.h"
#include "model/footprint.h"
#include "model/model_impl.h"
#include "util/error.h"

namespace swapmoe {

namespace {

// MemAvailable from /proc/meminfo in bytes: what the kernel can hand out without swapping.
// 0 when unknown (then no check is made).
uint64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

// A context past the trained one is allowed (RoPE scaling experiments) but said; a KV cache
// the machine cannot hold is refused before it is zero-filled (`--ctx 10000000` on the demo
// model would have written ~15 GB). KV entries are f16, as in budget.cpp's plan.
void check_context(const ModelConfig& cfg, const ModelOptions& opts, int64_t n_ctx) {
  if (opts.n_ctx > 0 && cfg.n_ctx_train > 0 && opts.n_ctx > cfg.n_ctx_train)
    std::fprintf(stderr,
                 "swapmoe: warning: --ctx %lld is beyond the model's trained context of %lld tokens; "
                 "positions past it were never trained and output there may degrade\n",
                 static_cast<long long>(opts.n_ctx), static_cast<long long>(cfg.n_ctx_train));
  const bool mla = cfg.arch.attention == AttentionKind::Mla;
  const double per_token = mla ? static_cast<double>(cfg.n_layer * (cfg.kv_lora_rank + cfg.n_rot) * 2)
                               : static_cast<double>(cfg.n_layer * cfg.n_head_kv * (cfg.head_dim_k + cfg.head_dim_v) * 2);
  const double kv = per_token * static_cast<double>(n_ctx);
  const uint64_t avail = available_memory_bytes();
  if (avail > 0 && kv > static_cast<double>(avail))
    fail("a context of ", n_ctx, " tokens needs a KV cache of ", kv / double(1 << 30), " GiB, more than the ",
         static_cast<double>(avail) / double(1 << 30), " GiB of memory available: lower --ctx, or give --mem to fit it");
}

}  // namespace

std::unique_ptr<Model> Model::open(std::unique_ptr<GgufFile> file, const ModelOptions& opts,
                                   ExpertStoreProvider& experts) {
  return std::make_unique<ModelImpl>(std::move(file), opts, experts);
}

ModelImpl::ModelImpl(std::unique_ptr<GgufFile> file, const ModelOptions& opts, ExpertStoreProvider& experts)
    : file_(std::move(file)), pool_(opts.n_threads) {
  const GgufFile& f = *file_;
  cfg_ = config_from_gguf(f);
  check_config(cfg_, f.path());
  const bool mla = cfg_.arch.attention == AttentionKind::Mla;
  if (opts.n_ctx < 0) fail("n_ctx must not be negative, got ", opts.n_ctx);
  n_ctx_ = opts.n_ctx > 0 ? opts.n_ctx : std::min<int64_t>(4096, cfg_.n_ctx_train);
  // The plan is made from the header alone, so that a memory budget that is too small is
  // refused before any weight is read (runtime/model_budget.h).
  const ExpertPlan plan = experts.plan(f, cfg_, model_footprint(cfg_, n_ctx_, pool_.size()), n_ctx_, pool_.size());
  n_ctx_ = plan.n_ctx;
  prefill_scratch_ = plan.prefill_bytes;
  // The context as planned (a budget shortens it): warned past the trained context, refused
  // when its KV cache cannot fit in memory.
  check_context(cfg_, opts, n_ctx_);
  // Sequences share the planned context: each gets an equal part, so N KV caches take
  // the memory the plan reserved for one cache of n_ctx positions.
  if (opts.n_sequences < 1 || opts.n_sequences > 4096)
    fail("n_sequences must be in [1, 4096], got ", opts.n_sequences);
  if (opts.n_sequences > 1) {
    const int64_t total = n_ctx_;
    n_ctx_ = total / opts.n_sequences;
    if (n_ctx_ < 16)
      fail("a context of ", total, " tokens split among ", opts.n_sequences, " sequences leaves ", n_ctx_,
           " tokens each (at least 16 needed): raise --ctx or lower --parallel");
  }

  tok_ = Tokenizer::from_gguf(f);
  if (tok_->n_vocab() != cfg_.n_vocab)
    fail(f.path(), ": tokenizer has ", tok_->n_vocab(), " tokens but token_embd.weight has ", cfg_.n_vocab, " rows");
  w_ = ModelWeights::bind(f, cfg_, &pool_);
  if (cfg_.mla_legacy) {
    const MlaLegacyLoad& l = w_->mla_legacy();
    std::fprintf(stderr,
                 "swapmoe: legacy MLA layout: split attn_kv_b of %lld layers into attn_k_b (%s) + attn_v_b (as in the file) in "
                 "%.2f s: %.1f MiB of dense weights instead of %.1f MiB\n",
                 static_cast<long long>(l.layers), ggml_type_name(l.k_b_type), l.seconds,
                 static_cast<double>(l.derived_bytes) / (1 << 20), static_cast<double>(l.kv_b_bytes) / (1 << 20));
    if (l.reference)
      std::fprintf(stderr, "swapmoe: SWAPMOE_MLA_LEGACY_REFERENCE=1: llama.cpp's non-MLA arithmetic (F32 k_b, v_b and "
                           "cache, latent rounded as for attn_kv_b); a conformance aid, not for --mem\n");
  }
  experts_ = experts.make(f, cfg_, w_->experts);

  rope_ = rope_params(cfg_);
  // The windowed layers' rope (gpt-oss): llama.cpp's get_rope_freq_base gives them
  // rope.freq_base_swa (default: the model's base); the scaling is the same.
  rope_swa_ = rope_;
  if (cfg_.rope_freq_base_swa != 0.0f) rope_swa_.freq_base = cfg_.rope_freq_base_swa;
  router_ = router_params(cfg_);
  if (plan.prefetch) prefetch_ = std::make_unique<ExpertPrefetcher>(cfg_, *w_, router_, plan.prefetch_depth);

  const int64_t kdim = cfg_.n_head_kv * cfg_.head_dim_k;
  const int64_t vdim = cfg_.n_head_kv * cfg_.head_dim_v;
  if (mla) {
    mla_ = mla_params(cfg_);
    // The legacy reference mode (conformance only, model/weights.h) caches in F32, as llama.cpp
    // does with an F32 KV cache.
    const MlaCache::Precision prec =
        w_->mla_legacy().reference ? MlaCache::Precision::F32 : MlaCache::Precision::F16;
    mla_cache_ = MlaCache(cfg_.n_layer, n_ctx_, cfg_.kv_lora_rank, cfg_.n_rot, prec);
    seqs_.resize(static_cast<size_t>(opts.n_sequences));
    for (size_t s = 1; s < seqs_.size(); ++s)
      seqs_[s].mla_cache = MlaCache(cfg_.n_layer, n_ctx_, cfg_.kv_lora_rank, cfg_.n_rot, prec);
    mla_w_.resize(cfg_.n_layer);
    for (int il = 0; il < static_cast<int>(cfg_.n_layer); ++il) {
      MlaLayerWeights& m = mla_w_[static_cast<size_t>(il)];
      auto mat = [&](const char* base) {
        const BoundTensor* t = w_->tensor(tensor_name(base, il));
        return t ? t->matrix() : MatrixRef{};
      };
      auto vec = [&](const char* base) {
        const std::vector<float>* v = w_->vec(tensor_name(base, il));
        return v ? v->data() : nullptr;
      };
      m.q_a = mat("attn_q_a");
      m.q_a_norm = vec("attn_q_a_norm");
      m.q_b = mat("attn_q_b");
      m.q = mat("attn_q");
      m.kv_a_mqa = mat("attn_kv_a_mqa");
      m.kv_a_norm = vec("attn_kv_a_norm");
      m.k_b = mat("attn_k_b");
      m.v_b = mat("attn_v_b");
      if (w_->mla_legacy().reference) m.latent_round = w_->mla_legacy().latent_types[static_cast<size_t>(il)];
      m.out = mat("attn_output");
    }
  } else {
    kv_ = KvCache(cfg_.n_layer, n_ctx_, kdim, vdim);
    seqs_.resize(static_cast<size_t>(opts.n_sequences));
    for (size_t s = 1; s < seqs_.size(); ++s) seqs_[s].kv = KvCache(cfg_.n_layer, n_ctx_, kdim, vdim);
  }

  logits_.resize(cfg_.n_vocab);
  routing_.resize(cfg_.n_layer);
}

ModelImpl::~ModelImpl() = default;

void ModelImpl::set_prefetch_depth(int depth) {
  prefetch_.reset();
  if (depth >= 1) prefetch_ = std::make_unique<ExpertPrefetcher>(cfg_, *w_, router_, depth);
}

ExpertRunStats ModelImpl::expert_stats() const {
  ExpertRunStats s;
  static_cast<ExpertStoreStats&>(s) = experts_->stats_report();
  if (prefetch_) {
    s.prefetch = true;
    s.predicted = prefetch_->predicted();
    s.actual = prefetch_->actual();
  }
  return s;
}

void ModelImpl::reset_expert_stats() {
  experts_->reset_stats();
  if (prefetch_) prefetch_->reset_stats();
}

void ModelImpl::wrap_experts(const std::function<std::unique_ptr<ExpertStore>(std::unique_ptr<ExpertStore>)>& wrap) {
  experts_ = wrap(std::move(experts_));
  if (!experts_) fail("wrap_experts: no expert store");
}

void ModelImpl::select_sequence(int s) {
  if (s < 0 || s >= n_sequences()) fail("sequence ", s, " out of range [0, ", n_sequences(), ")");
  if (s == seq_) return;
  // Park the selected state in its placeholder, then take sequence s's out of storage.
  SequenceState& from = seqs_[static_cast<size_t>(seq_)];
  std::swap(kv_, from.kv);
  std::swap(mla_cache_, from.mla_cache);
  from.n_past = n_past_;
  SequenceState& to = seqs_[static_cast<size_t>(s)];
  std::swap(kv_, to.kv);
  std::swap(mla_cache_, to.mla_cache);
  n_past_ = to.n_past;
  to.n_past = 0;
  seq_ = s;
}

void ModelImpl::rewind(int64_t n) {
  if (n < 0 || n > n_past_) fail("rewind to ", n, ": the sequence holds ", n_past_, " tokens");
  // Rows at positions >= n stay in the cache but are never read: attention covers
  // positions [0, pos] only, and the next forward overwrites position n.
  n_past_ = n;
}

}  // namespace swapmoe
