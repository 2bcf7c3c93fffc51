#include "model/kv_cache.h"

#include "ops/attention.h"
#include "util/error.h"

namespace swapmoe {

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t k_row, int64_t v_row)
    : n_ctx_(n_ctx), k_row_(k_row), v_row_(v_row), k_(n_layer), v_(n_layer) {
  for (int64_t il = 0; il < n_layer; ++il) {
    k_[il].assign(static_cast<size_t>(n_ctx * k_row), 0);
    v_[il].assign(static_cast<size_t>(n_ctx * v_row), 0);
  }
}

void KvCache::store(int64_t il, int64_t pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_) fail("KV cache: position ", pos, " outside the context of ", n_ctx_, " tokens");
  f32_to_f16_row(k, k_[il].data() + pos * k_row_, k_row_);
  f32_to_f16_row(v, v_[il].data() + pos * v_row_, v_row_);
}

size_t KvCache::bytes() const {
  size_t n = 0;
  for (size_t i = 0; i < k_.size(); ++i) n += (k_[i].size() + v_[i].size()) * sizeof(uint16_t);
  return n;
}

}  // namespace swapmoe
