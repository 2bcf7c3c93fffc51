#include "cache/swapmoe_store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "cache/budget.h"
#include "cache/expert_cache.h"
#include "cache/swapmoe_policy.h"
#include "util/error.h"

namespace swapmoe {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}


}  // namespace

SwapMoeStore::SwapMoeStore(const std::vector<std::string>& paths, const ModelConfig& cfg,
                           const std::vector<ExpertTensors>& tensors, const SwapMoeOptions& opts)
    : path_(paths.empty() ? std::string() : paths[0]),
      n_expert_(cfg.n_expert),
      n_expert_used_(cfg.n_expert_used),
      sigmoid_(cfg.gating == GatingFunc::Sigmoid),
      exactness_(opts.exactness),
      swap_rate_(opts.swap_rate),
      decay_(opts.decay),
      layers_(tensors.size()),
      swap_delay_(std::max(1, opts.swap_delay)) {
  if (!(opts.exactness >= 0.0 && opts.exactness <= 1.0)) fail("--exactness must lie in [0, 1], got ", opts.exactness);
  if (!(opts.swap_rate >= 0.0)) fail("--swap-rate must not be negative, got ", opts.swap_rate);
  if (!(opts.decay >= 0.0 && opts.decay < 1.0)) fail("swapmoe: importance decay must lie in [0, 1), got ", opts.decay);
  const std::string& path = path_;
  if (n_expert_used_ < 1 || n_expert_used_ > n_expert_) fail(path, ": invalid n_expert_used ", n_expert_used_);
  files_ = io::DirectFileSet::open(paths, opts.open_mode);
  const uint64_t a = files_.alignment();

  // Slot layout per layer, the same as ExpertCache's (cache/slot_layout.h).
  const std::vector<SlotLayout> layout = layout_expert_slots(path, cfg, tensors, files_);
  std::vector<int> moe_layers;
  for (size_t l = 0; l < tensors.size(); ++l) {
    if (!layout[l].moe) continue;
    Layer& L = layers_[l];
    static_cast<SlotLayout&>(L) = layout[l];
    L.slot_of.assign(static_cast<size_t>(n_expert_), -1);
    L.eligible.assign(static_cast<size_t>(n_expert_), 0);
    L.importance.assign(static_cast<size_t>(n_expert_), 0.0);
    moe_layers.push_back(static_cast<int>(l));
  }
  if (moe_layers.empty()) fail(path, ": SwapMoE needs at least one layer with experts");
  first_moe_ = moe_layers.front();
  slot_bytes_ = ExpertCache::slot_bytes_for(tensors, a);

  // How many slots, and each layer's share.
  const int64_t n_moe = static_cast<int64_t>(moe_layers.size());
  int64_t n_slots = opts.n_slots > 0 ? opts.n_slots : static_cast<int64_t>(opts.cache_bytes / slot_bytes_);
  n_slots = std::min(n_slots, n_moe * n_expert_);
  if (n_slots < n_moe * n_expert_used_)
    fail("--policy swapmoe: room for ", n_slots, " expert slots of ", slot_bytes_, " bytes, but each of the ", n_moe,
         " MoE layers needs ", n_expert_used_, " resident experts (", n_moe * n_expert_used_, " slots, ",
         static_cast<uint64_t>(n_moe * n_expert_used_) * slot_bytes_, " bytes); raise --mem");
  std::vector<double> weight(static_cast<size_t>(n_moe), 1.0);
  if (opts.profile) {
    opts.profile->check_matches(cfg, "--profile");
    for (int64_t i = 0; i < n_moe; ++i) {
      const LayerProfile* lp = opts.profile->find(moe_layers[i]);
      weight[i] = lp ? static_cast<double>(experts_to_cover(lp->chosen_mass, kCoverShare)) : static_cast<double>(n_expert_);
    }
  }
  // Staging slots for background swaps (see the header), when the budget has room for them.
  // As many as swaps may start in one token (ceil(swap_rate), 1 to 8); none without swaps.
  const int64_t want_staging =
      swap_rate_ > 0.0 ? std::clamp<int64_t>(static_cast<int64_t>(std::ceil(swap_rate_)), 1, 8) : 0;
  // When every expert fits there is nothing to swap.
  const int64_t n_staging =
      n_slots == n_moe * n_expert_ ? 0 : std::min<int64_t>(want_staging, n_slots - n_moe * n_expert_used_);
  staging_slots_ = n_staging;
  const std::vector<int64_t> share = apportion_slots(n_slots - n_staging, weight, n_expert_used_, n_expert_);

  int64_t total = n_staging;
  for (int64_t s : share) total += s;
  slots_.resize(static_cast<size_t>(total));
  pool_ = io::AlignedBuffer(static_cast<size_t>(slot_bytes_) * static_cast<size_t>(total), a);
  probs_.resize(static_cast<size_t>(n_expert_));
  ids_u_.resize(static_cast<size_t>(n_expert_used_));
  w_u_.resize(static_cast<size_t>(n_expert_used_));
  engine_ = io::make_read_engine(opts.engine, [this](const io::ReadCompletion& c) { on_read_done(c); });

  // Start-up: the initial resident sets, all reads in flight at once.
  const double t0 = now_seconds();
  std::unique_lock<std::mutex> lk(mu_);
  int next = 0;
  for (int64_t i = 0; i < n_moe; ++i) {
    const int l = moe_layers[i];
    Layer& L = layers_[l];
    std::vector<int32_t> order(static_cast<size_t>(n_expert_));
    std::iota(order.begin(), order.end(), 0);
    if (const LayerProfile* lp = opts.profile ? opts.profile->find(l) : nullptr) {
      const std::vector<double>& m = lp->chosen_mass;
      std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return m[x] > m[y]; });
      // Seed the importance with the profile's steady state, chosen mass per token / (1 - γ),
      // so the first tokens do not swap out what the profile chose.
      for (int64_t e = 0; e < n_expert_; ++e)
        L.importance[e] = lp->tokens ? m[e] / static_cast<double>(lp->tokens) / (1.0 - decay_) : 0.0;
    }
    for (int64_t j = 0; j < share[i]; ++j) {
      L.slots.push_back(next);
      slots_[next].layer = l;
      start_load(next, l, order[j], /*sync=*/true);
      ++next;
    }
  }
  for (int64_t j = 0; j < n_staging; ++j) staging_.push_back(next++);
  cv_.wait(lk, [&] { return loads_in_flight_ == 0; });
  for (Slot& s : slots_)
    if (!s.error.empty()) fail(s.error);
  stats_.startup_bytes = stats_.sync_bytes;
  stats_.sync_bytes = 0;
  stats_.startup_seconds = now_seconds() - t0;
  std::string per;
  for (int64_t x : share) per += cat(per.empty() ? "" : " ", x);
  std::fprintf(stderr,
               "swapmoe: --policy swapmoe: %lld expert slots of %s (per MoE layer: %s; %lld for staging swaps), %s read "
               "at start-up\n",
               static_cast<long long>(total), format_bytes(slot_bytes_).c_str(), per.c_str(),
               static_cast<long long>(n_staging), format_bytes(stats_.startup_bytes).c_str());
}

SwapMoeStore::~SwapMoeStore() {
  // Reads in flight write into pool_ and report to this object: finish them first.
  engine_.reset();
}

void SwapMoeStore::check_expert(int layer, int32_t expert) const {
  if (layer < 0 || static_cast<size_t>(layer) >= layers_.size() || !layers_[layer].moe)
    fail("swapmoe store: layer ", layer, " has no experts");
  if (expert < 0 || expert >= n_expert_) fail("swapmoe store: expert ", expert, " out of range [0, ", n_expert_, ")");
}

void SwapMoeStore::start_load(int slot, int layer, int32_t expert, bool sync) {
  Layer& L = layers_[layer];
  Slot& s = slots_[slot];
  s.expert = expert;
  s.state = State::Loading;
  s.sync = sync;
  s.held = false;
  s.pins = 0;
  s.retire = -1;
  s.doomed = false;
  s.retiring = false;
  s.parts_left = L.n_parts;
  s.error.clear();
  L.slot_of[expert] = slot;
  L.eligible[expert] = 0;
  ++loads_in_flight_;
  if (!sync) {
    s.due = clock_ + static_cast<uint64_t>(swap_delay_);
    pending_.push_back(slot);
  }
  uint8_t* base = pool_.data() + static_cast<size_t>(slot) * slot_bytes_;
  (sync ? stats_.sync_bytes : stats_.swap_bytes) +=
      submit_expert_reads(L, files_, expert, base, static_cast<uint64_t>(slot) * kSlotTagStride, s.skip, *engine_);
}

void SwapMoeStore::on_read_done(const io::ReadCompletion& c) {
  const int slot = static_cast<int>(c.tag / kSlotTagStride);
  const int part = static_cast<int>(c.tag % kSlotTagStride);
  std::lock_guard<std::mutex> lk(mu_);
  Slot& s = slots_[slot];
  if (c.error != 0 && s.error.empty())
    s.error = io::read_error_message(c, files_.path(layers_[s.layer].part[part].info.part), cat("layer ", s.layer, " expert ", s.expert, " (", kExpertPartName[part], ")"));
  if (--s.parts_left > 0) return;
  --loads_in_flight_;
  if (s.error.empty()) {
    // A synchronous read (or a background one a synchronous caller now waits for) takes
    // effect at once, as the token that needs it asks; a background swap waits for its due
    // token (on_token), so that when it completes does not matter.
    if (s.sync) {
      unpend(slot);
      publish(slot);
    }
  } else {
    unpend(slot);  // never published; a synchronous waiter empties the slot itself
    const int retire = s.retire;
    s.retire = -1;
    if (retire >= 0) slots_[retire].doomed = false;  // the victim stays
    if (!s.sync) {
      // A failed background swap: nobody waits for it. Forget the expert (it may be tried
      // again later) and say so once per failure; decoding continues with the others.
      ++stats_.swap_failures;
      std::fprintf(stderr, "swapmoe: background swap failed: %s\n", s.error.c_str());
      evict(slot);
      if (retire >= 0) to_staging(slot);
    }
  }
  // A failed synchronous read stays Loading with `error` set until its waiter empties it.
  cv_.notify_all();
}

void SwapMoeStore::publish(int slot) {
  Slot& s = slots_[slot];
  Layer& L = layers_[s.layer];
  const int retire = s.retire;
  s.retire = -1;
  s.state = State::Ready;
  L.eligible[s.expert] = 1;
  if (!s.sync) ++stats_.swaps_done;
  if (retire >= 0) {
    // The staged swap is complete: the victim leaves the eligible set now and its slot
    // is freed once the token that may be using it lets go.
    Slot& v = slots_[retire];
    v.doomed = false;
    v.retiring = true;
    L.eligible[v.expert] = 0;
    try_retire(retire);
  }
}

void SwapMoeStore::unpend(int slot) {
  auto it = std::find(pending_.begin(), pending_.end(), slot);
  if (it != pending_.end()) pending_.erase(it);
}

void SwapMoeStore::evict(int slot) {
  Slot& s = slots_[slot];
  if (s.expert >= 0) {
    Layer& L = layers_[s.layer];
    L.slot_of[s.expert] = -1;
    L.eligible[s.expert] = 0;
  }
  s.expert = -1;
  s.state = State::Empty;
  s.held = false;
  s.doomed = false;
  s.retiring = false;
  s.retire = -1;
  s.error.clear();
}

void SwapMoeStore::to_staging(int slot) {
  Slot& s = slots_[slot];
  std::vector<int>& ls = layers_[s.layer].slots;
  ls.erase(std::find(ls.begin(), ls.end(), slot));
  s.layer = -1;
  staging_.push_back(slot);
}

void SwapMoeStore::try_retire(int slot) {
  Slot& s = slots_[slot];
  if (!s.retiring || s.held || s.pins > 0) return;
  evict(slot);
  to_staging(slot);
}

int SwapMoeStore::victim(int layer) const {
  const Layer& L = layers_[layer];
  int best = -1;
  double best_imp = 0.0;
  for (int sl : L.slots) {
    const Slot& s = slots_[sl];
    if (s.state == State::Empty) return sl;
    if (s.state != State::Ready || s.held || s.pins > 0 || s.doomed || s.retiring) continue;
    const double imp = L.importance[s.expert];
    if (best < 0 || imp < best_imp) {
      best = sl;
      best_imp = imp;
    }
  }
  return best;
}

bool SwapMoeStore::load_sync(std::unique_lock<std::mutex>& lk, int layer, int32_t expert) {
  Layer& L = layers_[layer];
  const double t0 = now_seconds();
  auto finish = [&](int slot) {
    cv_.wait(lk, [&] { return slots_[slot].parts_left == 0; });
    stats_.stall_seconds += now_seconds() - t0;
    Slot& s = slots_[slot];
    if (s.state == State::Loading && s.error.empty()) {
      // A background swap that completed before its due token: the token needs it now.
      unpend(slot);
      publish(slot);
    }
    if (s.state != State::Ready) {
      const std::string msg = s.error.empty() ? cat("swapmoe store: read of layer ", layer, " expert ", expert, " failed")
                                              : s.error;
      evict(slot);
      throw Error(msg);
    }
    s.held = true;
    return true;
  };
  for (;;) {
    const int cur = L.slot_of[expert];
    if (cur >= 0) {
      // Already being read by a background swap: wait for that read (as exact mode would
      // wait for its own read). A background read that fails empties the slot; retry.
      slots_[cur].sync = true;
      (void)finish(cur);
      return true;
    }
    const int v = victim(layer);
    if (v >= 0) {
      evict(v);
      start_load(v, layer, expert, /*sync=*/true);
      return finish(v);
    }
    // No reusable slot now; one that is loading becomes reusable when its read ends. A
    // background swap of this layer is brought forward (deterministically: this token asks)
    // rather than waited for until its due token.
    const auto loading = std::find_if(L.slots.begin(), L.slots.end(), [&](int sl) { return slots_[sl].state == State::Loading; });
    if (loading == L.slots.end()) {
      stats_.stall_seconds += now_seconds() - t0;
      return false;
    }
    const int sl = *loading;
    cv_.wait(lk, [&] { return slots_[sl].parts_left == 0; });
    Slot& ls = slots_[sl];
    if (ls.state == State::Loading && ls.error.empty() && !ls.sync) {
      unpend(sl);
      publish(sl);
    }
  }
}

void SwapMoeStore::on_token(std::unique_lock<std::mutex>& lk) {
  ++stats_.tokens;
  ++clock_;  // reset_stats() resets stats_.tokens, not the schedule
  // Swaps due at this token take effect now, in the order they started; a read that is
  // late is waited for (see the header: the schedule follows the tokens, not the clock).
  for (;;) {
    const auto due = std::find_if(pending_.begin(), pending_.end(), [&](int sl) { return slots_[sl].due <= clock_; });
    if (due == pending_.end()) break;
    const int sl = *due;
    if (slots_[sl].parts_left > 0) {
      const double t0 = now_seconds();
      ++stats_.swap_waits;
      // A failing read leaves pending_ in on_read_done; then there is nothing to publish.
      cv_.wait(lk, [&] { return slots_[sl].parts_left == 0; });
      stats_.swap_wait_seconds += now_seconds() - t0;
      if (std::find(pending_.begin(), pending_.end(), sl) == pending_.end()) continue;
    }
    unpend(sl);
    publish(sl);
  }
  if (swap_rate_ <= 0.0) return;
  allowance_ = std::min(std::max(1.0, swap_rate_), allowance_ + swap_rate_);
  while (allowance_ >= 1.0) {
    // The most valuable swap over all layers: largest importance gap.
    int best_layer = -1, best_slot = -1;
    int32_t best_cand = -1;
    double best_gain = 0.0;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& L = layers_[l];
      if (!L.moe) continue;
      int64_t ready = 0;
      for (int sl : L.slots) ready += slots_[sl].state == State::Ready;
      const int v = victim(static_cast<int>(l));
      if (v < 0) continue;
      const bool empty = slots_[v].state == State::Empty;
      // Unstaged (no staging slots at all), the layer must keep n_used eligible experts
      // while the new one loads.
      if (!empty && staging_slots_ == 0 && ready - 1 < n_expert_used_) continue;
      if (!empty && staging_slots_ > 0 && staging_.empty()) continue;
      int32_t c = -1;
      for (int64_t e = 0; e < n_expert_; ++e)
        if (L.slot_of[e] < 0 && (c < 0 || L.importance[e] > L.importance[c])) c = static_cast<int32_t>(e);
      if (c < 0) continue;
      const double iv = empty ? 0.0 : L.importance[slots_[v].expert];
      if (!empty && !swap_worth_it(L.importance[c], iv)) continue;
      const double gain = L.importance[c] - iv;
      if (best_layer < 0 || gain > best_gain) {
        best_layer = static_cast<int>(l);
        best_slot = v;
        best_cand = c;
        best_gain = gain;
      }
    }
    if (best_layer < 0) break;
    if (slots_[best_slot].state == State::Empty || staging_slots_ == 0) {
      evict(best_slot);
      start_load(best_slot, best_layer, best_cand, /*sync=*/false);
    } else {
      const int st = staging_.back();
      staging_.pop_back();
      slots_[st].layer = best_layer;
      layers_[best_layer].slots.push_back(st);
      slots_[best_slot].doomed = true;
      start_load(st, best_layer, best_cand, /*sync=*/false);
      slots_[st].retire = best_slot;
    }
    ++stats_.swaps_started;
    allowance_ -= 1.0;
  }
}

void SwapMoeStore::route(int layer, const RouterParams& p, const float* logits, int32_t* ids, float* weights) {
  std::unique_lock<std::mutex> lk(mu_);
  check_expert(layer, 0);
  if (p.n_expert != n_expert_ || p.n_used != n_expert_used_)
    fail("swapmoe store: router has ", p.n_expert, " experts / ", p.n_used, " used, the store ", n_expert_, " / ",
         n_expert_used_);
  Layer& L = layers_[layer];
  // The previous layer's route() results have been computed: drop their holds.
  if (held_layer_ != layer) {
    if (held_layer_ >= 0)
      for (int sl : std::vector<int>(layers_[held_layer_].slots)) {
        slots_[sl].held = false;
        try_retire(sl);
      }
    held_layer_ = layer;
  }
  if (layer == first_moe_) on_token(lk);
  ++stats_.routes;

  // 1. What the full model would choose, and the unmasked probabilities.
  select_experts(p, logits, ids_u_.data(), w_u_.data(), nullptr, probs_.data());
  // 2. Importance.
  update_importance(L.importance, probs_.data(), ids_u_.data(), n_expert_used_, sigmoid_, decay_);
  // 3. The exactness knob for missing experts of the unmasked choice.
  const int64_t k = n_expert_used_;
  bool all_resident = true;
  double wsum = 0.0;
  // Resident and ready: eligible, or retiring (a staged swap replaced it) while held. A
  // retiring expert of the unmasked choice is still computable: its bytes stay until the
  // token releases it.
  auto ready = [&](int32_t e) {
    const int sl = L.slot_of[e];
    return sl >= 0 && slots_[sl].state == State::Ready;
  };
  for (int64_t j = 0; j < k; ++j) {
    wsum += static_cast<double>(w_u_[j]);
    if (L.eligible[ids_u_[j]]) slots_[L.slot_of[ids_u_[j]]].held = true;  // keep it through the loads below
  }
  stats_.chosen += static_cast<uint64_t>(k);
  for (int64_t j = 0; j < k; ++j) {
    const int32_t e = ids_u_[j];
    if (ready(e)) {
      ++stats_.hits;
      continue;
    }
    const double share = wsum > 0.0 ? static_cast<double>(w_u_[j]) / wsum : 1.0 / static_cast<double>(k);
    if (exactness_ < 1.0 && share >= exactness_) {
      if (load_sync(lk, layer, e)) {
        ++stats_.sync_loads;
        continue;
      }
      ++stats_.sync_no_slot;
    } else {
      ++stats_.masked;
    }
    all_resident = false;
  }
  // 4. Masked selection (or the unmasked one, bit for bit, when nothing is missing). A
  // load above may have waited, letting a staged swap retire an expert counted as a hit.
  for (int64_t j = 0; j < k && all_resident; ++j) all_resident = ready(ids_u_[j]);
  if (all_resident) {
    std::copy(ids_u_.begin(), ids_u_.end(), ids);
    std::copy(w_u_.begin(), w_u_.end(), weights);
  } else {
    select_experts(p, logits, ids, weights, L.eligible.data(), nullptr);
  }
  for (int64_t j = 0; j < k; ++j) {
    // The invariant masked gating rests on, checked where it can be: under the lock, every
    // expert handed out is resident and ready now (eligible, or of a fully resident
    // unmasked choice), and held from here on so that its slot is not reused.
    if (!ready(ids[j])) fail("swapmoe store: layer ", layer, " routed to expert ", ids[j], ", which is not resident");
    slots_[L.slot_of[ids[j]]].held = true;
  }
}

ExpertView SwapMoeStore::view_of(int slot) const {
  const Slot& s = slots_[slot];
  const Layer& L = layers_[s.layer];
  return slot_view(L, pool_.data() + static_cast<size_t>(slot) * slot_bytes_, s.skip);
}

ExpertView SwapMoeStore::acquire(int layer, int32_t expert) {
  std::unique_lock<std::mutex> lk(mu_);
  check_expert(layer, expert);
  Layer& L = layers_[layer];
  // Resident and ready (a retiring expert that route() chose before its replacement
  // arrived is still here until released).
  const int have = L.slot_of[expert];
  if (have < 0 || slots_[have].state != State::Ready) {
    // Not from route(): read it as exact mode would (counted, it should not happen).
    ++stats_.acquire_misses;
    if (!load_sync(lk, layer, expert))
      fail("swapmoe store: no slot for layer ", layer, " expert ", expert, ": all ", L.slots.size(),
           " slots of the layer are in use");
  }
  const int sl = L.slot_of[expert];
  ++slots_[sl].pins;
  return view_of(sl);
}

void SwapMoeStore::release(int layer, int32_t expert) {
  std::lock_guard<std::mutex> lk(mu_);
  check_expert(layer, expert);
  const int sl = layers_[layer].slot_of[expert];
  if (sl < 0 || slots_[sl].pins == 0)
    fail("swapmoe store: release of layer ", layer, " expert ", expert, ", which is not acquired");
  --slots_[sl].pins;
  slots_[sl].held = false;
  try_retire(sl);
}

void SwapMoeStore::wait_idle() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return loads_in_flight_ == 0; });
}

SwapMoeStats SwapMoeStore::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

ExpertStoreStats SwapMoeStore::stats_report() const {
  ExpertStoreStats s;
  s.cached = true;
  s.swapmoe = true;
  s.swap = stats();
  // The cache figures too, for readers that know only those (bench, server metrics):
  // a hit is a resident expert of the unmasked choice, a miss one that was not (masked
  // or read synchronously); reads are swaps plus synchronous reads; blocked = stall.
  s.cache.hits = s.swap.hits;
  s.cache.misses = s.swap.chosen - s.swap.hits;
  s.cache.loads = s.swap.swaps_started + s.swap.sync_loads + s.swap.acquire_misses;
  s.cache.bytes_read = s.swap.swap_bytes + s.swap.sync_bytes;
  s.cache.blocked_seconds = s.swap.stall_seconds + s.swap.swap_wait_seconds;
  s.n_slots = n_slots();
  s.slot_bytes = slot_bytes();
  s.engine = engine_name();
  s.direct_io = direct_io();
  return s;
}

void SwapMoeStore::reset_stats() {
  std::lock_guard<std::mutex> lk(mu_);
  const uint64_t b = stats_.startup_bytes;
  const double t = stats_.startup_seconds;
  stats_ = SwapMoeStats{};
  stats_.startup_bytes = b;
  stats_.startup_seconds = t;
}

std::vector<int64_t> SwapMoeStore::layer_slots() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<int64_t> r;
  for (const Layer& L : layers_) r.push_back(static_cast<int64_t>(L.slots.size()));
  return r;
}

std::vector<double> SwapMoeStore::importance(int layer) const {
  std::lock_guard<std::mutex> lk(mu_);
  check_expert(layer, 0);
  return layers_[layer].importance;
}

bool SwapMoeStore::eligible(int layer, int32_t expert) const {
  std::lock_guard<std::mutex> lk(mu_);
  check_expert(layer, expert);
  return layers_[layer].eligible[expert] != 0;
}

bool SwapMoeStore::resident(int layer, int32_t expert) const {
  std::lock_guard<std::mutex> lk(mu_);
  check_expert(layer, expert);
  const int sl = layers_[layer].slot_of[expert];
  return sl >= 0 && slots_[sl].state == State::Ready;
}

}  // namespace swapmoe
