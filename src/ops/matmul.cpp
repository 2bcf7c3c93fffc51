// Batched quantized matrix products (see matmul.h). Loop order inside one thread, for a
// range of weight rows:
//   token blocks (activations of ~kActBlockBytes, kept in L2)
//     weight-row chunks of kRowChunk rows (a few KB, kept in L1/L2)
//       token groups of kVecDotMultiMax: one vec_dot_multi call per weight row.
// Weights stream from memory once per token block; activations come from L2.
// Types with a row tile (QuantTraits::mat_tile: Q4_K on AVX-512) use run_tiles instead:
// token blocks of kMatTileTokens, then tiles of kMatTileRows rows, one call per tile.

#include "ops/matmul.h"

#include <algorithm>
#include <atomic>
#include <functional>

#include "ops/dynamic_for.h"
#include "util/error.h"

namespace swapmoe {
namespace {

constexpr int64_t kRowGrain = 16;           // rows per scheduling unit (one cache line of y per token)
constexpr int64_t kRowChunk = 16;           // weight rows reused across one token block's groups
constexpr size_t kActBlockBytes = 192 * 1024;  // activation bytes per token block (fits a 512 KB-1 MB L2)
// Fewest tokens for the row tile; below, vec_dot_multi is faster (the tile's per-block
// unpacking and per-call setup are shared by fewer tokens). Measured crossovers, 1 thread,
// Q4_K on Zen 4: ~6-8 tokens for 2048- and 7168-column rows, ~16 for 1536 columns (6
// blocks per row, so the per-call cost weighs more).
constexpr int64_t kTileMinTokens = 8;
constexpr int64_t kTileMinTokensShortRows = 16;
constexpr int64_t kTileShortRowCols = 2048;  // rows with fewer columns count as short
constexpr int64_t kTileTokenGrain = 32;        // token split for few-row matrices when a row tile exists

void check_matrix(const MatrixRef& w) {
  if (w.rows < 0 || w.cols < 0) fail("matmul: negative matrix shape ", w.rows, "x", w.cols);
  if (w.rows > 0 && w.cols > 0 && w.data == nullptr) fail("matmul: ", w.rows, "x", w.cols, " matrix has no data");
}

void check_activations(const MatrixRef& w, const QuantizedActivations& a, const QuantTraits& t) {
  if (a.rows == 0) return;
  if (a.type != t.vec_dot_type)
    fail("matmul: ", ggml_type_name(w.type), " weights need ", ggml_type_name(t.vec_dot_type), " activations, got ",
         ggml_type_name(a.type));
  if (a.n != w.cols) fail("matmul: activations have ", a.n, " elements per row, matrix has ", w.cols, " columns");
  if (a.rows < 0 || a.row_bytes != ggml_row_size(a.type, a.n) ||
      a.bytes.size() < a.row_bytes * static_cast<size_t>(a.rows))
    fail("matmul: activation buffer of ", a.bytes.size(), " bytes does not hold ", a.rows, " rows of ",
         ggml_row_size(a.type, a.n), " bytes");
}

// Row-tile path (QuantTraits::mat_tile): tokens in blocks of up to kMatTileTokens, weight
// rows in tiles of kMatTileRows; each call unpacks a tile's weight blocks once for all
// the block's tokens. The activations of one token block (128 x ~8-18 KB for the DS-V3
// shapes) stream from L2/L3 once per row tile, the tile's weights from memory once per
// token block.
void run_tiles(const QuantTraits& q, const MatrixRef& w, const QuantizedActivations& a, float* y, int64_t r_begin,
               int64_t r_end, int64_t t_begin, int64_t t_end) {
  const size_t wrb = w.row_bytes();
  const uint8_t* wbase = static_cast<const uint8_t*>(w.data);
  const size_t ys = static_cast<size_t>(w.rows);
  for (int64_t t0 = t_begin; t0 < t_end; t0 += kMatTileTokens) {
    const int nt = static_cast<int>(std::min<int64_t>(kMatTileTokens, t_end - t0));
    for (int64_t r0 = r_begin; r0 < r_end; r0 += kMatTileRows) {
      const int nr = static_cast<int>(std::min<int64_t>(kMatTileRows, r_end - r0));
      q.mat_tile(w.cols, wbase + static_cast<size_t>(r0) * wrb, wrb, nr, a.row(t0), a.row_bytes, nt,
                 y + static_cast<size_t>(t0) * ys + static_cast<size_t>(r0), ys);
    }
  }
}

// The kernel loop, no checks: weight rows [r_begin, r_end) x tokens [t_begin, t_end).
void run_block(const QuantTraits& q, const MatrixRef& w, const QuantizedActivations& a, float* y, int64_t r_begin,
               int64_t r_end, int64_t t_begin, int64_t t_end) {
  // The tile unpacks each weight block once per call, which pays off from a few tokens
  // on; both paths are bitwise equal to vec_dot, so the choice never changes results.
  const int64_t min_tokens = w.cols < kTileShortRowCols ? kTileMinTokensShortRows : kTileMinTokens;
  if (q.mat_tile && t_end - t_begin >= min_tokens) return run_tiles(q, w, a, y, r_begin, r_end, t_begin, t_end);
  const size_t wrb = w.row_bytes();
  const uint8_t* wbase = static_cast<const uint8_t*>(w.data);
  const size_t ys = static_cast<size_t>(w.rows);
  if (t_end - t_begin == 1) {
    // One token (decode): the matrix-vector kernel, one vec_dot per row, as matvec_st.
    float* yt = y + static_cast<size_t>(t_begin) * ys;
    const void* act = a.row(t_begin);
    for (int64_t r = r_begin; r < r_end; ++r) yt[r] = q.vec_dot(w.cols, wbase + static_cast<size_t>(r) * wrb, act);
    return;
  }
  int64_t tb = static_cast<int64_t>(kActBlockBytes / std::max<size_t>(a.row_bytes, 1));
  tb = std::max<int64_t>(kVecDotMultiMax, tb / kVecDotMultiMax * kVecDotMultiMax);
  for (int64_t t0 = t_begin; t0 < t_end; t0 += tb) {
    const int64_t t1 = std::min(t_end, t0 + tb);
    for (int64_t r0 = r_begin; r0 < r_end; r0 += kRowChunk) {
      const int64_t r1 = std::min(r_end, r0 + kRowChunk);
      for (int64_t t = t0; t < t1; t += kVecDotMultiMax) {
        const int na = static_cast<int>(std::min<int64_t>(kVecDotMultiMax, t1 - t));
        float* yt = y + static_cast<size_t>(t) * ys;
        if (q.vec_dot_multi) {
          for (int64_t r = r0; r < r1; ++r)
            q.vec_dot_multi(w.cols, wbase + static_cast<size_t>(r) * wrb, a.row(t), a.row_bytes, na, yt + r, ys);
        } else {
          // Generic fallback: the same results as matvec by construction.
          for (int64_t r = r0; r < r1; ++r)
            for (int k = 0; k < na; ++k)
              yt[static_cast<size_t>(k) * ys + r] = q.vec_dot(w.cols, wbase + static_cast<size_t>(r) * wrb, a.row(t + k));
        }
      }
    }
  }
}

}  // namespace

void quantize_activations(const float* x, int64_t rows, int64_t n, GgmlType vec_dot_type, QuantizedActivations& out,
                          ThreadPool* pool) {
  if (rows < 0) fail("quantize_activations: negative row count ", rows);
  const QuantTraits& t = quant_traits(vec_dot_type);
  out.type = vec_dot_type;
  out.n = n;
  out.rows = rows;
  out.row_bytes = ggml_row_size(vec_dot_type, n);  // throws unless n fits the block size
  out.bytes.resize(out.row_bytes * static_cast<size_t>(rows));
  if (n == 0 || rows == 0) return;
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) t.from_float(x + r * n, out.bytes.data() + static_cast<size_t>(r) * out.row_bytes, n);
  };
  if (pool) pool->parallel_for(rows, body, 4);
  else body(0, rows, 0);
}

void gather_activations(const QuantizedActivations& a, std::span<const int32_t> ids, QuantizedActivations& out) {
  out.type = a.type;
  out.n = a.n;
  out.rows = static_cast<int64_t>(ids.size());
  out.row_bytes = a.row_bytes;
  out.bytes.resize(a.row_bytes * ids.size());
  for (size_t k = 0; k < ids.size(); ++k) {
    if (ids[k] < 0 || ids[k] >= a.rows) fail("gather_activations: token id ", ids[k], " outside [0, ", a.rows, ")");
    std::copy_n(static_cast<const uint8_t*>(a.row(ids[k])), a.row_bytes, out.bytes.data() + k * a.row_bytes);
  }
}

void matmul_st(const MatrixRef& w, const QuantizedActivations& a, float* y, int64_t row_begin, int64_t row_end) {
  check_matrix(w);
  const QuantTraits& q = quant_traits(w.type);
  check_activations(w, a, q);
  if (row_begin < 0 || row_end > w.rows || row_begin > row_end)
    fail("matmul_st: row range [", row_begin, ", ", row_end, ") outside matrix of ", w.rows, " rows");
  if (a.rows == 0 || w.cols == 0) {
    for (int64_t t = 0; t < a.rows; ++t) std::fill(y + t * w.rows + row_begin, y + t * w.rows + row_end, 0.0f);
    return;
  }
  run_block(q, w, a, y, row_begin, row_end, 0, a.rows);
}

void matmul(const MatrixRef& w, const QuantizedActivations& a, float* y, ThreadPool& pool) {
  check_matrix(w);
  const QuantTraits& q = quant_traits(w.type);
  check_activations(w, a, q);
  if (a.rows == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    std::fill(y, y + a.rows * w.rows, 0.0f);
    return;
  }
  if (a.rows == 1) {
    // One token: scheduled as matvec_multi schedules a matrix-vector product.
    const MatmulJob job{w, &a, y};
    matmul_multi({&job, 1}, pool);
    return;
  }
  const int threads = pool.size();
  if (w.rows >= kRowGrain * threads || a.rows < 2 * kVecDotMultiMax) {
    // Usual case: threads take chunks of weight rows; each chunk is read once for all tokens.
    dynamic_for(w.rows, kRowGrain, pool, [&](int64_t b, int64_t e) { run_block(q, w, a, y, b, e, 0, a.rows); });
  } else {
    // Few rows, many tokens (small matrices): split the tokens in groups instead.
    const int64_t grain = q.mat_tile ? kTileTokenGrain : kVecDotMultiMax;
    dynamic_for(a.rows, grain, pool, [&](int64_t b, int64_t e) { run_block(q, w, a, y, 0, w.rows, b, e); });
  }
}

void matmul_rows(const MatrixRef& w, const QuantizedActivations& a, std::span<const int32_t> ids, float* y,
                 ThreadPool& pool) {
  thread_local QuantizedActivations sub;
  gather_activations(a, ids, sub);
  matmul(w, sub, y, pool);
}

void matmul_multi(std::span<const MatmulJob> jobs, ThreadPool& pool) {
  // start[j]: index of job j's first row among all jobs' rows; jobs without tokens count 0 rows.
  std::vector<int64_t> start(jobs.size() + 1, 0);
  for (size_t j = 0; j < jobs.size(); ++j) {
    const MatmulJob& job = jobs[j];
    if (!job.a) fail("matmul_multi: job ", j, " has no activations");
    check_matrix(job.w);
    check_activations(job.w, *job.a, quant_traits(job.w.type));
    const bool empty = job.a->rows == 0 || job.w.rows == 0;
    if (!empty && job.w.cols == 0) std::fill(job.y, job.y + job.a->rows * job.w.rows, 0.0f);
    start[j + 1] = start[j] + (empty || job.w.cols == 0 ? 0 : job.w.rows);
  }
  const int64_t total = start.back();
  // One token per job (decode): rows are cheap, so fewer, larger chunks per thread, as
  // matvec_multi hands them out.
  bool single = true;
  for (const MatmulJob& job : jobs) single = single && job.a->rows <= 1;
  dynamic_for(total, kRowGrain, pool, [&](int64_t b, int64_t e) {
    size_t j = std::upper_bound(start.begin(), start.end(), b) - start.begin() - 1;
    for (; j < jobs.size() && start[j] < e; ++j) {
      const int64_t r0 = std::max(b, start[j]) - start[j];
      const int64_t r1 = std::min(e, start[j + 1]) - start[j];
      if (r0 < r1) run_block(quant_traits(jobs[j].w.type), jobs[j].w, *jobs[j].a, jobs[j].y, r0, r1, 0, jobs[j].a->rows);
    }
  }, single ? 4 : 8);
}

}  // namespace swapmoe
