#pragma once
// The KV cache of the standard-attention architectures: per layer, K and V rows for
// n_ctx positions, stored as F16 like llama.cpp's default cache (type_k = type_v = F16),
// so the rounding of cached keys and values matches llama.cpp.
// Layout per layer: K [n_ctx][n_head_kv * head_dim_k], V [n_ctx][n_head_kv * head_dim_v].
// (deepseek2's MLA stores a compressed latent instead; that cache lives with attention_mla.)

#include <cstddef>
#include <cstdint>
#include <vector>

namespace swapmoe {

class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t k_row, int64_t v_row);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t k_row() const { return k_row_; }
  int64_t v_row() const { return v_row_; }

  // Stores the F32 rows k[k_row], v[v_row] (rounded to F16) at position pos of layer il.
  void store(int64_t il, int64_t pos, const float* k, const float* v);
  const uint16_t* k(int64_t il) const { return k_[il].data(); }
  const uint16_t* v(int64_t il) const { return v_[il].data(); }
  size_t bytes() const;

 private:
  int64_t n_ctx_ = 0, k_row_ = 0, v_row_ = 0;
  std::vector<std::vector<uint16_t>> k_, v_;
};

}  // namespace swapmoe
