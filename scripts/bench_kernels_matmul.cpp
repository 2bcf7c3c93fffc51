// Batched vs per-token kernels, and decode-step matvec throughput, on MoE expert shapes.
// Build and run with scripts/bench_kernels.sh. Every figure is the median of several
// runs; the variants being compared run alternately inside each repetition so that
// machine load (the build machine is shared) hits both alike.
//
// Part 1 (prefill): for each matrix and batch size B, "per-token" quantizes B activation
// rows once and calls matvec once per token (weights read B times); "batched" calls
// matmul once (weights read once per token block, unpacked once per 4 tokens).
// GB/s = weight bytes / time (how fast the batch consumes the matrix once);
// GFLOP/s = 2 * rows * cols * B / time.
//
// Part 2 (decode): one Qwen3-30B-A3B layer's routed experts (8 x gate 768x2048 Q4_K,
// up 768x2048 Q4_K, down 2048x768 Q6_K) on a pool of 32 distinct experts (~100 MB, beyond
// the caches), a different 8 each step; "separate" = 24 matvec calls, "multi" = 2
// matvec_multi regions (gate+up, then down). Compared with a plain streaming read.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops/matmul.h"
#include "ops/matvec_multi.h"
#include "util/fp16.h"

using namespace swapmoe;
using Clock = std::chrono::steady_clock;

namespace {

// Random but valid weight bytes: random quants, sane fp16 scales (quantizing 100 MB with
// the reference k-quant search would take minutes).
std::vector<uint8_t> random_matrix(GgmlType t, int64_t rows, int64_t cols, uint32_t seed) {
  const auto& info = ggml_type_info(t);
  std::vector<uint8_t> bytes(ggml_row_size(t, cols) * rows);
  std::mt19937 rng(seed);
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    const uint32_t v = rng();
    std::memcpy(bytes.data() + i, &v, 4);
  }
  if (t == GgmlType::F32) {
    // Random bits would include NaNs and denormals; use small normal values instead.
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
      const float f = nd(rng);
      std::memcpy(bytes.data() + i, &f, 4);
    }
    return bytes;
  }
  if (t == GgmlType::F16) {
    std::normal_distribution<float> nd(0.0f, 0.05f);
    for (size_t i = 0; i + 2 <= bytes.size(); i += 2) {
      const uint16_t h = fp32_to_fp16(nd(rng));
      std::memcpy(bytes.data() + i, &h, 2);
    }
    return bytes;
  }
  std::vector<size_t> offs;
  if (t == GgmlType::Q8_0 || t == GgmlType::Q4_0 || t == GgmlType::Q5_0) offs = {0};
  if (t == GgmlType::Q4_1 || t == GgmlType::Q5_1) offs = {0, 2};
  if (t == GgmlType::Q4_K || t == GgmlType::Q5_K) offs = {0, 2};
  if (t == GgmlType::Q6_K) offs = {208};
  if (t == GgmlType::Q2_K) offs = {80, 82};
  if (t == GgmlType::Q3_K) offs = {108};
  const int64_t blocks = rows * cols / info.block_size;
  const uint16_t h = fp32_to_fp16(0.01f);
  for (int64_t b = 0; b < blocks; ++b)
    for (size_t o : offs) std::memcpy(bytes.data() + b * info.type_size + o, &h, 2);
  return bytes;
}

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

double ms_of(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Shape {
  const char* name;
  GgmlType type;
  int64_t rows, cols;
};

void bench_prefill(const Shape& s, int threads, bool quick) {
  ThreadPool pool(threads);
  const auto w = random_matrix(s.type, s.rows, s.cols, 1);
  const MatrixRef m{s.type, s.cols, s.rows, w.data()};
  const GgmlType at = quant_traits(s.type).vec_dot_type;
  const double gb = static_cast<double>(w.size()) / 1e9;
  for (int64_t batch : {1, 8, 32, 128, 512}) {
    const auto x = gaussian(static_cast<size_t>(batch * s.cols), 2);
    QuantizedActivations a;
    quantize_activations(x.data(), batch, s.cols, at, a, &pool);
    std::vector<QuantizedActivation> single(batch);
    for (int64_t t = 0; t < batch; ++t) quantize_activation(x.data() + t * s.cols, s.cols, at, single[t]);
    std::vector<float> y(batch * s.rows);
    // Enough repetitions for ~0.2 s per variant, at least 5.
    const double one = ms_of([&] { matmul(m, a, y.data(), pool); });
    const int reps = quick ? 3 : std::clamp(static_cast<int>(200.0 / std::max(one, 1e-3)), 5, 41);
    std::vector<double> t_row, t_bat;
    for (int r = 0; r < reps; ++r) {
      t_row.push_back(ms_of([&] {
        for (int64_t t = 0; t < batch; ++t) matvec(m, single[t], y.data() + t * s.rows, pool);
      }));
      t_bat.push_back(ms_of([&] { matmul(m, a, y.data(), pool); }));
    }
    const double mr = median(t_row), mb = median(t_bat);
    const double br = *std::min_element(t_row.begin(), t_row.end()), bb = *std::min_element(t_bat.begin(), t_bat.end());
    const double flop = 2.0 * s.rows * s.cols * batch / 1e9;
    std::printf("%-22s %-5s t=%d B=%-4lld per-token %7.2f GB/s %6.1f GFLOP/s | batched %7.2f GB/s %6.1f GFLOP/s | "
                "x%.2f (best-of: %.1f vs %.1f GFLOP/s, x%.2f)\n",
                s.name, ggml_type_name(s.type), threads, static_cast<long long>(batch), gb / (mr / 1e3),
                flop / (mr / 1e3), gb / (mb / 1e3), flop / (mb / 1e3), mr / mb, flop / (br / 1e3), flop / (bb / 1e3),
                br / bb);
  }
}

void bench_decode(int threads, bool quick) {
  ThreadPool pool(threads);
  const int n_experts = 32, n_used = 8;
  const int64_t embd = 2048, ff = 768;
  struct Expert {
    std::vector<uint8_t> gate, up, down;
  };
  std::vector<Expert> ex(n_experts);
  for (int e = 0; e < n_experts; ++e) {
    ex[e].gate = random_matrix(GgmlType::Q4_K, ff, embd, 10 + 3 * e);
    ex[e].up = random_matrix(GgmlType::Q4_K, ff, embd, 11 + 3 * e);
    ex[e].down = random_matrix(GgmlType::Q6_K, embd, ff, 12 + 3 * e);
  }
  const double layer_bytes = n_used * (ex[0].gate.size() * 2.0 + ex[0].down.size());
  const auto x = gaussian(embd, 3), h = gaussian(ff, 4);
  QuantizedActivation ax, ah[n_used];
  quantize_activation(x.data(), embd, GgmlType::Q8_K, ax);
  for (auto& q : ah) quantize_activation(h.data(), ff, GgmlType::Q8_K, q);
  std::vector<float> yg(n_used * ff), yu(n_used * ff), yd(n_used * embd);
  auto mref = [](const std::vector<uint8_t>& b, GgmlType t, int64_t rows, int64_t cols) {
    return MatrixRef{t, cols, rows, b.data()};
  };
  int step = 0;
  auto pick = [&](int k) { return (step * n_used + k) % n_experts; };
  auto separate = [&] {
    for (int k = 0; k < n_used; ++k) {
      const Expert& e = ex[pick(k)];
      matvec(mref(e.gate, GgmlType::Q4_K, ff, embd), ax, yg.data() + k * ff, pool);
      matvec(mref(e.up, GgmlType::Q4_K, ff, embd), ax, yu.data() + k * ff, pool);
    }
    for (int k = 0; k < n_used; ++k)
      matvec(mref(ex[pick(k)].down, GgmlType::Q6_K, embd, ff), ah[k], yd.data() + k * embd, pool);
  };
  auto multi = [&] {
    std::vector<MatvecJob> gu, dn;
    for (int k = 0; k < n_used; ++k) {
      const Expert& e = ex[pick(k)];
      gu.push_back({mref(e.gate, GgmlType::Q4_K, ff, embd), &ax, yg.data() + k * ff});
      gu.push_back({mref(e.up, GgmlType::Q4_K, ff, embd), &ax, yu.data() + k * ff});
      dn.push_back({mref(e.down, GgmlType::Q6_K, embd, ff), &ah[k], yd.data() + k * embd});
    }
    matvec_multi(gu, pool);
    matvec_multi(dn, pool);
  };
  // Streaming read of a buffer as large as the expert pool: the memory bandwidth bound.
  // memchr for a byte that never occurs runs glibc's vectorised scan at memory speed.
  std::vector<uint8_t> big(static_cast<size_t>(n_experts * layer_bytes / n_used), 0);
  volatile size_t sink = 0;
  auto stream = [&] {
    pool.parallel_for(static_cast<int64_t>(big.size()), [&](int64_t b, int64_t e, int) {
      sink = sink + (std::memchr(big.data() + b, 0xAB, static_cast<size_t>(e - b)) != nullptr);
    }, 1 << 16);
  };
  const int reps = quick ? 8 : 60;
  std::vector<double> t_sep, t_multi, t_stream;
  for (int r = 0; r < reps; ++r) {
    ++step;
    t_sep.push_back(ms_of(separate));
    ++step;
    t_multi.push_back(ms_of(multi));
    if (r % 4 == 0) t_stream.push_back(ms_of(stream));
  }
  const double ms = median(t_sep), mm = median(t_multi), mst = median(t_stream);
  const double bs = *std::min_element(t_sep.begin(), t_sep.end()), bm = *std::min_element(t_multi.begin(), t_multi.end());
  const double stream_gbs = big.size() / 1e9 / (mst / 1e3);
  std::printf("decode layer (8 experts, %.1f MB) t=%d: separate %.3f ms = %.2f GB/s | multi %.3f ms = %.2f GB/s | "
              "stream read %.2f GB/s | multi/stream %.2f | experts-only 48 layers: %.1f tok/s | best-of: separate %.2f, "
              "multi %.2f GB/s\n",
              layer_bytes / 1e6, threads, ms, layer_bytes / 1e9 / (ms / 1e3), mm, layer_bytes / 1e9 / (mm / 1e3),
              stream_gbs, (layer_bytes / 1e9 / (mm / 1e3)) / stream_gbs, 1e3 / (48 * mm), layer_bytes / 1e9 / (bs / 1e3),
              layer_bytes / 1e9 / (bm / 1e3));
}

void bench_overhead(int threads) {
  // Per-call cost of a tiny matvec (16 rows x 256): mostly the pool's wake-up and join.
  ThreadPool pool(threads);
  const auto w = random_matrix(GgmlType::Q4_K, 32, 256, 5);
  const MatrixRef m{GgmlType::Q4_K, 256, 32, w.data()};
  const auto x = gaussian(256, 6);
  QuantizedActivation a;
  quantize_activation(x.data(), 256, GgmlType::Q8_K, a);
  float y[32];
  std::vector<double> t;
  for (int r = 0; r < 21; ++r)
    t.push_back(ms_of([&] {
      for (int i = 0; i < 2000; ++i) matvec(m, a, y, pool);
    }));
  std::printf("tiny matvec (32x256 Q4_K) t=%d: %.2f us per call\n", threads, median(t) * 1e3 / 2000);
}

}  // namespace

// Usage: bench_kernels_matmul [quick] [overhead|decode|prefill|SHAPE-SUBSTRING]
int main(int argc, char** argv) {
  bool quick = false;
  std::string part = "all";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "quick") == 0) quick = true;
    else part = argv[i];
  }
  std::printf("isa %s\n", isa_name(best_isa()));
  if (part == "all" || part == "overhead")
    for (int threads : {1, 2}) bench_overhead(threads);
  if (part == "all" || part == "decode")
    for (int threads : {1, 2}) bench_decode(threads, quick);
  if (part == "overhead" || part == "decode") return 0;
  const Shape shapes[] = {
      {"qwen3 gate/up 768x2048", GgmlType::Q4_K, 768, 2048},
      {"qwen3 down 2048x768", GgmlType::Q6_K, 2048, 768},
      {"dsv3 gate/up 2048x7168", GgmlType::Q4_K, 2048, 7168},
      {"dsv3 down 7168x2048", GgmlType::Q6_K, 7168, 2048},
      {"q8_0 2048x2048", GgmlType::Q8_0, 2048, 2048},
      {"q5_k 2048x2048", GgmlType::Q5_K, 2048, 2048},
      // DeepSeek-V3 MLA absorption (attn_k_b, one head: 512 rows x 128) and router
      // (ffn_gate_inp, F32 256 x 7168): small matrices that took the vec_dot fallback.
      {"dsv3 absorb-kb 512x128", GgmlType::Q5_0, 512, 128},
      {"dsv3 router 256x7168", GgmlType::F32, 256, 7168},
      {"q3_k 2048x2048", GgmlType::Q3_K, 2048, 2048},
      {"q2_k 2048x2048", GgmlType::Q2_K, 2048, 2048},
      {"f16 2048x2048", GgmlType::F16, 2048, 2048},
  };
  for (int threads : {1, 2})
    for (const Shape& s : shapes)
      if (part == "all" || part == "prefill" || std::strstr(s.name, part.c_str())) bench_prefill(s, threads, quick);
  return 0;
}
