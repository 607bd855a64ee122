#!/usr/bin/env python3
"""Independent check of the kernels in kernels/cuda against float64 references (PyTorch on the GPU).

The tuner verifies every config against the *reference config's* outputs; this script checks that the
reference configs (and a few others, and the best config of each recorded table) compute the right
function at all, with CuPy compiling the same .cu files through NVRTC with the same -D defines.
It also times cuBLAS SGEMM (fp32, TF32 off) at 4096^3 for comparison with the tuned SGEMM.

Usage: python3 scripts/check_kernels.py [TABLE.json ...]   (run on the device; prints one line per check)
"""
import json
import math
import sys
from pathlib import Path

import cupy as cp
import torch

ROOT = Path(__file__).resolve().parent.parent
torch.backends.cuda.matmul.allow_tf32 = False


def module(name, cfg):
    src = (ROOT / "kernels" / name).read_text()
    opts = ("--std=c++17",) + tuple(f"-D{k.upper()}={int(v)}" for k, v in cfg.items())
    return cp.RawModule(code=src, options=opts)


def rel(out, ref):
    out = out.double()
    ref = ref.double()
    return float(torch.linalg.norm((out - ref).flatten()) / torch.linalg.norm(ref.flatten()))


def t(x):
    return torch.as_tensor(x, device="cuda")


def check_vector_add(cfg):
    n = (1 << 20) + 3
    a, b = torch.rand(n, device="cuda") * 2 - 1, torch.rand(n, device="cuda") * 2 - 1
    c = torch.full((n,), float("nan"), device="cuda")
    f = module("cuda/vector_add.cu", cfg).get_function("vector_add")
    per = cfg["block"] * cfg["items"] * cfg["vec"]
    f(((n + per - 1) // per,), (cfg["block"],), (cp.asarray(a), cp.asarray(b), cp.asarray(c), cp.int32(n)))
    cp.cuda.Device().synchronize()
    return rel(c, a.double() + b.double())


def check_sgemm(cfg, m=512, n=512, k=512):
    A, B = torch.rand(m, k, device="cuda") * 2 - 1, torch.rand(k, n, device="cuda") * 2 - 1
    C = torch.full((m, n), float("nan"), device="cuda")
    f = module("cuda/sgemm.cu", cfg).get_function("sgemm")
    threads = (cfg["bm"] // cfg["tm"]) * (cfg["bn"] // cfg["tn"])
    shared = 0
    if cfg.get("alg", 0) == 1:  # the cp.async kernel's stages live in dynamic shared memory (sgemm.rs's `shared`)
        a = cfg["bk"] * (cfg["bm"] + cfg["pad"]) if cfg["atrans"] else cfg["bm"] * (cfg["bk"] + cfg["pad"])
        shared = cfg["stages"] * (a + cfg["bk"] * cfg["bn"]) * 4
        f.max_dynamic_shared_size_bytes = shared
    f((n // cfg["bn"], m // cfg["bm"]), (threads,), (cp.asarray(A), cp.asarray(B), cp.asarray(C), cp.int32(m), cp.int32(n), cp.int32(k)),
      shared_mem=shared)
    cp.cuda.Device().synchronize()
    return rel(C, A.double() @ B.double())


def check_softmax(cfg, rows=300, cols=4096):
    x = torch.randn(rows, cols, device="cuda") * 3
    y = torch.full_like(x, float("nan"))
    f = module("cuda/softmax.cu", cfg).get_function("softmax")
    f(((rows + cfg["rpb"] - 1) // cfg["rpb"],), (cfg["block"],), (cp.asarray(x), cp.asarray(y), cp.int32(rows), cp.int32(cols)))
    cp.cuda.Device().synchronize()
    return rel(y, torch.softmax(x.double(), dim=1))


def check_attention(cfg, bh=3, seq=512, d=64):
    q, k, v = [(torch.randn(bh, seq, d, device="cuda") * 1.5).half() for _ in range(3)]
    o = torch.full_like(q, float("nan"))
    f = module("cuda/attention.cu", cfg).get_function("attention")
    f((seq // cfg["bq"], bh), (cfg["bq"] // cfg["rows"],), (cp.asarray(q), cp.asarray(k), cp.asarray(v), cp.asarray(o), cp.int32(seq)))
    cp.cuda.Device().synchronize()
    s = (q.double() @ k.double().transpose(1, 2)) / math.sqrt(d)
    return rel(o, torch.softmax(s, dim=-1) @ v.double())


CHECKS = {
    "vector_add": (check_vector_add, 1e-6, [dict(block=256, items=1, vec=1), dict(block=128, items=8, vec=4), dict(block=1024, items=2, vec=2)]),
    "sgemm": (check_sgemm, 1e-5, [
        dict(bm=128, bn=128, bk=8, tm=8, tn=8, vec=4, pad=4, map=0, db=1),
        dict(bm=64, bn=256, bk=16, tm=4, tn=16, vec=1, pad=0, map=1, db=0),
        dict(bm=32, bn=64, bk=32, tm=2, tn=4, vec=2, pad=4, map=1, db=1),
        dict(bm=256, bn=128, bk=8, tm=16, tn=8, vec=4, pad=0, map=0, db=1),
    ]),
    "softmax": (check_softmax, 1e-5, [
        dict(block=256, rpb=1, items=4, vec=4, reduce=0),
        dict(block=128, rpb=4, items=2, vec=2, reduce=1),
        dict(block=1024, rpb=8, items=16, vec=2, reduce=0),
        dict(block=32, rpb=1, items=1, vec=1, reduce=1),
        dict(block=512, rpb=1, items=8, vec=1, reduce=0),
    ]),
    "attention": (check_attention, 2e-3, [
        dict(bq=64, rows=1, bkv=32, chunk=8, kv_half=0, exp2=1),
        dict(bq=128, rows=2, bkv=16, chunk=8, kv_half=1, exp2=0),
        dict(bq=32, rows=1, bkv=128, chunk=16, kv_half=1, exp2=1),
        dict(bq=256, rows=2, bkv=64, chunk=4, kv_half=0, exp2=0),
    ]),
}


def main():
    failures = 0
    extra = {}
    for path in sys.argv[1:]:
        table = json.loads(Path(path).read_text())
        if "cache" not in table:
            continue
        timed = [r for r in table["cache"].values() if "time" in r]
        if timed:
            best = min(timed, key=lambda r: r["time"])
            extra.setdefault(table["kernel_name"], []).append({k: best[k] for k in table["tune_params_keys"]})
    for name, (fn, tol, cfgs) in CHECKS.items():
        for cfg in cfgs + extra.get(name, []):
            err = fn(cfg)
            ok = err < tol
            failures += not ok
            print(f"check {name:10s} {'ok  ' if ok else 'FAIL'} rel_err={err:.2e} (tol {tol:.0e}) {cfg}", flush=True)
    # cuBLAS SGEMM at 4096^3, fp32 with TF32 off: the bar for the tuned SGEMM.
    n = 4096
    A, B = torch.rand(n, n, device="cuda"), torch.rand(n, n, device="cuda")
    for _ in range(3):
        A @ B
    times = []
    for _ in range(20):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        A @ B
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    med = sorted(times)[len(times) // 2]
    print(f"cublas sgemm 4096^3 fp32 (tf32 off): {med:.3f} ms = {2 * n**3 / med / 1e9:.1f} TFLOP/s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
