#pragma once
// The rows of `swapmoe sweep`: one per (budget, policy, τ) point, written as CSV and drawn
// as an SVG figure (x = budget; panels perplexity ratio, top-1 agreement, decode tok/s; one
// line per policy/τ). The CSV can be read back, so that `sweep --append` adds points to an
// earlier table (e.g. a resident point measured by a separate run) and redraws the plot.

#include <cstdint>
#include <string>
#include <vector>

#include "util/svg_plot.h"

namespace swapmoe::cli {

// The CSV columns, in order (the header line is these names joined by commas).
extern const std::vector<std::string> kSweepColumns;

struct SweepRow {
  uint64_t mem_bytes = 0;     // the budget (resident: the smallest budget that holds every expert)
  std::string mem_label;      // as given: "6G", "50%", "min", "resident"
  double expert_share = 0;    // share of all expert bytes the budget's expert cache holds, [0,1]
  int64_t n_slots = 0;        // expert-cache slots (resident: every expert)
  std::string policy;         // exact | swapmoe
  double exactness = 0;       // τ; NaN (empty in the CSV) for the exact policy
  int64_t tokens = 0;         // positions scored
  double ppl = 0, ppl_ratio = 0;
  double kl_mean = 0, kl_p99 = 0, top1_agreement = 0;  // NaN when no reference was available
  double eval_tok_s = 0;      // the scoring pass, one forward() per token
  double prefill_tok_s = 0;   // forward_batch of the decode prompt
  double decode_tok_s = 0;    // greedy decode
  double decode_rel_resident = 0;  // decode_tok_s / the resident exact point's (NaN without one)
  double hit_rate = 0;             // expert-cache hit rate while decoding (1 when resident)
  double read_bytes_per_token = 0; // expert bytes read per decoded token
  double stall_ms_per_token = 0;   // time decoding waited for expert reads, per token
  uint64_t peak_rss_bytes = 0;     // of this point (VmHWM reset before it)
  // SwapMoE only (0 for exact), over the scoring pass: shares of the experts the unmasked
  // router chose that were masked out (missing, gate weight < τ, or no free slot), and
  // that were read synchronously (missing, weight >= τ). Per decoded token: bytes read by
  // background swaps.
  double masked_share = 0;
  double sync_load_share = 0;
  double swap_bytes_per_token = 0;
};

// Series name of a row: "exact", or "swapmoe τ=0.5".
std::string series_name(const SweepRow& r);

// Fills decode_rel_resident from the resident exact row (mem_label "resident", else any
// resident row); NaN when there is none.
void finalize_rows(std::vector<SweepRow>& rows);

std::string rows_to_csv(const std::vector<SweepRow>& rows);
// Parses what rows_to_csv wrote. Throws Error naming the line on a wrong header or row.
std::vector<SweepRow> rows_from_csv(const std::string& text);

// The figure: perplexity ratio (left; clipped at 2, larger values marked at the edge),
// top-1 agreement (middle) and decode tok/s (right) against the budget.
svg::Figure sweep_figure(const std::vector<SweepRow>& rows, const std::string& title);

// Splits a CSV line into fields (double quotes around a field allow commas; "" inside is ").
std::vector<std::string> split_csv_line(const std::string& line);

}  // namespace swapmoe::cli
