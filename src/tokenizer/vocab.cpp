#include "tokenizer/vocab.h"

#include <algorithm>

#include "gguf/gguf.h"
#include "util/error.h"

namespace swapmoe::tok {

namespace {

const GgufValue& array_key(const GgufFile& f, const std::string& key, GgufType elem, bool* present) {
  static const GgufValue empty;
  const GgufValue* v = f.find(key);
  *present = v != nullptr;
  if (!v) return empty;
  if (v->type != GgufType::ARRAY) fail(f.path(), ": ", key, ": expected an array, got ", gguf_type_name(v->type));
  if (v->arr_len == 0) return *v;
  // Strings must be strings; numeric arrays may use any integer type (and scores floats).
  const bool ok = elem == GgufType::STRING ? v->elem_type == GgufType::STRING
                : elem == GgufType::FLOAT32 ? (!v->arr_float.empty() || !v->arr_int.empty())
                                            : !v->arr_int.empty();
  if (!ok)
    fail(f.path(), ": ", key, ": expected an array of ", gguf_type_name(elem), ", got an array of ",
         gguf_type_name(v->elem_type));
  return *v;
}

// Reads an optional token id key; ids outside the vocabulary are ignored (llama.cpp
// warns and keeps the default).
void read_id(const GgufFile& f, const std::string& key, int32_t n, int32_t& id) {
  if (id >= n) id = -1;
  const GgufValue* v = f.find(key);
  if (!v) return;
  if (!v->is_int()) fail(f.path(), ": ", key, ": expected an integer, got ", gguf_type_name(v->type));
  const int64_t x = f.get_i64(key);
  if (x >= 0 && x < n) id = static_cast<int32_t>(x);
}

bool text_in(const std::string& s, std::initializer_list<const char*> list) {
  for (const char* x : list)
    if (s == x) return true;
  return false;
}

}  // namespace

int32_t TextIndex::build(const std::vector<std::string>& texts) {
  size_t cap = 16;
  while (cap < texts.size() * 2) cap *= 2;  // load factor <= 1/2 keeps probe runs short
  slots_.assign(cap, 0);
  mask_ = cap - 1;
  for (size_t id = 0; id < texts.size(); ++id) {
    const size_t h = std::hash<std::string_view>{}(texts[id]);
    const uint32_t tag = static_cast<uint32_t>(h >> 32) | 1u;
    size_t i = h & mask_;
    for (; slots_[i] != 0; i = (i + 1) & mask_) {
      if (static_cast<uint32_t>(slots_[i] >> 32) == tag && texts[slots_[i] & 0xFFFFFFFFu] == texts[id])
        return static_cast<int32_t>(id);
    }
    slots_[i] = (static_cast<uint64_t>(tag) << 32) | id;
  }
  return -1;
}

Vocab Vocab::load(const GgufFile& f, Type type, bool default_add_bos) {
  Vocab v;
  v.type = type;
  v.model = f.get_str("tokenizer.ggml.model");
  v.pre = f.get_str("tokenizer.ggml.pre", "");

  bool has_tokens = false, has_scores = false, has_types = false;
  const GgufValue& tokens = array_key(f, "tokenizer.ggml.tokens", GgufType::STRING, &has_tokens);
  if (!has_tokens) fail(f.path(), ": tokenizer.ggml.tokens is missing");
  const size_t n = tokens.arr_str.size();
  if (n == 0 || n > 0x7FFFFFFF) fail(f.path(), ": tokenizer.ggml.tokens has ", n, " entries");
  const GgufValue& scores = array_key(f, "tokenizer.ggml.scores", GgufType::FLOAT32, &has_scores);
  const GgufValue& types = array_key(f, "tokenizer.ggml.token_type", GgufType::INT32, &has_types);
  if (has_scores && scores.arr_float.size() < n && scores.arr_int.size() < n)
    fail(f.path(), ": tokenizer.ggml.scores has ", scores.arr_len, " entries for ", n, " tokens");
  if (has_types && types.arr_int.size() < n)
    fail(f.path(), ": tokenizer.ggml.token_type has ", types.arr_len, " entries for ", n, " tokens");

  v.text.resize(n);
  v.score.assign(n, 0.0f);
  v.attr.assign(n, kAttrNormal);
  for (size_t i = 0; i < n; ++i) {
    std::string word = tokens.arr_str[i];
    if (word.empty()) word = cat("[EMPTY_", i, "]");
    v.text[i] = std::move(word);
    if (has_scores) {
      v.score[i] = scores.arr_float.size() >= n ? static_cast<float>(scores.arr_float[i])
                                                : static_cast<float>(scores.arr_int[i]);
    }
    if (has_types) {
      switch (types.arr_int[i]) {
        case 1: v.attr[i] = kAttrNormal; break;
        case 2: v.attr[i] = kAttrUnknown; break;
        case 3: v.attr[i] = kAttrControl; break;
        case 4: v.attr[i] = kAttrUserDefined; break;
        case 5: v.attr[i] = kAttrUnused; break;
        case 6: v.attr[i] = kAttrByte; break;
        default: v.attr[i] = kAttrUndefined; break;
      }
    }
  }
  const int32_t dup = v.index.build(v.text);
  if (dup >= 0)
    fail(f.path(), ": duplicate token in vocabulary: '", v.text[dup], "' has ids ", v.index.find(v.text[dup], v.text),
         " and ", dup);
  const int32_t nv = v.n();

  // Family defaults, then the ids the file states.
  if (type == Type::kSpm) {
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
    v.add_space_prefix = true;
  } else {
    v.bos = 11;  // llama.cpp's BPE defaults, used only when the file has no ids
    v.eos = 11;
  }
  v.add_bos = default_add_bos;
  if (v.pre == "glm4" || v.pre == "chatglm-bpe") v.bos = -1;

  read_id(f, "tokenizer.ggml.bos_token_id", nv, v.bos);
  read_id(f, "tokenizer.ggml.eos_token_id", nv, v.eos);
  read_id(f, "tokenizer.ggml.eot_token_id", nv, v.eot);
  read_id(f, "tokenizer.ggml.eom_token_id", nv, v.eom);
  read_id(f, "tokenizer.ggml.unknown_token_id", nv, v.unk);
  read_id(f, "tokenizer.ggml.seperator_token_id", nv, v.sep);
  read_id(f, "tokenizer.ggml.padding_token_id", nv, v.pad);
  read_id(f, "tokenizer.ggml.fim_pre_token_id", nv, v.fim_pre);
  read_id(f, "tokenizer.ggml.fim_suf_token_id", nv, v.fim_suf);
  read_id(f, "tokenizer.ggml.fim_mid_token_id", nv, v.fim_mid);
  read_id(f, "tokenizer.ggml.fim_pad_token_id", nv, v.fim_pad);
  read_id(f, "tokenizer.ggml.fim_rep_token_id", nv, v.fim_rep);
  read_id(f, "tokenizer.ggml.fim_sep_token_id", nv, v.fim_sep);
  read_id(f, "tokenizer.ggml.prefix_token_id", nv, v.fim_pre);
  read_id(f, "tokenizer.ggml.suffix_token_id", nv, v.fim_suf);
  read_id(f, "tokenizer.ggml.middle_token_id", nv, v.fim_mid);

  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  if (v.add_bos && v.bos < 0) fail(f.path(), ": tokenizer.ggml.add_bos_token is true, but there is no BOS token");
  if (v.add_eos && v.eos < 0) fail(f.path(), ": tokenizer.ggml.add_eos_token is true, but there is no EOS token");

  // llama.cpp recognises some special tokens by their text and forces them to CONTROL,
  // since converters do not always mark them. Which ids end up special changes how
  // prompts are split, so we apply the same rules.
  auto force_control = [&](int32_t id) { v.attr[id] |= kAttrControl; };
  for (int32_t id = 0; id < nv; ++id) {
    const std::string& t = v.text[id];
    auto detect = [&](int32_t& slot, std::initializer_list<const char*> list) {
      if (slot < 0 && text_in(t, list)) {
        slot = id;
        force_control(id);
      }
    };
    detect(v.eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                   "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"});
    detect(v.eom, {"<|eom_id|>"});
    detect(v.fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                       "<|code_prefix|>", "<|prefix|>"});
    detect(v.fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                       "<|code_suffix|>", "<|suffix|>"});
    detect(v.fim_mid, {"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                       "<|code_middle|>", "<|middle|>"});
    detect(v.fim_pad, {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"});
    detect(v.fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"});
    detect(v.fim_sep, {"<|file_sep|>"});
  }
  // Control tokens named "...unused..." are unused slots.
  for (int32_t id = 0; id < nv; ++id) {
    if ((v.attr[id] & kAttrControl) && v.text[id].find("unused") != std::string::npos) v.attr[id] |= kAttrUnused;
  }

  // End-of-generation set.
  // (Newer llama.cpp also adds the FIM pad/repo/file-separator tokens; the release our
  // conformance reference bundles, node-llama-cpp 3.21.1, does not, and we follow it.)
  v.eog.assign(nv, 0);
  for (int32_t id = 0; id < nv; ++id) {
    if (text_in(v.text[id], {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
                             "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>",
                             "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>",
                             "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["})) {
      v.eog[id] = 1;
      force_control(id);
    }
  }
  // gpt-oss: these structural tokens are always rendered, like user text.
  for (int32_t id = 0; id < nv; ++id) {
    if (text_in(v.text[id], {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}))
      v.attr[id] = kAttrUserDefined;
  }
  for (int32_t id : {v.eos, v.eot, v.eom})
    if (id >= 0) v.eog[id] = 1;
  // gpt-oss (o200k_harmony) and solar-open end turns with <|return|>/<|call|>; their
  // <|end|> only ends a message, so it is not end-of-generation there.
  {
    int32_t end_id = -1;
    bool has_return = false, has_call = false, has_flush = false, has_tool_response = false;
    int32_t s_id = -1;
    for (int32_t id = 0; id < nv; ++id) {
      if (!v.eog[id]) continue;
      const std::string& t = v.text[id];
      if (t == "<|return|>") has_return = true;
      else if (t == "<|call|>" || t == "<|calls|>") has_call = true;
      else if (t == "<|flush|>") has_flush = true;
      else if (t == "<|end|>") end_id = id;
      else if (t == "<|tool_response>") has_tool_response = true;
      else if (t == "</s>") s_id = id;
    }
    if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
      v.eog[end_id] = 0;
      v.attr[end_id] = kAttrUserDefined;
    }
    if (has_tool_response && s_id >= 0) {
      v.eog[s_id] = 0;
      v.attr[s_id] = kAttrNormal;
    }
  }

  // Special tokens, longest text first. std::sort on ids in ascending order with this
  // comparator is what llama.cpp does, so ties come out in the same order.
  for (int32_t id = 0; id < nv; ++id)
    if (v.attr[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v.special_tokens.push_back(id);
  std::sort(v.special_tokens.begin(), v.special_tokens.end(),
            [&](int32_t a, int32_t b) { return v.text[a].size() > v.text[b].size(); });
  return v;
}

std::vector<Fragment> Vocab::partition(std::string_view input, bool parse_special) const {
  std::vector<Fragment> frags;
  if (input.empty()) return frags;
  frags.push_back({-1, 0, input.size()});
  std::vector<Fragment> next;
  for (int32_t id : special_tokens) {
    if (!parse_special && (attr[id] & (kAttrControl | kAttrUnknown))) continue;
    const std::string& tok = text[id];
    // Most special tokens do not occur at all; one scan of the whole input rules them out.
    if (input.find(tok) == std::string_view::npos) continue;
    next.clear();
    for (const Fragment& fr : frags) {
      if (fr.token >= 0) {
        next.push_back(fr);
        continue;
      }
      size_t pos = fr.off;
      const size_t end = fr.off + fr.len;
      while (pos < end) {
        const size_t m = input.substr(0, end).find(tok, pos);
        if (m == std::string_view::npos) break;
        if (m > pos) next.push_back({-1, pos, m - pos});
        next.push_back({id, m, tok.size()});
        pos = m + tok.size();
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace swapmoe::tok
