// Generates the ggml-vocab-*.gguf.extra.json reference data with the llama.cpp build bundled
// in node-llama-cpp 3.21.1 (tests/conformance/node_modules). ESM resolves node-llama-cpp
// relative to this file, so copy it next to tests/conformance/package.json first:
//   cp tests/data/vocab/gen_extra.mjs tests/conformance/ && cd tests/conformance &&
//   node gen_extra.mjs ../data/vocab/ggml-vocab-qwen2.gguf ../data/vocab/ggml-vocab-qwen2.gguf.extra.json N_VOCAB
// Output: the test strings (fixed ones plus 250 seeded random ones), their ids with
// parse_special false ("plain") and true ("special"), no BOS/EOS; the vocab's BOS/EOS ids
// and add flags; and every id llama.cpp treats as end-of-generation.
import fs from "node:fs";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [modelPath, outPath, nStr] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true,
  progressLogs: false, logLevel: LlamaLogLevel.error, logger: () => {} });
const model = await llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0, checkTensors: false,
  ignoreMemorySafetyChecks: true });

// Deterministic PRNG (mulberry32).
let seed = 12345;
function rnd() { seed |= 0; seed = (seed + 0x6D2B79F5) | 0; let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }

const fixed = [
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
  "<｜begin▁of▁sentence｜><｜User｜>Hello<｜Assistant｜><think>\nok\n</think>\n\nAnswer<｜end▁of▁sentence｜>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
  "<s>[INST] hi [/INST] ok</s>", "<|endoftext|>x<|endoftext|>", "<|im_start", "<|im_end|><|im_end|>", "<s><s> </s>",
  "<think></think>", "<unk>", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>", "<tool_call>{}</tool_call>",
  "family 👨‍👩‍👧‍👦 zwj", "e\u0301 combining \u0300\u0301", "zero\u200bwidth\u200d", "nb\u00a0sp \u00a0 x", "ideo\u3000space \u3000\u3000x",
  "line\u2028sep\u2029para", "nel\u0085x", "tab\tand\u000bvertical\u000cform\u001fus", "\r\n windows\r\n\r\nx", "~~~ tilde ~x a~b ~~",
  "$100 + 5 = <=> ^ ` | \\ @ # %", "1234567890 ١٢٣ ²³ ½ 12345678901234567890", "Ⅻ roman Ⅻ", "한국어 텍스트입니다", "ไทยภาษา",
  "العربية نص", "עברית טקסט", "हिन्दी पाठ", "Ελληνικά κείμενο ΐ ΰ", "Русский текст Ёё", "日本語のテキスト、カタカナ。ｶﾀｶﾅ",
  "中文，标点。“引号”", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 math", "😀😃 emoji 🦙🦙", "\u{1F1FA}\u{1F1F8} flags", "private \uE000\uF8FF", "unassigned \u0378\u0379 x",
  "'S 'LL 'Re 'vE 'D 'm 's", "don't I'M we'LL you'Re", "    indented\n\tcode();\n        return x;\n", "a" + " ".repeat(50) + "b",
  " ".repeat(17), "\n".repeat(9), "\t \t \n \n", "3.14159265358979", "x=1;y=2;z==3", "http://example.com/a?b=c&d=%20",
  "<html><body class=\"x\">Hi</body></html>", "\"quoted\" 'single'", "❤️ heart ☺︎", "ꙮ ǅ ǈ titlecase", "ﬁ ﬂ ligature", "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ！",
  "µ micro K Kelvin Ω ohm Å angstrom", "café naïve résumé", "ß straße ẞ", "İstanbul ı", "a\u0000b", "\u00ad soft hyphen",
  "...!!!???,,,;;;:::", "---___===+++", "((([[[{{{", "a.b.c", " .x", "  ,y", "\n\n.", "  \n  ", "x  ", "x\n  ", "99 bottles of beer",
  "ab12cd345ef6789", "Tab\t\tTab", "MiXeD CaSe WoRdS", "UPPER lower Title", "Привет, мир! Hello, world! 你好，世界！",
  "def foo(bar: int) -> str:\n    return f\"{bar:>10}\"\n", "SELECT * FROM t WHERE a >= 10 AND b <> 'x';", "$$\\frac{a}{b}$$ \\alpha",
];
const pool = [..."abcdefghijklmnopqrstuvwxyzABCXYZ0123456789", ..."      \n\n\t\r", ..."'.,;:!?-_()[]{}<>/\\|~`@#$%^&*+=\"",
  ..."éüßÄÖçñøåæœ", ..."αβγΩщЖя", ..."中文日本語カナ한글", ..."١٢٣²½Ⅻ", "😀", "🦙", "\u00a0", "\u3000", "\u2028", "\u200b", "\u0301", "\u0085", "\uE000", "\u0378", "😀", "₿", "€", "™", "©", "·", "—", "“", "”", "…", "'s", "'T", "'ll", "<|im_end|>", "<s>", "</s>"];
const random = [];
for (let i = 0; i < 250; i++) {
  const len = 1 + Math.floor(rnd() * 30);
  let s = "";
  for (let k = 0; k < len; k++) s += pool[Math.floor(rnd() * pool.length)];
  random.push(s);
}
const strings = [...fixed, ...random];
const out = { strings, plain: [], special: [], add_special: [] };
for (const s of strings) {
  out.plain.push(Array.from(model.tokenize(s, false)));
  out.special.push(Array.from(model.tokenize(s, true)));
}
out.add_bos = model.tokens.shouldPrependBosToken;
out.add_eos = model.tokens.shouldAppendEosToken;
out.bos = model.tokens.bos ?? -1;
out.eos = model.tokens.eos ?? -1;
const eog = [];
const n = Number(nStr);
for (let id = 0; id < n; id++) if (model.isEogToken(id)) eog.push(id);
out.n_vocab = n;
out.eog = eog;
// Pieces of the special tokens (detokenize with special text).
fs.writeFileSync(outPath, JSON.stringify(out));
await model.dispose();
