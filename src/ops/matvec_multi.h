#pragma once
// Several independent matrix-vector products evaluated under ONE thread-pool barrier.
// A decode step is dominated by small matvecs (q/k/v, the gate/up/down of 8 experts);
// dispatching each separately costs a wake-up and a join per product, so the rows of all
// products are laid end to end and split evenly across the threads instead. Each output
// row is computed by exactly one thread with the same kernel, so results do not depend
// on the thread count.

#include <cstdint>
#include <span>

#include "ops/matvec.h"

namespace swapmoe {

struct MatvecJob {
  MatrixRef w;
  const QuantizedActivation* a = nullptr;  // must be of w's vec_dot_type
  float* y = nullptr;                      // [w.rows]
};

void matvec_multi(std::span<const MatvecJob> jobs, ThreadPool& pool);

}  // namespace swapmoe
