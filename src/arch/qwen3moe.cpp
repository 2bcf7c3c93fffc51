// qwen3moe: Qwen3-30B-A3B, Qwen3-235B-A22B (llama.cpp src/models/qwen3moe.cpp).
// Grouped-query attention with an RMSNorm over each q and k head, NEOX rope; softmax
// gating over all experts with the chosen weights renormalised to sum 1; no shared expert.
// No keys beyond the common ones.

#include "arch/arch.h"

namespace swapmoe {

extern const ArchSpec kQwen3MoeSpec = {
    .name = "qwen3moe",
    .features = {.qk_norm = QkNorm::PerHead},
    .rope_type = RopeType::Neox,
    .gating = GatingFunc::Softmax,
    .weights_norm = true,
};

}  // namespace swapmoe
