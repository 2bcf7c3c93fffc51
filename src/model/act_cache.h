#pragma once
// One activation vector and its conversions to the vec_dot_types of the weights that
// multiply it. llama.cpp converts the activation once per (tensor, vec_dot_type); the
// result is the same whichever matrix triggers it, so converting once and sharing the
// bytes between q/k/v, or between all experts of a layer, is exact and saves work.

#include <array>
#include <cstdint>

#include "ops/matvec.h"

namespace swapmoe {

class ActCache {
 public:
  // Forgets earlier conversions; x must stay valid (and unchanged) while in use.
  void reset(const float* x, int64_t n) {
    x_ = x;
    n_ = n;
    for (auto& s : slots_) s.used = false;
  }
  // The activation converted for a weight of type `weight_type`.
  const QuantizedActivation& get(GgmlType weight_type);

 private:
  struct Slot {
    bool used = false;
    QuantizedActivation qa;
  };
  const float* x_ = nullptr;
  int64_t n_ = 0;
  std::array<Slot, 6> slots_;
};

}  // namespace swapmoe
