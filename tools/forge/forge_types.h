#pragma once
// Which tensors swapmoe-forge writes and in which type: the quantization mix of --type
// (cli/quant_mix.h), then --expert-type/--down-type on the routed experts, then the
// --tensor-type REGEX=TYPE rules (a preset's, or the command line's) on any quantizable
// tensor. Separate from the writer so that tests can check a preset's types without
// writing a file.

#include <string>
#include <vector>

#include "convert/quant_mix.h"
#include "forge_spec.h"
#include "arch/arch.h"

namespace swapmoe::forge {

struct ForgeTensors {
  std::vector<TensorSpec> tensors;  // in file order, tied output left out
  std::vector<GgmlType> types;      // one per tensor
  std::vector<std::string> notes;   // fallbacks and rule matches worth a verbose line
};

ForgeTensors plan_forge_tensors(const ForgeSpec& spec, const ModelConfig& cfg, const cli::QuantTarget& target);

// One --tensor-type rule, "REGEX=TYPE" (the last '=' splits). Throws Error naming the rule.
struct TensorTypeRule {
  std::string pattern;
  GgmlType type;
};
TensorTypeRule parse_tensor_type_rule(const std::string& rule);

}  // namespace swapmoe::forge
