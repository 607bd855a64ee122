#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the inputs `versus` used for our attention kernel.

Reads DIR/attn_{q,k,v,o}.f16 (fp16, [32 slices, 2048, 64], written by
`kernels/examples/versus.rs`) and DIR/versus.json, times SDPA (the backend PyTorch picks, then each
backend that accepts the shape) the way `versus` times ours (warm-up, a 256 MiB write that evicts L2
before every launch, median of CUDA-event timings), checks SDPA's output against ours and a float64
reference on sampled rows, and writes DIR/versus_sdpa.json plus the ratio table.

    python3 scripts/versus_sdpa.py DIR
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from torch_timing import time_it

BH, SEQ, D = 32, 2048, 64


def load(path):
    t = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.float16)
    return t.reshape(1, BH, SEQ, D).cuda()


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "versus-out"
    q, k, v, ours = (load(f"{d}/attn_{x}.f16") for x in "qkvo")
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    flops = 4 * BH * SEQ * SEQ * D
    # float64 reference on 64 sampled rows, as versus checks ours.
    picks = [((t * 7) % BH, (t * 977 + 13) % SEQ) for t in range(64)]
    qd, kd, vd = q.double(), k.double(), v.double()

    def ref_err(out):
        worst = 0.0
        for s, i in picks:
            w = torch.softmax(qd[0, s, i] @ kd[0, s].T * 0.125, dim=-1)
            worst = max(worst, (out[0, s, i].double() - w @ vd[0, s]).abs().max().item())
        return worst

    results = []
    backends = [("default (PyTorch's choice)", None), ("flash", SDPBackend.FLASH_ATTENTION),
                ("cudnn", SDPBackend.CUDNN_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    for name, backend in backends:
        try:
            if backend is None:
                fn = lambda: F.scaled_dot_product_attention(q, k, v)
                out = fn()
                st = time_it(fn, flush)
            else:
                with sdpa_kernel(backend):
                    fn = lambda: F.scaled_dot_product_attention(q, k, v)
                    out = fn()
                    st = time_it(fn, flush)
        except Exception as e:  # a backend that refuses the shape or is not built
            results.append({"variant": f"SDPA {name}", "error": str(e).splitlines()[0][:200]})
            continue
        err = ref_err(out)
        vs_ours = (out.float() - ours.float()).abs().max().item()
        results.append({"variant": f"SDPA {name}", **st, "tflops": flops / st["median_ms"] / 1e9,
                        "max_err_vs_f64": err, "max_diff_vs_ours": vs_ours,
                        "ok": bool(err < 2e-3 and torch.isfinite(out).all().item())})

    ours_json = json.load(open(f"{d}/versus.json"))
    ours_ms = next(r["median_ms"] for r in ours_json["rows"] if r["kernel"] == "attention" and r["variant"] == "tuned")
    mmas = [r for r in ours_json["rows"] if r["variant"].startswith("mma candidate")]
    mma = min((r for r in mmas if r["ok"]), key=lambda r: r["median_ms"], default=mmas[0] if mmas else None)
    default = next(r for r in results if r["variant"].startswith("SDPA default"))
    fastest = min((r for r in results if "median_ms" in r), key=lambda r: r["median_ms"])
    summary = {
        "torch": torch.__version__, "device": torch.cuda.get_device_name(0), "shape": [1, BH, SEQ, D],
        "dtype": "float16", "ours_tuned_ms": ours_ms, "sdpa": results,
        "ratio_vs_sdpa_default": default["median_ms"] / ours_ms if "median_ms" in default else None,
        "ratio_vs_sdpa_fastest": fastest["median_ms"] / ours_ms,
        "mma_candidate": mma,
        "mma_ratio_vs_sdpa_default": (default["median_ms"] / mma["median_ms"])
        if mma and mma["ok"] and "median_ms" in default else None,
    }
    json.dump(summary, open(f"{d}/versus_sdpa.json", "w"), indent=1)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}, q/k/v [1, {BH}, {SEQ}, {D}] fp16")
    print("| variant | median ms | min ms | max ms | TFLOP/s | max err vs f64 | max diff vs ours | ok |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| ours, tuned | {ours_ms:.4f} | | | {flops / ours_ms / 1e9:.1f} | (see versus) | 0 | |")
    for r in results:
        if "error" in r:
            print(f"| {r['variant']} | refused: {r['error']} | | | | | | |")
        else:
            print(f"| {r['variant']} | {r['median_ms']:.4f} | {r['min_ms']:.4f} | {r['max_ms']:.4f} | "
                  f"{r['tflops']:.1f} | {r['max_err_vs_f64']:.2e} | {r['max_diff_vs_ours']:.2e} | {r['ok']} |")
    print(f"attention tuned / SDPA default (time ratio): {summary['ratio_vs_sdpa_default']:.3f} (target >= 0.50)")
    print(f"attention tuned / SDPA fastest backend: {summary['ratio_vs_sdpa_fastest']:.3f}")
    for m in mmas:
        print(f"| {m['variant']} | {m['median_ms']:.4f} | {m['min_ms']:.4f} | {m['max_ms']:.4f} | "
              f"{m['rate']:.1f} | {m['check']} | | {m['ok']} |")
    if summary["mma_ratio_vs_sdpa_default"]:
        print(f"attention mma candidate (fastest correct, {mma['variant']}) / SDPA default: "
              f"{summary['mma_ratio_vs_sdpa_default']:.3f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
