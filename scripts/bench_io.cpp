// Read-bandwidth benchmark for the direct-I/O engines (built by scripts/bench_io.sh).
//   bench_io FILE ENGINE INFLIGHT BLOCK_KIB CHUNK_KIB TOTAL_MIB PATTERN [buffered]
// ENGINE: uring | pread | sync (plain pread loop on this thread, INFLIGHT ignored).
// Keeps INFLIGHT requests of BLOCK_KIB outstanding (each split into CHUNK_KIB chunks by
// the engine) until TOTAL_MIB were read; PATTERN seq | rand (random aligned offsets).
// Prints one line: engine, in-flight, block, MiB/s.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "io/direct_file.h"
#include "io/read_engine.h"
#include "util/error.h"

using namespace swapmoe;

int main(int argc, char** argv) {
  if (argc < 8) {
    std::fprintf(stderr, "usage: bench_io FILE ENGINE INFLIGHT BLOCK_KIB CHUNK_KIB TOTAL_MIB seq|rand [buffered]\n");
    return 2;
  }
  try {
    const std::string engine = argv[2];
    const int inflight = std::atoi(argv[3]);
    const uint64_t block = std::strtoull(argv[4], nullptr, 10) << 10;
    const uint64_t chunk = std::strtoull(argv[5], nullptr, 10) << 10;
    const uint64_t total = std::strtoull(argv[6], nullptr, 10) << 20;
    const bool rnd = std::string(argv[7]) == "rand";
    const bool buffered = argc > 8 && std::string(argv[8]) == "buffered";
    io::DirectFile f = io::DirectFile::open(argv[1], buffered ? io::OpenMode::Buffered : io::OpenMode::Direct);
    const uint64_t n_blocks = f.size() / block;
    if (n_blocks == 0) fail("file too small");
    std::mt19937_64 rng(42);
    uint64_t next_seq = 0;
    auto next_off = [&] { return (rnd ? rng() % n_blocks : next_seq++ % n_blocks) * block; };
    const uint64_t n_req = total / block;
    const auto t0 = std::chrono::steady_clock::now();
    if (engine == "sync") {
      io::AlignedBuffer buf(block, f.alignment());
      for (uint64_t i = 0; i < n_req; ++i) f.read_range(next_off(), block, buf);
    } else {
      io::EngineOptions o;
      o.kind = io::parse_engine_kind(engine);
      o.queue_depth = static_cast<unsigned>(inflight) * static_cast<unsigned>((block + chunk - 1) / chunk);
      o.n_threads = inflight * static_cast<int>((block + chunk - 1) / chunk);
      o.chunk_bytes = chunk;
      auto eng = io::make_read_engine(o);
      std::vector<io::AlignedBuffer> bufs;
      for (int i = 0; i < inflight; ++i) bufs.emplace_back(block, f.alignment());
      std::vector<int> free_bufs;
      for (int i = inflight - 1; i >= 0; --i) free_bufs.push_back(i);
      uint64_t submitted = 0, done = 0;
      std::vector<io::ReadCompletion> got;
      while (done < n_req) {
        while (submitted < n_req && !free_bufs.empty()) {
          const int b = free_bufs.back();
          free_bufs.pop_back();
          io::ReadRequest r;
          r.fd = f.fd();
          r.offset = next_off();
          r.len = block;
          r.dst = bufs[b].data();
          r.tag = static_cast<uint64_t>(b);
          eng->submit(r);
          ++submitted;
        }
        got.clear();
        eng->wait(got, 1);
        for (const auto& c : got) {
          if (c.error) fail(io::read_error_message(c, f.path(), "bench"));
          free_bufs.push_back(static_cast<int>(c.tag));
          ++done;
        }
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-6s %-8s inflight %3d block %6llu KiB chunk %5llu KiB %s: %8.1f MiB/s\n", engine.c_str(),
                f.is_direct() ? "direct" : "buffered", engine == "sync" ? 1 : inflight,
                static_cast<unsigned long long>(block >> 10), static_cast<unsigned long long>(chunk >> 10),
                rnd ? "rand" : "seq ", static_cast<double>(n_req * block) / s / 1048576.0);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_io: %s\n", e.what());
    return 1;
  }
  return 0;
}
