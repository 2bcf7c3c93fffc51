#!/usr/bin/env bash
# Writes an ollama model store holding the demo model as "fortunes-moe" (tag latest), laid
# out as ollama lays out ~/.ollama/models, so `swapmoe run NAME` can be tried without ollama:
#   bash scripts/demo_store.sh /tmp/ollama-demo
#   OLLAMA_MODELS=/tmp/ollama-demo build/swapmoe run fortunes-moe -p "Der Computer"
#   ROOT/blobs/sha256-HEX                                  the GGUF (a hard link, or a copy)
#   ROOT/blobs/sha256-HEX2                                 params: {"temperature":0.7,"top_k":40}
#   ROOT/manifests/registry.ollama.ai/library/fortunes-moe/latest   the manifest (JSON)
set -euo pipefail
dest="${1:?usage: demo_store.sh DIR}"
root="$(cd "$(dirname "$0")/.." && pwd)"
model="$root/models/fortunes-moe.gguf"
mkdir -p "$dest/blobs" "$dest/manifests/registry.ollama.ai/library/fortunes-moe"
hex="$(sha256sum "$model" | cut -c1-64)"
[ -e "$dest/blobs/sha256-$hex" ] || ln "$model" "$dest/blobs/sha256-$hex" 2>/dev/null || cp "$model" "$dest/blobs/sha256-$hex"
params='{"temperature":0.7,"top_k":40}'
phex="$(printf '%s' "$params" | sha256sum | cut -c1-64)"
printf '%s' "$params" > "$dest/blobs/sha256-$phex"
size="$(stat -c %s "$model")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s","size":%s},{"mediaType":"application/vnd.ollama.image.params","digest":"sha256:%s","size":%s}]}\n' \
  "$hex" "$size" "$phex" "${#params}" > "$dest/manifests/registry.ollama.ai/library/fortunes-moe/latest"
echo "ollama store with fortunes-moe:latest in $dest"
