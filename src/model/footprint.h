#pragma once
// The bytes the model itself holds besides its experts, from the configuration alone, as it
// reports them to the memory plan (cache/budget.h): the KV cache, the buffers of the forward
// pass, and a prompt chunk's buffers per token. They live next to the buffers they describe
// (forward_batch.h, kv_cache.h, attention_mla.h): change one, change the other.

#include <cstdint>

#include "arch/config.h"
#include "expert/store_provider.h"

namespace swapmoe {

// n_ctx: the context wanted (attention scores grow with it); n_threads: per-thread scratch.
ModelFootprint model_footprint(const ModelConfig& cfg, int64_t n_ctx, int n_threads);

// Bytes of a prompt chunk's scratch per token (an upper estimate of every buffer of
// forward_batch.h's Scratch: F32 rows plus converted activation rows).
uint64_t prefill_bytes_per_token(const ModelConfig& cfg);

}  // namespace swapmoe
