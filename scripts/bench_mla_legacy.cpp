// Chooses the type of the attn_k_b that swapmoe derives from a legacy attn_kv_b
// (ops/mla_legacy.h), at DeepSeek-V3/R1's real shape (128 heads, kv_lora_rank 512,
// nope 128, v 128), for attn_kv_b sources Q4_K, Q6_K and Q8_0:
//  - accuracy: the attention score's nope part s[h][t] = q_nope[h] . (k_b[h] c_t), random
//    latents c (RMS 1) and queries, relative to the exact value from the dequantized kv_b in
//    double, for swapmoe's absorbed product with each candidate k_b type (the query quantized
//    to that type's vec_dot_type) and for llama.cpp's non-MLA path on the same file
//    (k = kv_b Q8(c), rounded to the F16 cache, dotted with the F16-rounded query);
//  - speed: one decode token's absorbed product for all heads (128 x 512 x 128), one thread;
//  - bytes of k_b per layer.
// Build (after `cmake --build BUILD --target swapmoe_ops`):
//   g++ -std=c++20 -O2 -Isrc scripts/bench_mla_legacy.cpp BUILD/libswapmoe_ops.a
//       BUILD/libswapmoe_quant.a BUILD/libswapmoe_util.a -lpthread -o bench_mla_legacy
// Usage: bench_mla_legacy [reps=20]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "ops/mla_legacy.h"
#include "ops/matvec.h"
#include "quant/quant.h"
#include "util/fp16.h"

using namespace swapmoe;

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 20;
  const MlaLegacyShape s{512, 128, 128, 128};
  const int64_t R = s.kv_lora_rank, H = s.n_head, nope = s.nope, ph = nope + s.head_dim_v;
  const int n_lat = 8;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // kv_b weights ~ N(0, 1/R) as trained projections are conditioned; latents RMS 1.
  std::vector<float> kvf(static_cast<size_t>(H * ph * R));
  for (auto& v : kvf) v = nd(rng) / std::sqrt(static_cast<float>(R));
  std::vector<std::vector<float>> c(n_lat, std::vector<float>(static_cast<size_t>(R)));
  for (auto& l : c) for (auto& v : l) v = nd(rng);
  std::vector<float> q(static_cast<size_t>(H * nope));
  for (auto& v : q) v = nd(rng);

  std::printf("%-5s %-6s %12s %12s %10s %12s\n", "src", "k_b", "rel.err rms", "rel.err max", "us/token", "MiB/layer");
  for (GgmlType src : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
    const QuantTraits& qs = quant_traits(src);
    const size_t src_row = ggml_row_size(src, R);
    std::vector<uint8_t> kv(src_row * static_cast<size_t>(H * ph));
    std::vector<float> deq(kvf.size());
    for (int64_t r = 0; r < H * ph; ++r) {
      qs.from_float_ref(kvf.data() + r * R, kv.data() + r * src_row, R);
      qs.to_float(kv.data() + r * src_row, deq.data() + r * R, R);
    }
    // Exact scores from the dequantized weights, in double.
    std::vector<double> exact(static_cast<size_t>(H * n_lat));
    double scale = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int t = 0; t < n_lat; ++t) {
        double sc = 0;
        for (int64_t j = 0; j < nope; ++j) {
          double k = 0;
          for (int64_t r = 0; r < R; ++r) k += double(deq[(h * ph + j) * R + r]) * c[t][r];
          sc += double(q[h * nope + j]) * k;
        }
        exact[h * n_lat + t] = sc;
        scale += sc * sc;
      }
    scale = std::sqrt(scale / double(exact.size()));
    auto report = [&](const char* name, const std::vector<double>& got, double us, double mib) {
      double e2 = 0, emax = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double e = std::abs(got[i] - exact[i]);
        e2 += e * e;
        emax = std::max(emax, e);
      }
      std::printf("%-5s %-6s %12.2e %12.2e %10.1f %12.2f\n", ggml_type_name(src), name,
                  std::sqrt(e2 / double(got.size())) / scale, emax / scale, us, mib);
    };

    // llama.cpp's non-MLA path: k_nope = kv_b . vec_dot_type(c), stored as F16, q in F16.
    {
      std::vector<double> got(exact.size());
      QuantizedActivation a;
      std::vector<float> k(static_cast<size_t>(H * ph));
      for (int t = 0; t < n_lat; ++t) {
        quantize_activation(c[t].data(), R, qs.vec_dot_type, a);
        matvec_st(MatrixRef{src, R, H * ph, kv.data()}, a, k.data(), 0, H * ph);
        for (int64_t h = 0; h < H; ++h) {
          double sc = 0;
          for (int64_t j = 0; j < nope; ++j)
            sc += double(fp16_to_fp32(fp32_to_fp16(q[h * nope + j]))) * fp16_to_fp32(fp32_to_fp16(k[h * ph + j]));
          got[h * n_lat + t] = sc;
        }
      }
      report("llama", got, 0, 0);
    }
    for (GgmlType kt : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0}) {
      std::vector<uint8_t> kb(mla_legacy_k_b_bytes(s, kt)), vb(mla_legacy_v_b_bytes(s, src));
      mla_legacy_derive(s, src, kv.data(), kt, kb.data(), vb.data());
      const size_t k_row = ggml_row_size(kt, nope);
      const GgmlType vdt = quant_traits(kt).vec_dot_type;
      std::vector<float> qabs(static_cast<size_t>(H * R));
      QuantizedActivation a;
      auto absorb = [&] {
        for (int64_t h = 0; h < H; ++h) {
          quantize_activation(q.data() + h * nope, nope, vdt, a);
          matvec_st(MatrixRef{kt, nope, R, kb.data() + static_cast<size_t>(h * R) * k_row}, a, qabs.data() + h * R, 0, R);
        }
      };
      absorb();
      std::vector<double> got(exact.size());
      for (int64_t h = 0; h < H; ++h)
        for (int t = 0; t < n_lat; ++t) {
          double sc = 0;
          for (int64_t r = 0; r < R; ++r) sc += double(qabs[h * R + r]) * c[t][r];
          got[h * n_lat + t] = sc;
        }
      std::vector<double> times;
      for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        absorb();
        times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(times.begin(), times.end());
      report(ggml_type_name(kt), got, times[times.size() / 2], double(kb.size()) / (1 << 20));
    }
  }
  return 0;
}
