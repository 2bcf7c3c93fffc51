#!/usr/bin/env python3
"""Bytes of weights one decode token touches in a (single-file) MoE GGUF, from its header:
every tensor once, except the routed experts (*_exps: n_expert_used / n_expert of them) and
token_embd (one row). Tensor sizes are taken from the data offsets (sorted; the last one runs
to the end of the file), so no block-size table is needed; alignment padding (<= 32 bytes a
tensor) is counted with its tensor. Prints: touched_bytes expert_bytes dense_bytes file_bytes
n_expert n_expert_used. Used by scripts/bench_native.sh for decode's effective bandwidth."""
import os
import struct
import sys

def main(path):
    f = open(path, "rb")
    def rd(fmt):
        n = struct.calcsize(fmt)
        return struct.unpack("<" + fmt, f.read(n))
    def rstr():
        (n,) = rd("Q")
        return f.read(n).decode("utf-8", "replace")
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def rval(t):
        if t == 8:
            return rstr()
        if t == 9:
            (et,) = rd("I"); (n,) = rd("Q")
            if et in sizes and et != 8:
                f.seek(sizes[et] * n, 1); return None
            return [rval(et) for _ in range(n)]
        fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}[t]
        return rd(fmt)[0]
    magic = f.read(4)
    if magic != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    (ver,) = rd("I"); (nt,) = rd("Q"); (nkv,) = rd("Q")
    kv = {}
    for _ in range(nkv):
        k = rstr(); (t,) = rd("I"); kv[k] = rval(t)
    arch = kv.get("general.architecture", "")
    align = kv.get("general.alignment", 32)
    tensors = []
    for _ in range(nt):
        name = rstr(); (nd,) = rd("I"); dims = rd("Q" * nd); (tt,) = rd("I"); (off,) = rd("Q")
        tensors.append((off, name, dims))
    start = (f.tell() + align - 1) // align * align
    fsize = os.path.getsize(path)
    tensors.sort()
    n_exp = kv.get(f"{arch}.expert_count", 0) or 0
    n_used = kv.get(f"{arch}.expert_used_count", 0) or 0
    touched = expert = dense = 0
    for i, (off, name, dims) in enumerate(tensors):
        end = tensors[i + 1][0] if i + 1 < len(tensors) else fsize - start
        size = end - off
        if "_exps" in name:
            expert += size
            touched += size * n_used // max(n_exp, 1)
        else:
            dense += size
            touched += size // dims[1] if name.startswith("token_embd") and len(dims) > 1 else size
    print(touched, expert, dense, fsize, n_exp, n_used)

if __name__ == "__main__":
    main(sys.argv[1])
