#pragma once
// Models by name: the files a user already has in ollama's local store or in the Hugging
// Face cache, found without downloading anything.
//
//   resolve_model("models/x.gguf")          an existing path is a path
//   resolve_model("hf:owner/repo:Q4_K_M")   the Hugging Face cache (hf_cache.h)
//   resolve_model("deepseek-r1:671b")       ollama's store (ollama_store.h)
//
// This folder sits at the gguf/io floor: it reads directories, JSON manifests and the four
// magic bytes of a GGUF file, nothing more. Every file it opens is first resolved with
// realpath() and must lie inside the store's root (confine.h), so a name with `..`, an
// absolute path inside a name, or a manifest or symlink that points elsewhere is an error,
// never a read outside the store.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace swapmoe::store {

// Defaults a store gives a model: ollama's `params` layer (a JSON object of its Modelfile
// PARAMETERs: stop words, temperature, ...). Explicit flags and request fields override them.
struct ModelParams {
  std::vector<std::string> stop;
  std::optional<double> temperature, top_p, min_p;
  std::optional<int64_t> top_k, num_ctx, num_predict, seed;
  bool empty() const {
    return stop.empty() && !temperature && !top_p && !min_p && !top_k && !num_ctx && !num_predict && !seed;
  }
};

struct StoreModel {
  std::string name;                // as the user names it: "deepseek-r1:671b", "hf:owner/repo:Q4_K_M"
  std::string source;              // "file", "ollama" or "hf"
  std::string path;                // the GGUF to open (the first part of a split model)
  std::vector<std::string> parts;  // every part, the first one first (one entry when not split)
  uint64_t size = 0;               // bytes of all parts together
  std::string digest;              // ollama: the model layer's "sha256:HEX"
  ModelParams params;
};

// The store roots, from the environment (see ollama_store.h and hf_cache.h for the order).
std::string ollama_models_dir();
std::string hf_hub_dir();

// MODEL as the CLI takes it. An existing path is returned as it is; "hf:" goes to the
// Hugging Face cache; anything else that is not path-like (no leading '/', './', '../' or
// '~', no ".gguf" ending) is an ollama name. A path-like MODEL that does not exist is
// returned unchanged, so the GGUF reader reports the missing file as before.
// Throws Error when a name is not found, saying where it looked and the closest names.
StoreModel resolve_model(const std::string& spec);

// A name in the stores only (hf: or ollama), never a file path: what a server resolves for
// a client, who must not make it open arbitrary files.
StoreModel resolve_store_name(const std::string& name);

// Every model of both stores (roots from the environment). Entries that cannot be used
// (missing blob, broken manifest, ...) are left out and described in `problems`.
std::vector<StoreModel> list_models(std::vector<std::string>* problems = nullptr);

// Up to `max_n` of `candidates` closest to `wanted` by edit distance (case-insensitive),
// closest first, ties in candidate order.
std::vector<std::string> closest_names(const std::string& wanted, const std::vector<std::string>& candidates,
                                       size_t max_n = 3);

}  // namespace swapmoe::store
