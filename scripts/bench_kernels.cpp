// Single-thread vec_dot throughput on a 4096 x 4096 matrix, per format and ISA.
// Build and run with scripts/bench_kernels.sh. Prints the median of several passes over
// the whole matrix as GB/s of weight bytes read (the matrix is larger than the caches,
// so this is close to what one core achieves in decode).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "quant/quant.h"
#include "util/fp16.h"

using namespace swapmoe;

// Random but valid weight bytes: random quants, sane fp16 scales. Quantizing 16M floats
// with the k-quant reference search would take far longer than the benchmark itself.
static std::vector<uint8_t> random_matrix(GgmlType t, int64_t rows, int64_t cols) {
  const auto& info = ggml_type_info(t);
  std::vector<uint8_t> bytes(ggml_row_size(t, cols) * rows);
  std::mt19937 rng(1);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  const int64_t blocks = rows * cols / info.block_size;
  // Offsets of the fp16 scale fields per format.
  std::vector<size_t> offs;
  if (t == GgmlType::Q8_0) offs = {0};
  if (t == GgmlType::Q4_K) offs = {0, 2};
  if (t == GgmlType::Q6_K) offs = {208};
  for (int64_t b = 0; b < blocks; ++b)
    for (size_t o : offs) {
      const uint16_t h = fp32_to_fp16(0.01f);
      std::memcpy(bytes.data() + b * info.type_size + o, &h, 2);
    }
  return bytes;
}

static void bench(int64_t rows, int64_t cols);

int main() {
  // The full matrix (beyond L2; 9-18 MB), then 128 rows that stay in L2, which shows
  // the kernels' compute limit rather than the memory system's.
  bench(4096, 4096);
  bench(128, 4096);
  return 0;
}

static void bench(int64_t rows, int64_t cols) {
  std::printf("matrix %lld x %lld\n", static_cast<long long>(rows), static_cast<long long>(cols));
  std::vector<float> x(cols);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  std::printf("%-6s %-8s %10s %10s\n", "type", "isa", "GB/s", "ms/matvec");
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
    const auto w = random_matrix(t, rows, cols);
    const size_t row_bytes = ggml_row_size(t, cols);
    for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512}) {
      if (!cpu_supports(isa)) continue;
      const QuantTraits q = quant_traits_for(t, isa);
      const QuantTraits qa = quant_traits_for(q.vec_dot_type, isa);
      std::vector<uint8_t> a(ggml_row_size(q.vec_dot_type, cols));
      qa.from_float(x.data(), a.data(), cols);
      std::vector<double> ms;
      volatile float sink = 0;
      const int passes = isa == Isa::Scalar ? 3 : (rows < 1024 ? 301 : 9);
      for (int p = 0; p < passes; ++p) {
        const auto t0 = std::chrono::steady_clock::now();
        float s = 0;
        for (int64_t r = 0; r < rows; ++r) s += q.vec_dot(cols, w.data() + r * row_bytes, a.data());
        const auto t1 = std::chrono::steady_clock::now();
        sink = sink + s;
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      const double med = ms[ms.size() / 2];
      std::printf("%-6s %-8s %10.2f %10.3f\n", ggml_type_name(t), isa_name(isa), w.size() / (med * 1e6), med);
    }
  }
}
