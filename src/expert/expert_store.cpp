#include "expert/expert_store.h"

namespace swapmoe {

size_t ExpertStore::acquire_ready(int layer, std::span<const int32_t> pending, std::vector<AcquiredExpert>& out) {
  const size_t first = out.size();
  try {
    for (int32_t e : pending) out.push_back({e, acquire(layer, e)});
  } catch (...) {
    for (size_t i = first; i < out.size(); ++i) release(layer, out[i].expert);
    out.resize(first);
    throw;
  }
  return pending.size();
}

}  // namespace swapmoe
