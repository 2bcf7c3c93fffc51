// Helpers of the forward pass over a span of tokens (see forward_batch.h): activation
// conversions shared by a block's products, chunk sizing, and the per-phase profile.

#include "model/forward_batch.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "model/footprint.h"
#include "quant/quant.h"
#include "util/error.h"

#include "util/error.h"

namespace swapmoe {

namespace {

std::array<double, static_cast<size_t>(PrefillPhase::kCount)> g_phase_seconds{};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool PrefillTimer::enabled() {
  static const bool on = std::getenv("SWAPMOE_PREFILL_PROFILE") != nullptr;
  return on;
}

PrefillTimer::PrefillTimer(PrefillPhase p) : phase_(p) {
  if (enabled()) start_ns_ = now_ns();
}

PrefillTimer::~PrefillTimer() {
  if (enabled()) g_phase_seconds[static_cast<size_t>(phase_)] += 1e-9 * static_cast<double>(now_ns() - start_ns_);
}

void PrefillTimer::print_and_reset(int64_t tokens, double seconds) {
  static const char* const names[] = {"norms",    "attn-proj", "rope/kv",  "absorb-kb", "attention", "absorb-vb",
                                      "attn-out", "router",    "gather",   "gate+up",   "swiglu",    "down",
                                      "shared",   "combine",   "dense-ffn", "logits"};
  std::fprintf(stderr, "swapmoe: prefill profile, %lld tokens in %.3f s:", static_cast<long long>(tokens), seconds);
  for (size_t i = 0; i < g_phase_seconds.size(); ++i) {
    if (g_phase_seconds[i] > 0) std::fprintf(stderr, " %s %.3f", names[i], g_phase_seconds[i]);
    g_phase_seconds[i] = 0;
  }
  std::fprintf(stderr, "\n");
}

const QuantizedActivations& BatchActs::get(GgmlType weight_type) {
  const GgmlType vt = quant_traits(weight_type).vec_dot_type;
  for (auto& s : slots_)
    if (s.used && s.qa.type == vt) return s.qa;
  for (auto& s : slots_) {
    if (s.used) continue;
    quantize_activations(x_, rows_, n_, vt, s.qa, pool_);
    s.used = true;
    return s.qa;
  }
  fail("internal: more than ", slots_.size(), " activation types in one layer");
}

int64_t prefill_chunk_tokens(const ModelConfig& cfg, uint64_t scratch_bytes) {
  constexpr int64_t kMax = kPrefillMaxChunk;
  if (scratch_bytes == 0) return kMax;
  const uint64_t per = std::max<uint64_t>(1, prefill_bytes_per_token(cfg));
  return std::clamp<int64_t>(static_cast<int64_t>(scratch_bytes / per), 1, kMax);
}

}  // namespace swapmoe
