// llama-driver: a minimal benchmark driver for the prebuilt llama.cpp that ships inside
// node-llama-cpp (libllama.v0.4.0.so + libggml*.so). It exists because node-llama-cpp
// cannot switch off llama.cpp's weight repacking, and the memory-budget comparison needs
// llama.cpp "with mmap and --no-repack" (llama_model_params.use_extra_bufts = false): with
// repacking, Q4_K weights are copied into anonymous memory and a model larger than the
// memory limit is OOM-killed.
//
// It loads a GGUF, evaluates a prompt of N tokens, then decodes greedily and prints one
// JSON object on stdout:
//   {"load_s":..,"prompt_tokens":N,"prompt_s":..,"prompt_tps":..,"decode_tokens":M,
//    "decode_s":..,"decode_tps":..,"cpu_backend":"libggml-cpu-haswell.so",...}
// Timings use steady_clock and exclude loading. The prompt is a fixed English text
// tokenized by the model's own vocabulary and repeated or cut to exactly N tokens (or the
// text of --prompt-file), so swapmoe can be given the very same text.
//
// For numerical comparisons with swapmoe (issue 2's quantized-model divergences) it can
// also: take a literal --prompt; feed the prompt one token per llama_decode call
// (--token-by-token, so llama.cpp runs its matrix-vector kernels instead of its batched
// GEMM ones, as swapmoe's decode loop does); feed given ids instead of its own argmax
// (--force-ids, teacher forcing, to compare later steps after a divergence); write every
// step's logits (--logits-out, float32 rows of n_vocab); and compute the mean negative
// log-likelihood of a text in one window (--eval FILE, swapmoe eval's definition).
//
// The headers come from the llama.cpp git bundle of the same npm package (tag v0.4.0), so
// the struct layouts match the library; main() additionally checks the default parameter
// structs the library returns against the values that tag's source sets, which catches a
// header/library mismatch before anything is loaded.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>

#include "ggml-backend.h"
#include "llama.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string model;
  std::string backend_dir;  // where libggml-cpu-*.so live; empty = next to libllama (from /proc/self/maps)
  std::string prompt_file;
  int threads = 2;
  int ctx = 0;  // 0 = prompt + n_predict rounded up
  int n_predict = 32;
  int prompt_tokens = 0;  // 0 = the whole --prompt-file, or 8 tokens of built-in text
  bool mmap = true;
  bool repack = true;
  bool verbose = false;
  bool print_prompt = false;
  std::string prompt_text;   // --prompt: literal prompt (add_special and parse_special on)
  bool token_by_token = false;
  std::string logits_out;
  std::vector<int> force_ids;
  std::string eval_file;
  int max_tokens = 0;  // --eval: 0 = the whole text
  std::string dump_matmuls;  // --dump-matmuls: weight products of the last prompt token
  // --flash-attn auto|on|off. llama.cpp's default is auto, which on the CPU means ON; the
  // conformance reference (llama_ref.mjs) runs with it off, and so must any numerical
  // comparison with swapmoe (the CPU flash-attention kernel accumulates V in F16).
  int flash_attn = LLAMA_FLASH_ATTN_TYPE_AUTO;
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "llama-driver: %s\n", msg.c_str());
  std::exit(1);
}

void usage() {
  std::fprintf(stderr,
               "usage: llama-driver -m MODEL [--threads N] [--ctx N] [--mmap|--no-mmap] [--no-repack]\n"
               "                    [--n-predict N] [--prompt-tokens N] [--prompt-file F]\n"
               "                    [--backend-dir DIR] [--verbose]\n"
               "                    [--prompt TEXT] [--token-by-token] [--logits-out F] [--force-ids 1,2,..]\n"
               "                    [--flash-attn auto|on|off] [--dump-matmuls F]   (with --token-by-token: every weight x activation\n"
               "                    product of the last prompt token, for swapmoe-probe --check-matmuls)\n"
               "       llama-driver -m MODEL --eval TEXT_FILE [--max-tokens N] [--token-by-token] [--no-repack]\n"
               "         prints {\"tokens\",\"nll\",\"ppl\"} of the text in one window (BOS added, no special\n"
               "         parsing), like swapmoe eval\n"
               "       llama-driver -m MODEL --prompt-tokens N --print-prompt\n"
               "         prints the text of the N-token prompt (without BOS) and exits, so another\n"
               "         engine can be given the same text\n");
}

int to_int(const char* flag, const char* v) {
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || x < 0 || x > (1L << 30)) die(std::string("bad value for ") + flag + ": '" + v + "'");
  return static_cast<int>(x);
}

std::vector<int> to_int_list(const char* v) {
  std::vector<int> out;
  std::string s(v);
  size_t i = 0;
  while (i < s.size()) {
    const size_t j = s.find(',', i);
    const std::string item = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    out.push_back(to_int("--force-ids", item.c_str()));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "-m" || a == "--model") o.model = next();
    else if (a == "-t" || a == "--threads") o.threads = to_int("--threads", next());
    else if (a == "-c" || a == "--ctx") o.ctx = to_int("--ctx", next());
    else if (a == "-n" || a == "--n-predict") o.n_predict = to_int("--n-predict", next());
    else if (a == "--prompt-tokens") o.prompt_tokens = to_int("--prompt-tokens", next());
    else if (a == "--prompt-file") o.prompt_file = next();
    else if (a == "--backend-dir") o.backend_dir = next();
    else if (a == "--mmap") o.mmap = true;
    else if (a == "--no-mmap") o.mmap = false;
    else if (a == "--no-repack") o.repack = false;
    else if (a == "--repack") o.repack = true;
    else if (a == "-v" || a == "--verbose") o.verbose = true;
    else if (a == "--print-prompt") o.print_prompt = true;
    else if (a == "--prompt") o.prompt_text = next();
    else if (a == "--token-by-token") o.token_by_token = true;
    else if (a == "--logits-out") o.logits_out = next();
    else if (a == "--force-ids") o.force_ids = to_int_list(next());
    else if (a == "--eval") o.eval_file = next();
    else if (a == "--max-tokens") o.max_tokens = to_int("--max-tokens", next());
    else if (a == "--dump-matmuls") o.dump_matmuls = next();
    else if (a == "--flash-attn") {
      const std::string v = next();
      if (v == "auto") o.flash_attn = LLAMA_FLASH_ATTN_TYPE_AUTO;
      else if (v == "on") o.flash_attn = LLAMA_FLASH_ATTN_TYPE_ENABLED;
      else if (v == "off") o.flash_attn = LLAMA_FLASH_ATTN_TYPE_DISABLED;
      else die("--flash-attn must be auto, on or off");
    }
    else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      usage();
      die("unknown argument '" + a + "'");
    }
  }
  if (o.model.empty()) {
    usage();
    die("-m MODEL is required");
  }
  if (o.threads < 1) die("--threads must be at least 1");
  if (o.prompt_tokens == 0 && o.prompt_file.empty() && o.prompt_text.empty()) o.prompt_tokens = 8;
  return o;
}

// The directory of a shared object already mapped into this process whose file name
// contains `needle`, found through /proc/self/maps (dladdr would need a symbol address
// in that library, and the CPU backend is not linked at all).
std::string mapped_library(const std::string& needle, bool want_dir) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const auto base = path.rfind('/');
    if (path.find(needle, base) == std::string::npos) continue;
    return want_dir ? path.substr(0, base) : path.substr(base + 1);
  }
  return "";
}

bool g_verbose = false;
void log_cb(enum ggml_log_level level, const char* text, void*) {
  if (g_verbose || level >= GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

// Compares the default parameter structs returned by the library with the values that
// the v0.4.0 source assigns. A header from another version would shift the fields and
// make these read garbage (or the by-value return would already overrun).
std::string abi_check() {
  std::ostringstream bad;
  const llama_model_params mp = llama_model_default_params();
  if (mp.devices != nullptr || mp.tensor_buft_overrides != nullptr) bad << "model.pointers ";
  if (mp.n_gpu_layers != -1) bad << "model.n_gpu_layers=" << mp.n_gpu_layers << ' ';
  if (mp.split_mode != LLAMA_SPLIT_MODE_LAYER) bad << "model.split_mode ";
  if (mp.load_mode != LLAMA_LOAD_MODE_AUTO) bad << "model.load_mode=" << static_cast<int>(mp.load_mode) << ' ';
  if (mp.lazy_mode != LLAMA_LAZY_MODE_AUTO) bad << "model.lazy_mode ";
  if (mp.main_gpu != 0 || mp.tensor_split != nullptr || mp.progress_callback != nullptr || mp.kv_overrides != nullptr)
    bad << "model.middle ";
  if (mp.vocab_only || mp.check_tensors || !mp.use_extra_bufts || mp.no_host || mp.no_alloc || mp.load_mtp)
    bad << "model.bools ";

  const llama_context_params cp = llama_context_default_params();
  if (cp.n_ctx != 512 || cp.n_batch != 2048 || cp.n_ubatch != 512 || cp.n_seq_max != 1) bad << "ctx.sizes ";
  if (cp.n_outputs_max != 0 || cp.n_outputs_max_per_seq != 1) bad << "ctx.outputs ";
  if (cp.ctx_type != LLAMA_CONTEXT_TYPE_DEFAULT || cp.flash_attn_type != LLAMA_FLASH_ATTN_TYPE_AUTO) bad << "ctx.enums ";
  if (cp.yarn_ext_factor != -1.0f || cp.defrag_thold != -1.0f) bad << "ctx.floats ";
  if (cp.type_k != GGML_TYPE_F16 || cp.type_v != GGML_TYPE_F16) bad << "ctx.kv_types ";
  if (cp.abort_callback != nullptr || cp.embeddings || !cp.offload_kqv || !cp.no_perf || !cp.swa_full || cp.kv_unified)
    bad << "ctx.tail ";
  if (cp.samplers != nullptr || cp.n_samplers != 0 || cp.ctx_other != nullptr) bad << "ctx.samplers ";
  return bad.str();
}

// Ordinary prose, so that the prompt tokenizes like real text would (a repeated single
// token would hit degenerate paths in attention and in expert routing).
const char* kPromptText =
    "The history of the river town begins with a ferry, a mill and a handful of families who "
    "traded grain for salt. Over two centuries the crossing became a bridge, the mill a "
    "factory, and the families a council that argued every spring about the price of bread, "
    "the height of the levee and whether the school should teach Latin or accounting. ";

std::vector<llama_token> make_prompt(const llama_vocab* vocab, const Options& o) {
  std::string text;
  if (!o.prompt_text.empty()) {
    text = o.prompt_text;
  } else if (!o.prompt_file.empty()) {
    std::ifstream f(o.prompt_file, std::ios::binary);
    if (!f) die("cannot open --prompt-file " + o.prompt_file);
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  } else {
    // Enough copies that the text surely exceeds N tokens (a copy is > 60 tokens).
    for (int i = 0; i <= o.prompt_tokens / 40; ++i) text += kPromptText;
  }
  const int32_t max = static_cast<int32_t>(text.size()) + 16;
  std::vector<llama_token> ids(static_cast<size_t>(max));
  const int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(), max,
                                   /*add_special=*/true, /*parse_special=*/true);
  if (n < 0) die("tokenization failed");
  ids.resize(static_cast<size_t>(n));
  if (o.prompt_tokens > 0) {
    if (static_cast<int>(ids.size()) < o.prompt_tokens) die("prompt text tokenized to fewer tokens than requested");
    ids.resize(static_cast<size_t>(o.prompt_tokens));
  }
  if (ids.empty()) die("empty prompt");
  return ids;
}

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// --dump-matmuls: while g_dump is open, every MUL_MAT whose first operand is a model weight
// (name "*.weight") and every MUL_MAT_ID (experts) is written as records
//   u32 name_len, name, i32 expert (-1: a 2-D weight), u32 K, u32 M, K floats in, M floats out
// one per token column (per chosen expert for MUL_MAT_ID), in graph order. The inputs are
// llama.cpp's own F32 activations, so another engine can redo each product on the very same
// input and compare outputs: a per-kernel check that no logits comparison can give.
std::FILE* g_dump = nullptr;

float at_f32(const ggml_tensor* t, int64_t i0, int64_t i1, int64_t i2) {
  const char* p = static_cast<const char*>(t->data) + i0 * t->nb[0] + i1 * t->nb[1] + i2 * t->nb[2];
  float v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void dump_record(const char* name, int32_t expert, const ggml_tensor* in, int64_t in1, int64_t in2, const ggml_tensor* out,
                 int64_t out1, int64_t out2) {
  const uint32_t len = static_cast<uint32_t>(std::strlen(name));
  const uint32_t k = static_cast<uint32_t>(in->ne[0]), m = static_cast<uint32_t>(out->ne[0]);
  std::vector<float> buf;
  for (uint32_t i = 0; i < k; ++i) buf.push_back(at_f32(in, i, in1, in2));
  for (uint32_t i = 0; i < m; ++i) buf.push_back(at_f32(out, i, out1, out2));
  bool ok = std::fwrite(&len, 4, 1, g_dump) == 1 && std::fwrite(name, 1, len, g_dump) == len &&
            std::fwrite(&expert, 4, 1, g_dump) == 1 && std::fwrite(&k, 4, 1, g_dump) == 1 &&
            std::fwrite(&m, 4, 1, g_dump) == 1 && std::fwrite(buf.data(), 4, buf.size(), g_dump) == buf.size();
  if (!ok) die("write error on --dump-matmuls");
}

bool dump_cb(ggml_tensor* t, bool ask, void*) {
  const bool mm = t->op == GGML_OP_MUL_MAT || t->op == GGML_OP_MUL_MAT_ID;
  if (ask) return g_dump != nullptr && mm;
  if (g_dump == nullptr || !mm) return true;
  const ggml_tensor* w = t->src[0];
  const ggml_tensor* x = t->src[1];
  if (x->type != GGML_TYPE_F32 || t->type != GGML_TYPE_F32) return true;
  if (t->op == GGML_OP_MUL_MAT) {
    const size_t n = std::strlen(w->name);
    if (n < 7 || std::strcmp(w->name + n - 7, ".weight") != 0) return true;  // attention products, not weights
    for (int64_t c = 0; c < x->ne[1]; ++c) dump_record(w->name, -1, x, c, 0, t, c, 0);
    return true;
  }
  // MUL_MAT_ID: ids [n_used, n_tokens] (I32); x [K, 1 or n_used, n_tokens]; t [M, n_used, n_tokens].
  const ggml_tensor* ids = t->src[2];
  for (int64_t tok = 0; tok < t->ne[2]; ++tok)
    for (int64_t s = 0; s < ids->ne[0]; ++s) {
      int32_t e;
      std::memcpy(&e, static_cast<const char*>(ids->data) + s * ids->nb[0] + tok * ids->nb[1], sizeof e);
      dump_record(w->name, e, x, s % x->ne[1], tok, t, s, tok);
    }
  return true;
}

// ln(p1 / p2) of the two largest logits (the top-2 gap as llama_ref.mjs reports it) and the
// argmax, ties to the lowest id (as llama_ref.mjs and swapmoe's greedy sampler).
struct Top2 {
  int id = 0;
  double gap = 0.0;
};
Top2 top2(const float* logits, int n_vocab) {
  int best = 0;
  for (int i = 1; i < n_vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  float second = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n_vocab; ++i)
    if (i != best && logits[i] > second) second = logits[i];
  return {best, static_cast<double>(logits[best]) - static_cast<double>(second)};
}

double log_sum_exp(const float* logits, int n_vocab) {
  double mx = logits[0];
  for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (int i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return mx + std::log(sum);
}

// --eval: the mean negative log-likelihood of the text's tokens 1..n-1, each given all the
// tokens before it, in one window: one batch (llama.cpp's batched kernels) or, with
// --token-by-token, one llama_decode per token (its matrix-vector kernels).
int run_eval(llama_model* model, const Options& o) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::ifstream f(o.eval_file, std::ios::binary);
  if (!f) die("cannot open --eval " + o.eval_file);
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const int32_t max = static_cast<int32_t>(text.size()) + 16;
  std::vector<llama_token> ids(static_cast<size_t>(max));
  const int32_t nt = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(), max,
                                    /*add_special=*/true, /*parse_special=*/false);
  if (nt < 2) die("--eval text has fewer than 2 tokens");
  ids.resize(static_cast<size_t>(nt));
  if (o.max_tokens > 0 && static_cast<int>(ids.size()) > o.max_tokens) ids.resize(static_cast<size_t>(o.max_tokens));
  const int n = static_cast<int>(ids.size());

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(o.ctx > 0 ? o.ctx : ((n + 255) / 256) * 256);
  if (static_cast<int>(cp.n_ctx) < n) die("--ctx is smaller than the --eval text");
  cp.n_batch = cp.n_ctx;
  cp.n_ubatch = cp.n_ctx;
  cp.n_threads = o.threads;
  cp.n_threads_batch = o.threads;
  cp.no_perf = true;
  cp.flash_attn_type = static_cast<llama_flash_attn_type>(o.flash_attn);
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) die("failed to create a context (rerun with --verbose)");
  const int n_vocab = llama_vocab_n_tokens(vocab);
  double sum = 0.0;
  if (o.token_by_token) {
    for (int i = 0; i + 1 < n; ++i) {
      if (llama_decode(ctx, llama_batch_get_one(&ids[static_cast<size_t>(i)], 1)) != 0) die("llama_decode failed");
      const float* l = llama_get_logits_ith(ctx, -1);
      sum += log_sum_exp(l, n_vocab) - l[ids[static_cast<size_t>(i + 1)]];
    }
  } else {
    llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; ++i) {
      b.token[i] = ids[static_cast<size_t>(i)];
      b.pos[i] = i;
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = 0;
      b.logits[i] = 1;
    }
    b.n_tokens = n;
    if (llama_decode(ctx, b) != 0) die("llama_decode failed on the --eval batch");
    for (int i = 0; i + 1 < n; ++i) {
      const float* l = llama_get_logits_ith(ctx, i);
      sum += log_sum_exp(l, n_vocab) - l[ids[static_cast<size_t>(i + 1)]];
    }
    llama_batch_free(b);
  }
  const double nll = sum / (n - 1);
  std::printf("{\"tokens\":%d,\"nll\":%.9f,\"ppl\":%.9g,\"repack\":%s,\"token_by_token\":%s}\n", n - 1, nll,
              std::exp(nll), o.repack ? "true" : "false", o.token_by_token ? "true" : "false");
  llama_free(ctx);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  g_verbose = o.verbose;
  llama_log_set(log_cb, nullptr);

  // Linking libllama maps libggml-base next to it; the CPU backend variants live in the
  // same directory and are loaded by score (the best one this CPU supports wins).
  if (o.backend_dir.empty()) o.backend_dir = mapped_library("libggml-base", /*want_dir=*/true);
  if (o.backend_dir.empty()) die("cannot locate libggml-base in /proc/self/maps; pass --backend-dir");
  ggml_backend_load_all_from_path(o.backend_dir.c_str());
  if (ggml_backend_dev_count() == 0) die("no ggml backend could be loaded from " + o.backend_dir);
  llama_backend_init();

  const std::string abi = abi_check();
  if (!abi.empty()) die("ABI mismatch between llama.h and the library: " + abi);

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  mp.vocab_only = o.print_prompt;
  mp.load_mode = o.mmap ? LLAMA_LOAD_MODE_MMAP : LLAMA_LOAD_MODE_NONE;
  mp.use_extra_bufts = o.repack;
  // A callback that only says "go on", so llama.cpp does not print its progress dots.
  mp.progress_callback = [](float, void*) { return true; };

  const auto t_load = Clock::now();
  llama_model* model = llama_model_load_from_file(o.model.c_str(), mp);
  if (model == nullptr) die("failed to load " + o.model + " (rerun with --verbose)");
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const std::vector<llama_token> prompt = make_prompt(vocab, o);
  const int n_prompt = static_cast<int>(prompt.size());
  if (o.print_prompt) {
    std::string text(static_cast<size_t>(n_prompt) * 64 + 64, '\0');
    const int32_t len = llama_detokenize(vocab, prompt.data(), n_prompt, text.data(), static_cast<int32_t>(text.size()),
                                         /*remove_special=*/true, /*unparse_special=*/false);
    if (len < 0) die("detokenization failed");
    text.resize(static_cast<size_t>(len));
    std::fwrite(text.data(), 1, text.size(), stdout);
    llama_model_free(model);
    return 0;
  }
  if (!o.eval_file.empty()) {
    const int rc = run_eval(model, o);
    llama_model_free(model);
    llama_backend_free();
    return rc;
  }

  llama_context_params cp = llama_context_default_params();
  const int need = n_prompt + o.n_predict + 1;
  cp.n_ctx = static_cast<uint32_t>(o.ctx > 0 ? o.ctx : ((need + 255) / 256) * 256);
  if (static_cast<int>(cp.n_ctx) < need) die("--ctx is smaller than prompt + n-predict");
  cp.n_threads = o.threads;
  cp.n_threads_batch = o.threads;
  cp.no_perf = true;
  cp.flash_attn_type = static_cast<llama_flash_attn_type>(o.flash_attn);
  if (!o.dump_matmuls.empty()) {
    if (!o.token_by_token) die("--dump-matmuls needs --token-by-token");
    cp.cb_eval = dump_cb;
    cp.cb_eval_user_data = nullptr;
  }
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) die("failed to create a context (rerun with --verbose)");
  const double load_s = secs(t_load, Clock::now());

  // Prompt: n_batch-sized calls, like llama.cpp's own tools (1 with --token-by-token).
  std::vector<llama_token> buf(prompt);
  const int n_batch = o.token_by_token ? 1 : static_cast<int>(llama_n_batch(ctx));
  const int n_vocab = llama_vocab_n_tokens(vocab);
  std::FILE* logits_file = nullptr;
  if (!o.logits_out.empty()) {
    logits_file = std::fopen(o.logits_out.c_str(), "wb");
    if (logits_file == nullptr) die("cannot write --logits-out " + o.logits_out);
  }
  std::vector<double> margins;
  const auto t_prompt = Clock::now();
  for (int i = 0; i < n_prompt; i += n_batch) {
    const int n = std::min(n_batch, n_prompt - i);
    if (!o.dump_matmuls.empty() && i + n == n_prompt) {
      g_dump = std::fopen(o.dump_matmuls.c_str(), "wb");
      if (g_dump == nullptr) die("cannot write --dump-matmuls " + o.dump_matmuls);
    }
    if (llama_decode(ctx, llama_batch_get_one(buf.data() + i, n)) != 0) die("llama_decode failed on the prompt");
  }
  const double prompt_s = secs(t_prompt, Clock::now());
  if (g_dump != nullptr) {
    if (std::fclose(g_dump) != 0) die("write error on --dump-matmuls");
    g_dump = nullptr;
  }

  // Decode: n_predict sampled tokens, n_predict - 1 forward passes after the prompt
  // (the same count swapmoe's `run` reports). End-of-generation does not stop it.
  std::vector<llama_token> out;
  int n_decode = 0;
  const auto t_decode = Clock::now();
  for (int i = 0; i < o.n_predict; ++i) {
    // Greedy: the argmax of the last position's logits (lowest id on a tie), or the
    // --force-ids token at this step (teacher forcing; "ids" then lists those).
    const float* logits = llama_get_logits_ith(ctx, -1);
    const Top2 t = top2(logits, n_vocab);
    margins.push_back(t.gap);
    if (logits_file != nullptr &&
        std::fwrite(logits, sizeof(float), static_cast<size_t>(n_vocab), logits_file) != static_cast<size_t>(n_vocab))
      die("write error on --logits-out " + o.logits_out);
    llama_token tok = static_cast<size_t>(i) < o.force_ids.size() ? o.force_ids[static_cast<size_t>(i)] : t.id;
    out.push_back(tok);
    if (i + 1 == o.n_predict) break;
    if (llama_decode(ctx, llama_batch_get_one(&tok, 1)) != 0) die("llama_decode failed while generating");
    ++n_decode;
  }
  const double decode_s = secs(t_decode, Clock::now());

  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const std::string cpu_lib = mapped_library("libggml-cpu", /*want_dir=*/false);

  std::printf(
      "{\"model\":\"%s\",\"threads\":%d,\"n_ctx\":%u,\"mmap\":%s,\"repack\":%s,\"cpu_backend\":\"%s\","
      "\"load_s\":%.3f,\"prompt_tokens\":%d,\"prompt_s\":%.4f,\"prompt_tps\":%.3f,"
      "\"decode_tokens\":%d,\"decode_s\":%.4f,\"decode_tps\":%.3f,\"max_rss_mib\":%.1f,\"majflt\":%ld,"
      "\"first_ids\":[",
      o.model.c_str(), o.threads, llama_n_ctx(ctx), o.mmap ? "true" : "false", o.repack ? "true" : "false",
      cpu_lib.c_str(), load_s, n_prompt, prompt_s, prompt_s > 0 ? n_prompt / prompt_s : 0.0, n_decode, decode_s,
      decode_s > 0 ? n_decode / decode_s : 0.0, static_cast<double>(ru.ru_maxrss) / 1024.0, ru.ru_majflt);
  for (size_t i = 0; i < out.size() && i < 8; ++i) std::printf("%s%d", i ? "," : "", out[i]);
  std::printf("],\"ids\":[");
  for (size_t i = 0; i < out.size(); ++i) std::printf("%s%d", i ? "," : "", out[i]);
  std::printf("],\"margins\":[");
  for (size_t i = 0; i < margins.size(); ++i) std::printf("%s%.6g", i ? "," : "", margins[i]);
  std::printf("],\"token_by_token\":%s}\n", o.token_by_token ? "true" : "false");
  if (logits_file != nullptr && std::fclose(logits_file) != 0) die("write error on --logits-out " + o.logits_out);

  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
