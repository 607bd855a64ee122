"""How the SDPA scripts (versus_sdpa.py, attention_sdpa.py) time a PyTorch call, the way the Rust examples
time ours (kernels/examples/timing): 10 warm-up calls, then the median of 100 CUDA-event timings, each
after a write of `flush` (256 MiB) that evicts the L2."""
import torch

WARMUP, RUNS = 10, 100


def time_it(fn, flush):
    for _ in range(WARMUP):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(RUNS):
        flush.zero_()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return {"median_ms": ts[len(ts) // 2], "min_ms": ts[0], "max_ms": ts[-1], "runs": len(ts)}
