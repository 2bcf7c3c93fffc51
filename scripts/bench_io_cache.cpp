// End-to-end read path of the expert cache (built by scripts/bench_io_cache.sh): a GGUF
// with Qwen3-30B-A3B-shaped experts (Q4_K, gate/up 2048x768, down 768x2048: 2.53 MiB per
// expert) is written once; then tokens with uniform random routing (the worst case) are
// replayed through ExpertCache, with no compute, so the numbers are pure I/O.
//   bench_io_cache FILE N_LAYER SLOTS TOKENS ENGINE MODE [write]
// MODE stream: request(all chosen) + acquire_any; serial: acquire one expert at a time.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cache/expert_cache.h"
#include "gguf/gguf_writer.h"
#include "util/error.h"

using namespace swapmoe;

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: bench_io_cache FILE N_LAYER SLOTS TOKENS ENGINE stream|serial [write]\n");
    return 2;
  }
  try {
    const std::string path = argv[1];
    const int n_layer = std::atoi(argv[2]);
    const int slots = std::atoi(argv[3]);
    const int tokens = std::atoi(argv[4]);
    const std::string engine = argv[5];
    const bool stream = std::string(argv[6]) == "stream";
    const int n_expert = 128, n_used = 8;
    if (argc > 7 && std::string(argv[7]) == "write") {
      GgufWriter w;
      w.set_str("general.architecture", "bench");
      for (int l = 0; l < n_layer; ++l) {
        w.add_tensor_info(cat("blk.", l, ".ffn_gate_exps.weight"), GgmlType::Q4_K, {2048, 768, n_expert});
        w.add_tensor_info(cat("blk.", l, ".ffn_up_exps.weight"), GgmlType::Q4_K, {2048, 768, n_expert});
        w.add_tensor_info(cat("blk.", l, ".ffn_down_exps.weight"), GgmlType::Q4_K, {768, 2048, n_expert});
      }
      w.begin(path);
      std::vector<uint8_t> buf(1 << 20);
      std::mt19937 rng(1);
      for (auto& b : buf) b = static_cast<uint8_t>(rng());
      uint64_t left = 0;
      for (const auto& t : w.tensors()) left += t.nbytes;
      while (left) {
        const uint64_t n = std::min<uint64_t>(left, buf.size());
        w.write_tensor_data(buf.data(), n);
        left -= n;
      }
      w.finish();
      return 0;
    }
    auto f = GgufFile::open(path);
    ModelConfig cfg;
    cfg.n_layer = n_layer;
    cfg.n_expert = n_expert;
    cfg.n_expert_used = n_used;
    std::vector<ExpertTensors> t(static_cast<size_t>(n_layer));
    for (int l = 0; l < n_layer; ++l) {
      t[l].gate = f->find_tensor(cat("blk.", l, ".ffn_gate_exps.weight"));
      t[l].up = f->find_tensor(cat("blk.", l, ".ffn_up_exps.weight"));
      t[l].down = f->find_tensor(cat("blk.", l, ".ffn_down_exps.weight"));
    }
    ExpertCacheOptions o;
    o.n_slots = slots;
    o.policy = "lru";
    o.engine.kind = io::parse_engine_kind(engine);
    o.engine.queue_depth = 64;
    o.engine.n_threads = 16;
    o.engine.chunk_bytes = 256 * 1024;
    ExpertCache c(path, cfg, t, o);
    std::mt19937 rng(7);
    std::vector<int32_t> ids(n_expert);
    const auto t0 = std::chrono::steady_clock::now();
    for (int tok = 0; tok < tokens; ++tok) {
      for (int l = 0; l < n_layer; ++l) {
        for (int i = 0; i < n_expert; ++i) ids[i] = i;
        std::shuffle(ids.begin(), ids.end(), rng);
        std::span<const int32_t> chosen(ids.data(), n_used);
        if (stream) {
          c.request(l, chosen);
          while (auto a = c.acquire_any(l)) c.release(l, a->expert);
        } else {
          for (int32_t e : chosen) {
            c.acquire(l, e);
            c.release(l, e);
          }
        }
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ExpertCacheStats st = c.stats();
    std::printf("%-6s %-6s %s slots %4d: %6.1f layer-steps/s, %7.1f MiB/s read, hit %5.1f%%, blocked %5.1f%% of wall, %.2f MiB per expert load\n",
                c.engine_name(), stream ? "stream" : "serial", c.direct_io() ? "direct" : "buffered", slots,
                tokens * n_layer / s, static_cast<double>(st.bytes_read) / s / 1048576.0, 100 * st.hit_rate(),
                100 * st.blocked_seconds / s, static_cast<double>(st.bytes_read) / std::max<uint64_t>(st.loads, 1) / 1048576.0);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_io_cache: %s\n", e.what());
    return 1;
  }
  return 0;
}
