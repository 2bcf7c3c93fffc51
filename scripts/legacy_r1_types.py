#!/usr/bin/env python3
"""Which type llama.cpp's own quantizer gives each tensor of ollama's deepseek-r1:671b.

ollama's deepseek-r1:671b (= 671b-q4_K_M) is a llama.cpp Q4_K_M of DeepSeek-R1 in the legacy
MLA layout (one attn_kv_b per layer). llama.cpp's Q4_K_M mix depends on tensor names, layer
indices, counts and whether row lengths fit the blocks, not on widths otherwise. So this
script forges the legacy layout in F16 with the real names, 61 layers (3 dense), 1 shared
expert and row lengths that are multiples of 256 like the real ones, at a tiny width
(`swapmoe-forge --preset deepseek-r1-671b-ollama` with width overrides), quantizes it with
llama_model_quantize from the libllama bundled in node-llama-cpp (nothing is downloaded), and
compares every tensor's type with the preset forged directly (sparse, same overrides).

Usage: legacy_r1_types.py FORGE VOCAB.gguf WORKDIR [--print]
Prints the type counts and the per-layer types of attn_kv_b, ffn_down(_exps/_shexp);
exit 0 when the preset's types equal llama.cpp's, 1 when not, 77 without the library.
"""
import collections
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoke_quantize_llama as sq  # noqa: E402

TINY = ["--embd", "256", "--heads", "2", "--q-lora-rank", "256", "--ff", "512", "--expert-ff", "256",
        "--experts", "4", "--experts-used", "2", "--seed", "7"]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    forge, vocab, work = args
    lib = sq.load_llama()
    if lib is None:
        print("legacy_r1_types: llama.cpp library not installed; skipped", file=sys.stderr)
        return 77
    os.makedirs(work, exist_ok=True)
    f16 = os.path.join(work, "r1-legacy-tiny-f16.gguf")
    ref = os.path.join(work, "r1-legacy-tiny-llama-q4km.gguf")
    ours = os.path.join(work, "r1-legacy-tiny-preset.gguf")
    base = [forge, "--preset", "deepseek-r1-671b-ollama", "--vocab", vocab] + TINY
    subprocess.run(base + ["--type", "F16", "-o", f16], check=True, stderr=subprocess.DEVNULL)
    subprocess.run(base + ["--sparse-all", "-o", ours], check=True, stderr=subprocess.DEVNULL)
    sq.llama_quantize(lib, f16, ref, sq.FTYPES["Q4_K_M"])
    _, a, _ = sq.read_gguf(ours)
    _, b, _ = sq.read_gguf(ref)
    problems = []
    if set(a) != set(b):
        problems.append(f"tensor sets differ: {sorted(set(a) ^ set(b))[:5]}")
    for name in sorted(set(a) & set(b)):
        if a[name][1] != b[name][1]:
            problems.append(f"{name}: preset {sq.BLOCKS[a[name][1]][2]} vs llama.cpp {sq.BLOCKS[b[name][1]][2]}")
    counts = collections.Counter(sq.BLOCKS[t][2] for _, t, _ in b.values())
    print(f"llama.cpp Q4_K_M of the legacy layout: {len(b)} tensors, " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if "--print" in sys.argv:
        for base_name in ["attn_kv_b", "ffn_down", "ffn_down_exps", "ffn_down_shexp", "attn_q_b", "attn_output"]:
            per = []
            for il in range(61):
                n = f"blk.{il}.{base_name}.weight"
                if n in b:
                    per.append(f"{il}:{sq.BLOCKS[b[n][1]][2]}")
            print(f"  {base_name}: " + " ".join(per))
        other = collections.Counter()
        for n, (_, t, _) in b.items():
            if not n.startswith("blk."):
                print(f"  {n}: {sq.BLOCKS[t][2]}")
            else:
                other[(n.split(".", 2)[2], sq.BLOCKS[t][2])] += 1
        for (n, t), c in sorted(other.items()):
            print(f"  blk.*.{n}: {t} x{c}")
    for p in problems[:20]:
        print("DIFF " + p)
    for p in (f16, ref, ours):
        os.remove(p)
    print("preset types " + ("equal llama.cpp's" if not problems else f"differ in {len(problems)} tensors"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
