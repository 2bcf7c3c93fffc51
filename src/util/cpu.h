#pragma once
// Run-time CPU feature detection, used to choose SIMD kernels. SWAPMOE_ISA=scalar|avx2|avx512
// in the environment caps the choice (for tests and benchmarks).

namespace swapmoe {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// The best ISA both the CPU and SWAPMOE_ISA allow. Computed once.
Isa best_isa();
bool cpu_supports(Isa isa);
const char* isa_name(Isa isa);

}  // namespace swapmoe
