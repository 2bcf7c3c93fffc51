"""A small GGUF (version 3) writer: metadata key/values and F32 tensors.

Layout (little endian): magic "GGUF", version u32, tensor count u64, key/value count u64; the
key/values (string key, u32 type, value); the tensor infos (name, n_dims u32, ne[] u64, type
u32, offset u64 relative to the data section); padding to the alignment; the tensor data, each
tensor starting at a multiple of the alignment. ne[0] is the fastest-moving dimension, so a
numpy array of shape (a, b, c) is written with ne = [c, b, a].
"""

import struct

import numpy as np

ALIGN = 32

T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML_F32 = 0


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


class U32(int):
    pass


class I32(int):
    pass


def _value(v):
    """(type id, encoded bytes) of a metadata value."""
    if isinstance(v, bool):
        return T_BOOL, struct.pack("<B", int(v))
    if isinstance(v, I32):
        return T_I32, struct.pack("<i", v)
    if isinstance(v, int):
        return T_U32, struct.pack("<I", v)
    if isinstance(v, float):
        return T_F32, struct.pack("<f", v)
    if isinstance(v, str):
        return T_STR, _str(v)
    if isinstance(v, list):
        if not v:
            raise ValueError("empty metadata arrays are not written")
        et, _ = _value(v[0])
        body = b"".join(_value(x)[1] for x in v)
        return T_ARR, struct.pack("<IQ", et, len(v)) + body
    raise TypeError(f"unsupported metadata value {v!r}")


def write_gguf(path, kv, tensors):
    """kv: list of (key, value) (ints are u32 unless wrapped in I32); tensors: list of
    (name, numpy array), written as F32 in the given order."""
    kv = [("general.alignment", ALIGN)] + list(kv)
    head = bytearray(b"GGUF")
    head += struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, v in kv:
        t, b = _value(v)
        head += _str(k) + struct.pack("<I", t) + b
    offset = 0
    datas = []
    for name, arr in tensors:
        a = np.ascontiguousarray(arr, dtype="<f4")
        ne = list(reversed(a.shape))
        head += _str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        head += struct.pack("<IQ", GGML_F32, offset)
        datas.append((offset, a))
        offset += (a.nbytes + ALIGN - 1) // ALIGN * ALIGN
    with open(path, "wb") as f:
        f.write(head)
        f.write(b"\0" * ((-len(head)) % ALIGN))
        pos = 0
        for off, a in datas:
            f.write(b"\0" * (off - pos))
            f.write(a.tobytes())
            pos = off + a.nbytes
        f.write(b"\0" * ((-pos) % ALIGN))
