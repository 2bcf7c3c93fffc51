#include "forge_types.h"

#include <regex>

#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe::forge {

namespace {

// A block type named on the command line (--expert-type / --down-type / --tensor-type).
GgmlType override_type(const std::string& flag, const std::string& name) {
  const auto t = ggml_type_from_name(name);
  if (t && (*t == GgmlType::F32 || *t == GgmlType::F16 || *t == GgmlType::BF16) && flag == "--tensor-type") return *t;
  if (!t || !cli::is_block_quantized(*t) || *t == GgmlType::Q8_1 || *t == GgmlType::Q8_K)
    fail(flag, " ", name, ": not a weight block type (e.g. Q4_K, Q8_0, IQ2_XXS, IQ1_S)");
  (void)quant_traits(*t);  // a type without arithmetic support fails here
  return *t;
}

// --expert-type, then --down-type, on the routed expert tensors; rows that do not fit the
// type's blocks fall back as the mix would.
void apply_type_overrides(const ForgeSpec& spec, ForgeTensors& ft) {
  const bool ex = !spec.expert_type.empty(), down = !spec.down_type.empty();
  if (!ex && !down) return;
  const GgmlType et = ex ? override_type("--expert-type", spec.expert_type) : GgmlType::F32;
  const GgmlType dt = down ? override_type("--down-type", spec.down_type) : GgmlType::F32;
  for (size_t i = 0; i < ft.tensors.size(); ++i) {
    const TensorSpec& s = ft.tensors[i];
    if (s.role != TensorRole::Experts) continue;
    GgmlType t = ft.types[i];
    if (ex) t = et;
    if (down && s.name.find("ffn_down_exps") != std::string::npos) t = dt;
    std::string note;
    ft.types[i] = cli::fallback_type(t, s.ne[0], &note);
    if (!note.empty()) ft.notes.push_back(s.name + ": " + note);
  }
}

// The --tensor-type rules, as llama-quantize's --tensor-type applies them: the first rule
// whose regex is found in the name decides; norms, the router and other tensors the mix
// keeps exact are never touched.
void apply_tensor_type_rules(const ForgeSpec& spec, ForgeTensors& ft) {
  if (spec.tensor_types.empty()) return;
  std::vector<std::pair<std::regex, TensorTypeRule>> rules;
  for (const auto& r : spec.tensor_types) {
    TensorTypeRule rule = parse_tensor_type_rule(r);
    rules.emplace_back(std::regex(rule.pattern), rule);
  }
  for (size_t i = 0; i < ft.tensors.size(); ++i) {
    const TensorSpec& s = ft.tensors[i];
    if (!cli::tensor_allows_quantization(s.name, s.ne)) continue;
    for (const auto& [re, rule] : rules) {
      if (!std::regex_search(s.name, re)) continue;
      std::string note;
      ft.types[i] = cli::fallback_type(rule.type, s.ne[0], &note);
      if (!note.empty()) ft.notes.push_back(s.name + ": " + note);
      break;
    }
  }
}

}  // namespace

TensorTypeRule parse_tensor_type_rule(const std::string& rule) {
  const size_t eq = rule.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == rule.size())
    fail("--tensor-type ", rule, ": expected REGEX=TYPE (e.g. ffn_down_exps=IQ2_XXS)");
  TensorTypeRule r{rule.substr(0, eq), override_type("--tensor-type", rule.substr(eq + 1))};
  try {
    (void)std::regex(r.pattern);
  } catch (const std::regex_error& e) {
    fail("--tensor-type ", rule, ": bad regular expression: ", e.what());
  }
  return r;
}

ForgeTensors plan_forge_tensors(const ForgeSpec& spec, const ModelConfig& cfg, const cli::QuantTarget& target) {
  ForgeTensors ft;
  std::vector<cli::MixTensor> mix;
  for (auto& s : tensor_specs(cfg)) {
    if (s.optional && s.role == TensorRole::Output && s.layer < 0 && !cfg.has_output) continue;  // tied
    // A NextN layer's own embedding and head are optional: written files share the model's.
    if (s.optional && s.layer >= 0 && (s.role == TensorRole::Output || s.role == TensorRole::TokenEmbd)) continue;
    mix.push_back({s.name, s.ne, GgmlType::F32});
    ft.tensors.push_back(std::move(s));
  }
  cli::MixModel mm;
  mm.n_layer = cfg.n_layer + cfg.n_layer_nextn;  // block_count, as llama-quantize reads it
  mm.n_expert = cfg.n_expert;
  mm.n_head = cfg.n_head;
  // As llama-quantize reads it from the file: the legacy MLA layout states n_head there.
  mm.n_head_kv = cfg.mla_legacy ? cfg.n_head : cfg.n_head_kv;
  cli::MixPlan plan = cli::plan_quant_types(target, mm, mix);
  ft.types = std::move(plan.types);
  ft.notes = std::move(plan.notes);
  apply_type_overrides(spec, ft);
  apply_tensor_type_rules(spec, ft);
  return ft;
}

}  // namespace swapmoe::forge
