# The preamble shared by the CLI test scripts that forge models (test_split.sh,
# test_budget.sh, test_llama_split.sh). Source it, then call
#
#   test_init NAME BUILD_DIR
#
# which sets swapmoe and forge (both must be built: else a one-line error and exit 1), spm
# (the llama-spm test vocabulary, from tests/data/vocab or ../shared/vocab), work (a temporary
# directory removed at exit), threads=2 and fails=0. bad/ok report a check (bad counts it in
# fails); json_field FILE KEY reads a numeric field of `swapmoe plan --json`.

test_init() {
  local name=$1 exe
  build=$2
  swapmoe="$build/swapmoe"
  forge="$build/swapmoe-forge"
  for exe in "$swapmoe" "$forge"; do [ -x "$exe" ] || { echo "test_$name: $exe not built" >&2; exit 1; }; done
  vocab_dir="$root/tests/data/vocab"
  [ -f "$vocab_dir/ggml-vocab-llama-spm.gguf" ] || vocab_dir="$root/../shared/vocab"
  spm="$vocab_dir/ggml-vocab-llama-spm.gguf"
  [ -f "$spm" ] || { echo "test_$name: vocabulary not found in $vocab_dir" >&2; exit 1; }
  work=$(mktemp -d "${TMPDIR:-/tmp}/swapmoe-${name//_/-}.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  threads=2
  fails=0
}

bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
json_field() { sed -n "s/^ *\"$2\": \([0-9.e+]*\),\?$/\1/p" "$1" | head -n1; }
