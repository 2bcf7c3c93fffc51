// `swapmoe quantize IN.gguf OUT.gguf TYPE`: rewrites a model with new tensor types,
// choosing per-tensor types like llama-quantize (see quant_mix.h). Streaming: one tensor
// at a time, in chunks of rows, so memory stays at a few tens of MB whatever the model
// size; rows are converted on all threads. Metadata is copied, with general.file_type
// set to llama.cpp's ftype value and general.quantization_version to 2. IN may be the
// first part of a split model; --split-max-size / --split-max-tensors write the output as
// a split set in gguf-split's format (gguf/gguf_split_writer.h).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "cli/commands.h"
#include "cli/quant_mix.h"
#include "cli/row_convert.h"
#include "cli/size_parse.h"
#include "gguf/gguf.h"
#include "gguf/gguf_split_writer.h"
#include "gguf/gguf_writer.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace swapmoe::cli {

namespace {

struct QuantizeOptions {
  std::string in, out, type;
  std::string split_max_size;
  uint64_t split_max_tensors = 0;
  int threads = 0;
  bool pure = false;
  bool verbose = false;
};

// Rows converted per step: bounded so that the float buffer stays near 64 MiB.
int64_t rows_per_chunk(int64_t ncols) {
  const int64_t max_floats = int64_t(16) << 20;
  return std::max<int64_t>(1, max_floats / std::max<int64_t>(ncols, 1));
}

void quantize(const QuantizeOptions& o) {
  // COPY (as llama-quantize's): every tensor keeps its type and bytes, so with or without
  // --split-max-size it merges or re-splits a model without touching its weights.
  const bool copy = o.type == "COPY";
  QuantTarget target = copy ? QuantTarget{"COPY", GgmlType::F32, 0, true}
                            : find_quant_target(o.type);  // a bad TYPE fails before any I/O
  if (target.forge_only)
    fail("quantizing to ", target.name, " is not supported: llama.cpp needs an importance matrix for it "
         "(use llama-quantize --imatrix; swapmoe-forge --type ", target.name, " writes random test models)");
  if (o.pure) target.pure = true;
  auto in = GgufFile::open(o.in);
  if (o.in == o.out) fail("the output file must differ from the input file ", o.in);

  std::vector<MixTensor> tensors;
  for (const auto& t : in->tensors()) tensors.push_back({t.name, t.ne, t.type});
  MixPlan plan;
  if (copy)
    for (const MixTensor& t : tensors) plan.types.push_back(t.type);
  else
    plan = plan_quant_types(target, mix_model_from_gguf(*in), tensors);
  for (const auto& n : plan.notes) std::fprintf(stderr, "swapmoe: %s\n", n.c_str());

  GgufSplitLimits limits;
  if (!o.split_max_size.empty()) limits.max_bytes = parse_split_size(o.split_max_size);
  limits.max_tensors = o.split_max_tensors;

  GgufWriter w;
  w.copy_metadata(*in);
  if (!copy) {
    w.set_u32("general.quantization_version", 2);
    w.set_u32("general.file_type", target.ftype);
  }
  // A split part becomes a whole file of its own.
  w.remove("split.no");
  w.remove("split.count");
  w.remove("split.tensors.count");
  for (size_t i = 0; i < tensors.size(); ++i) w.add_tensor_info(tensors[i].name, plan.types[i], tensors[i].ne);
  GgufOutput out(w, o.out, limits);
  for (const std::string& p : out.paths())
    for (const std::string& q : in->part_paths())
      if (p == q) fail("the output file ", p, " would overwrite the input");
  out.begin();

  ThreadPool pool(o.threads);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<uint8_t> src_buf, dst_buf;
  std::vector<float> f32;
  std::map<std::string, std::pair<int, uint64_t>> by_type;  // type -> (count, bytes)
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorInfo& ti = in->tensors()[i];
    const GgmlType dst_type = plan.types[i];
    const int64_t ncols = ti.ne.empty() ? 1 : ti.ne[0];
    const int64_t nrows = ncols > 0 ? ti.n_elements() / ncols : 0;
    const size_t src_row = ggml_row_size(ti.type, ncols), dst_row = ggml_row_size(dst_type, ncols);
    const int64_t chunk = rows_per_chunk(ncols);
    for (int64_t r0 = 0; r0 < nrows; r0 += chunk) {
      const int64_t n = std::min(chunk, nrows - r0);
      src_buf.resize(static_cast<size_t>(n) * src_row);
      in->read_at(ti.part, ti.offset + static_cast<uint64_t>(r0) * src_row, src_buf.data(), src_buf.size());
      if (dst_type == ti.type) {
        out.write_tensor_data(src_buf.data(), src_buf.size());
        continue;
      }
      f32.resize(static_cast<size_t>(n * ncols));
      dst_buf.resize(static_cast<size_t>(n) * dst_row);
      rows_to_float(ti.type, src_buf.data(), f32.data(), n, ncols, pool);
      rows_from_float(dst_type, f32.data(), dst_buf.data(), n, ncols, pool);
      out.write_tensor_data(dst_buf.data(), dst_buf.size());
    }
    auto& s = by_type[ggml_type_name(dst_type)];
    ++s.first;
    s.second += static_cast<uint64_t>(nrows) * dst_row;
    if (o.verbose)
      std::fprintf(stderr, "swapmoe: [%zu/%zu] %-36s %-5s -> %-5s\n", i + 1, tensors.size(), ti.name.c_str(),
                   ggml_type_name(ti.type), ggml_type_name(dst_type));
  }
  out.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::string types;
  for (const auto& [name, s] : by_type) types += cat(types.empty() ? "" : ", ", name, " x", s.first);
  std::fprintf(stderr, "swapmoe: quantized %s (%s) -> %s (%s) as %s in %.1f s; tensors: %s\n", o.in.c_str(),
               format_size(in->file_size()).c_str(), out.paths()[0].c_str(), format_size(out.file_size()).c_str(), target.name,
               secs, types.c_str());
  if (out.split()) {
    const std::vector<size_t> counts = out.part_tensor_counts();
    std::fprintf(stderr, "swapmoe: wrote %zu parts:", out.paths().size());
    for (size_t i = 0; i < counts.size(); ++i) std::fprintf(stderr, " %s (%zu tensors)", out.paths()[i].c_str(), counts[i]);
    std::fprintf(stderr, "\n");
  }
}

}  // namespace

Command add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* sub = app.add_subcommand(
      "quantize", "Rewrite a GGUF model with new tensor types (llama.cpp's per-tensor mixes for *_K_M, Q2_K, ...)");
  sub->add_option("IN", o->in, "Input GGUF model (or the first part of a split model)")->required();
  sub->add_option("OUT", o->out,
                  "Output GGUF file (written to OUT.tmp, renamed when complete); split output is named "
                  "OUT-00001-of-0000N.gguf (a trailing .gguf of OUT is dropped)")
      ->required();
  sub->add_option("TYPE", o->type, "Target: " + quant_target_names() +
                                        ". Q3_K/Q4_K/Q5_K are pure (every quantizable tensor that type); the other "
                                        "names follow llama-quantize's mixes. COPY keeps every tensor as it is (to "
                                        "merge a split model, or split one with --split-max-size)")
      ->required();
  sub->add_option("-t,--threads", o->threads, "Worker threads (default: all cores)")->check(CLI::Range(0, 1 << 30));
  auto* by_size = sub->add_option("--split-max-size", o->split_max_size,
                                   "Write a split model (gguf-split's format): at most SIZE of tensor data per part, "
                                   "N followed by M (10^6 bytes) or G (10^9), e.g. 500M, 2G; a tensor never spans parts");
  sub->add_option("--split-max-tensors", o->split_max_tensors, "Write a split model with at most N tensors per part")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 31))
      ->excludes(by_size);
  sub->add_flag("--pure", o->pure, "No mix: every quantizable tensor gets the base type (llama-quantize --pure)");
  sub->add_flag("-v,--verbose", o->verbose, "Log every tensor");
  return {sub, [o] { quantize(*o); }};
}

}  // namespace swapmoe::cli
