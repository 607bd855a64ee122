#!/usr/bin/env python3
"""Compile a kernel with NVRTC for sm_90 on a machine with no GPU and print ptxas's report (registers,
shared memory, spills): a check of a kernel's source before device time is spent on it.

    pip install nvidia-cuda-nvrtc-cu12
    python3 scripts/nvrtc_check.py kernels/cuda/flash_attention.cu -DHD=64 -DBQ=64 [--arch sm_90] [--cubin F]

--cubin F writes the compiled cubin to F, for `cuobjdump -sass F` (PyPI: nvidia-cuda-cuobjdump).

Exit status 1 when the compile fails (the log names the line)."""
import ctypes
import glob
import os
import sys


def libnvrtc():
    import nvidia.cuda_nvrtc as pkg  # the PyPI wheel's libnvrtc

    lib = os.path.join(list(pkg.__path__)[0], "lib")
    return ctypes.CDLL(sorted(glob.glob(os.path.join(lib, "libnvrtc.so.*")))[0])


def main(argv):
    path = argv[0]
    arch = "sm_90"
    cubin = None
    opts = []
    rest = argv[1:]
    while rest:
        a = rest.pop(0)
        if a == "--arch":
            arch = rest.pop(0)
        elif a == "--cubin":
            cubin = rest.pop(0)
        else:
            opts.append(a)
    nv = libnvrtc()
    prog = ctypes.c_void_p()
    src = open(path, "rb").read()
    rc = nv.nvrtcCreateProgram(ctypes.byref(prog), src, os.path.basename(path).encode(), 0, None, None)
    assert rc == 0, rc
    options = [f"--gpu-architecture={arch}", "--std=c++17", "--ptxas-options=-v"] + opts
    arr = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    rc = nv.nvrtcCompileProgram(prog, len(options), arr)
    size = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nv.nvrtcGetProgramLog(prog, log)
    print(log.value.decode(errors="replace").strip())
    if rc == 0 and cubin:
        nv.nvrtcGetCUBINSize(prog, ctypes.byref(size))
        code = ctypes.create_string_buffer(size.value)
        nv.nvrtcGetCUBIN(prog, code)
        with open(cubin, "wb") as f:
            f.write(code.raw)
    print("compiled" if rc == 0 else f"FAILED (nvrtc {rc})", " ".join(opts))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
