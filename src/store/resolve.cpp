// resolve_model: MODEL as a path, an hf: reference or an ollama name (store.h).

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <numeric>

#include "store/confine.h"
#include "store/hf_cache.h"
#include "store/ollama_store.h"
#include "store/store.h"
#include "store/store_util.h"
#include "util/error.h"

namespace swapmoe::store {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

std::string home_dir() {
  if (std::string h = env("HOME"); !h.empty()) return h;
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir && *pw->pw_dir) return pw->pw_dir;
  return "";
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

bool path_like(const std::string& s) {
  if (s.empty()) return false;
  if (s[0] == '/' || s[0] == '~' || s.rfind("./", 0) == 0 || s.rfind("../", 0) == 0) return true;
  return s.size() >= 5 && iequals(s.substr(s.size() - 5), ".gguf");
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  std::iota(prev.begin(), prev.end(), 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string ollama_models_dir() {
  if (std::string e = env("OLLAMA_MODELS"); !e.empty()) return e;
  const std::string home = home_dir();
  const std::string user = home.empty() ? std::string() : home + "/.ollama/models";
  const std::string service = "/usr/share/ollama/.ollama/models";
  if (!user.empty() && exists(user)) return user;
  if (exists(service)) return service;
  return user.empty() ? service : user;
}

std::string hf_hub_dir() {
  if (std::string e = env("HF_HUB_CACHE"); !e.empty()) return e;
  if (std::string e = env("HF_HOME"); !e.empty()) return e + "/hub";
  const std::string home = home_dir();
  return (home.empty() ? std::string("/nonexistent") : home) + "/.cache/huggingface/hub";
}

std::vector<std::string> closest_names(const std::string& wanted, const std::vector<std::string>& candidates,
                                       size_t max_n) {
  std::vector<std::pair<size_t, size_t>> d;  // (distance, index)
  for (size_t i = 0; i < candidates.size(); ++i) d.emplace_back(edit_distance(wanted, candidates[i]), i);
  std::stable_sort(d.begin(), d.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < d.size() && out.size() < max_n; ++i) out.push_back(candidates[d[i].second]);
  return out;
}

StoreModel resolve_model(const std::string& spec) {
  StoreModel m;
  m.name = spec;
  m.source = "file";
  m.path = spec;
  if (exists(spec) || path_like(spec)) {
    m.parts = {spec};
    m.size = file_size_or_zero(spec);
    return m;
  }
  if (spec.rfind("hf:", 0) == 0) return resolve_hf(hf_hub_dir(), spec.substr(3));
  const std::string root = ollama_models_dir();
  if (!exists(root))
    fail("'", spec, "' is neither a file nor a model of an ollama store (there is none at ", root,
         "; set OLLAMA_MODELS, or give a path or hf:OWNER/REPO[:QUANT])");
  return resolve_ollama(root, spec);
}

StoreModel resolve_store_name(const std::string& name) {
  if (name.rfind("hf:", 0) == 0) return resolve_hf(hf_hub_dir(), name.substr(3));
  return resolve_ollama(ollama_models_dir(), name);
}

std::vector<StoreModel> list_models(std::vector<std::string>* problems) {
  std::vector<StoreModel> out = list_ollama(ollama_models_dir(), problems);
  std::vector<StoreModel> hf = list_hf(hf_hub_dir(), problems);
  out.insert(out.end(), std::make_move_iterator(hf.begin()), std::make_move_iterator(hf.end()));
  return out;
}

}  // namespace swapmoe::store
