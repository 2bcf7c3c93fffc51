#!/usr/bin/env node
// mini_gguf.mjs: writes a tiny random-weight F32 "llama" GGUF (dense or Mixtral-style MoE) with a
// small SentencePiece vocabulary. It exists so that the reference harness (llama_ref.mjs) and the
// comparison script can be exercised before swapmoe-forge exists, and as an independent second
// writer of the format: it shares no code with swapmoe.
//
// Usage: node mini_gguf.mjs OUT.gguf [--experts E] [--layers L] [--seed S]
//
// Shapes (ggml order, ne0 first): token_embd [n_embd, n_vocab], attn_q [n_embd, n_embd],
// attn_k/v [n_embd, n_embd_kv], ffn_gate_inp [n_embd, n_expert], ffn_{gate,up}_exps
// [n_embd, n_ff, n_expert], ffn_down_exps [n_ff, n_embd, n_expert].

import fs from "node:fs";

const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 };

class Buf {
  constructor() { this.chunks = []; this.len = 0; }
  push(b) { this.chunks.push(b); this.len += b.length; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v) { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  str(s) { const b = Buffer.from(s, "utf8"); this.u64(b.length); this.push(b); }
  bytes() { return Buffer.concat(this.chunks); }
}

// Deterministic uniform(-1,1) stream (mulberry32), so a seed always yields the same file.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function writeMiniGguf(path, { experts = 0, layers = 2, seed = 1 } = {}) {
  const nEmbd = 64, nHead = 4, nHeadKv = 2, nFf = 96, nUsed = 2;
  const headDim = nEmbd / nHead, nEmbdKv = headDim * nHeadKv;

  // SentencePiece vocab: <unk> <s> </s>, 256 byte tokens, then "▁", letters and "▁"+letter.
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  const scores = [0, 0, 0];
  for (let i = 0; i < 256; i++) {
    tokens.push(`<0x${i.toString(16).toUpperCase().padStart(2, "0")}>`); types.push(6); scores.push(0);
  }
  const letters = "abcdefghijklmnopqrstuvwxyz";
  tokens.push("\u2581"); types.push(1); scores.push(-1);
  for (const c of letters) { tokens.push(c); types.push(1); scores.push(-2); }
  for (const c of letters) { tokens.push("\u2581" + c); types.push(1); scores.push(-1.5); }
  const nVocab = tokens.length;

  const kv = [];
  const add = (key, type, value, elemType) => kv.push({ key, type, value, elemType });
  add("general.architecture", T.STRING, "llama");
  add("general.name", T.STRING, "mini-test");
  add("general.alignment", T.U32, 32);
  add("llama.context_length", T.U32, 256);
  add("llama.embedding_length", T.U32, nEmbd);
  add("llama.block_count", T.U32, layers);
  add("llama.feed_forward_length", T.U32, nFf);
  add("llama.attention.head_count", T.U32, nHead);
  add("llama.attention.head_count_kv", T.U32, nHeadKv);
  add("llama.attention.layer_norm_rms_epsilon", T.F32, 1e-5);
  add("llama.rope.freq_base", T.F32, 10000);
  add("llama.rope.dimension_count", T.U32, headDim);
  add("llama.vocab_size", T.U32, nVocab);
  if (experts > 0) {
    add("llama.expert_count", T.U32, experts);
    add("llama.expert_used_count", T.U32, nUsed);
  }
  add("tokenizer.ggml.model", T.STRING, "llama");
  add("tokenizer.ggml.tokens", T.ARRAY, tokens, T.STRING);
  add("tokenizer.ggml.scores", T.ARRAY, scores, T.F32);
  add("tokenizer.ggml.token_type", T.ARRAY, types, T.I32);
  add("tokenizer.ggml.bos_token_id", T.U32, 1);
  add("tokenizer.ggml.eos_token_id", T.U32, 2);
  add("tokenizer.ggml.unknown_token_id", T.U32, 0);
  add("tokenizer.ggml.add_bos_token", T.BOOL, true);
  add("tokenizer.ggml.add_eos_token", T.BOOL, false);

  const r = rng(seed);
  const tensors = [];
  // Weights ~ U(-1,1) * scale; scale = 1/sqrt(fan_in) keeps activations O(1) so the random model
  // has peaked next-token distributions (greedy decoding is then not decided by rounding noise).
  const tensor = (name, dims, scale, offset = 0) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = offset + r() * scale;
    tensors.push({ name, dims, data });
  };
  tensor("token_embd.weight", [nEmbd, nVocab], 1.0);
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensor(p + "attn_norm.weight", [nEmbd], 0.1, 1.0);
    tensor(p + "attn_q.weight", [nEmbd, nEmbd], 1.7 / Math.sqrt(nEmbd));
    tensor(p + "attn_k.weight", [nEmbd, nEmbdKv], 1.7 / Math.sqrt(nEmbd));
    tensor(p + "attn_v.weight", [nEmbd, nEmbdKv], 1.7 / Math.sqrt(nEmbd));
    tensor(p + "attn_output.weight", [nEmbd, nEmbd], 1.7 / Math.sqrt(nEmbd));
    tensor(p + "ffn_norm.weight", [nEmbd], 0.1, 1.0);
    if (experts > 0) {
      tensor(p + "ffn_gate_inp.weight", [nEmbd, experts], 1.7 / Math.sqrt(nEmbd));
      tensor(p + "ffn_gate_exps.weight", [nEmbd, nFf, experts], 1.7 / Math.sqrt(nEmbd));
      tensor(p + "ffn_up_exps.weight", [nEmbd, nFf, experts], 1.7 / Math.sqrt(nEmbd));
      tensor(p + "ffn_down_exps.weight", [nFf, nEmbd, experts], 1.7 / Math.sqrt(nFf));
    } else {
      tensor(p + "ffn_gate.weight", [nEmbd, nFf], 1.7 / Math.sqrt(nEmbd));
      tensor(p + "ffn_up.weight", [nEmbd, nFf], 1.7 / Math.sqrt(nEmbd));
      tensor(p + "ffn_down.weight", [nFf, nEmbd], 1.7 / Math.sqrt(nFf));
    }
  }
  tensor("output_norm.weight", [nEmbd], 0.1, 1.0);
  tensor("output.weight", [nEmbd, nVocab], 4.0 / Math.sqrt(nEmbd));

  const h = new Buf();
  h.push(Buffer.from("GGUF", "ascii"));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(kv.length);
  const putScalar = (type, v) => {
    if (type === T.U32) h.u32(v);
    else if (type === T.I32) h.i32(v);
    else if (type === T.F32) h.f32(v);
    else if (type === T.BOOL) h.push(Buffer.from([v ? 1 : 0]));
    else if (type === T.STRING) h.str(v);
    else throw new Error(`type ${type}`);
  };
  for (const { key, type, value, elemType } of kv) {
    h.str(key);
    h.u32(type);
    if (type === T.ARRAY) {
      h.u32(elemType);
      h.u64(value.length);
      for (const v of value) putScalar(elemType, v);
    } else {
      putScalar(type, value);
    }
  }
  const align = 32;
  let off = 0;
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(0);  // GGML_TYPE_F32
    h.u64(off);
    t.offset = off;
    off += Math.ceil(t.data.byteLength / align) * align;
  }
  const head = h.bytes();
  const dataStart = Math.ceil(head.length / align) * align;
  const out = Buffer.alloc(dataStart + off);
  head.copy(out, 0);
  for (const t of tensors) Buffer.from(t.data.buffer).copy(out, dataStart + t.offset);
  fs.writeFileSync(path, out);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args.length < 1) {
    process.stderr.write("usage: node mini_gguf.mjs OUT.gguf [--experts E] [--layers L] [--seed S]\n");
    process.exit(2);
  }
  const opt = { experts: 0, layers: 2, seed: 1 };
  for (let i = 1; i < args.length; i += 2) {
    const k = args[i].replace(/^--/, "");
    if (!(k in opt) || i + 1 >= args.length) {
      process.stderr.write(`mini_gguf: bad argument ${args[i]}\n`);
      process.exit(2);
    }
    opt[k] = Number(args[i + 1]);
  }
  writeMiniGguf(args[0], opt);
}
