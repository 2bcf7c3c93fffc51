#pragma once
// The legacy DeepSeek MLA layout: split attn_kv_b into the absorbed path's attn_k_b / attn_v_b.
//
// DeepSeek-V2/V3/R1 GGUFs converted before llama.cpp split the tensor (every file of January
// 2025, ollama's deepseek-r1:671b) hold one up-projection of the kv latent per layer:
//
//   attn_kv_b  ne [R, H * (nope + dv)]     R = kv_lora_rank; row h*(nope+dv) + j is
//                                           head h's key row j (j < nope) or value row j - nope
//
// The absorbed MLA path (model/attention_mla.h) wants, as a current convert writes them,
//
//   attn_k_b   ne [nope, R, H]   row h*R + r, column j = kv_b[h*(nope+dv) + j][r]  (transposed)
//   attn_v_b   ne [R, dv, H]     row h*dv + d            = kv_b[h*(nope+dv) + nope + d]
//
// v_b's rows are kv_b's value rows unchanged, so they are copied byte for byte in the file's
// type (exact, any type). k_b is the transpose of each head's key block: its rows are nope
// long, so it is dequantized and re-encoded in k_type (mla_legacy_k_b_type gives the choice
// the loader makes; the README says why).

#include <cstddef>
#include <cstdint>

#include "util/ggml_type.h"
#include "util/thread_pool.h"

namespace swapmoe {

struct MlaLegacyShape {
  int64_t kv_lora_rank = 0;  // R: attn_kv_b's row length
  int64_t n_head = 0;        // H
  int64_t nope = 0;          // per-head key part without rope (qk_nope_head_dim)
  int64_t head_dim_v = 0;    // dv
};

// The type the loader gives the derived k_b for an attn_kv_b of type src: F32 and BF16
// sources keep their type (re-encoding their values is exact), every other source gets F16.
GgmlType mla_legacy_k_b_type(GgmlType src);

// Bytes of the derived tensors: k_b in k_type, v_b in the source type.
size_t mla_legacy_k_b_bytes(const MlaLegacyShape& s, GgmlType k_type);
size_t mla_legacy_v_b_bytes(const MlaLegacyShape& s, GgmlType src);

// Throws Error when the shape is invalid or a type cannot hold its rows (k_type needs a block
// size dividing nope; src a block size dividing R) or has no dequantizer/encoder.
void mla_legacy_check(const MlaLegacyShape& s, GgmlType src, GgmlType k_type);

// kv_b: H*(nope+dv) rows of ggml_row_size(src, R) bytes. Writes k_b (R*H rows of
// ggml_row_size(k_type, nope) bytes) and v_b (dv*H rows of ggml_row_size(src, R) bytes).
// Heads are split over the pool (nullptr: the calling thread); the result does not depend
// on the thread count.
void mla_legacy_derive(const MlaLegacyShape& s, GgmlType src, const void* kv_b, GgmlType k_type, void* k_b,
                       void* v_b, ThreadPool* pool = nullptr);

// llama.cpp's arithmetic on a legacy file, for conformance tests (SWAPMOE_MLA_LEGACY_REFERENCE,
// model/weights.h). Its non-MLA path multiplies attn_kv_b by the latent converted to
// attn_kv_b's vec_dot_type (Q8_0 for Q8_0/Q4_0/Q5_0, Q8_1 for Q4_1/Q5_1, Q8_K for the k-quants,
// F16/BF16 for those weights), so every key and value it caches derives from that rounded latent;
// with F32 k_b / v_b and an F32 cache, the absorbed path on the rounded latent is the same
// arithmetic up to float summation order (for Q4_1/Q5_1 also up to the F16 rounding of Q8_1's
// block sum, which their products use for the min term). mla_legacy_latent_type(src) is that type (F32: none);
// mla_legacy_round_latent rounds x[0..n) through it and back in place. Throws Error for a type
// it cannot round through, or n not a multiple of its block.
GgmlType mla_legacy_latent_type(GgmlType src);
void mla_legacy_round_latent(GgmlType type, float* x, int64_t n);

}  // namespace swapmoe
