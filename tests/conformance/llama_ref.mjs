#!/usr/bin/env node
// llama_ref.mjs: the llama.cpp side of swapmoe's conformance tests.
//
// It drives the llama.cpp build bundled in node-llama-cpp@3.21.1 (the prebuilt CPU binary from
// @node-llama-cpp/linux-x64; nothing is downloaded or compiled) and prints JSON on stdout, so a
// test can put swapmoe's answer for the same question beside it. All llama.cpp logging goes to
// stderr, which keeps stdout machine-readable.
//
// Usage: node llama_ref.mjs [--threads N] [--no-mmap] [--kv-type f16|f32] [--verbose] COMMAND ARGS...
//   load MODEL                          print {"architecture":..,"n_vocab":..} and OK on stderr
//   tokenize MODEL TEXT | --file F      print the ids as a JSON array
//        [--no-add-special] [--no-parse-special]    (defaults: add BOS/EOS as the vocab says,
//                                                     and parse special-token text, like llama-tokenize)
//   tokenize-inp MODEL FILE.inp         tokenize each string of a __ggml_vocab_test__ file without
//                                       BOS and with special parsing, one line of ids per string,
//                                       in the format of the .out files (leading space, space-separated)
//   greedy MODEL PROMPT N [--ctx N] [--logprobs-out F] [--force-ids 1,2,..]
//                                       print {"prompt_ids":[..],"ids":[..],"second":[..],"text":..,
//                                       "margins":[..]}; second[i] is the runner-up id at step i;
//                                       F gets every step's full next-token log-probabilities
//                                       (float32 rows of n_vocab; see cmdGreedy); --force-ids
//                                       feeds those ids instead of the argmax (teacher forcing)
//   eval MODEL TEXTFILE [--max-tokens N] [--ctx N] [--batch N]   print {"tokens":..,"nll":..,"ppl":..}
//   probs MODEL PROMPT [--top K]        print the top-K (default 20) next-token probabilities
//
// Decisions that a comparison must mirror (docs/conformance.md repeats them):
//  * "add special" follows llama.cpp's llama_tokenize(add_special=true): BOS is prepended when the
//    vocab's add_bos flag is set, EOS appended when add_eos is set. node-llama-cpp's tokenize()
//    never adds them itself, so we do it here, exactly as llama-vocab.cpp does for SPM and BPE.
//  * greedy: the prompt is tokenized with add_special and parse_special (as llama-cli and
//    llama-simple do). Generation does NOT stop at end-of-generation tokens: exactly N ids are
//    produced, each the argmax of the full logits (ties -> lowest id, llama.cpp's greedy sampler).
//    margins[i] = ln(p_top1 / p_top2) at step i and second[i] the runner-up's id, so a mismatch at
//    a near-tie can be recognised (and checked to be the runner-up). The prompt is decoded one
//    token at a time (batch size 1), so every step uses llama.cpp's single-token kernels.
//  * eval: the text is tokenized with add_special and WITHOUT parse_special (as llama-perplexity
//    does), truncated to the first --max-tokens tokens (BOS included), and evaluated in ONE window
//    (one context, no chunking, unlike llama-perplexity). For every position i >= 1 it takes
//    -ln p(t_i | t_<i) from the softmax over the full vocabulary of the logits at i-1.
//    tokens = number of predicted tokens = n_tokens - 1; nll = mean; ppl = exp(nll).
//  * The model is run on CPU only (gpu: false, gpuLayers 0), with a fixed thread count
//    (--threads, default 2), flash attention off, the default F16 KV cache, and mmap on unless
//    --no-mmap. Weight repacking (llama.cpp's CPU "extra buffer types", --no-repack in llama-cli)
//    stays at llama.cpp's default, which is ON: node-llama-cpp 3.21.1 has no switch for it. It only
//    changes the memory layout of Q4_0/Q4_K/IQ4_NL/Q8_0 weights, not the arithmetic that matters here.
//  * Runs are deterministic: no sampling randomness is involved, and CPU results do not depend on
//    scheduling for a fixed thread count.

import fs from "node:fs";
import process from "node:process";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

function usage(msg) {
  if (msg) process.stderr.write(`llama_ref: ${msg}\n`);
  process.stderr.write(
    "usage: node llama_ref.mjs [--threads N] [--no-mmap] [--verbose] " +
      "load|tokenize|tokenize-inp|greedy|eval|probs ARGS...\n");
  process.exit(2);
}

// Splits argv into positional arguments and --flags. Flags listed in `valued` take a value.
function parseArgs(argv, valued) {
  const pos = [];
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--") && a.length > 2) {
      const name = a.slice(2);
      if (valued.has(name)) {
        if (i + 1 >= argv.length) usage(`flag ${a} needs a value`);
        flags[name] = argv[++i];
      } else {
        flags[name] = true;
      }
    } else {
      pos.push(a);
    }
  }
  return { pos, flags };
}

function intFlag(flags, name, dflt) {
  if (flags[name] === undefined) return dflt;
  const v = Number(flags[name]);
  if (!Number.isInteger(v) || v < 0) usage(`--${name} expects a non-negative integer, got ${flags[name]}`);
  return v;
}

const VALUED = new Set(["threads", "file", "ctx", "max-tokens", "top", "logprobs-out", "force-ids", "batch", "kv-type"]);
const { pos, flags } = parseArgs(process.argv.slice(2), VALUED);
const KNOWN = new Set([...VALUED, "no-mmap", "verbose", "add-special", "no-add-special",
  "parse-special", "no-parse-special"]);
for (const f of Object.keys(flags)) if (!KNOWN.has(f)) usage(`unknown flag --${f}`);
if (pos.length < 2) usage();
const [command, modelPath, ...rest] = pos;
const threads = intFlag(flags, "threads", 2);
if (threads < 1) usage("--threads must be >= 1");
// --kv-type f16|f32: the KV cache's key and value type (llama.cpp's default F16). With F32 the
// non-flash attention also multiplies in F32 (an F16 cache converts q and the softmax
// weights to F16 for its products); the legacy DeepSeek MLA cases need it (README.md).
const kvType = String(flags["kv-type"] ?? "f16").toUpperCase();
if (kvType !== "F16" && kvType !== "F32") usage(`--kv-type expects f16 or f32, got ${flags["kv-type"]}`);
if (!fs.existsSync(modelPath)) usage(`no such model file: ${modelPath}`);

const minLevel = flags.verbose ? LlamaLogLevel.debug : LlamaLogLevel.warn;
const levelRank = {
  [LlamaLogLevel.disabled]: 0, [LlamaLogLevel.fatal]: 1, [LlamaLogLevel.error]: 2,
  [LlamaLogLevel.warn]: 3, [LlamaLogLevel.info]: 4, [LlamaLogLevel.log]: 5, [LlamaLogLevel.debug]: 6,
};

// With vocabOnly, node-llama-cpp first tries a full load to estimate memory use; on a file without
// weights that fails with these messages, which are expected and would only confuse a reader.
let vocabOnlyLoad = false;
const VOCAB_ONLY_NOISE = [/Failed simulating model resource usage/, /error loading model/, /failed to load model/];

const llama = await getLlama({
  gpu: false,                 // CPU backend only: the reference must not depend on the machine's GPU.
  build: "never",             // use the prebuilt binary; never download or compile llama.cpp.
  usePrebuiltBinaries: true,
  skipDownload: true,
  progressLogs: false,
  maxThreads: threads,
  logLevel: minLevel,
  // llama.cpp's own messages go to stderr so that stdout holds only our JSON.
  logger: (level, message) => {
    if ((levelRank[level] ?? 6) > levelRank[minLevel]) return;
    if (vocabOnlyLoad && !flags.verbose && VOCAB_ONLY_NOISE.some((re) => re.test(message))) return;
    process.stderr.write(`[llama] ${message}\n`);
  },
});

async function loadModel(vocabOnly) {
  vocabOnlyLoad = vocabOnly;
  return llama.loadModel({
    modelPath,
    vocabOnly,
    gpuLayers: 0,
    useMmap: !flags["no-mmap"],
    useMlock: false,
    useDirectIo: false,
    lazyMode: false,
    checkTensors: !vocabOnly,   // cheap for our few-MB test models, and catches corrupt data early.
    defaultContextFlashAttention: false,
    ignoreMemorySafetyChecks: true,  // our files are tiny; skip node-llama-cpp's VRAM/RAM estimates.
  });
}

// llama_tokenize(add_special, parse_special) as llama.cpp defines it for SPM/BPE vocabularies.
function tokenize(model, text, addSpecial, parseSpecial) {
  const body = Array.from(model.tokenize(text, parseSpecial));
  if (!addSpecial) return body;
  const out = [];
  if (model.tokens.shouldPrependBosToken) {
    if (model.tokens.bos == null) throw new Error("vocab asks for BOS but has no BOS token");
    out.push(model.tokens.bos);
  }
  out.push(...body);
  if (model.tokens.shouldAppendEosToken) {
    if (model.tokens.eos == null) throw new Error("vocab asks for EOS but has no EOS token");
    out.push(model.tokens.eos);
  }
  return out;
}

// batchSize: tokens llama.cpp evaluates per llama_decode (default: the whole window at once).
async function createSequence(model, nTokens, ctxFlag, batchSize) {
  const contextSize = ctxFlag ?? Math.max(nTokens, 16);
  if (nTokens > contextSize) {
    throw new Error(`${nTokens} tokens do not fit in a context of ${contextSize} (--ctx)`);
  }
  const context = await model.createContext({
    contextSize,
    // The whole window can go into one batch; --batch N (a debug aid) makes llama.cpp evaluate N
    // tokens at a time instead (1: its decode kernels, as in greedy).
    batchSize: flags.batch !== undefined ? intFlag(flags, "batch", contextSize) : (batchSize ?? contextSize),
    threads: threads,
    flashAttention: false,
    experimentalKvCacheKeyType: kvType,
    experimentalKvCacheValueType: kvType,
    sequences: 1,
    ignoreMemorySafetyChecks: true,
    failedCreationRemedy: false,
  });
  return { context, sequence: context.getSequence() };
}

function printJson(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// Full next-token distribution at one position, as a Map id -> p sorted by p descending
// (node-llama-cpp computes it as softmax over all logits; temperature 0 keeps the chain greedy).
const WANT_PROBS = { generateNext: { probabilities: true, token: true } };

async function cmdLoad() {
  const model = await loadModel(false);
  printJson({ architecture: model.architecture, description: model.typeDescription,
    size: model.size, train_ctx: model.trainContextSize });
  process.stderr.write("OK\n");
  await model.dispose();
}

async function cmdTokenize() {
  let text;
  if (flags.file !== undefined) {
    if (rest.length !== 0) usage("tokenize takes either TEXT or --file F");
    text = fs.readFileSync(flags.file, "utf8");
  } else {
    if (rest.length !== 1) usage("tokenize MODEL TEXT");
    text = rest[0];
  }
  const model = await loadModel(true);
  printJson(tokenize(model, text, !flags["no-add-special"], !flags["no-parse-special"]));
  await model.dispose();
}

// The __ggml_vocab_test__ format: every string is followed by "\n__ggml_vocab_test__\n".
export function splitInp(content) {
  const parts = content.split("\n__ggml_vocab_test__\n");
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

async function cmdTokenizeInp() {
  if (rest.length !== 1) usage("tokenize-inp MODEL FILE.inp");
  const strings = splitInp(fs.readFileSync(rest[0], "utf8"));
  const model = await loadModel(true);
  const addSpecial = !!flags["add-special"];
  for (const s of strings) {
    const ids = tokenize(model, s, addSpecial, !flags["no-parse-special"]);
    process.stdout.write(ids.map((t) => " " + t).join("") + "\n");
  }
  await model.dispose();
}

function topTwo(probabilities) {
  const it = probabilities.entries();
  const [id1, p1] = it.next().value ?? [-1, 0];
  const [id2, p2] = it.next().value ?? [-1, 0];
  return { id1, id2, margin: p2 > 0 ? Math.log(p1 / p2) : Infinity };
}

// Smallest float32 normal: below it p has lost precision (denormal) or underflowed to 0.
const FLT_MIN = 1.1754943508222875e-38;

// ln p for every id from one step's probability map (softmax in float32 over all logits at
// temperature T, as node-llama-cpp computes it): l_i = T ln p_T(i) is logit_i up to a constant,
// so ln p_1(i) = l_i - logsumexp(l). Entries whose p_T is not a normal float stay NaN.
function logprobsFrom(probabilities, nVocab, temperature) {
  const l = new Float64Array(nVocab).fill(NaN);
  let mx = -Infinity;
  for (const [id, p] of probabilities) {
    if (p >= FLT_MIN) {
      l[id] = temperature * Math.log(p);
      if (l[id] > mx) mx = l[id];
    }
  }
  let z = 0;
  for (let i = 0; i < nVocab; i++) if (!Number.isNaN(l[i])) z += Math.exp(l[i] - mx);
  const lse = mx + Math.log(z);
  for (let i = 0; i < nVocab; i++) l[i] -= lse;
  return l;
}

async function cmdGreedy() {
  if (rest.length !== 2) usage("greedy MODEL PROMPT N");
  const [prompt, nStr] = rest;
  const n = Number(nStr);
  if (!Number.isInteger(n) || n < 1) usage(`N must be a positive integer, got ${nStr}`);
  const model = await loadModel(false);
  // node-llama-cpp exposes no vocabulary size; the greedy sampler keeps every candidate, so the
  // first step's distribution has one entry per id (checked to stay so, and to cover 0..n-1).
  let nVocab;
  const promptIds = tokenize(model, prompt, !flags["no-add-special"], !flags["no-parse-special"]);
  if (promptIds.length === 0) throw new Error("the prompt tokenized to nothing; nothing to condition on");
  const logprobsOut = flags["logprobs-out"];
  const force = flags["force-ids"] === undefined ? [] : String(flags["force-ids"]).split(",").map(Number);
  if (force.some((x) => !Number.isInteger(x) || x < 0)) usage(`--force-ids: bad list ${flags["force-ids"]}`);
  // The prompt goes through llama.cpp's decode path one token at a time (batch 1), as every
  // later step does: llama.cpp's batched prompt path is not the same arithmetic (on the
  // harness's ds2-lowq-sigmoid-Q4_K_M model its logits after the prompt differ from its own
  // token-by-token ones by up to 7.9 nats in ln p), while swapmoe's batched prompt is bitwise
  // equal to its token-by-token path. eval keeps llama.cpp's batched path.
  const { context, sequence } = await createSequence(model, promptIds.length + n, intFlag(flags, "ctx", undefined), 1);
  const ids = [];
  const second = [];
  const margins = [];
  const rows = [];  // with --logprobs-out: ln p per step from the greedy (T = 1) softmax
  // Step 0 evaluates the whole prompt in one batch; each later step feeds the previous pick.
  let input = promptIds.map((t, i) => (i === promptIds.length - 1 ? [t, WANT_PROBS] : t));
  for (let step = 0; step < n; step++) {
    const res = await sequence.controlledEvaluate(input);
    const out = res[res.length - 1];
    if (out?.next?.token == null) throw new Error(`llama.cpp produced no token at step ${step}`);
    const fed = step < force.length ? force[step] : out.next.token;
    ids.push(fed);
    const t2 = topTwo(out.next.probabilities);
    if (t2.id1 !== out.next.token && t2.margin > 0) throw new Error(`step ${step}: greedy token ${out.next.token} is not the top of the distribution (${t2.id1})`);
    second.push(t2.id2);
    margins.push(t2.margin);
    if (logprobsOut) {
      nVocab ??= out.next.probabilities.size;
      let maxId = -1;  // (a spread of 150k keys into Math.max overflows the stack)
      for (const id of out.next.probabilities.keys()) if (id > maxId) maxId = id;
      if (out.next.probabilities.size !== nVocab || maxId !== nVocab - 1)
        throw new Error(`step ${step}: the distribution has ${out.next.probabilities.size} entries, the vocabulary ${nVocab}`);
      rows.push(logprobsFrom(out.next.probabilities, nVocab, 1));
    }
    out.next.probabilities = undefined;
    input = [[fed, WANT_PROBS]];
  }
  await context.dispose();
  if (logprobsOut) await fillDeepTails(model, promptIds, ids, rows, nVocab, logprobsOut);
  printJson({ prompt_ids: promptIds, ids, second, text: model.detokenize(ids, false, promptIds), margins });
  await model.dispose();
}

// At T = 1 float32 probabilities of tokens more than ~87 nats below the top are denormal or 0
// (forged random models have logit spreads of hundreds of nats). A second pass over the same
// tokens, step by step exactly as greedy ran them (same decode path, so the same logits), at
// temperature T = 8, 32, ... recovers those: only the NaN entries are taken from it, so every
// id whose T = 1 probability was a normal float keeps that exact value (error ~1e-7 nats);
// the deep tail is good to ~T * 1e-7. Rows go to FILE as float32, n_vocab per step.
async function fillDeepTails(model, promptIds, ids, rows, nVocab, file) {
  for (let temperature = 8; rows.some((r) => r.some(Number.isNaN)); temperature *= 4) {
    if (temperature > 512) throw new Error("some log-probabilities underflow even at T = 512");
    const { context, sequence } = await createSequence(model, promptIds.length + ids.length, intFlag(flags, "ctx", undefined), 1);
    const gen = { generateNext: { probabilities: true, options: { temperature, topK: 0, topP: 1, minP: 0, seed: 0 } } };
    let input = promptIds.map((t, i) => (i === promptIds.length - 1 ? [t, gen] : t));
    for (let step = 0; step < ids.length; step++) {
      const res = await sequence.controlledEvaluate(input);
      const out = res[res.length - 1];
      if (rows[step].some(Number.isNaN)) {
        const deep = logprobsFrom(out.next.probabilities, nVocab, temperature);
        // Shift the deep pass onto the T = 1 row's scale through the top token, which both hold.
        let top = 0;
        for (let i = 1; i < nVocab; i++) if (deep[i] > deep[top]) top = i;
        const shift = rows[step][top] - deep[top];
        for (let i = 0; i < nVocab; i++) if (Number.isNaN(rows[step][i])) rows[step][i] = deep[i] + shift;
      }
      out.next.probabilities = undefined;
      input = [[ids[step], gen]];
    }
    await context.dispose();
  }
  const buf = new Float32Array(rows.length * nVocab);
  rows.forEach((r, s) => buf.set(r, s * nVocab));
  fs.writeFileSync(file, Buffer.from(buf.buffer));
}

// One scoring pass at sampling temperature T. node-llama-cpp only exposes probabilities, computed
// in float32 as softmax(logits / T) over the whole vocabulary (top-k 0 = all tokens, top-p 1 and
// min-p 0 = off, so nothing is cut). At T = 1 a target far below the top token underflows to p = 0
// (expf below ~-103), which random forged models do produce. So we score at T > 1 and undo it:
// with l_i = T * ln p_T(i) = logit_i + const, ln p_1(t) = l_t - logsumexp_i(l_i). Float32 p_T has
// ~1e-7 relative error, so the recovered ln p_1 is good to about T * 1e-7. Tokens whose p_T is 0 are
// left out of the logsumexp (they weigh < e^-87T). Returns null if a target still underflows.
async function scorePass(model, ids, temperature) {
  const { context, sequence } = await createSequence(model, ids.length, intFlag(flags, "ctx", undefined));
  const gen = {
    generateNext: {
      probabilities: true,
      options: { temperature, topK: 0, topP: 1, minP: 0, seed: 0 },
    },
  };
  // Logits are requested at positions 0..n-2; position i-1 predicts token i.
  const input = ids.map((t, i) => (i < ids.length - 1 ? [t, gen] : t));
  let sum = 0;
  let count = 0;
  let underflow = -1;
  // onTokenResult lets each full-vocabulary Map be dropped right after use. Exceptions thrown in
  // it would be swallowed by node-llama-cpp, so problems are recorded instead.
  await sequence.controlledEvaluate(input, {
    onTokenResult(index, result) {
      const probs = result.next.probabilities;
      const pt = probs.get(ids[index + 1]) ?? 0;
      if (!(pt > 0)) {
        if (underflow < 0) underflow = index + 1;
      } else {
        let mx = -Infinity;
        for (const p of probs.values()) if (p > 0) mx = Math.max(mx, temperature * Math.log(p));
        let z = 0;
        for (const p of probs.values()) if (p > 0) z += Math.exp(temperature * Math.log(p) - mx);
        const lse = mx + Math.log(z);
        sum += lse - temperature * Math.log(pt);
      }
      count++;
      result.next.probabilities = undefined;
    },
  });
  await context.dispose();
  if (count !== ids.length - 1) throw new Error(`scored ${count} positions, expected ${ids.length - 1}`);
  return underflow >= 0 ? { underflow } : { sum, count };
}

async function cmdEval() {
  if (rest.length !== 1) usage("eval MODEL TEXTFILE [--max-tokens N] [--ctx N]");
  const text = fs.readFileSync(rest[0], "utf8");
  const model = await loadModel(false);
  let ids = tokenize(model, text, !flags["no-add-special"], !!flags["parse-special"]);
  const maxTokens = intFlag(flags, "max-tokens", undefined);
  if (maxTokens !== undefined) ids = ids.slice(0, maxTokens);
  if (ids.length < 2) throw new Error(`need at least 2 tokens to score, got ${ids.length}`);
  let res = null;
  let temperature = 8;
  for (let attempt = 0; attempt < 4; attempt++, temperature *= 4) {
    res = await scorePass(model, ids, temperature);
    if (res.underflow === undefined) break;
    process.stderr.write(`llama_ref: token at position ${res.underflow} underflows at T=${temperature}; retrying\n`);
  }
  if (res.underflow !== undefined) throw new Error(`token at position ${res.underflow} has probability 0 even at T=${temperature / 4}`);
  const nll = res.sum / res.count;
  printJson({ tokens: res.count, nll, ppl: Math.exp(nll) });
  await model.dispose();
}

async function cmdProbs() {
  if (rest.length !== 1) usage("probs MODEL PROMPT [--top K]");
  const k = intFlag(flags, "top", 20);
  const model = await loadModel(false);
  const promptIds = tokenize(model, rest[0], !flags["no-add-special"], !flags["no-parse-special"]);
  const { context, sequence } = await createSequence(model, promptIds.length, intFlag(flags, "ctx", undefined));
  const input = promptIds.map((t, i) => (i === promptIds.length - 1 ? [t, WANT_PROBS] : t));
  const res = await sequence.controlledEvaluate(input);
  const top = [];
  for (const [id, p] of res[res.length - 1].next.probabilities) {
    if (top.length >= k) break;
    top.push({ id, p, piece: model.detokenize([id], true) });
  }
  printJson({ prompt_ids: promptIds, top });
  await context.dispose();
  await model.dispose();
}

const commands = {
  load: cmdLoad, tokenize: cmdTokenize, "tokenize-inp": cmdTokenizeInp,
  greedy: cmdGreedy, eval: cmdEval, probs: cmdProbs,
};
if (!commands[command]) usage(`unknown command ${command}`);
try {
  await commands[command]();
} catch (e) {
  process.stderr.write(`llama_ref: ${command} failed: ${e?.message ?? e}\n`);
  process.exit(1);
}
await llama.dispose();
