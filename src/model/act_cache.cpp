#include "model/act_cache.h"

#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {

const QuantizedActivation& ActCache::get(GgmlType weight_type) {
  const GgmlType vt = quant_traits(weight_type).vec_dot_type;
  for (auto& s : slots_)
    if (s.used && s.qa.type == vt) return s.qa;
  for (auto& s : slots_) {
    if (s.used) continue;
    quantize_activation(x_, n_, vt, s.qa);
    s.used = true;
    return s.qa;
  }
  fail("internal: more than ", slots_.size(), " activation types in one layer");
}

}  // namespace swapmoe
