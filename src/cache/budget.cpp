#include "cache/budget.h"

#include <algorithm>
#include <thread>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "cache/expert_cache.h"
#include "ops/mla_legacy.h"
#include "util/error.h"

namespace swapmoe {

// ---- Sizes ---------------------------------------------------------------------------

uint64_t parse_size(const std::string& text) {
  // The one size parser of swapmoe (cli/size_parse.h forwards here).
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  const size_t num_begin = i;
  bool seen_digit = false, seen_dot = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) seen_digit = true;
    else if (c == '.' && !seen_dot) seen_dot = true;
    else break;
  }
  if (!seen_digit) fail("invalid size '", text, "': expected a number with an optional K/M/G/T suffix, e.g. 6G or 1.5GiB");
  const double value = std::strtod(text.substr(num_begin, i - num_begin).c_str(), nullptr);
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit;
  for (; i < text.size(); ++i) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.back()))) unit.pop_back();
  double mult = 1;
  if (!unit.empty() && unit != "B") {
    const std::string rest = unit.substr(1);
    if (rest != "" && rest != "B" && rest != "I" && rest != "IB")
      fail("invalid size '", text, "': unknown unit '", unit, "' (use K, M, G or T)");
    switch (unit[0]) {
      case 'K': mult = 1024.0; break;
      case 'M': mult = 1024.0 * 1024; break;
      case 'G': mult = 1024.0 * 1024 * 1024; break;
      case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
      default: fail("invalid size '", text, "': unknown unit '", unit, "' (use K, M, G or T)");
    }
  }
  const double bytes = std::floor(value * mult);
  if (!(bytes < 18446744073709551616.0)) fail("invalid size '", text, "': too large");
  if (seen_dot && mult == 1 && bytes != value) fail("invalid size '", text, "': a byte count must be whole");
  return static_cast<uint64_t>(bytes);
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[48];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

namespace {

// Sizes in messages use the unit that suits them (GiB for real models, KiB for tests).
std::string gib(uint64_t bytes) { return format_bytes(bytes); }

// Parses "blk.<N>.ffn_<part>_exps.weight"; returns N or -1, and the part 0/1/2.
int expert_tensor_layer(const std::string& name, int* part) {
  if (name.rfind("blk.", 0) != 0) return -1;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return -1;
  const std::string num = name.substr(4, dot - 4);
  if (!std::all_of(num.begin(), num.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) || num.size() > 6)
    return -1;
  const std::string rest = name.substr(dot + 1);
  if (rest == "ffn_gate_exps.weight") *part = 0;
  else if (rest == "ffn_up_exps.weight") *part = 1;
  else if (rest == "ffn_down_exps.weight") *part = 2;
  else if (rest == "ffn_gate_exps.bias") *part = 3;  // gpt-oss: the biases travel with their expert
  else if (rest == "ffn_up_exps.bias") *part = 4;
  else if (rest == "ffn_down_exps.bias") *part = 5;
  else return -1;
  return std::stoi(num);
}

// "blk.N.<rest>" -> N, else -1.
int block_index(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int v = 0;
  size_t i = 4;
  for (; i < name.size() && i < 10 && std::isdigit(static_cast<unsigned char>(name[i])); ++i) v = v * 10 + (name[i] - '0');
  return i > 4 && i < name.size() && name[i] == '.' ? v : -1;
}

constexpr int64_t kMinCtx = 256;

constexpr uint64_t kMiB = 1024 * 1024;

// The smallest prefill chunk a budget reserves room for: a small model's whole 512-token
// chunk can be a large part of a tight budget (6.5 MiB on the 21.5 MiB demo model).
constexpr uint64_t kPrefillMinTokens = 16;

// RssFile of this process from /proc/self/status (resident file-backed pages: the
// executable and its shared libraries), or 0 where it cannot be read.
uint64_t read_rss_file() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long v = 0;
    if (std::sscanf(line, "RssFile: %llu kB", &v) == 1) {
      kib = v;
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
}

// The executable and shared libraries as resident at this process's first plan, measured
// once (so that every plan of one process, and tests comparing measure_model with
// plan_budget, see one figure). Only the file-backed part is measured: the anonymous part
// (heap, stacks) depends on what the command did before planning (eval has read and
// tokenized its text, a server may hold other state), and a plan must come out the same in
// `swapmoe plan` as in the `run` it is made for; it is modelled instead (process_overhead).
// The figure is rounded up to a multiple of 2 MiB: RssFile moves by a few hundred KiB between
// runs, and unrounded it gave the same command 24, 25 or 26 expert slots (and so different
// hit rates) from one run to the next; rounded to 1 MiB it still crossed a step now and then.
uint64_t mapped_files_baseline() {
  // 2 MiB steps (issue 15): with 1 MiB steps the figure (8.3-9.x MiB here) crossed the 9 MiB step
  // in some runs, and SwapMoE's slot count, hence its output, changed with it.
  constexpr uint64_t kStep = 2 * kMiB;
  static const uint64_t rss = (read_rss_file() + kStep - 1) / kStep * kStep;
  return rss;
}

// What the process holds besides dense weights, KV cache, scratch and expert slots:
//   code       the executable and shared libraries resident at plan time
//              (mapped_files_baseline()), or kElsewhereCode where /proc is unreadable;
//              BudgetRequest::process_baseline overrides both (planning for another
//              machine's process). swapmoe's release build on Debian 12 x86-64 measures
//              8.3 MiB (libstdc++, ICU, OpenSSL and httplib mapped and relocated).
//   heap       1 MiB (allocator arenas, command-line state, main stack) + 3 x the tokenizer
//              metadata (string bytes + 32 per string + 8 per number): the parsed header
//              once, the tokenizer's tables (strings, lookup maps, merge ranks) twice.
//              Measured at plan time on the demo model: 1.4 MiB anonymous.
//   growth     code and ICU data first touched after the plan (tokenizer, kernels, forward
//              pass), thread stacks and per-thread malloc arenas as they fill, the io_uring
//              rings: 1.5 MiB + 256 KiB per thread.
// A margin of 1/16 of the sum plus 512 KiB covers allocator slack. RssFile varies by a few
// hundred KiB from run to run (the kernel maps more of a library per fault when more of it is
// in the page cache). On the demo model (2 threads, --mem 17M, just above the minimum) the
// overhead is 13.7-13.9 MiB against 11.3 MiB measured (peak RSS 14.4 MiB minus dense, KV,
// scratch and expert cache): a ~22% margin, where the former fixed 24 MiB was 2x. The cgroup
// tests (scripts/test_budget.sh, scripts/smoke.sh) check that the whole process, page cache
// included, stays under budget + 5%.
constexpr uint64_t kElsewhereCode = 9 * kMiB;

// Threads the per-thread terms are planned for: at least every hardware thread, whatever
// --threads says. A plan that followed -t gave -t 1 more expert slots than -t 2 (320 KiB per
// thread: 4 slots on the demo model), so SwapMoE's resident sets, and its output, depended on
// the thread count (issue 15, item 12); an idle thread's share is small beside any budget.
int64_t planned_threads(const BudgetRequest& req) {
  return std::max<int64_t>({req.n_threads, 1, static_cast<int64_t>(std::thread::hardware_concurrency())});
}

uint64_t process_overhead(const BudgetRequest& req, uint64_t tokenizer_meta_bytes) {
  uint64_t code = req.process_baseline;
  if (code == 0) code = mapped_files_baseline();
  if (code == 0) code = kElsewhereCode;
  const uint64_t threads = static_cast<uint64_t>(planned_threads(req));
  const uint64_t sum = code + kMiB + 3 * tokenizer_meta_bytes + 3 * kMiB / 2 + threads * 256 * 1024;
  return sum + sum / 16 + kMiB / 2;
}

}  // namespace

bool is_expert_tensor(const std::string& name) {
  int part = 0;
  return expert_tensor_layer(name, &part) >= 0;
}

// ---- Measuring -----------------------------------------------------------------------

BudgetPlan measure_model(const ModelFootprint& fp, const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req) {
  BudgetPlan p;
  p.n_ctx_requested = req.n_ctx;
  p.n_ctx = req.n_ctx;
  p.per_layer = req.per_layer;
  p.n_expert = cfg.n_expert;
  p.n_expert_used = cfg.n_expert_used;
  if (req.n_ctx < 1) fail("context size must be positive, got ", req.n_ctx);
  if (req.alignment == 0 || (req.alignment & (req.alignment - 1)) != 0) fail("I/O alignment ", req.alignment, " is not a power of two");

  // Dense weights, and the expert tensors grouped by layer.
  std::vector<ExpertTensors> experts(static_cast<size_t>(std::max<int64_t>(cfg.n_layer, 0)));
  std::string kv_b_types;  // e.g. "Q6_K/Q4_K": the mix gives attn_v-like tensors more bits on some layers
  uint64_t nextn_bytes = 0;
  size_t nextn_tensors = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    // The NextN/MTP layers after the transformer layers are not loaded (arch/config.h).
    if (cfg.n_layer_nextn > 0 && block_index(t.name) >= cfg.n_layer) {
      nextn_bytes += t.nbytes;
      ++nextn_tensors;
      continue;
    }
    int part = 0;
    const int layer = expert_tensor_layer(t.name, &part);
    if (layer < 0) {
      // A legacy MLA file's attn_kv_b is split at load into attn_k_b / attn_v_b and dropped
      // (ops/mla_legacy.h): the derived tensors are what stays resident.
      if (cfg.mla_legacy && t.ne.size() == 2 && t.name.size() > 17 &&
          t.name.compare(t.name.size() - 17, 17, ".attn_kv_b.weight") == 0) {
        const MlaLegacyShape s{cfg.kv_lora_rank, cfg.n_head, cfg.head_dim_k_mla - cfg.n_rot, cfg.head_dim_v_mla};
        const uint64_t derived = mla_legacy_k_b_bytes(s, mla_legacy_k_b_type(t.type)) + mla_legacy_v_b_bytes(s, t.type);
        p.dense_bytes += derived;
        p.mla_legacy_kv_b_bytes += t.nbytes;
        p.mla_legacy_derived_bytes += derived;
        const std::string tn = ggml_type_name(t.type);
        if (("/" + kv_b_types + "/").find("/" + tn + "/") == std::string::npos)
          kv_b_types += (kv_b_types.empty() ? "" : "/") + tn;
        continue;
      }
      // 1-D tensors live as F32 twice (see the header); matrices as stored.
      p.dense_bytes += t.ne.size() == 1 ? 2 * 4 * static_cast<uint64_t>(t.n_elements()) : t.nbytes;
      continue;
    }
    if (layer >= cfg.n_layer) fail(f.path(), ": tensor ", t.name, " belongs to layer ", layer, " but the model has ", cfg.n_layer);
    ExpertTensors& e = experts[static_cast<size_t>(layer)];
    const GgufTensorInfo** slots[kExpertParts] = {&e.gate, &e.up, &e.down, &e.gate_b, &e.up_b, &e.down_b};
    *slots[part] = &t;
  }
  for (size_t l = 0; l < experts.size(); ++l) {
    const ExpertTensors& e = experts[l];
    if (!e.gate && !e.up && !e.down) continue;
    const int parts = expert_part_count(e, f.path(), l);
    LayerExpertBytes L;
    L.layer = static_cast<int>(l);
    L.n_expert = e.gate->ne.size() == 3 ? e.gate->ne[2] : 0;
    L.bytes_per_expert = 0;
    for (int q = 0; q < parts; ++q) {
      const GgufTensorInfo* t = expert_part(e, q);
      if (t->ne.empty() || t->ne.back() != L.n_expert)
        fail(f.path(), ": tensor ", t->name, " does not hold ", L.n_expert, " experts");
      L.bytes_per_expert += expert_slice_bytes(*t);
    }
    p.expert_bytes_total += L.bytes_per_expert * static_cast<uint64_t>(L.n_expert);
    p.layers.push_back(L);
  }
  p.slot_bytes = p.layers.empty() ? 0 : ExpertCache::slot_bytes_for(experts, req.alignment);

  if (cfg.n_layer_nextn > 0)
    p.notes.push_back(cat("NextN/MTP layer", cfg.n_layer_nextn > 1 ? "s" : "", " blk.", cfg.n_layer,
                          cfg.n_layer_nextn > 1 ? cat("-", cfg.n_layer + cfg.n_layer_nextn - 1) : std::string(), " (",
                          nextn_tensors, " tensors, ", format_bytes(nextn_bytes),
                          ") in the file, not used for plain decoding: not loaded, not in the budget"));
  if (p.mla_legacy_kv_b_bytes > 0)
    p.notes.push_back(cat("legacy MLA layout: attn_kv_b (", format_bytes(p.mla_legacy_kv_b_bytes),
                          ", ", kv_b_types, ") is split at load into attn_k_b (F16; F32/BF16 sources keep their type) + attn_v_b (",
                          kv_b_types, "): ", format_bytes(p.mla_legacy_derived_bytes), " of dense weights"));

  // What the model holds per token and as scratch, as it reports it (model/footprint.cpp).
  p.kv_bytes_per_token = fp.kv_bytes_per_token;
  p.kv_bytes = p.kv_bytes_per_token * static_cast<uint64_t>(p.n_ctx);
  p.scratch_bytes = fp.scratch_bytes;

  // Overhead: what the process holds besides the planned buffers (see process_overhead).
  uint64_t tok = 0;
  for (const auto& [key, v] : f.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    for (const std::string& s : v.arr_str) tok += s.size() + 32;
    tok += 8 * (v.arr_int.size() + v.arr_float.size()) + v.s.size();
  }
  p.overhead_bytes = process_overhead(req, tok);

  // Exact mode needs n_expert_used experts of one layer pinned at once.
  const int64_t n_moe = static_cast<int64_t>(p.layers.size());
  p.min_slots = n_moe == 0 ? 0 : (req.per_layer ? n_moe * cfg.n_expert_used : cfg.n_expert_used);
  // Batched prefill: room for a kPrefillMinTokens chunk; plan_budget adds more from the
  // expert cache's share.
  p.prefill_bytes_per_token = fp.prefill_bytes_per_token;
  p.prefill_bytes = kPrefillMinTokens * p.prefill_bytes_per_token;
  p.min_budget = p.dense_bytes + p.kv_bytes + p.scratch_bytes + p.prefill_bytes + p.overhead_bytes +
                 static_cast<uint64_t>(p.min_slots) * p.slot_bytes;
  return p;
}

// ---- Planning ------------------------------------------------------------------------

BudgetPlan plan_budget(const ModelFootprint& fp, const ModelConfig& cfg, const GgufFile& f, const BudgetRequest& req) {
  BudgetPlan p = measure_model(fp, cfg, f, req);
  p.budget = req.budget;
  const uint64_t min_experts = static_cast<uint64_t>(p.min_slots) * p.slot_bytes;
  const uint64_t fixed = p.dense_bytes + p.scratch_bytes + p.prefill_bytes + p.overhead_bytes + min_experts;
  const int64_t min_ctx = std::min(kMinCtx, req.n_ctx);

  if (req.budget < fixed + p.kv_bytes_per_token * static_cast<uint64_t>(min_ctx)) {
    std::string experts = cat("experts ", gib(min_experts), " = ", p.min_slots, " slots of ", format_bytes(p.slot_bytes));
    if (req.per_layer) experts += cat(" (", cfg.n_expert_used, " per layer x ", p.layers.size(), " layers; a shared pool needs fewer)");
    fail("--mem ", gib(req.budget), " is too small for this model: needs at least ", gib(p.min_budget), " (dense ",
         gib(p.dense_bytes), ", KV ", gib(p.kv_bytes), " for ", req.n_ctx, " tokens, scratch ", gib(p.scratch_bytes + p.prefill_bytes),
         ", overhead ", gib(p.overhead_bytes), ", ", experts, ")",
         min_ctx < req.n_ctx ? cat("; even with a ", min_ctx, "-token context: ",
                                                           gib(fixed + p.kv_bytes_per_token * static_cast<uint64_t>(min_ctx)))
                                                    : std::string());
  }

  if (fixed + p.kv_bytes > req.budget) {
    // Shrink the context to what fits, in steps of 256 tokens.
    const uint64_t room = req.budget - fixed;
    int64_t ctx = static_cast<int64_t>(room / std::max<uint64_t>(p.kv_bytes_per_token, 1));
    ctx = std::max(min_ctx, ctx / kMinCtx * kMinCtx);
    p.n_ctx = ctx;
    p.ctx_reduced = true;
    p.kv_bytes = p.kv_bytes_per_token * static_cast<uint64_t>(ctx);
    p.notes.push_back(cat("context reduced from ", req.n_ctx, " to ", ctx, " tokens: the KV cache for ", req.n_ctx,
                          " tokens (", gib(p.kv_bytes_per_token * static_cast<uint64_t>(req.n_ctx)),
                          ") does not fit next to the dense weights and the minimum expert cache"));
    p.min_budget = fixed + p.kv_bytes;
  }

  // Everything else is expert cache.
  const uint64_t rest = p.dense_bytes + p.kv_bytes + p.scratch_bytes + p.prefill_bytes + p.overhead_bytes;
  p.cache_bytes = req.budget - rest;
  // A bigger prefill chunk reads each expert once for more prompt tokens: 1/32 of the
  // expert share, up to a whole chunk, never below the minimum slots.
  {
    const uint64_t most = kPrefillMaxChunk * p.prefill_bytes_per_token;
    const uint64_t want = std::min(most, std::max(p.prefill_bytes, (p.cache_bytes + p.prefill_bytes) / 32));
    const uint64_t spare = p.cache_bytes > min_experts ? p.cache_bytes - min_experts : 0;
    const uint64_t extra = std::min(want - p.prefill_bytes, spare);
    p.prefill_bytes += extra;
    p.cache_bytes -= extra;
  }
  const int64_t n_moe = static_cast<int64_t>(p.layers.size());
  int64_t total_experts = 0;
  for (const auto& L : p.layers) total_experts += L.n_expert;
  p.n_slots = p.slot_bytes ? static_cast<int64_t>(p.cache_bytes / p.slot_bytes) : 0;
  if (p.n_slots >= total_experts) {
    p.n_slots = total_experts;
    p.all_experts_fit = true;
    p.notes.push_back(cat("all ", total_experts, " experts fit in the cache; ", gib(p.cache_bytes - static_cast<uint64_t>(total_experts) * p.slot_bytes),
                          " of the budget stays unused"));
    p.cache_bytes = static_cast<uint64_t>(total_experts) * p.slot_bytes;
  }

  // Worst-case reads per token: uniform routing hits slots_l / n_expert of the time.
  for (int64_t i = 0; i < n_moe; ++i) {
    const LayerExpertBytes& L = p.layers[static_cast<size_t>(i)];
    double slots_l = 0;
    if (req.per_layer) slots_l = static_cast<double>(p.n_slots / n_moe + (i < p.n_slots % n_moe ? 1 : 0));
    else slots_l = static_cast<double>(p.n_slots) / static_cast<double>(n_moe);  // even share of the shared pool
    slots_l = std::min(slots_l, static_cast<double>(L.n_expert));
    const double miss = L.n_expert ? 1.0 - slots_l / static_cast<double>(L.n_expert) : 0.0;
    p.worst_read_bytes_per_token += static_cast<double>(cfg.n_expert_used) * miss * static_cast<double>(L.bytes_per_expert);
  }
  return p;
}

uint64_t budget_for_slots(const BudgetPlan& m, int64_t slots) {
  const uint64_t cache = static_cast<uint64_t>(std::max(slots, m.min_slots)) * m.slot_bytes;
  // plan_budget gives the prefill buffers P = (cache + P) / 32 (within [minimum, a whole
  // chunk]), i.e. P = cache / 31. Half a slot of slack absorbs the rounding, and stays
  // below one more slot.
  const uint64_t most = kPrefillMaxChunk * m.prefill_bytes_per_token;
  const uint64_t prefill = std::min(most, std::max(m.prefill_bytes, (cache + 30) / 31));
  return m.dense_bytes + m.kv_bytes + m.scratch_bytes + m.overhead_bytes + prefill + cache + m.slot_bytes / 2;
}

// ---- Reports -------------------------------------------------------------------------

std::string plan_to_text(const BudgetPlan& p) {
  std::string s;
  auto line = [&](const std::string& k, const std::string& v) { s += cat("  ", k, std::string(k.size() < 28 ? 28 - k.size() : 1, ' '), v, "\n"); };
  s += "memory plan\n";
  if (p.budget) line("budget", format_bytes(p.budget));
  line("dense weights", format_bytes(p.dense_bytes));
  line("KV cache", cat(format_bytes(p.kv_bytes), " (", p.n_ctx, " tokens x ", format_bytes(p.kv_bytes_per_token), ")",
                       p.ctx_reduced ? cat(", reduced from ", p.n_ctx_requested) : std::string()));
  line("scratch", format_bytes(p.scratch_bytes));
  line("prefill scratch", cat(format_bytes(p.prefill_bytes), " (",
                              p.prefill_bytes_per_token ? std::min<uint64_t>(kPrefillMaxChunk, p.prefill_bytes / p.prefill_bytes_per_token) : 0,
                              "-token chunks)"));
  line("overhead", format_bytes(p.overhead_bytes));
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& L : p.layers) {
    lo = std::min(lo, L.bytes_per_expert);
    hi = std::max(hi, L.bytes_per_expert);
  }
  if (!p.layers.empty()) {
    line("experts", cat(format_bytes(p.expert_bytes_total), " (", p.layers.size(), " MoE layers x ", p.n_expert, ", ", p.n_expert_used, " used)"));
    line("bytes per expert", lo == hi ? format_bytes(lo) : cat(format_bytes(lo), " .. ", format_bytes(hi)));
    line("expert bytes per layer", format_bytes(hi * static_cast<uint64_t>(p.n_expert)));
    line("slot (aligned)", format_bytes(p.slot_bytes));
  }
  line("minimum budget", cat(format_bytes(p.min_budget), " (", p.min_slots, " slots", p.per_layer ? ", per-layer pools" : "", ")"));
  if (p.budget) {
    line("expert cache", cat(format_bytes(p.cache_bytes), " = ", p.n_slots, " slots", p.per_layer ? " (per-layer pools)" : " (shared pool)"));
    line("worst-case read per token", cat(format_bytes(static_cast<uint64_t>(p.worst_read_bytes_per_token)), " (uniform routing)"));
  }
  for (const auto& n : p.notes) s += cat("  note: ", n, "\n");
  return s;
}

nlohmann::json plan_to_json(const BudgetPlan& p) {
  nlohmann::json j;
  j["budget"] = p.budget;
  j["dense_bytes"] = p.dense_bytes;
  j["kv_bytes_per_token"] = p.kv_bytes_per_token;
  j["n_ctx_requested"] = p.n_ctx_requested;
  j["n_ctx"] = p.n_ctx;
  j["ctx_reduced"] = p.ctx_reduced;
  j["kv_bytes"] = p.kv_bytes;
  j["scratch_bytes"] = p.scratch_bytes;
  j["prefill_bytes"] = p.prefill_bytes;
  j["prefill_bytes_per_token"] = p.prefill_bytes_per_token;
  j["overhead_bytes"] = p.overhead_bytes;
  j["expert_bytes_total"] = p.expert_bytes_total;
  j["slot_bytes"] = p.slot_bytes;
  j["n_expert"] = p.n_expert;
  j["n_expert_used"] = p.n_expert_used;
  j["per_layer"] = p.per_layer;
  j["min_slots"] = p.min_slots;
  j["min_budget"] = p.min_budget;
  j["cache_bytes"] = p.cache_bytes;
  j["n_slots"] = p.n_slots;
  j["all_experts_fit"] = p.all_experts_fit;
  j["worst_read_bytes_per_token"] = p.worst_read_bytes_per_token;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& L : p.layers)
    layers.push_back({{"layer", L.layer}, {"n_expert", L.n_expert}, {"bytes_per_expert", L.bytes_per_expert}});
  j["moe_layers"] = layers;
  j["mla_legacy_kv_b_bytes"] = p.mla_legacy_kv_b_bytes;
  j["mla_legacy_derived_bytes"] = p.mla_legacy_derived_bytes;
  j["notes"] = p.notes;
  return j;
}

}  // namespace swapmoe
