// Micro-benchmark of the batched causal F16 attention (the MLA prefill shape by default:
// 128 query heads sharing one 576-wide latent KV head, values = the first 512 of each row,
// 512 prompt tokens) and of one decode step over the same cache.
// Usage: bench_attention [threads=2] [reps=7] [n_tok=512] [heads=128]; KV_OFF=elements
// offsets the cache from a 64-byte boundary. SWAPMOE_ISA=avx2 caps the kernels. Build:
//   cmake --build BUILD --target swapmoe_ops swapmoe_util
//   g++ -std=c++20 -O2 -Isrc scripts/bench_attention.cpp BUILD/libswapmoe_ops.a
//       BUILD/libswapmoe_quant.a BUILD/libswapmoe_util.a -lpthread -o bench_attention
// Prints the median seconds of attention_f16_causal and the effective GFLOP/s
// (2 flops per multiply-add of the scores and of the weighted sum, causal positions only).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <vector>

#include "ops/attention.h"
#include "util/cpu.h"
#include "util/fp16.h"

using namespace swapmoe;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  const int64_t n_tok = argc > 3 ? std::atoll(argv[3]) : 512;
  const int64_t H = argc > 4 ? std::atoll(argv[4]) : 128;
  const int64_t dk = 576, dv = 512;
  const AttentionShape s{H, 1, dk, dv};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> q(static_cast<size_t>(n_tok * H * dk));
  for (float& x : q) x = nd(rng);
  // One cache row per position: the latent (first dv) plus the roped part, as in MLA.
  // kv_off: the cache's offset in elements from a 64-byte boundary (a std::vector's data
  // is only 16-byte aligned: 8 elements puts every 32-byte F16 load across a cache line).
  const int64_t kv_off = std::getenv("KV_OFF") ? std::atoll(std::getenv("KV_OFF")) : 0;
  std::vector<uint16_t> kv_buf(static_cast<size_t>(n_tok * dk + 64));
  uint16_t* kv_base = kv_buf.data() + (64 - reinterpret_cast<uintptr_t>(kv_buf.data()) % 64) % 64 / 2 + kv_off;
  std::span<uint16_t> kv(kv_base, static_cast<size_t>(n_tok * dk));
  for (uint16_t& x : kv) x = fp32_to_fp16(0.3f * nd(rng));
  std::vector<float> out(static_cast<size_t>(n_tok * H * dv));
  ThreadPool pool(threads);
  const float scale = 1.0f / std::sqrt(192.0f);
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    attention_f16_causal(q.data(), H * dk, n_tok, 0, kv.data(), dk, kv.data(), dk, s, scale, out.data(), H * dv, pool);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  const double pairs = static_cast<double>(n_tok) * static_cast<double>(n_tok + 1) / 2.0 * static_cast<double>(H);
  const double gflop = pairs * 2.0 * static_cast<double>(dk + dv) / 1e9;
  // Decode: the last token alone over all n_tok positions.
  std::vector<double> dt;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; ++i)
      attention_f16(q.data() + (n_tok - 1) * H * dk, kv.data(), dk, kv.data(), dk, n_tok, s, scale, out.data(), pool);
    dt.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 10);
  }
  std::sort(dt.begin(), dt.end());
  double cs = 0;
  for (float x : out) cs += x;
  std::printf("isa %s threads %d n_tok %lld heads %lld: prefill median %.4f s (min %.4f) %.1f GFLOP/s; decode %.3f ms; checksum %.6g\n",
              isa_name(best_isa()), threads, static_cast<long long>(n_tok), static_cast<long long>(H), med, times.front(),
              gflop / med, dt[dt.size() / 2] * 1e3, cs);
  return 0;
}
