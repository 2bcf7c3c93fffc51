#include "ops/matvec_multi.h"

#include <algorithm>
#include <vector>

#include "ops/dynamic_for.h"

namespace swapmoe {

void matvec_multi(std::span<const MatvecJob> jobs, ThreadPool& pool) {
  // start[j]: index of job j's first row in the concatenation of all rows.
  std::vector<int64_t> start(jobs.size() + 1, 0);
  for (size_t j = 0; j < jobs.size(); ++j) start[j + 1] = start[j] + jobs[j].w.rows;
  const int64_t total = start.back();
  // Grain of 16 rows keeps threads off each other's cache lines in the outputs; chunks
  // are handed out dynamically (ops/dynamic_for.h), four per thread.
  dynamic_for(total, 16, pool, [&](int64_t b, int64_t e) {
    size_t j = std::upper_bound(start.begin(), start.end(), b) - start.begin() - 1;
    for (; j < jobs.size() && start[j] < e; ++j) {
      const int64_t r0 = std::max(b, start[j]) - start[j];
      const int64_t r1 = std::min(e, start[j + 1]) - start[j];
      if (r0 < r1) matvec_st(jobs[j].w, *jobs[j].a, jobs[j].y, r0, r1);
    }
  }, 4);
}

}  // namespace swapmoe
