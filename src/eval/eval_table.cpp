#include "eval/eval_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "util/error.h"

namespace swapmoe::cli {

const std::vector<std::string> kSweepColumns = {
    "mem_bytes",      "mem_label",     "expert_share",   "n_slots",       "policy",
    "exactness",      "tokens",        "ppl",            "ppl_ratio",     "kl_mean",
    "kl_p99",         "top1_agreement", "eval_tok_s",    "prefill_tok_s", "decode_tok_s",
    "decode_rel_resident", "hit_rate", "read_bytes_per_token", "stall_ms_per_token", "peak_rss_bytes",
    "masked_share",   "sync_load_share", "swap_bytes_per_token"};

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A double for the CSV: empty when not a number, else %.6g (relative precision, so tiny
// KL values keep their six digits).
std::string fmt(double v) {
  if (!std::isfinite(v)) return "";
  char b[40];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string quote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

double parse_double(const std::string& s, size_t line, const std::string& col) {
  if (s.empty()) return kNaN;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) fail("sweep CSV line ", line, ": column ", col, ": not a number: '", s, "'");
  return v;
}

int64_t parse_int(const std::string& s, size_t line, const std::string& col) {
  const double v = parse_double(s, line, col);
  if (!std::isfinite(v) || v != std::floor(v)) fail("sweep CSV line ", line, ": column ", col, ": not an integer: '", s, "'");
  return static_cast<int64_t>(v);
}

}  // namespace

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_quotes = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string series_name(const SweepRow& r) {
  if (r.policy == "exact" || !std::isfinite(r.exactness)) return r.policy;
  char b[64];
  std::snprintf(b, sizeof b, "%s \xcf\x84=%g", r.policy.c_str(), r.exactness);  // τ in UTF-8
  return b;
}

void finalize_rows(std::vector<SweepRow>& rows) {
  double resident = kNaN;
  for (const SweepRow& r : rows)
    if (r.mem_label == "resident" && r.policy == "exact" && r.decode_tok_s > 0) resident = r.decode_tok_s;
  if (!std::isfinite(resident))
    for (const SweepRow& r : rows)
      if (r.mem_label == "resident" && r.decode_tok_s > 0) resident = r.decode_tok_s;
  for (SweepRow& r : rows) r.decode_rel_resident = std::isfinite(resident) ? r.decode_tok_s / resident : kNaN;
}

std::string rows_to_csv(const std::vector<SweepRow>& rows) {
  std::string o;
  for (size_t i = 0; i < kSweepColumns.size(); ++i) o += (i ? "," : "") + kSweepColumns[i];
  o += "\n";
  for (const SweepRow& r : rows) {
    const std::vector<std::string> f = {std::to_string(r.mem_bytes), quote(r.mem_label), fmt(r.expert_share),
                                        std::to_string(r.n_slots), quote(r.policy), fmt(r.exactness),
                                        std::to_string(r.tokens), fmt(r.ppl), fmt(r.ppl_ratio), fmt(r.kl_mean),
                                        fmt(r.kl_p99), fmt(r.top1_agreement), fmt(r.eval_tok_s), fmt(r.prefill_tok_s),
                                        fmt(r.decode_tok_s), fmt(r.decode_rel_resident), fmt(r.hit_rate),
                                        fmt(r.read_bytes_per_token), fmt(r.stall_ms_per_token),
                                        std::to_string(r.peak_rss_bytes), fmt(r.masked_share),
                                        fmt(r.sync_load_share), fmt(r.swap_bytes_per_token)};
    for (size_t i = 0; i < f.size(); ++i) o += (i ? "," : "") + f[i];
    o += "\n";
  }
  return o;
}

std::vector<SweepRow> rows_from_csv(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  size_t n = 0;
  std::vector<SweepRow> rows;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> f = split_csv_line(line);
    if (n == 1) {
      if (f != kSweepColumns) fail("sweep CSV line 1: the header is not swapmoe sweep's (", line, ")");
      continue;
    }
    if (f.size() != kSweepColumns.size())
      fail("sweep CSV line ", n, ": ", f.size(), " fields, expected ", kSweepColumns.size());
    auto d = [&](size_t i) { return parse_double(f[i], n, kSweepColumns[i]); };
    auto k = [&](size_t i) { return parse_int(f[i], n, kSweepColumns[i]); };
    SweepRow r;
    r.mem_bytes = static_cast<uint64_t>(k(0));
    r.mem_label = f[1];
    r.expert_share = d(2);
    r.n_slots = k(3);
    r.policy = f[4];
    r.exactness = d(5);
    r.tokens = k(6);
    r.ppl = d(7);
    r.ppl_ratio = d(8);
    r.kl_mean = d(9);
    r.kl_p99 = d(10);
    r.top1_agreement = d(11);
    r.eval_tok_s = d(12);
    r.prefill_tok_s = d(13);
    r.decode_tok_s = d(14);
    r.decode_rel_resident = d(15);
    r.hit_rate = d(16);
    r.read_bytes_per_token = d(17);
    r.stall_ms_per_token = d(18);
    r.peak_rss_bytes = static_cast<uint64_t>(k(19));
    r.masked_share = d(20);
    r.sync_load_share = d(21);
    r.swap_bytes_per_token = d(22);
    rows.push_back(r);
  }
  if (n == 0) fail("sweep CSV: empty");
  return rows;
}

svg::Figure sweep_figure(const std::vector<SweepRow>& rows, const std::string& title) {
  uint64_t max_mem = 0;
  for (const SweepRow& r : rows) max_mem = std::max(max_mem, r.mem_bytes);
  const bool gib = max_mem >= (4ull << 30);
  const double unit = gib ? 1024.0 * 1024 * 1024 : 1024.0 * 1024;
  const std::string x_label = gib ? "memory budget (GiB)" : "memory budget (MiB)";

  // One series per policy/τ, in order of first appearance.
  std::vector<std::string> names;
  struct Lines {
    svg::Series ppl, agree, speed;
  };
  std::map<std::string, Lines> by_name;
  double resident = kNaN;
  for (const SweepRow& r : rows) {
    const std::string name = series_name(r);
    if (!by_name.count(name)) {
      names.push_back(name);
      by_name[name].ppl.name = by_name[name].agree.name = by_name[name].speed.name = name;
    }
    const double x = static_cast<double>(r.mem_bytes) / unit;
    // A resident point at the x of a budget point of the same series ("100%") would draw a
    // vertical segment; the resident speed is the speed panel's reference line instead.
    bool shadowed = false;
    if (r.mem_label == "resident")
      for (const SweepRow& q : rows) shadowed |= &q != &r && q.mem_label != "resident" && series_name(q) == name &&
                                                q.mem_bytes == r.mem_bytes;
    if (shadowed) continue;
    by_name[name].ppl.points.emplace_back(x, r.ppl_ratio);
    by_name[name].agree.points.emplace_back(x, 100.0 * r.top1_agreement);
    by_name[name].speed.points.emplace_back(x, r.decode_tok_s);
    if (std::isfinite(r.decode_rel_resident) && r.decode_rel_resident > 0 && !std::isfinite(resident))
      resident = r.decode_tok_s / r.decode_rel_resident;
  }
  svg::Panel quality{"quality: perplexity / exact perplexity", x_label, "perplexity ratio", {}, {}, false};
  quality.hlines = {{1.0, "exact"}, {1.03, "+3%"}};
  quality.y_clip = 2.0;  // a pure-SwapMoE point at a tiny budget can be 10x: shown at the edge
  svg::Panel agree{"quality: top-1 agreement with exact", x_label, "same argmax (% of tokens)", {}, {{90.0, "90%"}}, false};
  svg::Panel speed{"speed: greedy decode", x_label, "decode tokens/s", {}, {}, true};
  if (std::isfinite(resident)) speed.hlines = {{resident, "resident"}, {0.7 * resident, "70% of resident"}};
  for (const std::string& n : names) {
    quality.series.push_back(by_name[n].ppl);
    agree.series.push_back(by_name[n].agree);
    speed.series.push_back(by_name[n].speed);
  }
  svg::Figure f;
  f.title = title;
  f.panels = {quality, agree, speed};
  return f;
}

}  // namespace swapmoe::cli
