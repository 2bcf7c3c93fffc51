// swapmoe's matmul vs llama.cpp's own CPU kernels, on the same machine and shapes.
// llama.cpp is NOT linked or copied: the ggml shared libraries that node-llama-cpp ships
// (npm package @node-llama-cpp/linux-x64) are dlopen()ed at run time, and a one-node
// mul_mat graph is timed through ggml's public C API (declared by hand below from
// ggml.h / ggml-cpu.h / ggml-backend.h of the reference version). Two ggml variants:
//   plain  : weight tensor in ordinary memory (vec_dot path, what Q6_K always uses on x86);
//   repack : weight tensor in the CPU "repack" extra buffer (what llama.cpp uses by
//            default for weights it can repack: Q4_K, IQ4_NL and MXFP4 as 8x8 interleaved
//            rows on AVX2+).
// ours: quantize_activations + matmul (ggml's time includes its activation conversion).
// Each figure is the median of alternating runs; ratio = ggml / ours time (>1: we are faster).
// Usage: bench_kernels_ggml <dir with libggml-base.so and libggml-cpu-*.so> [cpu-variant=zen4] [threads...]
// Environment: SHAPE=substring, BATCHES="1 8", TYPES="MXFP4 IQ4_XS" (run every shape in each
// of these types instead of its own), BENCH_CPU_TIME=1.

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/matmul.h"
#include "util/fp16.h"

using namespace swapmoe;

namespace {

// --- the slice of ggml's C API used here (layouts from the reference headers)
struct GInitParams {
  size_t mem_size;
  void* mem_buffer;
  bool no_alloc;
};
struct GTpParams {
  bool cpumask[512];
  int n_threads;
  int prio;
  uint32_t poll;
  bool strict_cpu;
  bool paused;
};
struct GCPlan {
  size_t work_size;
  uint8_t* work_data;
  int n_threads;
  void* threadpool;
  void* abort_callback;
  void* abort_callback_data;
  bool use_ref;
};
struct Api {
  void* (*init)(GInitParams);
  void (*free_ctx)(void*);
  void* (*new_tensor_2d)(void*, int, int64_t, int64_t);
  void* (*mul_mat)(void*, void*, void*);
  void* (*new_graph)(void*);
  void (*build_forward_expand)(void*, void*);
  void* (*get_data)(const void*);
  size_t (*nbytes)(const void*);
  void* (*buft_alloc_buffer)(void*, size_t);
  int (*tensor_alloc)(void*, void*, void*);
  void* (*buffer_get_base)(void*);
  void (*tensor_set)(void*, const void*, size_t, size_t);
  const char* (*buft_name)(void*);
  GTpParams (*tp_params_default)(int);
  void (*cpu_init)();
  void* (*threadpool_new)(GTpParams*);
  GCPlan (*graph_plan)(const void*, int, void*);
  int (*graph_compute)(void*, GCPlan*);
  std::vector<void*>& (*extra_bufts)();
};

template <typename F>
void sym(void* lib, const char* name, F& out) {
  void* p = dlsym(lib, name);
  if (!p) {
    std::fprintf(stderr, "missing symbol %s\n", name);
    std::exit(1);
  }
  out = reinterpret_cast<F>(p);
}

Api load(const std::string& dir, const std::string& variant) {
  void* base = dlopen((dir + "/libggml-base.so").c_str(), RTLD_NOW | RTLD_GLOBAL);
  void* cpu = base ? dlopen((dir + "/libggml-cpu-" + variant + ".so").c_str(), RTLD_NOW | RTLD_GLOBAL) : nullptr;
  if (!cpu) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    std::exit(1);
  }
  Api a{};
  sym(base, "ggml_init", a.init);
  sym(base, "ggml_free", a.free_ctx);
  sym(base, "ggml_new_tensor_2d", a.new_tensor_2d);
  sym(base, "ggml_mul_mat", a.mul_mat);
  sym(base, "ggml_new_graph", a.new_graph);
  sym(base, "ggml_build_forward_expand", a.build_forward_expand);
  sym(base, "ggml_get_data", a.get_data);
  sym(base, "ggml_nbytes", a.nbytes);
  sym(base, "ggml_backend_buft_alloc_buffer", a.buft_alloc_buffer);
  sym(base, "ggml_backend_tensor_alloc", a.tensor_alloc);
  sym(base, "ggml_backend_buffer_get_base", a.buffer_get_base);
  sym(base, "ggml_backend_tensor_set", a.tensor_set);
  sym(base, "ggml_backend_buft_name", a.buft_name);
  sym(base, "ggml_threadpool_params_default", a.tp_params_default);
  sym(cpu, "ggml_cpu_init", a.cpu_init);
  sym(cpu, "ggml_threadpool_new", a.threadpool_new);
  sym(cpu, "ggml_graph_plan", a.graph_plan);
  sym(cpu, "ggml_graph_compute", a.graph_compute);
  sym(cpu, "_Z39ggml_backend_cpu_get_extra_buffer_typesv", a.extra_bufts);
  a.cpu_init();
  return a;
}

std::vector<uint8_t> random_matrix(GgmlType t, int64_t rows, int64_t cols, uint32_t seed) {
  const auto& info = ggml_type_info(t);
  std::vector<uint8_t> bytes(ggml_row_size(t, cols) * rows);
  std::mt19937 rng(seed);
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    const uint32_t v = rng();
    std::memcpy(bytes.data() + i, &v, 4);
  }
  std::vector<size_t> offs;
  if (t == GgmlType::Q8_0) offs = {0};
  if (t == GgmlType::Q4_K || t == GgmlType::Q5_K) offs = {0, 2};
  if (t == GgmlType::Q6_K) offs = {208};
  // Grid i-quants: the fp16 block scale leads the block (IQ1_M spreads it over the top nibbles
  // of its scale words; the random ones are finite, which is all timing needs).
  if (t == GgmlType::IQ2_XXS || t == GgmlType::IQ2_XS || t == GgmlType::IQ2_S || t == GgmlType::IQ3_XXS ||
      t == GgmlType::IQ3_S || t == GgmlType::IQ1_S)
    offs = {0};
  if (t == GgmlType::IQ4_NL || t == GgmlType::IQ4_XS) offs = {0};
  if (t == GgmlType::TQ1_0) offs = {52};
  if (t == GgmlType::TQ2_0) offs = {64};
  const uint16_t h = fp32_to_fp16(0.01f);
  for (int64_t b = 0; b < rows * cols / info.block_size; ++b) {
    for (size_t o : offs) std::memcpy(bytes.data() + b * info.type_size + o, &h, 2);
    if (t == GgmlType::MXFP4) bytes[b * info.type_size] = 120;  // E8M0 exponent: 2^-7
  }
  return bytes;
}

// BENCH_CPU_TIME=1: process CPU time instead of wall time. On a shared, overloaded machine
// wall time mostly measures the scheduler; CPU time (meaningful with one thread, where
// nothing spins) compares the kernels themselves.
double ms_of(const std::function<void()>& f) {
  static const bool cpu = std::getenv("BENCH_CPU_TIME") != nullptr;
  if (cpu) {
    timespec a{}, b{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    f();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    return 1e3 * static_cast<double>(b.tv_sec - a.tv_sec) + 1e-6 * static_cast<double>(b.tv_nsec - a.tv_nsec);
  }
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One ggml mul_mat graph: W [rows x cols] (ggml ne0 = cols) times X [B x cols].
struct GgmlCase {
  const Api& api;
  void* ctx = nullptr;
  void* wctx = nullptr;
  void* buffer = nullptr;
  void* graph = nullptr;
  GCPlan plan{};
  std::vector<uint8_t> work;
  GgmlCase(const Api& a, void* repack_buft, GgmlType t, int64_t rows, int64_t cols, int64_t batch,
           const std::vector<uint8_t>& w, const std::vector<float>& x, void* tp, int threads)
      : api(a) {
    // Room for the weights (plain case), the activations, the output and graph overhead.
    const size_t need = w.size() + (x.size() + static_cast<size_t>(batch * rows)) * sizeof(float);
    ctx = api.init({need + (size_t{16} << 20), nullptr, false});
    void* wt;
    if (repack_buft) {
      wctx = api.init({size_t{1} << 20, nullptr, true});
      wt = api.new_tensor_2d(wctx, static_cast<int>(t), cols, rows);
      buffer = api.buft_alloc_buffer(repack_buft, api.nbytes(wt) + 4096);
      api.tensor_alloc(buffer, wt, api.buffer_get_base(buffer));
      api.tensor_set(wt, w.data(), 0, w.size());  // repacks here
    } else {
      wt = api.new_tensor_2d(ctx, static_cast<int>(t), cols, rows);
      std::memcpy(api.get_data(wt), w.data(), w.size());
    }
    void* xt = api.new_tensor_2d(ctx, 0 /* F32 */, cols, batch);
    std::memcpy(api.get_data(xt), x.data(), x.size() * sizeof(float));
    void* y = api.mul_mat(ctx, wt, xt);
    graph = api.new_graph(ctx);
    api.build_forward_expand(graph, y);
    plan = api.graph_plan(graph, threads, tp);
    work.resize(plan.work_size + 64);
    plan.work_data = work.data();
  }
  void run() { api.graph_compute(graph, &plan); }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GGML_LIB_DIR [cpu-variant] [threads...]\n", argv[0]);
    return 2;
  }
  const Api api = load(argv[1], argc > 2 ? argv[2] : "zen4");
  std::vector<int> thread_counts;
  for (int i = 3; i < argc; ++i) thread_counts.push_back(std::atoi(argv[i]));
  if (thread_counts.empty()) thread_counts = {1, 2};
  void* repack = nullptr;
  for (void* b : api.extra_bufts())
    if (b && std::strstr(api.buft_name(b), "REPACK")) repack = b;
  std::printf("ggml extra buffer: %s; swapmoe isa %s\n", repack ? api.buft_name(repack) : "none", isa_name(best_isa()));
  struct Shape {
    const char* name;
    GgmlType type;
    int64_t rows, cols;
  };
  const Shape shapes[] = {{"qwen3 gate/up 768x2048", GgmlType::Q4_K, 768, 2048},
                          {"qwen3 down 2048x768", GgmlType::Q6_K, 2048, 768},
                          {"dsv3 gate/up 2048x7168", GgmlType::Q4_K, 2048, 7168},
                          {"dsv3 down 7168x2048", GgmlType::Q6_K, 7168, 2048},
                          {"dsv3 attn_out 7168x16384", GgmlType::Q4_K, 7168, 16384},
                          {"dsv3 q_b 24576x1536", GgmlType::Q4_K, 24576, 1536},
                          {"gpt-oss expert 2880x2880", GgmlType::MXFP4, 2880, 2880}};
  std::vector<GgmlType> type_override;
  if (const char* ts = std::getenv("TYPES")) {
    std::string all(ts);
    for (size_t at = 0; at < all.size();) {
      const size_t end = std::min(all.find(' ', at), all.size());
      if (end > at) {
        const auto t = ggml_type_from_name(all.substr(at, end - at));
        if (!t) {
          std::fprintf(stderr, "TYPES: unknown type %s\n", all.substr(at, end - at).c_str());
          return 2;
        }
        type_override.push_back(*t);
      }
      at = end + 1;
    }
  }
  // SHAPE=substring picks shapes; BATCHES="8 512" picks batch sizes (default 1 8 32 128 512).
  const char* shape_filter = std::getenv("SHAPE");
  std::vector<int64_t> batches;
  if (const char* b = std::getenv("BATCHES")) {
    for (char* e = nullptr;; b = e) {
      const long long v = std::strtoll(b, &e, 10);
      if (e == b) break;
      batches.push_back(v);
    }
  }
  if (batches.empty()) batches = {1, 8, 32, 128, 512};
  for (int threads : thread_counts) {
    GTpParams tpp = api.tp_params_default(threads);
    // ggml's workers poll for new work for tens of milliseconds after each graph (poll 50);
    // in an alternating benchmark they would spin through our turn and take our cores
    // (measured: our 2-thread Q4_K product at B=32 ran at 1.0x its 1-thread speed instead
    // of 2.0x). GGML_POLL=0 (default here) lets them sleep at once; it costs ggml one
    // wake-up per graph, which matters only for B=1.
    tpp.poll = static_cast<uint32_t>(std::getenv("GGML_POLL") ? std::atoi(std::getenv("GGML_POLL")) : 0);
    void* tp = api.threadpool_new(&tpp);
    ThreadPool pool(threads);
    std::vector<Shape> runs;
    for (const Shape& s0 : shapes) {
      if (shape_filter && !std::strstr(s0.name, shape_filter)) continue;
      if (type_override.empty()) runs.push_back(s0);
      for (GgmlType t : type_override)
        if (s0.cols % ggml_type_info(t).block_size == 0) runs.push_back({s0.name, t, s0.rows, s0.cols});
    }
    for (const Shape& s : runs) {
      const auto w = random_matrix(s.type, s.rows, s.cols, 1);
      const MatrixRef m{s.type, s.cols, s.rows, w.data()};
      for (int64_t batch : batches) {
        std::mt19937 rng(2);
        std::normal_distribution<float> nd;
        std::vector<float> x(static_cast<size_t>(batch * s.cols));
        for (auto& v : x) v = nd(rng);
        GgmlCase plain(api, nullptr, s.type, s.rows, s.cols, batch, w, x, tp, threads);
        const bool use_repack =
            repack && (s.type == GgmlType::Q4_K || s.type == GgmlType::IQ4_NL || s.type == GgmlType::MXFP4);
        GgmlCase* rp = use_repack ? new GgmlCase(api, repack, s.type, s.rows, s.cols, batch, w, x, tp, threads) : nullptr;
        QuantizedActivations a;
        // Output 64-byte aligned, so that the threads' row chunks (multiples of 16 floats) never
        // share a cache line (misaligned, one 2-thread comparison ran ~13% slower).
        std::vector<float> ybuf(batch * s.rows + 16);
        float* yal = ybuf.data() + ((64 - reinterpret_cast<uintptr_t>(ybuf.data()) % 64) % 64) / sizeof(float);
        auto ours = [&] {
          quantize_activations(x.data(), batch, s.cols, quant_traits(s.type).vec_dot_type, a, &pool);
          matmul(m, a, yal, pool);
        };
        const double one = ms_of(ours);
        const int reps = std::clamp(static_cast<int>(150.0 / std::max(one, 1e-3)), 5, 51);
        std::vector<double> t_ours, t_plain, t_rp;
        for (int r = 0; r < reps; ++r) {
          t_ours.push_back(ms_of(ours));
          t_plain.push_back(ms_of([&] { plain.run(); }));
          if (rp) t_rp.push_back(ms_of([&] { rp->run(); }));
        }
        const double flop = 2.0 * s.rows * s.cols * batch / 1e9;
        const double mo = median(t_ours), mp = median(t_plain), mr = rp ? median(t_rp) : 0;
        // Weight bytes streamed per product: what bounds decode (B=1) speed.
        const double gb = static_cast<double>(w.size()) / 1e9;
        std::printf("%-24s %-7s t=%d B=%-4lld ours %6.1f GFLOP/s %5.2f GB/s | ggml plain %6.1f %5.2f GB/s (x%.2f)", s.name,
                    ggml_type_name(s.type), threads, static_cast<long long>(batch), flop / (mo / 1e3), gb / (mo / 1e3),
                    flop / (mp / 1e3), gb / (mp / 1e3), mp / mo);
        if (rp) std::printf(" | ggml repack %6.1f (x%.2f)", flop / (mr / 1e3), mr / mo);
        std::printf("\n");
        std::fflush(stdout);
        delete rp;
      }
    }
  }
  return 0;
}
