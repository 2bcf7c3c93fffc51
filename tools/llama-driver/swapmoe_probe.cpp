// swapmoe-probe: the swapmoe side of llama-driver's numerical comparison mode. It runs a
// greedy continuation exactly as `swapmoe run --temp 0 --print-ids` does (prompt with
// add_special and parse_special, one forward per token) and prints the same JSON fields as
// llama-driver (ids, margins = top-2 logit gap per step), optionally with teacher forcing
// (--force-ids) and every step's logits as float32 rows (--logits-out). Comparing the
// logits of both engines step by step says how far apart they are before a greedy flip,
// which `run --print-ids` alone cannot show.
//
//   swapmoe-probe MODEL PROMPT N [--threads T] [--ctx C] [--force-ids 1,2,..] [--logits-out F]
//   swapmoe-probe --check-matmuls MODEL DUMP
//     redoes every weight x activation product that `llama-driver --token-by-token
//     --dump-matmuls DUMP` recorded, with swapmoe's matvec on llama.cpp's own input, and
//     prints per weight the largest differences from llama.cpp's output (a kernel check,
//     free of everything upstream).
//
// Built by tools/llama-driver/build_probe.sh against a swapmoe build directory's static
// libraries (it is a diagnostic tool, not part of the CMake build).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "model/model.h"
#include "ops/matvec.h"
#include "util/error.h"

using namespace swapmoe;

namespace {

int to_int(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < 0 || x > (1L << 30)) fail("bad value for ", flag, ": '", v, "'");
  return static_cast<int>(x);
}

std::vector<int32_t> to_int_list(const std::string& v) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i <= v.size()) {
    const size_t j = v.find(',', i);
    out.push_back(to_int("--force-ids", v.substr(i, j == std::string::npos ? std::string::npos : j - i)));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

// Per weight name: records checked, largest |ours - llama.cpp|, largest relative to the
// row's scale (max |llama.cpp output| of that record), count of bitwise-equal outputs.
struct CheckStat {
  int records = 0;
  double max_abs = 0, max_rel = 0;
  int64_t equal = 0, total = 0;
};

int check_matmuls(const std::string& model_path, const std::string& dump_path) {
  auto gguf = GgufFile::open(model_path);
  std::FILE* f = std::fopen(dump_path.c_str(), "rb");
  if (f == nullptr) fail("cannot open ", dump_path);
  ThreadPool pool(1);
  std::map<std::string, std::vector<uint8_t>> cache;  // weight bytes by name
  std::map<std::string, CheckStat> stats;
  std::vector<std::string> order;
  for (;;) {
    uint32_t len = 0;
    if (std::fread(&len, 4, 1, f) != 1) break;
    std::string name(len, '\0');
    int32_t expert = 0;
    uint32_t k = 0, m = 0;
    if (std::fread(name.data(), 1, len, f) != len || std::fread(&expert, 4, 1, f) != 1 || std::fread(&k, 4, 1, f) != 1 ||
        std::fread(&m, 4, 1, f) != 1)
      fail(dump_path, ": truncated record");
    std::vector<float> x(k), ref(m), y(m);
    if (std::fread(x.data(), 4, k, f) != k || std::fread(ref.data(), 4, m, f) != m) fail(dump_path, ": truncated data");
    const GgufTensorInfo* t = gguf->find_tensor(name);
    if (t == nullptr) fail("no tensor ", name, " in ", model_path);
    if (t->ne[0] != k || t->ne[1] != m) fail(name, ": dump has K=", k, " M=", m, ", file has ", t->ne[0], " x ", t->ne[1]);
    auto& bytes = cache[name];
    if (bytes.empty()) {
      bytes.resize(t->nbytes);
      gguf->read_at(t->part, t->offset, bytes.data(), bytes.size());
    }
    MatrixRef w;
    w.type = t->type;
    w.cols = k;
    w.rows = m;
    w.data = bytes.data() + (expert >= 0 ? static_cast<size_t>(expert) * t->expert_bytes() : 0);
    matvec(w, x.data(), y.data(), pool);
    CheckStat& st = stats[name];
    if (st.records++ == 0) order.push_back(name);
    double scale = 0;
    for (uint32_t i = 0; i < m; ++i) scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
    for (uint32_t i = 0; i < m; ++i) {
      const double d = std::fabs(static_cast<double>(y[i]) - ref[i]);
      st.max_abs = std::max(st.max_abs, d);
      if (scale > 0) st.max_rel = std::max(st.max_rel, d / scale);
      st.equal += std::memcmp(&y[i], &ref[i], sizeof(float)) == 0;
      ++st.total;
    }
  }
  std::fclose(f);
  std::printf("%-36s %-7s %8s %12s %12s %14s\n", "weight", "type", "records", "max|diff|", "max rel", "bitwise equal");
  for (const auto& n : order) {
    const CheckStat& st = stats[n];
    std::printf("%-36s %-7s %8d %12.3g %12.3g %8lld/%lld\n", n.c_str(), ggml_type_name(gguf->find_tensor(n)->type),
                st.records, st.max_abs, st.max_rel, static_cast<long long>(st.equal), static_cast<long long>(st.total));
  }
  return 0;
}

int run(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--check-matmuls") return check_matmuls(argv[2], argv[3]);
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: swapmoe-probe MODEL PROMPT N [--threads T] [--ctx C] [--force-ids 1,2,..] [--logits-out F]\n");
    return 2;
  }
  const std::string path = argv[1];
  const std::string prompt_text = argv[2];
  const int n = to_int("N", argv[3]);
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 256;
  std::vector<int32_t> force;
  std::string logits_out;
  for (int i = 4; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) fail("missing value after ", a);
    const std::string v = argv[++i];
    if (a == "--threads") mo.n_threads = to_int(a, v);
    else if (a == "--ctx") mo.n_ctx = to_int(a, v);
    else if (a == "--force-ids") force = to_int_list(v);
    else if (a == "--logits-out") logits_out = v;
    else fail("unknown argument '", a, "'");
  }
  mo.prefetch = false;
  auto model = Model::load(path, mo);
  const std::vector<int32_t> prompt = model->tokenizer().encode(prompt_text, true, true);
  if (prompt.empty()) fail("empty prompt");
  const int n_vocab = static_cast<int>(model->config().n_vocab);
  std::FILE* lf = nullptr;
  if (!logits_out.empty() && (lf = std::fopen(logits_out.c_str(), "wb")) == nullptr) fail("cannot write ", logits_out);

  const float* logits = model->forward_batch(prompt, 0);
  int64_t pos = static_cast<int64_t>(prompt.size());
  std::vector<int32_t> ids;
  std::vector<double> margins;
  for (int i = 0; i < n; ++i) {
    int best = 0;
    for (int k = 1; k < n_vocab; ++k)
      if (logits[k] > logits[best]) best = k;
    float second = -std::numeric_limits<float>::infinity();
    for (int k = 0; k < n_vocab; ++k)
      if (k != best && logits[k] > second) second = logits[k];
    margins.push_back(static_cast<double>(logits[best]) - static_cast<double>(second));
    if (lf != nullptr && std::fwrite(logits, sizeof(float), static_cast<size_t>(n_vocab), lf) != static_cast<size_t>(n_vocab))
      fail("write error on ", logits_out);
    const int32_t id = static_cast<size_t>(i) < force.size() ? force[static_cast<size_t>(i)] : best;
    ids.push_back(id);
    if (i + 1 < n) logits = model->forward(id, pos++);
  }
  if (lf != nullptr && std::fclose(lf) != 0) fail("write error on ", logits_out);
  std::printf("{\"prompt_ids\":[");
  for (size_t i = 0; i < prompt.size(); ++i) std::printf("%s%d", i ? "," : "", prompt[i]);
  std::printf("],\"ids\":[");
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? "," : "", ids[i]);
  std::printf("],\"margins\":[");
  for (size_t i = 0; i < margins.size(); ++i) std::printf("%s%.6g", i ? "," : "", margins[i]);
  std::printf("]}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "swapmoe-probe: error: %s\n", e.what());
    return 1;
  }
}
