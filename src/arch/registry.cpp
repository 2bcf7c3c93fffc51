// The architecture registry: general.architecture names to specs. One line per
// architecture; each spec lives in its own file (<name>.cpp).

#include "arch/arch.h"
#include "util/error.h"

namespace swapmoe {

extern const ArchSpec kQwen3MoeSpec, kQwen2MoeSpec, kLlamaSpec, kOlmoeSpec, kDeepseek2Spec, kGlm4MoeSpec,
    kGptOssSpec;

namespace {

// In the order help texts list them.
const ArchSpec* const kArchs[] = {
    &kQwen3MoeSpec, &kQwen2MoeSpec, &kLlamaSpec, &kOlmoeSpec, &kDeepseek2Spec, &kGlm4MoeSpec, &kGptOssSpec,
};

}  // namespace

const ArchSpec* find_arch(std::string_view name) {
  for (const ArchSpec* a : kArchs)
    if (name == a->name) return a;
  return nullptr;
}

const ArchSpec& arch_spec(std::string_view name) {
  const ArchSpec* a = find_arch(name);
  if (!a) fail("unknown architecture '", name, "' (supported: ", arch_names(), ")");
  return *a;
}

std::string arch_names() {
  std::string s;
  for (const ArchSpec* a : kArchs) {
    if (!s.empty()) s += ", ";
    s += a->name;
    if (*a->also) s += std::string(" (") + a->also + ")";
  }
  return s;
}

}  // namespace swapmoe
