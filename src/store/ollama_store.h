#pragma once
// ollama's local store, read as ollama lays it out (types/model/name.go, server/images.go
// in ollama's source):
//
//   ROOT/manifests/HOST/NAMESPACE/MODEL/TAG   JSON: {"layers": [{"mediaType", "digest", "size"}, ...]}
//   ROOT/blobs/sha256-HEX                      the content of the layer with digest "sha256:HEX"
//
// ROOT is $OLLAMA_MODELS, else ~/.ollama/models, else the Linux service's
// /usr/share/ollama/.ollama/models (the first that exists; the first one when none does).
// Names are MODEL, MODEL:TAG, NAMESPACE/MODEL:TAG or HOST/NAMESPACE/MODEL:TAG, with the
// defaults HOST registry.ollama.ai, NAMESPACE library and TAG latest. The layer of media
// type application/vnd.ollama.image.model is the GGUF. The application/vnd.ollama.image.params
// layer, a JSON object of Modelfile PARAMETERs ({"stop": [...], "temperature": 0.6, ...}),
// gives the defaults. The template layer is a Go template, not Jinja: the GGUF's own
// tokenizer.chat_template is used instead, so it is not read.

#include <string>
#include <vector>

#include "store/store.h"

namespace swapmoe::store {

struct OllamaName {
  std::string host = "registry.ollama.ai";
  std::string ns = "library";
  std::string model;
  std::string tag = "latest";
  // The shortest form ollama shows: "model:tag", "ns/model:tag" or "host/ns/model:tag".
  std::string display() const;
};

// Parses and validates a name as ollama does: each part starts with a letter, digit or '_'
// and holds only letters, digits, '_', '-' and '.' ('.' not in the namespace, ':' only in
// the host for a port); at most 80 characters (host 350). `..` anywhere is refused too.
// Throws Error naming the problem.
OllamaName parse_ollama_name(const std::string& text);

// Resolves a name in the store at `root`. Throws Error when the root, the manifest, the
// model layer or its blob is missing or malformed, naming what it looked for.
StoreModel resolve_ollama(const std::string& root, const std::string& name);

// Every manifest in the store whose model resolves; the others go to `problems`.
std::vector<StoreModel> list_ollama(const std::string& root, std::vector<std::string>* problems);

// Parses a params layer (exposed for tests). Throws Error when it is not a JSON object or a
// known key has the wrong type; unknown keys are ignored.
ModelParams parse_ollama_params(const std::string& json_text, const std::string& what);

}  // namespace swapmoe::store
