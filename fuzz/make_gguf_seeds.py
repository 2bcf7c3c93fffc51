#!/usr/bin/env python3
"""Writes the tiny seed files of fuzz/corpus/gguf/ (each well under 2 KB): valid GGUF
images covering every metadata kind, arrays, custom alignment, v2, and several tensor
types and shapes, so the fuzzer starts from inputs that reach deep into the parser.
Run: python3 fuzz/make_gguf_seeds.py fuzz/corpus/gguf"""
import os
import struct
import sys


def s(x: bytes) -> bytes:
    return struct.pack("<Q", len(x)) + x


def kv(key: str, t: int, payload: bytes) -> bytes:
    return s(key.encode()) + struct.pack("<I", t) + payload


def arr(et: int, items: list) -> bytes:
    return struct.pack("<IQ", et, len(items)) + b"".join(items)


def tensor(name: str, ne: list, ty: int, off: int) -> bytes:
    out = s(name.encode()) + struct.pack("<I", len(ne))
    out += b"".join(struct.pack("<Q", d) for d in ne)
    return out + struct.pack("<IQ", ty, off)


def image(kvs: list, tensors: list, data: bytes, version: int = 3, align: int = 32) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    out += b"".join(kvs) + b"".join(tensors)
    out += b"\0" * ((-len(out)) % align)
    return out + data


def main(outdir: str) -> None:
    os.makedirs(outdir, exist_ok=True)
    scalars = [
        kv("a.u8", 0, struct.pack("<B", 7)), kv("a.i8", 1, struct.pack("<b", -7)),
        kv("a.u16", 2, struct.pack("<H", 7)), kv("a.i16", 3, struct.pack("<h", -7)),
        kv("a.u32", 4, struct.pack("<I", 7)), kv("a.i32", 5, struct.pack("<i", -7)),
        kv("a.f32", 6, struct.pack("<f", 0.5)), kv("a.bool", 7, b"\x01"),
        kv("a.str", 8, s(b"hello")), kv("a.u64", 10, struct.pack("<Q", 7)),
        kv("a.i64", 11, struct.pack("<q", -7)), kv("a.f64", 12, struct.pack("<d", 0.25)),
    ]
    arrays = [
        kv("b.strs", 9, arr(8, [s(b"a"), s(b""), s(b"xyz")])),
        kv("b.i32", 9, arr(5, [struct.pack("<i", v) for v in (1, -2, 3)])),
        kv("b.f32", 9, arr(6, [struct.pack("<f", v) for v in (1.0, -2.5)])),
        kv("b.u8", 9, arr(0, [b"\x01", b"\xff"])),
        kv("b.bool", 9, arr(7, [b"\x00", b"\x01"])),
        kv("b.u64", 9, arr(10, [struct.pack("<Q", 2**64 - 1)])),
        kv("b.f64", 9, arr(12, [struct.pack("<d", 1e300)])),
        kv("b.empty", 9, arr(8, [])),
    ]
    seeds = {
        "empty_v3": image([], [], b""),
        "empty_v2": image([], [], b"", version=2),
        "scalars": image(scalars, [], b""),
        "arrays": image(arrays, [], b""),
        "one_f32": image([kv("general.architecture", 8, s(b"t"))], [tensor("w", [4], 0, 0)],
                         struct.pack("<4f", 1, 2, 3, 4)),
        "mixed_tensors": image(
            [kv("general.alignment", 4, struct.pack("<I", 64))],
            [tensor("q8", [32, 2], 8, 0), tensor("f16", [2, 1, 3], 1, 128),
             tensor("exps", [256, 1, 2], 12, 192)],
            b"\x11" * (192 + 288), align=64),
        "q4k_experts": image([], [tensor("blk.0.ffn_up_exps.weight", [256, 2, 2], 12, 0),
                                  tensor("blk.0.ffn_down_exps.weight", [256, 1, 2], 14, 576)],
                             b"\x22" * (576 + 420)),
    }
    for name, data in seeds.items():
        with open(os.path.join(outdir, name + ".gguf"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "gguf"))
