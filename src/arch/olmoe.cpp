// olmoe: OLMoE-1B-7B (llama.cpp src/models/olmoe.cpp).
// Multi-head attention with an RMSNorm over the whole q and k projections, NEOX rope;
// softmax gating without renormalisation; feed_forward_length holds the expert width.

#include "arch/arch.h"

namespace swapmoe {

extern const ArchSpec kOlmoeSpec = {
    .name = "olmoe",
    .features = {.qk_norm = QkNorm::Full, .expert_width_in_ff = true},
    .rope_type = RopeType::Neox,
    .gating = GatingFunc::Softmax,
    .weights_norm = false,
};

}  // namespace swapmoe
