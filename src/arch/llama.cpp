// llama with experts: Mixtral 8x7B / 8x22B (llama.cpp src/models/llama.cpp, MoE branch).
// Grouped-query attention, NORM rope (adjacent pairs); softmax gating with the chosen
// weights renormalised; feed_forward_length holds the expert width.

#include "arch/arch.h"

namespace swapmoe {

extern const ArchSpec kLlamaSpec = {
    .name = "llama",
    .also = "Mixtral",
    .features = {.expert_width_in_ff = true},
    .rope_type = RopeType::Norm,
    .gating = GatingFunc::Softmax,
    .weights_norm = true,
};

}  // namespace swapmoe
