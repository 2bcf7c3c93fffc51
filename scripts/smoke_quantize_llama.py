#!/usr/bin/env python3
"""Compares `swapmoe quantize` with llama.cpp's own quantizer, tensor by tensor.

llama.cpp's llama_model_quantize() is called through ctypes from the libllama bundled in
node-llama-cpp (tests/conformance/node_modules; nothing is downloaded). For each TYPE, both
tools quantize the same F32/F16 input; the script then checks that every tensor got the
same type and, unless --types-only, the same bytes.

Usage: smoke_quantize_llama.py SWAPMOE IN.gguf TYPE [TYPE...] [--types-only] [--keep DIR]
Exit status: 0 all equal, 1 a difference, 77 the llama.cpp library is not installed.
"""
import ctypes
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = os.path.join(ROOT, "tests/conformance/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64")

# llama_ftype values (llama.h) of the names `swapmoe quantize` shares with llama-quantize.
FTYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10,
          "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_S": 16,
          "Q5_K_M": 17, "Q6_K": 18, "IQ4_NL": 25, "IQ4_XS": 30, "BF16": 32, "TQ1_0": 36, "TQ2_0": 37,
          "MXFP4_MOE": 38}
# ggml type id -> (block elements, block bytes, name)
BLOCKS = {0: (1, 4, "F32"), 1: (1, 2, "F16"), 30: (1, 2, "BF16"), 2: (32, 18, "Q4_0"), 3: (32, 20, "Q4_1"),
          6: (32, 22, "Q5_0"), 7: (32, 24, "Q5_1"), 8: (32, 34, "Q8_0"), 10: (256, 84, "Q2_K"),
          11: (256, 110, "Q3_K"), 12: (256, 144, "Q4_K"), 13: (256, 176, "Q5_K"), 14: (256, 210, "Q6_K"),
          20: (32, 18, "IQ4_NL"), 23: (256, 136, "IQ4_XS"), 34: (256, 54, "TQ1_0"), 35: (256, 66, "TQ2_0"),
          39: (32, 17, "MXFP4")}


_LOG_CB = None


def load_llama():
    libs = sorted(f for f in os.listdir(LIBDIR)) if os.path.isdir(LIBDIR) else []
    base = [f for f in libs if f.startswith("libggml-base")]
    ggml = [f for f in libs if f.startswith("libggml.")]
    llama = [f for f in libs if f.startswith("libllama.")]
    if not (base and ggml and llama):
        return None
    for f in base + ggml:
        ctypes.CDLL(os.path.join(LIBDIR, f), mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(os.path.join(LIBDIR, llama[0]), mode=ctypes.RTLD_GLOBAL)
    lib.llama_backend_init()
    # Silence llama.cpp's per-tensor log lines (the callback must outlive the calls).
    global _LOG_CB
    _LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)(lambda *a: None)
    lib.llama_log_set(_LOG_CB, None)
    return lib


class Params(ctypes.Structure):
    # llama_model_quantize_params starts with int32 nthread, int32 ftype in every version;
    # the rest (bools and pointers) keeps its defaults. 512 bytes covers any version.
    _fields_ = [("raw", ctypes.c_uint8 * 512)]


def llama_quantize(lib, src, dst, ftype, nthread=2):
    lib.llama_model_quantize_default_params.restype = Params
    p = lib.llama_model_quantize_default_params()
    buf = bytearray(bytes(p.raw))
    struct.pack_into("<ii", buf, 0, nthread, ftype)
    ctypes.memmove(p.raw, bytes(buf), len(buf))
    lib.llama_model_quantize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Params)]
    lib.llama_model_quantize.restype = ctypes.c_uint32
    if lib.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) != 0:
        raise RuntimeError(f"llama_model_quantize failed for {src}")


def read_gguf(path):
    """Returns ({key: value}, {tensor: (ne, type, absolute offset)}, bytes)."""
    data = open(path, "rb").read()
    off = 0

    def rd(fmt):
        nonlocal off
        v = struct.unpack_from(fmt, data, off)
        off += struct.calcsize(fmt)
        return v

    def rstr():
        nonlocal off
        (n,) = rd("<Q")
        s = data[off:off + n]
        off += n
        return s.decode("utf8", "replace")

    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def rval(t):
        if t == 8:
            return rstr()
        if t == 9:
            (et,) = rd("<I")
            (n,) = rd("<Q")
            return [rval(et) for _ in range(n)]
        return rd(scalar[t])[0]

    magic, _version = rd("<4sI")
    if magic != b"GGUF":
        raise RuntimeError(f"{path}: not a GGUF file")
    n_tensors, n_kv = rd("<QQ")
    kv = {}
    for _ in range(n_kv):
        k = rstr()
        (t,) = rd("<I")
        kv[k] = rval(t)
    infos = []
    for _ in range(n_tensors):
        name = rstr()
        (nd,) = rd("<I")
        ne = list(rd(f"<{nd}Q"))
        ty, o = rd("<IQ")
        infos.append((name, ne, ty, o))
    align = kv.get("general.alignment", 32)
    base = (off + align - 1) // align * align
    return kv, {n: (ne, ty, base + o) for n, ne, ty, o in infos}, data


def compare(ours, ref, types_only):
    a_kv, a, ad = read_gguf(ours)
    b_kv, b, bd = read_gguf(ref)
    problems = []
    if set(a) != set(b):
        problems.append(f"tensor sets differ: {sorted(set(a) ^ set(b))[:5]}")
    if a_kv.get("general.file_type") != b_kv.get("general.file_type"):
        problems.append(f"general.file_type {a_kv.get('general.file_type')} vs {b_kv.get('general.file_type')}")
    for name in sorted(set(a) & set(b)):
        ne, ta, oa = a[name]
        _, tb, ob = b[name]
        if ta != tb:
            problems.append(f"{name}: type {BLOCKS[ta][2]} vs llama.cpp {BLOCKS[tb][2]}")
            continue
        if types_only:
            continue
        n = 1
        for x in ne:
            n *= x
        nbytes = n // BLOCKS[ta][0] * BLOCKS[ta][1]
        if ad[oa:oa + nbytes] != bd[ob:ob + nbytes]:
            problems.append(f"{name}: {BLOCKS[ta][2]} bytes differ")
    return len(a), problems


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    types_only = "--types-only" in sys.argv
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    swapmoe, src, types = args[0], args[1], args[2:]
    lib = load_llama()
    if lib is None:
        print("smoke_quantize_llama: llama.cpp library not installed; skipped", file=sys.stderr)
        return 77
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for t in types:
            ours, ref = os.path.join(tmp, f"ours-{t}.gguf"), os.path.join(tmp, f"ref-{t}.gguf")
            subprocess.run([swapmoe, "quantize", src, ours, t, "-t", "2"], check=True, stderr=subprocess.DEVNULL)
            llama_quantize(lib, src, ref, FTYPES[t])
            n, problems = compare(ours, ref, types_only)
            if problems:
                failed += 1
                print(f"FAIL {os.path.basename(src)} {t}: {len(problems)} of {n} tensors differ: {problems[:4]}")
            else:
                print(f"ok   {os.path.basename(src)} {t}: {n} tensors, same {'types' if types_only else 'types and bytes'} as llama-quantize")
            os.remove(ours)
            os.remove(ref)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
