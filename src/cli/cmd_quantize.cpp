// `swapmoe quantize IN.gguf OUT.gguf TYPE`: rewrites a model with new tensor types,
// choosing per-tensor types like llama-quantize (see quant_mix.h). Streaming: one tensor
// at a time, in chunks of rows, so memory stays at a few tens of MB whatever the model
// size; rows are converted on all threads. Metadata is copied, with general.file_type
// set to llama.cpp's ftype value and general.quantization_version to 2.

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
#include "gguf/gguf_writer.h"
#include "util/atomic_output.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace swapmoe::cli {

namespace {

struct QuantizeOptions {
  std::string in, out, type;
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
  QuantTarget target = find_quant_target(o.type);  // a bad TYPE fails before any I/O
  if (o.pure) target.pure = true;
  auto in = GgufFile::open(o.in);
  // By device and inode, so ./a.gguf, a symlink or a hard link to IN are refused too.
  if (o.in == o.out) fail("the output file must differ from the input file ", o.in);
  refuse_same_file(o.out, {o.in});

  std::vector<MixTensor> tensors;
  for (const auto& t : in->tensors()) tensors.push_back({t.name, t.ne, t.type});
  const MixPlan plan = plan_quant_types(target, mix_model_from_gguf(*in), tensors);
  for (const auto& n : plan.notes) std::fprintf(stderr, "swapmoe: %s\n", n.c_str());

  GgufWriter w;
  w.copy_metadata(*in);
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", target.ftype);
  // A split part becomes a whole file of its own.
  w.remove("split.no");
  w.remove("split.count");
  w.remove("split.tensors.count");
  for (size_t i = 0; i < tensors.size(); ++i) w.add_tensor_info(tensors[i].name, plan.types[i], tensors[i].ne);
  w.begin(o.out);

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
      in->read_at(ti.offset + static_cast<uint64_t>(r0) * src_row, src_buf.data(), src_buf.size());
      if (dst_type == ti.type) {
        w.write_tensor_data(src_buf.data(), src_buf.size());
        continue;
      }
      f32.resize(static_cast<size_t>(n * ncols));
      dst_buf.resize(static_cast<size_t>(n) * dst_row);
      rows_to_float(ti.type, src_buf.data(), f32.data(), n, ncols, pool);
      rows_from_float(dst_type, f32.data(), dst_buf.data(), n, ncols, pool);
      w.write_tensor_data(dst_buf.data(), dst_buf.size());
    }
    auto& s = by_type[ggml_type_name(dst_type)];
    ++s.first;
    s.second += static_cast<uint64_t>(nrows) * dst_row;
    if (o.verbose)
      std::fprintf(stderr, "swapmoe: [%zu/%zu] %-36s %-5s -> %-5s\n", i + 1, tensors.size(), ti.name.c_str(),
                   ggml_type_name(ti.type), ggml_type_name(dst_type));
  }
  w.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::string types;
  for (const auto& [name, s] : by_type) types += cat(types.empty() ? "" : ", ", name, " x", s.first);
  std::fprintf(stderr, "swapmoe: quantized %s (%s) -> %s (%s) as %s in %.1f s; tensors: %s\n", o.in.c_str(),
               format_size(in->file_size()).c_str(), o.out.c_str(), format_size(w.file_size()).c_str(), target.name, secs,
               types.c_str());
}

}  // namespace

Command add_quantize_command(CLI::App& app) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* sub = app.add_subcommand(
      "quantize", "Rewrite a GGUF model with new tensor types (llama.cpp's per-tensor mixes for *_K_M, Q2_K, ...)");
  sub->add_option("IN", o->in, "Input GGUF model")->required();
  sub->add_option("OUT", o->out, "Output GGUF file (written to OUT.tmp, renamed when complete)")->required();
  sub->add_option("TYPE", o->type, "Target: " + quant_target_names() +
                                        ". Q3_K/Q4_K/Q5_K are pure (every quantizable tensor that type); the other "
                                        "names follow llama-quantize's mixes")
      ->required();
  sub->add_option("-t,--threads", o->threads, "Worker threads (default: all cores)")->check(CLI::Range(0, 1 << 30));
  sub->add_flag("--pure", o->pure, "No mix: every quantizable tensor gets the base type (llama-quantize --pure)");
  sub->add_flag("-v,--verbose", o->verbose, "Log every tensor");
  return {sub, [o] { quantize(*o); }};
}

}  // namespace swapmoe::cli
