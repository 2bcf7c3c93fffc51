#include "cache/expert_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "util/error.h"

namespace swapmoe {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}



}  // namespace

uint64_t ExpertCache::slot_bytes_for(const std::vector<ExpertTensors>& tensors, uint64_t alignment) {
  uint64_t best = 0;
  for (const ExpertTensors& t : tensors) {
    if (!t.gate || !t.up || !t.down) continue;
    uint64_t sum = 0;
    const int parts = t.gate_b && t.up_b && t.down_b ? kExpertParts : 3;  // with the expert biases
    for (int p = 0; p < parts; ++p) {
      const GgufTensorInfo* info = expert_part_info(t, p);
      uint64_t longest = 0;
      // The superset length depends on where each slice starts relative to the
      // alignment, so take the longest over all experts of the tensor.
      for (int64_t e = 0; e < info->ne.back(); ++e)
        longest = std::max(longest, io::aligned_span(expert_slice_offset(*info, e), expert_slice_bytes(*info), alignment).length);
      sum += longest;
    }
    best = std::max(best, sum);
  }
  return best;
}

ExpertCache::ExpertCache(const std::vector<std::string>& paths, const ModelConfig& cfg,
                         const std::vector<ExpertTensors>& tensors, const ExpertCacheOptions& opts)
    : n_expert_(cfg.n_expert), n_expert_used_(cfg.n_expert_used), layers_(tensors.size()) {
  files_ = io::DirectFileSet::open(paths, opts.open_mode);
  path_ = files_.path(0);
  const std::string& path = path_;
  const uint64_t a = files_.alignment();

  // Check the tensor infos and lay out the parts of a slot per layer (cache/slot_layout.h).
  layers_ = layout_expert_slots(path, cfg, tensors, files_);
  std::vector<int> moe_layers;
  for (size_t l = 0; l < layers_.size(); ++l)
    if (layers_[l].moe) moe_layers.push_back(static_cast<int>(l));
  if (moe_layers.empty()) fail(path, ": the expert cache needs at least one layer with experts");
  if (n_expert_used_ < 1 || n_expert_used_ > n_expert_) fail(path, ": invalid n_expert_used ", n_expert_used_);
  slot_bytes_ = slot_bytes_for(tensors, a);

  // Pools.
  int64_t n_slots = opts.n_slots > 0 ? opts.n_slots : static_cast<int64_t>(opts.cache_bytes / slot_bytes_);
  const int64_t n_moe = static_cast<int64_t>(moe_layers.size());
  std::vector<int> pool_sizes, layer_pool(layers_.size(), -1);
  if (opts.per_layer) {
    n_slots = std::min(n_slots, n_moe * n_expert_);  // more than every expert is pointless
    for (int64_t i = 0; i < n_moe; ++i) {
      const int64_t q = n_slots / n_moe + (i < n_slots % n_moe ? 1 : 0);
      if (q < n_expert_used_)
        fail("expert cache: ", n_slots, " slots of ", slot_bytes_, " bytes give each of the ", n_moe,
             " MoE layers at most ", n_slots / n_moe + (n_slots % n_moe ? 1 : 0), " slots, but a layer needs ",
             n_expert_used_, " at once; raise the budget or use a shared pool");
      pool_sizes.push_back(static_cast<int>(q));
      layer_pool[moe_layers[i]] = static_cast<int>(i);
    }
  } else {
    n_slots = std::min(n_slots, n_moe * n_expert_);
    if (n_slots < n_expert_used_)
      fail("expert cache: room for ", n_slots, " slots of ", slot_bytes_, " bytes, but a layer needs ", n_expert_used_,
           " experts at once (", static_cast<uint64_t>(n_expert_used_) * slot_bytes_, " bytes)");
    pool_sizes.push_back(static_cast<int>(n_slots));
    for (int l : moe_layers) layer_pool[l] = 0;
  }
  // The spare buffers come out of the pools, and only where every pool keeps room for a
  // layer's experts and as many prefetched ones; none when every expert fits (once all are
  // read, nothing is left to guess).
  int spares = n_slots >= n_moe * n_expert_ ? 0 : std::max(opts.spare_slots, 0);
  if (spares > 0) {
    const int n_pools = static_cast<int>(pool_sizes.size());
    const int smallest = *std::min_element(pool_sizes.begin(), pool_sizes.end());
    const int per_pool = (spares + n_pools - 1) / n_pools;  // taken from each pool, at most
    if (smallest - per_pool < 2 * n_expert_used_) {
      spares = 0;
    } else {
      int left = spares;
      for (int& q : pool_sizes) {
        const int take = std::min(left, per_pool);
        q -= take;
        left -= take;
      }
    }
  }
  res_ = std::make_unique<Residency>(pool_sizes, layer_pool, opts.policy, opts.policy_options);
  const int n_bufs = res_->n_slots() + spares;
  io_.resize(static_cast<size_t>(n_bufs));
  buf_.resize(static_cast<size_t>(res_->n_slots()));
  owner_.assign(static_cast<size_t>(n_bufs), -1);
  for (int i = 0; i < res_->n_slots(); ++i) buf_[static_cast<size_t>(i)] = owner_[static_cast<size_t>(i)] = i;
  for (int b = res_->n_slots(); b < n_bufs; ++b) spares_.push_back(b);
  pool_ = io::AlignedBuffer(static_cast<size_t>(slot_bytes_) * static_cast<size_t>(n_bufs), a);
  if (const char* t = std::getenv("SWAPMOE_CACHE_TRACE"); t && *t) {
    trace_path_ = t;
    trace_.reserve(1 << 16);
  }
  engine_ = io::make_read_engine(opts.engine, [this](const io::ReadCompletion& c) { on_read_done(c); });
}

ExpertCache::~ExpertCache() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    closing_ = true;  // completions delivered from here on start no speculative read
  }
  // Reads in flight write into pool_ and report to this object: finish them first.
  engine_.reset();
  if (!trace_path_.empty()) {
    // Columns: seconds since the first event, kind, layer, expert, slot. Kinds: s/p demand
    // or prefetch read submitted, c read completed, r request, a handed out, w wait begins,
    // W wait ends, x release.
    if (FILE* f = std::fopen(trace_path_.c_str(), "w")) {
      const double t0 = trace_.empty() ? 0.0 : trace_.front().t;
      for (const TraceEvent& e : trace_) std::fprintf(f, "%.6f %c %d %d %d\n", e.t - t0, e.kind, e.layer, e.expert, e.slot);
      std::fclose(f);
    }
  }
}

void ExpertCache::account_queue(double now) {
  const double dt = now - queue_time_;
  if (loads_in_flight_ > 0 && dt > 0) {
    stats_.busy_seconds += dt;
    stats_.inflight_byte_seconds += dt * static_cast<double>(bytes_in_flight_);
  }
  queue_time_ = now;
}

void ExpertCache::trace(char kind, int layer, int32_t expert, int slot) {
  if (trace_path_.empty()) return;
  trace_.push_back(TraceEvent{now_seconds(), kind, layer, expert, slot});
}

void ExpertCache::check_expert(int layer, int32_t expert) const {
  if (layer < 0 || static_cast<size_t>(layer) >= layers_.size() || !layers_[layer].moe)
    fail("expert cache: layer ", layer, " has no experts");
  if (expert < 0 || expert >= n_expert_) fail("expert cache: expert ", expert, " out of range [0, ", n_expert_, ")");
}

std::string ExpertCache::describe(uint64_t key, int part) const {
  return cat("layer ", key_layer(key), " expert ", key_expert(key), " (", kExpertPartName[part], ")");
}

void ExpertCache::start_load(int slot, uint64_t key, bool prefetch) {
  res_->set_loading(slot, true);
  start_read(buf_[static_cast<size_t>(slot)], key, prefetch ? 'p' : 's');
}

void ExpertCache::start_read(int buf, uint64_t key, char kind) {
  const Layer& L = layers_[key_layer(key)];
  SlotIo& s = io_[static_cast<size_t>(buf)];
  s = SlotIo{};
  s.key = key;
  s.speculative = kind == 'q';
  s.parts_left = L.n_parts;
  s.prefetched = kind == 'p';
  s.submit_time = now_seconds();
  account_queue(s.submit_time);
  ++loads_in_flight_;
  ++stats_.loads;
  if (s.speculative) ++spec_in_flight_;
  trace(kind, key_layer(key), key_expert(key), buf);
  uint8_t* base = pool_.data() + static_cast<size_t>(buf) * slot_bytes_;
  s.bytes = submit_expert_reads(L, files_, key_expert(key), base, static_cast<uint64_t>(buf) * kSlotTagStride, s.skip, *engine_);
  stats_.bytes_read += s.bytes;
  if (s.speculative) stats_.speculative_bytes += s.bytes;
  bytes_in_flight_ += s.bytes;
}

bool ExpertCache::adopt_staged(int slot, uint64_t key, bool prefetch) {
  const auto it = staged_.find(key);
  if (it == staged_.end()) return false;
  const int b = it->second;
  staged_.erase(it);
  SlotIo& st = io_[static_cast<size_t>(b)];
  if (!st.error.empty()) {
    // Failed: the caller reads it again into the slot. A read still finishing is
    // counted and cleared by its completion.
    if (st.parts_left == 0) {
      st = SlotIo{};
      ++stats_.speculative_wasted;
    }
    return false;
  }
  const int old = buf_[static_cast<size_t>(slot)];
  buf_[static_cast<size_t>(slot)] = b;
  owner_[static_cast<size_t>(b)] = slot;
  owner_[static_cast<size_t>(old)] = -1;
  io_[static_cast<size_t>(old)] = SlotIo{};  // the evicted expert's bytes, or nothing
  *std::find(spares_.begin(), spares_.end(), b) = old;
  st.prefetched = prefetch;
  res_->set_loading(slot, st.parts_left > 0);
  ++stats_.speculative_used;
  trace('P', key_layer(key), key_expert(key), slot);
  return true;
}

void ExpertCache::pump_speculation() {
  if (closing_) return;  // the engine is going away
  while (spec_next_ < spec_queue_.size() && spec_in_flight_ < kSpeculativeInFlight &&
         loads_in_flight_ == spec_in_flight_) {
    const uint64_t key = spec_queue_[spec_next_++];
    if (res_->find(key) >= 0 || staged_.count(key)) continue;
    // A spare that is not reading: an empty one, else the one read longest ago (the
    // guesses of earlier layers are the stalest), but never one read for the current list:
    // a long list (the union of several sequences' guesses) would otherwise overwrite its
    // own first guesses before they are asked for.
    int pick = -1;
    for (const int b : spares_) {
      const SlotIo& s = io_[static_cast<size_t>(b)];
      if (s.parts_left > 0 || (s.key != Residency::kEmpty && s.spec_list == spec_list_)) continue;
      if (s.key == Residency::kEmpty) {
        pick = b;
        break;
      }
      if (pick < 0 || s.submit_time < io_[static_cast<size_t>(pick)].submit_time) pick = b;
    }
    if (pick < 0) return;
    const SlotIo& old = io_[static_cast<size_t>(pick)];
    if (old.key != Residency::kEmpty) {
      const auto it = staged_.find(old.key);
      if (it != staged_.end() && it->second == pick) staged_.erase(it);
      ++stats_.speculative_wasted;
    }
    staged_[key] = pick;
    ++stats_.speculative_issued;
    start_read(pick, key, 'q');
    io_[static_cast<size_t>(pick)].spec_list = spec_list_;
  }
}

void ExpertCache::on_read_done(const io::ReadCompletion& c) {
  const int buf = static_cast<int>(c.tag / kSlotTagStride);
  const int part = static_cast<int>(c.tag % kSlotTagStride);
  std::lock_guard<std::mutex> lk(mu_);
  SlotIo& s = io_[static_cast<size_t>(buf)];
  const uint64_t key = s.key;
  if (c.error != 0 && s.error.empty()) {
    const uint32_t file = layers_[key_layer(key)].part[part].info.part;  // of a split model
    s.error = io::read_error_message(c, files_.path(file), describe(key, part));
  }
  if (--s.parts_left > 0) return;
  const double now = now_seconds();
  account_queue(now);
  --loads_in_flight_;
  if (s.speculative) {
    --spec_in_flight_;
    s.speculative = false;
  }
  bytes_in_flight_ -= s.bytes;
  stats_.read_seconds += now - s.submit_time;
  trace('c', key_layer(key), key_expert(key), buf);
  const int slot = owner_[static_cast<size_t>(buf)];
  if (slot < 0) {
    // A speculative read nobody asked for yet. A failed one is forgotten: if the expert
    // is wanted, a demand read tries again and reports the error.
    if (s.error.empty()) {
      s.ready = true;
    } else {
      const auto it = staged_.find(key);
      if (it != staged_.end() && it->second == buf) staged_.erase(it);
      s = SlotIo{};
      ++stats_.speculative_wasted;
    }
  } else {
    res_->set_loading(slot, false);
    if (s.error.empty()) {
      s.ready = true;
    } else if (res_->slot(slot).pins == 0) {
      // A failed prefetch that nobody waits for: forget it, a later demand read retries.
      res_->remove(slot);
      s = SlotIo{};
    }
  }
  pump_speculation();
  cv_.notify_all();
}

void ExpertCache::drop_if_failed(int slot) {
  SlotIo& s = sio(slot);
  if (!s.error.empty() && s.parts_left == 0 && res_->slot(slot).pins == 0) {
    res_->remove(slot);
    s = SlotIo{};
  }
}

int ExpertCache::demand_pin(int layer, int32_t expert) {
  const uint64_t key = expert_key(layer, expert);
  int slot = res_->find(key);
  if (slot >= 0) {
    drop_if_failed(slot);  // a failed read nobody holds any more: read it again
    slot = res_->find(key);
  }
  if (slot >= 0) {
    ++stats_.hits;
    if (sio(slot).prefetched) {
      ++stats_.prefetch_used;
      sio(slot).prefetched = false;
    }
    res_->touch(slot);
    res_->pin(slot);
    return slot;
  }
  uint64_t evicted = Residency::kEmpty;
  slot = res_->allocate(key, true, &evicted);
  if (slot < 0) {
    const int pool = res_->pool_of_layer(layer);
    fail("expert cache: no slot for layer ", layer, " expert ", expert, ": all ", res_->pool_size(pool),
         " slots of its pool are pinned or loading (a layer needs ", n_expert_used_,
         " at once; release experts after use, or raise the budget)");
  }
  if (evicted != Residency::kEmpty) {
    ++stats_.evictions;
    if (sio(slot).prefetched) ++stats_.prefetch_wasted;
  }
  res_->pin(slot);
  if (adopt_staged(slot, key, false)) {
    ++stats_.hits;  // read while the disk was idle (or still reading: waited for like a prefetch)
  } else {
    ++stats_.misses;
    start_load(slot, key, false);
  }
  return slot;
}

ExpertView ExpertCache::view_of(int slot, int layer) const {
  const Layer& L = layers_[layer];
  const size_t b = static_cast<size_t>(buf_[static_cast<size_t>(slot)]);
  return slot_view(L, pool_.data() + b * slot_bytes_, io_[b].skip);
}

ExpertView ExpertCache::wait_ready(std::unique_lock<std::mutex>& lk, int slot, int layer, int32_t expert) {
  if (!sio(slot).ready && sio(slot).error.empty())
    block_until(lk, [&] { return sio(slot).ready || !sio(slot).error.empty(); });
  if (!sio(slot).error.empty()) {
    const std::string msg = sio(slot).error;
    res_->unpin(slot);
    drop_if_failed(slot);  // once nobody holds it, the next access reads it again
    throw Error(msg);
  }
  (void)expert;
  return view_of(slot, layer);
}

void ExpertCache::request(int layer, std::span<const int32_t> experts) {
  std::lock_guard<std::mutex> lk(mu_);
  for (int32_t e : experts) check_expert(layer, e);
  std::vector<Wanted>& w = wanted_[layer];
  const size_t before = w.size();
  trace('r', layer, static_cast<int32_t>(experts.size()), -1);
  res_->begin_step(layer);
  try {
    // Resident experts are pinned first, so that a miss earlier in the selection cannot
    // evict an expert that the same request is about to hit (the nextuse policy ranks the
    // current layer's keys as the farthest from reuse: a whole sweep away).
    for (int pass = 0; pass < 2; ++pass) {
      for (int32_t e : experts) {
        if (std::any_of(w.begin(), w.end(), [&](const Wanted& x) { return x.expert == e; })) continue;
        if (pass == 0) {
          const int found = res_->find(expert_key(layer, e));
          if (found < 0 || (!sio(found).error.empty() && sio(found).parts_left == 0)) continue;
        }
        const int slot = demand_pin(layer, e);
        w.push_back(Wanted{e, slot});
      }
    }
  } catch (...) {
    // Leave no pins behind from this call: the caller cannot release what it never got.
    for (size_t i = before; i < w.size(); ++i) {
      res_->unpin(w[i].slot);
      drop_if_failed(w[i].slot);
    }
    w.resize(before);
    throw;
  }
}

void ExpertCache::prefetch(int layer, std::span<const int32_t> experts) {
  std::lock_guard<std::mutex> lk(mu_);
  for (int32_t e : experts) {
    check_expert(layer, e);
    const uint64_t key = expert_key(layer, e);
    if (res_->find(key) >= 0) continue;
    // Only a free or cold slot (residency.h): a guess must not displace an expert that the
    // latest visit of its layer used, which at a tight budget is what the sweep needs next.
    uint64_t evicted = Residency::kEmpty;
    const int slot = res_->allocate(key, false, &evicted, Residency::Victims::Cold);
    if (slot < 0) {
      ++stats_.prefetch_dropped;
      continue;
    }
    if (evicted != Residency::kEmpty) {
      ++stats_.evictions;
      if (sio(slot).prefetched) ++stats_.prefetch_wasted;
    }
    if (!adopt_staged(slot, key, true)) {
      ++stats_.prefetch_issued;
      start_load(slot, key, true);
    }
  }
}

void ExpertCache::speculate(int layer, std::span<const int32_t> experts) {
  std::lock_guard<std::mutex> lk(mu_);
  if (spares_.empty()) return;
  for (int32_t e : experts) check_expert(layer, e);
  spec_queue_.clear();
  spec_next_ = 0;
  ++spec_list_;
  for (int32_t e : experts) spec_queue_.push_back(expert_key(layer, e));
  pump_speculation();
}

bool ExpertCache::speculated(int layer, int32_t expert) const {
  std::lock_guard<std::mutex> lk(mu_);
  return staged_.count(expert_key(layer, expert)) > 0;
}

ExpertView ExpertCache::acquire(int layer, int32_t expert) {
  std::unique_lock<std::mutex> lk(mu_);
  check_expert(layer, expert);
  int slot = -1;
  auto& w = wanted_[layer];
  auto it = std::find_if(w.begin(), w.end(), [&](const Wanted& x) { return x.expert == expert; });
  if (it != w.end()) {
    slot = it->slot;  // request() already pinned it and counted the access
    w.erase(it);
  } else {
    slot = demand_pin(layer, expert);
  }
  return wait_ready(lk, slot, layer, expert);
}

std::optional<AcquiredExpert> ExpertCache::acquire_any(int layer) {
  std::unique_lock<std::mutex> lk(mu_);
  auto& w = wanted_[layer];
  if (w.empty()) return std::nullopt;
  auto done = [&] {
    return std::find_if(w.begin(), w.end(), [&](const Wanted& x) { return sio(x.slot).ready || !sio(x.slot).error.empty(); });
  };
  auto it = done();
  if (it == w.end()) block_until(lk, [&] { return (it = done()) != w.end(); });
  const Wanted got = *it;
  w.erase(it);
  AcquiredExpert a;
  a.expert = got.expert;
  a.view = wait_ready(lk, got.slot, layer, got.expert);
  return a;
}

size_t ExpertCache::acquire_ready(int layer, std::vector<AcquiredExpert>& out) {
  std::unique_lock<std::mutex> lk(mu_);
  auto& w = wanted_[layer];
  if (w.empty()) return 0;
  auto done = [&](const Wanted& x) { return sio(x.slot).ready || !sio(x.slot).error.empty(); };
  if (std::none_of(w.begin(), w.end(), done)) block_until(lk, [&] { return std::any_of(w.begin(), w.end(), done); });
  // A failed read is reported before anything is handed out, so that an exception never
  // leaves pins from this call with the caller.
  const auto failed = std::find_if(w.begin(), w.end(), [&](const Wanted& x) { return !sio(x.slot).error.empty(); });
  if (failed != w.end()) {
    const Wanted bad = *failed;
    w.erase(failed);
    (void)wait_ready(lk, bad.slot, layer, bad.expert);  // unpins, frees the slot and throws
  }
  size_t n = 0;
  for (auto it = w.begin(); it != w.end();) {
    if (sio(it->slot).ready) {
      trace('a', layer, it->expert, it->slot);
      out.push_back(AcquiredExpert{it->expert, view_of(it->slot, layer)});
      it = w.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

void ExpertCache::release(int layer, int32_t expert) {
  std::lock_guard<std::mutex> lk(mu_);
  check_expert(layer, expert);
  const int slot = res_->find(expert_key(layer, expert));
  if (slot < 0 || res_->slot(slot).pins == 0) fail("expert cache: release of layer ", layer, " expert ", expert, ", which is not acquired");
  trace('x', layer, expert, slot);
  res_->unpin(slot);
  drop_if_failed(slot);
}

void ExpertCache::cancel(int layer) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = wanted_.find(layer);
  if (it == wanted_.end()) return;
  for (const Wanted& x : it->second) {
    res_->unpin(x.slot);
    drop_if_failed(x.slot);
  }
  it->second.clear();
}

bool ExpertCache::resident(int layer, int32_t expert) const {
  std::lock_guard<std::mutex> lk(mu_);
  return res_->find(expert_key(layer, expert)) >= 0;
}

void ExpertCache::wait_idle() {
  std::unique_lock<std::mutex> lk(mu_);
  block_until(lk, [&] { return loads_in_flight_ == 0; }, false);
}

void ExpertCache::block_until(std::unique_lock<std::mutex>& lk, const std::function<bool()>& ready, bool count) {
  if (ready()) return;
  const double t0 = now_seconds();
  if (count) {
    ++stats_.demand_waits;
    trace('w', -1, -1, -1);
  }
  if (!wait_hook_) {
    cv_.wait(lk, ready);
  } else {
    // The hook may be what makes progress (a test holding completions back): call it
    // each time round, without the lock, since completions take the lock to report.
    while (!ready()) {
      lk.unlock();
      wait_hook_();
      lk.lock();
      if (!ready()) cv_.wait_for(lk, std::chrono::milliseconds(1));
    }
  }
  if (count) {
    stats_.blocked_seconds += now_seconds() - t0;
    trace('W', -1, -1, -1);
  }
}

ExpertCacheStats ExpertCache::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

ExpertStoreStats ExpertCache::stats_report() const {
  ExpertStoreStats s;
  s.cached = true;
  s.cache = stats();
  s.n_slots = n_slots();
  s.n_spare = static_cast<int>(spares_.size());
  s.slot_bytes = slot_bytes();
  s.engine = engine_name();
  s.direct_io = direct_io();
  return s;
}

int64_t ExpertCache::capacity() const {
  int64_t n_moe = 0;
  for (const Layer& l : layers_) n_moe += l.moe ? 1 : 0;
  return std::max(n_expert_used_, static_cast<int64_t>(n_slots()) / std::max<int64_t>(n_moe, 1));
}

void ExpertCache::reset_stats() {
  std::lock_guard<std::mutex> lk(mu_);
  account_queue(now_seconds());  // the reads in flight count from here on
  stats_ = ExpertCacheStats{};
}

}  // namespace swapmoe
