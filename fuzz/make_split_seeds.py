#!/usr/bin/env python3
"""Writes fuzz/corpus/gguf_split/: split sets as fuzz_gguf_split reads them, part images
joined by "\\n#PART#\\n" (gguf-split's keys split.no u16, split.count u16,
split.tensors.count i32; tensors spread over the parts). Uses the encoder of
make_gguf_seeds.py. Run: python3 fuzz/make_split_seeds.py fuzz/corpus/gguf_split"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_gguf_seeds import image, kv, s, tensor  # noqa: E402

SEP = b"\n#PART#\n"


def part(no: int, count: int, n_total: int, tensors: list, extra_kv=()) -> bytes:
    kvs = [kv("split.no", 2, struct.pack("<H", no)), kv("split.count", 2, struct.pack("<H", count)),
           kv("split.tensors.count", 5, struct.pack("<i", n_total))]
    if no == 0:
        kvs = [kv("general.architecture", 8, s(b"llama"))] + kvs + list(extra_kv)
    infos, data = [], b""
    for name, n in tensors:
        infos.append(tensor(name, [n], 0, len(data)))  # F32 [n]
        data += struct.pack(f"<{n}f", *([0.5] * n))
        data += b"\0" * ((-len(data)) % 32)
    return image(kvs, infos, data)


def main(outdir: str) -> None:
    os.makedirs(outdir, exist_ok=True)
    seeds = {
        "two_parts": [part(0, 2, 3, [("a", 4), ("b", 8)]), part(1, 2, 3, [("c", 4)])],
        "three_parts": [part(0, 3, 3, [("a", 4)]), part(1, 3, 3, [("b", 4)]), part(2, 3, 3, [("c", 16)])],
        "meta_only_first": [part(0, 2, 2, []), part(1, 2, 2, [("x", 8), ("y", 8)])],
        "one_part": [part(0, 1, 1, [("a", 4)])],
        "wrong_order": [part(1, 2, 2, [("b", 4)]), part(0, 2, 2, [("a", 4)])],
    }
    for name, parts in seeds.items():
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(SEP.join(parts))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "gguf_split"))
