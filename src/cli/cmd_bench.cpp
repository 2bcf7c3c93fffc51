// `swapmoe bench MODEL [--mem SIZE] [-n N]`: greedy decode speed with the expert-cache
// figures, and the I/O bound it is up against: the disk bandwidth is measured here with
// O_DIRECT reads of the model file (expert-slot-sized, random offsets, through the cache's
// read engine at the queue depth the decode loop kept), and bound tok/s = bandwidth /
// bytes read per token. The ratio achieved/bound says how
// close the decode loop comes to the disk's limit.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "cache/budget.h"
#include "cli/commands.h"
#include "cli/common_options.h"
#include "io/direct_file.h"
#include "io/read_engine.h"
#include "model/model.h"
#include "runtime/model_budget.h"
#include "util/error.h"

namespace swapmoe::cli {

namespace {

struct BenchOptions {
  ModelArgs model;
  int n_predict = 32;
  std::string prompt = "The quick brown fox";
  int parallel = 1;  // sequences decoding together (continuous batching), > 1: bench_batched
};

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Bytes per second of O_DIRECT reads of `chunk` bytes at random aligned offsets through
// the expert cache's own read engine (io_uring or the pread pool, 1 MiB chunks), keeping
// `inflight` requests queued, for about 3 s or 4 GiB, whichever comes first. The disk's
// bandwidth depends on the queue: measured at the queue the decode loop kept, the bound
// below is what reading alone allows at that queue. 3 s, not less: the shared virtual disk
// this was developed on swings between 1.0 and 1.9 GiB/s from one second to the next, and
// a 1 s measurement moved the bound by a third between consecutive runs.
double measure_disk_bandwidth(const std::string& path, uint64_t chunk, int inflight, const std::string& engine) {
  io::DirectFile f = io::DirectFile::open(path);
  const uint64_t a = f.alignment();
  chunk = std::max<uint64_t>(a, std::min<uint64_t>(chunk, 8u << 20) / a * a);
  if (f.size() < chunk + a) chunk = std::max<uint64_t>(a, f.size() / 2 / a * a);
  if (f.size() < chunk) return 0.0;
  inflight = std::clamp(inflight, 1, 64);
  const uint64_t span = f.size() - chunk;
  io::EngineOptions eo;
  eo.kind = io::parse_engine_kind(engine);
  auto eng = io::make_read_engine(eo);
  std::vector<io::AlignedBuffer> bufs;
  std::vector<int> free_bufs;
  for (int i = 0; i < inflight; ++i) {
    bufs.emplace_back(chunk, a);
    free_bufs.push_back(i);
  }
  std::mt19937_64 rng(1);
  uint64_t total = 0;
  std::vector<io::ReadCompletion> got;
  const auto t0 = Clock::now();
  bool more = true;
  while (more || eng->in_flight() > 0) {
    more = since(t0) < 3.0 && total < (4ull << 30);
    while (more && !free_bufs.empty()) {
      const int b = free_bufs.back();
      free_bufs.pop_back();
      io::ReadRequest r;
      r.fd = f.fd();
      r.offset = (rng() % (span + 1)) / a * a;
      r.len = chunk;
      r.dst = bufs[static_cast<size_t>(b)].data();
      r.tag = static_cast<uint64_t>(b);
      eng->submit(r);
    }
    got.clear();
    eng->wait(got, 1);
    for (const io::ReadCompletion& c : got) {
      if (c.error) fail(io::read_error_message(c, path, "the disk bandwidth measurement"));
      total += c.bytes;
      free_bufs.push_back(static_cast<int>(c.tag));
    }
  }
  const double s = since(t0);
  return s > 0 ? static_cast<double>(total) / s : 0.0;
}

// Under --mem: how the decode loop used the disk, against what the disk gives (its bandwidth
// measured right after, at the loop's own queue). Gives the model's memory back first.
// `tokens`: tokens generated in `secs` (all streams together), `tps` their rate.
void report_disk(std::unique_ptr<Model>& model, const BenchOptions& o, const ExpertRunStats& s, double secs,
               int64_t tokens, double tps) {
  // The largest file of the model: the one part of a whole file, the biggest of a split set.
  const GgufPart* big = &model->file().parts().front();
  for (const GgufPart& p : model->file().parts())
    if (p.file_size > big->file_size) big = &p;
  const std::string big_path = big->path;
  // The measurement's buffers (up to 32 slots) come on top of the budget: give the
  // model's memory back first, so that bench stays inside the --mem limit (a cgroup of
  // that size would kill it otherwise). Everything below uses the figures taken above.
  model.reset();
  // The queue the decode loop kept while reading (mean bytes in flight), in slot-sized
  // requests; and a deep queue for comparison (what more reads in flight could give).
  const double queue = s.cache.busy_seconds > 0 ? s.cache.inflight_byte_seconds / s.cache.busy_seconds : 0.0;
  const int depth = std::max(1, static_cast<int>(queue / static_cast<double>(s.slot_bytes) + 0.5));
  const std::string engine = o.model.io;
  const double bw = measure_disk_bandwidth(big_path, s.slot_bytes, depth, engine);
  const double bw_deep = measure_disk_bandwidth(big_path, s.slot_bytes, 32, engine);
  std::printf("disk bandwidth: %s/s at %d reads of %s in flight (the decode loop's mean queue), %s/s at 32\n",
              format_bytes(static_cast<uint64_t>(bw)).c_str(), depth, format_bytes(s.slot_bytes).c_str(),
              format_bytes(static_cast<uint64_t>(bw_deep)).c_str());
  const double per_token = static_cast<double>(s.cache.bytes_read) / tokens;
  // Under SwapMoE the residency is decided by importance, not by --cache-policy, and the
  // slots are always per-layer pools (docs/swapmoe.md).
  const bool swapmoe = o.model.policy == "swapmoe";
  const std::string policy = swapmoe ? "SwapMoE importance" : "policy " + o.model.cache_policy;
  const std::string layout = swapmoe ? "per-layer" : o.model.cache_layout;
  // How busy the disk was kept: the share of the decode time with an expert read in
  // flight, and the mean queue (bytes in flight) while it was. A loop that is bound by
  // the disk keeps it busy all the time at a queue deep enough for its bandwidth. The rate
  // while busy is what the disk gave the loop; compare it with the measurement above (the
  // two are seconds apart on a disk whose speed drifts, see measure_disk_bandwidth).
  if (secs > 0 && s.cache.busy_seconds > 0)
    std::printf("disk: busy %.1f%% of the decode time, read %s/s while busy, %s in flight on average while busy, "
                "%.1f waits/token\n",
                100.0 * s.cache.busy_seconds / secs,
                format_bytes(static_cast<uint64_t>(static_cast<double>(s.cache.bytes_read) / s.cache.busy_seconds)).c_str(),
                format_bytes(static_cast<uint64_t>(s.cache.inflight_byte_seconds / s.cache.busy_seconds)).c_str(),
                static_cast<double>(s.cache.demand_waits) / tokens);
  const std::string spares = s.n_spare > 0 ? cat(" (+ ", s.n_spare, " spare buffers for speculative reads)") : std::string();
  std::printf("cache: %d slots%s of %s, %s, %s pools, engine %s%s\n", s.n_slots, spares.c_str(),
              format_bytes(s.slot_bytes).c_str(), policy.c_str(), layout.c_str(), s.engine.c_str(),
              s.direct_io ? ", O_DIRECT" : ", buffered");
  if (swapmoe) {
    // Swap reads run in the background and never hold up a token, so the disk does not
    // bound decode speed; the figure would mislead.
    std::printf("I/O bound: none (SwapMoE swaps %s/token in the background; decode never waits for them)\n",
                format_bytes(static_cast<uint64_t>(per_token)).c_str());
  } else if (per_token > 0 && bw > 0) {
    const double bound = bw / per_token;
    std::printf("I/O bound: %s/token missed at %s/s disk bandwidth -> at most %.2f tok/s; achieved/bound %.2f\n",
                format_bytes(static_cast<uint64_t>(per_token)).c_str(), format_bytes(static_cast<uint64_t>(bw)).c_str(),
                bound, tps / bound);
  } else {
    std::printf("I/O bound: no expert bytes read while decoding (every expert hit the cache)\n");
  }
}

// --parallel N: N sequences (prompts "PROMPT", "PROMPT (1)", ... so that their routing
// differs) decode together, one forward pass (Model::forward_multi) per step, as serve's
// batching engine runs them. Prints the aggregate rate and, under --mem, the experts and
// bytes read per step and per generated token and the hit rate.
void bench_batched(const BenchOptions& o) {
  ModelOptions mo = o.model.to_options();
  mo.n_sequences = o.parallel;
  auto model = Model::load(o.model.path, mo);
  const Tokenizer& tok = model->tokenizer();
  const int n_vocab = static_cast<int>(model->config().n_vocab);
  const auto N = static_cast<size_t>(o.parallel);
  std::vector<std::vector<int32_t>> prompts(N);
  std::vector<int32_t> next(N);
  std::vector<int64_t> pos(N);
  auto argmax = [&](const float* l) { return static_cast<int32_t>(std::max_element(l, l + n_vocab) - l); };
  for (size_t i = 0; i < N; ++i) {
    prompts[i] = tok.encode(i == 0 ? o.prompt : o.prompt + " (" + std::to_string(i) + ")", true, false);
    if (prompts[i].empty()) prompts[i].push_back(0);
    if (static_cast<int64_t>(prompts[i].size()) + o.n_predict > model->n_ctx())
      fail("prompt plus ", o.n_predict, " tokens do not fit the context of ", model->n_ctx(), " per sequence");
    model->select_sequence(static_cast<int>(i));
    next[i] = argmax(model->forward_batch(prompts[i], 0));
    pos[i] = static_cast<int64_t>(prompts[i].size());
  }
  reset_expert_run_stats(*model);
  std::vector<SequenceTokens> batch(N);
  const auto t0 = Clock::now();
  for (int step = 0; step < o.n_predict; ++step) {
    for (size_t i = 0; i < N; ++i) batch[i] = {static_cast<int>(i), std::span<const int32_t>(&next[i], 1), pos[i], true};
    const std::vector<const float*> logits = model->forward_multi(batch);
    for (size_t i = 0; i < N; ++i) {
      next[i] = argmax(logits[i]);
      ++pos[i];
    }
    print_progress(*model, o.model, (step + 1) * o.parallel, since(t0));
  }
  const double secs = since(t0);
  end_progress(o.model);
  const double tokens = static_cast<double>(o.n_predict) * o.parallel;
  const double tps = secs > 0 ? tokens / secs : 0.0;
  std::printf("decode: %d streams x %d tokens in %.3f s, %.2f tok/s aggregate (%.2f per stream)\n", o.parallel,
              o.n_predict, secs, tps, tps / o.parallel);
  const ExpertRunStats s = expert_run_stats(*model);
  std::printf("experts: %s\n", format_run_stats(s, static_cast<int64_t>(tokens), secs).c_str());
  if (s.cached) {
    const double steps = o.n_predict, mib = 1024.0 * 1024.0;
    const double loads = static_cast<double>(s.cache.loads), bytes = static_cast<double>(s.cache.bytes_read);
    std::printf("per step (%d tokens): %.1f experts read, %.1f MiB; per generated token: %.1f experts read, %.1f MiB; "
                "hit rate %.1f%%\n",
                o.parallel, loads / steps, bytes / mib / steps, loads / tokens, bytes / mib / tokens, 100.0 * s.cache.hit_rate());
    report_disk(model, o, s, secs, static_cast<int64_t>(tokens), tps);
  }
}

void bench(const BenchOptions& o) {
  if (o.parallel > 1) return bench_batched(o);
  auto model = Model::load(o.model.path, o.model.to_options());
  const Tokenizer& tok = model->tokenizer();
  std::vector<int32_t> prompt = tok.encode(o.prompt, true, false);
  if (prompt.empty()) prompt.push_back(0);
  const int n_vocab = static_cast<int>(model->config().n_vocab);
  if (static_cast<int64_t>(prompt.size()) + o.n_predict > model->n_ctx())
    fail("prompt plus ", o.n_predict, " tokens do not fit the context of ", model->n_ctx());
  const float* logits = model->forward_batch(prompt, 0);
  reset_expert_run_stats(*model);
  int64_t pos = static_cast<int64_t>(prompt.size());
  const auto t0 = Clock::now();
  for (int i = 0; i < o.n_predict; ++i) {
    const int32_t id = static_cast<int32_t>(std::max_element(logits, logits + n_vocab) - logits);
    logits = model->forward(id, pos++);
    print_progress(*model, o.model, i + 1, since(t0));
  }
  const double secs = since(t0);
  end_progress(o.model);
  const double tps = secs > 0 ? o.n_predict / secs : 0.0;
  const ExpertRunStats s = expert_run_stats(*model);
  std::printf("decode: %d tokens in %.3f s, %.2f tok/s\n", o.n_predict, secs, tps);
  std::printf("experts: %s\n", format_run_stats(s, o.n_predict, secs).c_str());
  if (s.cached) report_disk(model, o, s, secs, o.n_predict, tps);
}

}  // namespace

Command add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "Decode speed and expert-cache figures (with --mem: vs the disk's bound)");
  add_model_args(sub, o->model);
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to decode")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("-p,--prompt", o->prompt, "Prompt evaluated before timing")->capture_default_str();
  sub->add_option("--parallel", o->parallel,
                  "Sequences decoding together in one forward pass per step, as serve --parallel N batches them "
                  "(prompts PROMPT, PROMPT (1), ...); prints the aggregate rate and the reads per step and per token")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  return {sub, [o] {
            o->model.resolve();
            bench(*o);
          }};
}

}  // namespace swapmoe::cli
