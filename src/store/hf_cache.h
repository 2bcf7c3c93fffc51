#pragma once
// The Hugging Face hub cache, read as huggingface_hub writes it:
//
//   HUB/models--OWNER--REPO/refs/main           the commit hash `main` points to
//   HUB/models--OWNER--REPO/snapshots/REV/...   the repository's files at REV, as symlinks
//   HUB/models--OWNER--REPO/blobs/HASH          into blobs/
//
// HUB is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. A reference is
// hf:OWNER/REPO[:QUANT]. The revision is the one refs/main names when its snapshot is
// present, else the newest snapshot. The file is chosen as llama.cpp's `-hf` chooses it
// (common/download.cpp, find_best_model): among the snapshot's .gguf files (sorted by path,
// without mmproj/imatrix files and split parts other than the first), the first whose path
// contains QUANT followed by '.' or '-', ignoring case; without QUANT, Q4_K_M, then Q8_0,
// then the first file. A split model (NAME-00001-of-000NN.gguf) resolves to its first part.
// Symlinks are followed only as far as they stay inside HUB.

#include <string>
#include <vector>

#include "store/store.h"

namespace swapmoe::store {

// "owner/repo[:QUANT]" (without "hf:"). Throws Error when the repository, a snapshot or a
// matching file is missing (naming where it looked and the closest names), or a part of a
// split model is missing.
StoreModel resolve_hf(const std::string& hub, const std::string& ref);

// One entry per model file (first parts only) of every cached repository, each named so
// that resolving the name gives that file ("hf:owner/repo:QUANT").
std::vector<StoreModel> list_hf(const std::string& hub, std::vector<std::string>* problems);

// The quantization tag of a GGUF file name as llama.cpp reads it ("Model-UD-IQ1_S-00001-of-00003.gguf"
// -> "IQ1_S"); "" when there is none. Exposed for tests.
std::string quant_tag_of(const std::string& filename);

}  // namespace swapmoe::store
