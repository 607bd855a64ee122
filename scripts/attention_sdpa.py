#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention on the tensors `attention_versus` used for our tensor-core
attention (issue 18), and the side-by-side table of docs/benchmarks.md.

Reads DIR/attention.json and DIR/<shape>_{q,k,v,o}.f16 (written by kernels/examples/attention_versus.rs),
times SDPA with the backend PyTorch picks and with the flash backend the way ours was timed (10 warm-up
launches, a 256 MiB write that evicts L2 before each launch, median of 100 CUDA-event timings), checks
SDPA's output against a float64 reference on the same 64 sampled rows and against ours, and writes
DIR/attention_sdpa.json plus a markdown table. "x of SDPA" is SDPA's time over ours (1.0: as fast).

    python3 scripts/attention_sdpa.py DIR
"""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from torch_timing import time_it


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "attention-out"
    ours = json.load(open(f"{d}/attention.json"))
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    shapes = []
    for r in ours["rows"]:
        if r["shape"] not in [s["shape"] for s in shapes]:
            shapes.append(r)
    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "ours_device": ours["device"],
           "shapes": []}
    for s in shapes:
        tag, bh, seq, hd, causal = s["shape"], s["bh"], s["seq"], s["d"], s["causal"]

        def load(x):
            path = f"{d}/{tag}_{x}.f16"
            t = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.float16)
            return t.reshape(1, bh, seq, hd).cuda()

        q, k, v, o = (load(x) for x in "qkvo")
        picks = [((t * 7) % bh, (t * 977 + 13) % seq) for t in range(64)]
        qd, kd, vd = q.double(), k.double(), v.double()

        def ref_err(res):
            worst = 0.0
            for sl, i in picks:
                keys = i + 1 if causal else seq
                w = torch.softmax(qd[0, sl, i] @ kd[0, sl, :keys].T / hd ** 0.5, dim=-1)
                worst = max(worst, (res[0, sl, i].double() - w @ vd[0, sl, :keys]).abs().max().item())
            return worst

        sdpa = {}
        for name, backend in [("default", None), ("flash", SDPBackend.FLASH_ATTENTION)]:
            fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            try:
                if backend is None:
                    res = fn()
                    st = time_it(fn, flush)
                else:
                    with sdpa_kernel(backend):
                        res = fn()
                        st = time_it(fn, flush)
            except Exception as e:  # a backend that refuses the shape or is not built
                sdpa[name] = {"error": str(e).splitlines()[0][:200]}
                continue
            err = ref_err(res)
            sdpa[name] = {**st, "max_err_vs_f64": err, "max_diff_vs_ours": (res.float() - o.float()).abs().max().item(),
                          "ok": bool(err < 2e-3 and torch.isfinite(res).all().item())}
        rows = {r["variant"]: r for r in ours["rows"] if r["shape"] == tag}
        # The first timing of ours, as SDPA and our default are timed once each; "tuned (again)" shows the noise.
        tuned = rows["tuned"]
        entry = {"shape": tag, "tuned": rows["tuned"], "tuned_again": rows["tuned (again)"],
                 "default": rows["default"], "sdpa": sdpa}
        for name in ("default", "flash"):
            if "median_ms" in sdpa[name]:
                entry[f"x_of_sdpa_{name}"] = sdpa[name]["median_ms"] / tuned["median_ms"]
        entry["tuned_vs_default"] = rows["default"]["median_ms"] / tuned["median_ms"]
        out["shapes"].append(entry)
        del q, k, v, o, qd, kd, vd
        torch.cuda.empty_cache()

    json.dump(out, open(f"{d}/attention_sdpa.json", "w"), indent=1)
    print(f"torch {out['torch']} on {out['device']}; ours: {out['ours_device']}")
    print("| B·H, S, D | ours tuned ms (again) | ours default ms | SDPA default ms | SDPA flash ms | "
          "x of SDPA default | x of SDPA flash | tuned vs default | tuned config |")
    print("|---|---|---|---|---|---|---|---|---|")
    for e in out["shapes"]:
        t, sd = e["tuned"], e["sdpa"]
        ms = lambda r: f"{r['median_ms']:.4f}" if "median_ms" in r else f"refused: {r.get('error', '')[:60]}"
        x = lambda n: f"{e[f'x_of_sdpa_{n}']:.2f}" if f"x_of_sdpa_{n}" in e else "—"
        print(f"| {e['shape']} | {t['median_ms']:.4f} ({e['tuned_again']['median_ms']:.4f}) | "
              f"{e['default']['median_ms']:.4f} | {ms(sd['default'])} | {ms(sd['flash'])} | {x('default')} | "
              f"{x('flash')} | {e['tuned_vs_default']:.2f} | {t['config']} |")
    print("| B·H, S, D | variant | registers | local (spill) bytes | shared bytes | max err vs f64 |")
    print("|---|---|---|---|---|---|")
    for e in out["shapes"]:
        for n in ("tuned", "default"):
            r = e[n]
            print(f"| {e['shape']} | {n} | {r['registers']} | {r['local_bytes']} | {r['shared_bytes']} | "
                  f"{r['max_err_vs_f64']:.2e} |")
    bad = [(e["shape"], n) for e in out["shapes"] for n, r in e["sdpa"].items() if not r.get("ok", True)]
    if bad:
        print("SDPA outputs off the reference:", bad)


if __name__ == "__main__":
    main()
