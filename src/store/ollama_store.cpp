#include "store/ollama_store.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "store/confine.h"
#include "store/store_util.h"
#include "util/error.h"

namespace swapmoe::store {

namespace {

constexpr const char* kModelMedia = "application/vnd.ollama.image.model";
constexpr const char* kParamsMedia = "application/vnd.ollama.image.params";
constexpr uint64_t kMaxManifestBytes = 1u << 20;
constexpr uint64_t kMaxParamsBytes = 1u << 20;

enum class Part { Host, Namespace, Model, Tag };

const char* part_name(Part p) {
  switch (p) {
    case Part::Host: return "host";
    case Part::Namespace: return "namespace";
    case Part::Model: return "model name";
    case Part::Tag: return "tag";
  }
  return "part";
}

bool alnum_or_underscore(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

void check_part(Part kind, const std::string& s, const std::string& whole) {
  const size_t max_len = kind == Part::Host ? 350 : 80;
  if (s.empty()) fail("model name '", whole, "': the ", part_name(kind), " is empty");
  if (s.size() > max_len) fail("model name '", whole, "': the ", part_name(kind), " is longer than ", max_len);
  if (!alnum_or_underscore(s[0]))
    fail("model name '", whole, "': the ", part_name(kind), " '", s, "' must start with a letter, digit or '_'");
  for (char c : s) {
    const bool ok = alnum_or_underscore(c) || c == '-' || (c == '.' && kind != Part::Namespace) ||
                    (c == ':' && kind == Part::Host);
    if (!ok)
      fail("model name '", whole, "': the ", part_name(kind), " '", s, "' holds '", printable(c),
           "'; names use letters, digits, '_', '-' and '.'");
  }
  if (s.find("..") != std::string::npos) fail("model name '", whole, "': '..' is not allowed in a name");
}

// The entry of `dir` named `name`, or, failing that, one that equals it ignoring case
// (ollama compares names case-insensitively; older versions wrote lower-case paths).
std::string find_entry(const std::string& dir, const std::string& name) {
  struct stat st {};
  if (::lstat((dir + "/" + name).c_str(), &st) == 0) return name;
  for (const std::string& e : list_dir(dir))
    if (iequals(e, name)) return e;
  return "";
}

json_t parse_json(const std::string& text, const std::string& what) {
  if (json_depth(text) > 64) fail(what, " is nested too deeply to be a manifest");
  json_t j = json_t::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(what, " is not valid JSON");
  return j;
}

std::string blob_path(const std::string& root, const std::string& digest, const std::string& what) {
  // "sha256:HEX" with 64 hex digits; anything else could name a path of its own.
  if (digest.size() != 7 + 64 || digest.compare(0, 7, "sha256:") != 0 ||
      !std::all_of(digest.begin() + 7, digest.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
    fail(what, ": digest '", printable_string(digest), "' is not sha256:<64 hex digits>");
  return root + "/blobs/sha256-" + digest.substr(7);
}

// Reads the manifest at `manifest` (canonical, inside root_real) and fills `m`.
void read_manifest(const std::string& root_real, const std::string& manifest, const std::string& name, StoreModel& m) {
  const std::string what = cat("the manifest of ", name);
  const json_t j = parse_json(read_small_file(manifest, kMaxManifestBytes, what), cat(what, " (", manifest, ")"));
  if (!j.is_object() || !j.contains("layers") || !j["layers"].is_array())
    fail(what, " (", manifest, ") has no \"layers\" list");
  std::string model_digest, params_digest;
  int n_model = 0;
  for (const auto& layer : j["layers"]) {
    if (!layer.is_object() || !layer.contains("mediaType") || !layer["mediaType"].is_string()) continue;
    const std::string media = layer["mediaType"].get<std::string>();
    const std::string digest = layer.contains("digest") && layer["digest"].is_string() ? layer["digest"].get<std::string>() : "";
    if (media == kModelMedia) {
      ++n_model;
      model_digest = digest;
    } else if (media == kParamsMedia) {
      params_digest = digest;
    }
  }
  if (n_model == 0)
    fail(what, " (", manifest, ") has no model layer (", kModelMedia,
         "); it may be a cloud model, an adapter or a safetensors import, which swapmoe cannot run");
  if (n_model > 1) fail(what, " (", manifest, ") has ", n_model, " model layers; swapmoe expects one");
  const std::string blob = blob_path(root_real, model_digest, what);
  m.path = confined_path(root_real, blob, cat("the model blob of ", name));
  if (!has_gguf_magic(m.path)) fail("the model blob of ", name, " (", m.path, ") is not a GGUF file");
  m.parts = {m.path};
  m.size = file_size_or_zero(m.path);
  m.digest = model_digest;
  if (!params_digest.empty()) {
    const std::string p = confined_path(root_real, blob_path(root_real, params_digest, what), cat("the params layer of ", name));
    m.params = parse_ollama_params(read_small_file(p, kMaxParamsBytes, cat("the params layer of ", name)),
                                   cat("the params layer of ", name, " (", p, ")"));
  }
}

std::string root_or_fail(const std::string& root) {
  const std::string real = real_path_or_empty(root);
  if (real.empty()) fail("the ollama store ", root, " does not exist (set OLLAMA_MODELS to its models folder)");
  return real;
}

}  // namespace

std::string OllamaName::display() const {
  std::string out;
  if (!iequals(host, "registry.ollama.ai")) out = host + "/" + ns + "/";
  else if (!iequals(ns, "library")) out = ns + "/";
  return out + model + ":" + tag;
}

OllamaName parse_ollama_name(const std::string& text) {
  if (text.empty()) fail("empty model name");
  if (text.size() > 600) fail("model name is too long (", text.size(), " characters)");
  if (text[0] == '/') fail("model name '", text, "' is an absolute path, and no such file exists");
  std::vector<std::string> seg;
  size_t start = 0;
  for (;;) {
    const size_t slash = text.find('/', start);
    seg.push_back(text.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (seg.size() > 3)
    fail("model name '", text, "' has ", seg.size() - 1, " '/'; names are [host/][namespace/]model[:tag]");
  OllamaName n;
  std::string last = seg.back();
  const size_t colon = last.find(':');
  if (colon != std::string::npos) {
    n.tag = last.substr(colon + 1);
    last.resize(colon);
    check_part(Part::Tag, n.tag, text);
  }
  n.model = last;
  check_part(Part::Model, n.model, text);
  if (seg.size() >= 2) {
    n.ns = seg[seg.size() - 2];
    check_part(Part::Namespace, n.ns, text);
  }
  if (seg.size() == 3) {
    n.host = seg[0];
    check_part(Part::Host, n.host, text);
  }
  return n;
}

ModelParams parse_ollama_params(const std::string& json_text, const std::string& what) {
  const json_t j = parse_json(json_text, what);
  if (!j.is_object()) fail(what, " is not a JSON object");
  ModelParams p;
  auto number = [&](const char* key) -> std::optional<double> {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) fail(what, ": '", key, "' is not a number");
    return it->get<double>();
  };
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer()) fail(what, ": '", key, "' is not an integer");
    return it->get<int64_t>();
  };
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      p.stop.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const auto& s : *it) {
        if (!s.is_string()) fail(what, ": 'stop' holds a value that is not a string");
        if (!s.get<std::string>().empty()) p.stop.push_back(s.get<std::string>());
      }
    } else {
      fail(what, ": 'stop' is not a list of strings");
    }
  }
  p.temperature = number("temperature");
  p.top_p = number("top_p");
  p.min_p = number("min_p");
  p.top_k = integer("top_k");
  p.num_ctx = integer("num_ctx");
  p.num_predict = integer("num_predict");
  p.seed = integer("seed");
  return p;
}

StoreModel resolve_ollama(const std::string& root, const std::string& name) {
  const OllamaName n = parse_ollama_name(name);
  const std::string root_real = root_or_fail(root);
  StoreModel m;
  m.source = "ollama";
  m.name = n.display();
  // manifests/HOST/NAMESPACE/MODEL/TAG, each level matched exactly or else ignoring case.
  std::string dir = root_real + "/manifests";
  const std::string parts[4] = {n.host, n.ns, n.model, n.tag};
  for (const std::string& part : parts) {
    const std::string e = find_entry(dir, part);
    if (e.empty()) {
      std::vector<std::string> problems;
      std::vector<std::string> names;
      for (const StoreModel& x : list_ollama(root, &problems)) names.push_back(x.name);
      const std::vector<std::string> near = closest_names(m.name, names);
      fail("model '", m.name, "' not found in the ollama store ", root_real, " (looked for ", root_real, "/manifests/",
           n.host, "/", n.ns, "/", n.model, "/", n.tag, ")",
           near.empty() ? std::string("; the store has no models") : cat("; closest: ", join(near, ", ")));
    }
    dir += "/" + e;
  }
  const std::string manifest = confined_path(root_real, dir, cat("the manifest of ", m.name));
  read_manifest(root_real, manifest, m.name, m);
  return m;
}

std::vector<StoreModel> list_ollama(const std::string& root, std::vector<std::string>* problems) {
  std::vector<StoreModel> out;
  const std::string root_real = real_path_or_empty(root);
  if (root_real.empty()) return out;
  const std::string base = root_real + "/manifests";
  for (const std::string& host : list_dir(base))
    for (const std::string& ns : list_dir(base + "/" + host))
      for (const std::string& model : list_dir(base + "/" + host + "/" + ns))
        for (const std::string& tag : list_dir(base + "/" + host + "/" + ns + "/" + model)) {
          const std::string rel = host + "/" + ns + "/" + model + "/" + tag;
          try {
            OllamaName n;
            n.host = host;
            n.ns = ns;
            n.model = model;
            n.tag = tag;
            // A manifest path that is not a valid name is not one ollama wrote.
            (void)parse_ollama_name(host + "/" + ns + "/" + model + ":" + tag);
            StoreModel m;
            m.source = "ollama";
            m.name = n.display();
            const std::string manifest = confined_path(root_real, base + "/" + rel, cat("the manifest of ", m.name));
            read_manifest(root_real, manifest, m.name, m);
            out.push_back(std::move(m));
          } catch (const Error& e) {
            if (problems) problems->push_back(e.what());
          }
        }
  return out;
}

}  // namespace swapmoe::store
