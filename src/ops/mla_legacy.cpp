// Derivation of attn_k_b / attn_v_b from the legacy attn_kv_b (see mla_legacy.h).

#include "ops/mla_legacy.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "quant/blocks.h"
#include "quant/quant.h"
#include "util/fp16.h"
#include "util/error.h"

namespace swapmoe {

GgmlType mla_legacy_k_b_type(GgmlType src) {
  if (src == GgmlType::F32 || src == GgmlType::BF16) return src;
  return GgmlType::F16;
}

size_t mla_legacy_k_b_bytes(const MlaLegacyShape& s, GgmlType k_type) {
  return ggml_row_size(k_type, s.nope) * static_cast<size_t>(s.kv_lora_rank * s.n_head);
}

size_t mla_legacy_v_b_bytes(const MlaLegacyShape& s, GgmlType src) {
  return ggml_row_size(src, s.kv_lora_rank) * static_cast<size_t>(s.head_dim_v * s.n_head);
}

void mla_legacy_check(const MlaLegacyShape& s, GgmlType src, GgmlType k_type) {
  if (s.kv_lora_rank <= 0 || s.n_head <= 0 || s.nope <= 0 || s.head_dim_v <= 0)
    fail("attn_kv_b: invalid MLA shape (kv_lora_rank ", s.kv_lora_rank, ", heads ", s.n_head, ", nope ", s.nope,
         ", value length ", s.head_dim_v, ")");
  const QuantTraits& qs = quant_traits(src);
  const QuantTraits& qk = quant_traits(k_type);
  if (!qs.to_float) fail("attn_kv_b: type ", ggml_type_name(src), " has no dequantizer");
  if (!qk.from_float_ref) fail("attn_k_b: type ", ggml_type_name(k_type), " has no encoder");
  if (s.kv_lora_rank % ggml_type_info(src).block_size != 0)
    fail("attn_kv_b: rows of ", s.kv_lora_rank, " do not fit ", ggml_type_name(src), " blocks of ",
         ggml_type_info(src).block_size);
  if (s.nope % ggml_type_info(k_type).block_size != 0)
    fail("attn_k_b: rows of ", s.nope, " (the key's non-rope part) do not fit ", ggml_type_name(k_type),
         " blocks of ", ggml_type_info(k_type).block_size);
}

void mla_legacy_derive(const MlaLegacyShape& s, GgmlType src, const void* kv_b, GgmlType k_type, void* k_b,
                       void* v_b, ThreadPool* pool) {
  mla_legacy_check(s, src, k_type);
  const int64_t R = s.kv_lora_rank, nope = s.nope, dv = s.head_dim_v, per_head = nope + dv;
  const size_t src_row = ggml_row_size(src, R), k_row = ggml_row_size(k_type, nope);
  const QuantTraits& qs = quant_traits(src);
  const QuantTraits& qk = quant_traits(k_type);
  const auto* in = static_cast<const uint8_t*>(kv_b);
  auto* kout = static_cast<uint8_t*>(k_b);
  auto* vout = static_cast<uint8_t*>(v_b);

  // F16 rows are encoded with the best-ISA converter (F16C rounds to nearest even, bit for bit
  // what the scalar reference does; the tests compare the two); other types use the reference
  // weight quantizer, as llama-quantize does.
  const FromFloatFn encode = k_type == GgmlType::F16 ? qk.from_float : qk.from_float_ref;
  auto heads = [&](int64_t h0, int64_t h1) {
    std::vector<float> block(static_cast<size_t>(nope * R));  // head h's key rows [nope][R]
    std::vector<float> tr(static_cast<size_t>(R * nope));     // its transpose [R][nope]
    constexpr int64_t kTile = 16;                             // 16 x 16 floats: two pages of L1 lines
    for (int64_t h = h0; h < h1; ++h) {
      const uint8_t* head = in + static_cast<size_t>(h * per_head) * src_row;
      for (int64_t j = 0; j < nope; ++j) qs.to_float(head + static_cast<size_t>(j) * src_row, block.data() + j * R, R);
      // Row r of k_b[h] is column r of the key block: the weights that map latent entry r
      // to the nope key entries, i.e. what the absorbed query q_abs[r] = sum_j k[j][r] q[j] reads.
      for (int64_t j0 = 0; j0 < nope; j0 += kTile)
        for (int64_t r0 = 0; r0 < R; r0 += kTile)
          for (int64_t j = j0; j < std::min(nope, j0 + kTile); ++j)
            for (int64_t r = r0; r < std::min(R, r0 + kTile); ++r)
              tr[static_cast<size_t>(r * nope + j)] = block[static_cast<size_t>(j * R + r)];
      for (int64_t r = 0; r < R; ++r)
        encode(tr.data() + r * nope, kout + static_cast<size_t>(h * R + r) * k_row, nope);
      std::memcpy(vout + static_cast<size_t>(h * dv) * src_row, head + static_cast<size_t>(nope) * src_row,
                  static_cast<size_t>(dv) * src_row);
    }
  };
  if (pool) pool->parallel_for(s.n_head, [&](int64_t h0, int64_t h1, int) { heads(h0, h1); });
  else heads(0, s.n_head);
}

GgmlType mla_legacy_latent_type(GgmlType src) {
  if (src == GgmlType::F32) return GgmlType::F32;
  return quant_traits(src).vec_dot_type;
}

void mla_legacy_round_latent(GgmlType type, float* x, int64_t n) {
  if (type == GgmlType::F32) return;
  const int64_t bs = ggml_type_info(type).block_size;
  if (n % bs != 0) fail("mla legacy reference: a latent of ", n, " values does not fit ", ggml_type_name(type), " blocks");
  std::vector<uint8_t> q(ggml_row_size(type, n));
  quant_traits(type).from_float(x, q.data(), n);
  // The value each product sees: the block's scale times the integer (Q8_0/Q8_1's scale is
  // stored as F16, Q8_K's as F32), or the F16/BF16 value.
  if (type == GgmlType::Q8_0 || type == GgmlType::Q8_1) {
    const size_t bytes = ggml_row_size(type, bs);
    for (int64_t b = 0; b < n / bs; ++b) {
      const uint8_t* blk = q.data() + static_cast<size_t>(b) * bytes;
      uint16_t dh;
      std::memcpy(&dh, blk, sizeof dh);
      const float d = fp16_to_fp32(dh);
      const auto* qs = reinterpret_cast<const int8_t*>(blk + bytes - static_cast<size_t>(bs));
      for (int64_t i = 0; i < bs; ++i) x[b * bs + i] = d * static_cast<float>(qs[i]);
    }
  } else if (type == GgmlType::Q8_K) {
    const auto* blk = reinterpret_cast<const quant::BlockQ8_K*>(q.data());
    for (int64_t b = 0; b < n / bs; ++b)
      for (int64_t i = 0; i < bs; ++i) x[b * bs + i] = blk[b].d * static_cast<float>(blk[b].qs[i]);
  } else if (type == GgmlType::F16 || type == GgmlType::BF16) {
    quant_traits(type).to_float(q.data(), x, n);
  } else {
    fail("mla legacy reference: cannot round the latent through ", ggml_type_name(type));
  }
}

}  // namespace swapmoe
