// Memory read bandwidth for scripts/bench_native.sh: THREADS threads (default 2) each sum
// their own buffer of BYTES (default 1 GiB, far larger than any cache) with 256-bit loads,
// PASSES times (default 5); prints the best pass's total bytes / seconds in GB/s (10^9).
// This is the ceiling a decode step that streams its weights from memory can reach with
// that many threads on this machine.
//   g++ -std=c++20 -O2 -march=native scripts/bench_membw.cpp -pthread -o membw && ./membw 2
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const size_t bytes = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024ull) << 20;
  const int passes = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<char*> buf(threads);
  for (auto& b : buf) {
    b = static_cast<char*>(std::aligned_alloc(64, bytes));
    std::memset(b, 1, bytes);  // fault every page in before timing
  }
  std::vector<double> sink(threads);
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> th;
    for (int t = 0; t < threads; ++t)
      th.emplace_back([&, t] {
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        const char* b = buf[t];
        for (size_t i = 0; i < bytes; i += 128) {
          a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(b + i)));
          a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(b + i + 32)));
          a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(b + i + 64)));
          a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(b + i + 96)));
        }
        const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
        sink[t] = static_cast<double>(_mm256_extract_epi64(s, 0));
      });
    for (auto& x : th) x.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gbs = static_cast<double>(bytes) * threads / s / 1e9;
    if (gbs > best) best = gbs;
  }
  std::printf("%.2f\n", best);
  std::fprintf(stderr, "membw: %d threads x %zu MiB, best of %d passes: %.2f GB/s (checksum %g)\n", threads, bytes >> 20,
               passes, best, sink[0]);
  for (auto* b : buf) std::free(b);
  return 0;
}
