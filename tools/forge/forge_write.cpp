#include "forge_write.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "convert/quant_mix.h"
#include "convert/row_convert.h"
#include "gguf/gguf.h"
#include "gguf/gguf_split_writer.h"
#include "gguf/gguf_writer.h"
#include "arch/arch.h"
#include "util/atomic_output.h"
#include "util/error.h"
#include "util/thread_pool.h"
#include "fast_quant.h"
#include "forge_types.h"
#include "weight_init.h"

namespace swapmoe::forge {

namespace {

void set_meta(GgufWriter& w, const std::string& key, const MetaValue& v) {
  switch (v.kind) {
    case MetaValue::U32: w.set_u32(key, v.u); break;
    case MetaValue::F32: w.set_f32(key, v.f); break;
    case MetaValue::Bool: w.set_bool(key, v.b); break;
    case MetaValue::Str: w.set_str(key, v.s); break;
  }
}

int64_t vocab_size(const GgufFile& vocab) {
  const GgufValue* v = vocab.find("tokenizer.ggml.tokens");
  if (!v || v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING)
    fail(vocab.path(), ": not a vocabulary GGUF (no tokenizer.ggml.tokens string array)");
  if (v->arr_len == 0) fail(vocab.path(), ": empty vocabulary");
  return static_cast<int64_t>(v->arr_len);
}

}  // namespace

ForgeResult forge_model(const ForgeSpec& spec) {
  if (spec.out.empty()) fail("missing -o OUT.gguf");
  if (spec.vocab.empty()) fail("missing --vocab VOCAB.gguf (a GGUF holding tokenizer.* keys)");
  const cli::QuantTarget& target = cli::find_quant_target(spec.type.empty() ? "F32" : spec.type);
  auto vocab = GgufFile::open(spec.vocab);
  refuse_same_file(spec.out, {spec.vocab});  // `--vocab X -o X` destroyed X
  const ModelConfig cfg = make_config(spec, vocab_size(*vocab));

  GgufWriter w;
  for (const auto& [key, value] : config_to_kv(cfg)) set_meta(w, key, value);
  w.set_str("general.name", spec.name.empty() ? "forged " + spec.arch : spec.name);
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", target.ftype);
  w.set_u64("swapmoe.forge.seed", spec.seed);
  for (const auto& [key, value] : vocab->metadata())
    if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);

  const ForgeTensors planned = plan_forge_tensors(spec, cfg, target);
  std::vector<const TensorSpec*> written;
  for (const auto& s : planned.tensors) written.push_back(&s);
  cli::MixPlan plan;
  plan.types = planned.types;
  plan.notes = planned.notes;
  if (spec.verbose)
    for (const auto& n : plan.notes) std::fprintf(stderr, "swapmoe-forge: %s\n", n.c_str());
  for (size_t i = 0; i < written.size(); ++i) w.add_tensor_info(written[i]->name, plan.types[i], written[i]->ne);
  GgufSplitLimits limits;
  if (!spec.split_max_size.empty()) limits.max_bytes = parse_split_size(spec.split_max_size);
  limits.max_tensors = spec.split_max_tensors;
  GgufOutput out(w, spec.out, limits);
  out.begin();

  // Fast mode by default for big files: the reference k-quant search dominates their time.
  uint64_t data_bytes = 0;
  for (size_t i = 0; i < written.size(); ++i) {
    int64_t rows = 1;
    for (size_t d = 1; d < written[i]->ne.size(); ++d) rows *= written[i]->ne[d];
    data_bytes += static_cast<uint64_t>(ggml_row_size(plan.types[i], written[i]->ne[0])) * static_cast<uint64_t>(rows);
  }
  const bool fast = spec.fast < 0 ? data_bytes > (uint64_t(1) << 30) : spec.fast > 0;

  ThreadPool pool(spec.threads);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<uint8_t> chunk;
  std::vector<std::vector<float>> row_buf(static_cast<size_t>(pool.size()));
  for (size_t i = 0; i < written.size(); ++i) {
    const TensorSpec& s = *written[i];
    const GgmlType type = plan.types[i];
    if (spec.sparse_all || (spec.sparse_experts && s.role == TensorRole::Experts)) {
      out.skip_tensor();  // a hole reads back as zeros: a valid (all-zero) block in every format
      continue;
    }
    if (cli::is_block_quantized(type)) (void)quant_traits(type);  // throws here, not in a worker thread
    const bool logits = s.role == TensorRole::Output || (s.role == TensorRole::TokenEmbd && !cfg.has_output);
    const InitRule rule = init_rule(s, cfg.n_embd, logits, cfg.n_layer, !cfg.has_output, cfg.arch.swiglu_oai);
    const uint64_t stream = tensor_stream(spec.seed, s.name);
    const int64_t ncols = s.ne[0];
    // Fast mode covers every block-quantized tensor of a supported type: the experts are
    // most of the bytes, but the reference k-quant search on token_embd, output and the
    // attention matrices of a 30B model alone takes minutes.
    const bool direct = (fast || random_blocks_only(type)) && fast_block_supported(type);
    int64_t nrows = 1;
    for (size_t d = 1; d < s.ne.size(); ++d) nrows *= s.ne[d];
    const size_t row_bytes = ggml_row_size(type, ncols);
    // About 32 MiB of output per step, and at least a few rows per thread.
    const int64_t step = std::max<int64_t>(pool.size() * 4, static_cast<int64_t>((size_t(32) << 20) / row_bytes));
    for (int64_t r0 = 0; r0 < nrows; r0 += step) {
      const int64_t n = std::min(step, nrows - r0);
      chunk.resize(static_cast<size_t>(n) * row_bytes);
      pool.parallel_for(n, [&](int64_t a, int64_t b, int tid) {
        auto& buf = row_buf[static_cast<size_t>(tid)];
        buf.resize(static_cast<size_t>(ncols));
        if (direct) {
          for (int64_t r = a; r < b; ++r)
            fast_quant_row(type, stream, r0 + r, ncols, row_std(stream, rule, r0 + r),
                           chunk.data() + static_cast<size_t>(r) * row_bytes);
          return;
        }
        for (int64_t r = a; r < b; ++r) {
          generate_row(stream, rule, r0 + r, ncols, buf.data());
          cli::row_from_float(type, buf.data(), chunk.data() + static_cast<size_t>(r) * row_bytes, ncols);
        }
      });
      out.write_tensor_data(chunk.data(), chunk.size());
    }
    if (spec.verbose)
      std::fprintf(stderr, "swapmoe-forge: [%zu/%zu] %-34s %-5s%s\n", i + 1, written.size(), s.name.c_str(),
                   ggml_type_name(type), direct ? " (fast)" : "");
  }
  out.finish();
  ForgeResult r;
  r.paths = out.paths();
  r.file_bytes = out.file_size();
  r.n_tensors = written.size();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace swapmoe::forge
