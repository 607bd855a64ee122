// Runs a CUDA kernel's unchanged source on the CPU: one OS thread per CUDA thread, the blocks of a grid one
// after another. It checks what a machine with no GPU can check of a kernel, its arithmetic and its indexing
// (which thread reads and writes which element, tile edges, block rasterization, work split across blocks),
// not what only a GPU has (speed, the memory model's weaker orders, warp-synchronous code without syncs).
//
// What it gives a kernel:
// - threadIdx, blockIdx, blockDim, gridDim; __syncthreads() is a barrier of the block's threads;
// - __shfl_xor_sync over the 32 lanes of a warp (every lane must call it, as the full mask says);
// - __shared__ arrays are static: one copy, which is right because blocks run one at a time, filled with
//   0xff bytes before each block (except under the address sanitizer);
// - float2, float4 and the intrinsics the kernels use (__expf, __int_as_float, fmaxf, min, max);
// - atomicAdd, __threadfence() and volatile loads, so that blocks may publish results to one another.
//   Blocks run in turn, so a block may only wait for a block that ran before it, and fences between
//   blocks are never put to the test; `launch` takes the order (first to last, or last to first).
//
// Inline PTX (asm) has no CPU meaning, so kernels with it (the tensor-core attention) are not run here.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
// Statics in one section, so that the launcher can poison them between blocks (see `launch`).
#define __shared__ static __attribute__((section("cuda_shared"), used))

using std::max;
using std::min;
inline float __expf(float x) { return std::exp(x); }
inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}
inline float __ldcg(const float* p) { return *reinterpret_cast<const volatile float*>(p); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }

// The linker's bounds of the section that holds the kernels' __shared__ arrays (weak: a kernel may have none).
extern "C" char __start_cuda_shared[] __attribute__((weak));
extern "C" char __stop_cuda_shared[] __attribute__((weak));

namespace cuda_cpu {
// Fills every __shared__ array with 0xff bytes (NaN as a float, -1 as an int) before a block runs, so that a
// read of shared memory that no thread of the block wrote shows up as wrong. Not under the address
// sanitizer, whose red zones lie between the arrays: there a block sees what the last one left.
inline void poison_shared() {
#if !defined(__SANITIZE_ADDRESS__)
    if (__start_cuda_shared != nullptr && __stop_cuda_shared != nullptr)
        std::memset(__start_cuda_shared, 0xff, static_cast<std::size_t>(__stop_cuda_shared - __start_cuda_shared));
#endif
}

// The running block's barrier and its warps' shuffle exchange.
struct Block {
    explicit Block(unsigned threads) : sync(threads), slots(threads) {
        for (unsigned w = 0; w * 32 < threads; w++)
            warps.push_back(std::make_unique<std::barrier<>>(std::min(32u, threads - w * 32)));
    }
    std::barrier<> sync;
    std::vector<std::uint64_t> slots;
    std::vector<std::unique_ptr<std::barrier<>>> warps;
};
inline Block* block = nullptr;
}  // namespace cuda_cpu

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim, gridDim;

inline void __syncthreads() { cuda_cpu::block->sync.arrive_and_wait(); }

template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
    static_assert(sizeof(T) <= 8, "a shuffled value fits in 8 bytes");
    cuda_cpu::Block& b = *cuda_cpu::block;
    const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned warp = tid / 32, lane = tid % 32;
    std::uint64_t raw = 0;
    std::memcpy(&raw, &v, sizeof v);
    b.slots[tid] = raw;
    b.warps[warp]->arrive_and_wait();
    // A lane past the end of a partial last warp has no value: the caller keeps its own.
    const unsigned from = warp * 32 + (lane ^ static_cast<unsigned>(mask));
    raw = from < b.slots.size() ? b.slots[from] : raw;
    b.warps[warp]->arrive_and_wait();
    T out;
    std::memcpy(&out, &raw, sizeof out);
    return out;
}

namespace cuda_cpu {
enum class Order { Forward, Reverse };

// Runs kernel<<<grid, threads>>>(args...) with the blocks in launch order (x fastest) or its reverse. One
// OS thread per CUDA thread of a block, started once and reused block after block.
template <class... P, class... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 threads, Order order, A... args) {
    gridDim = grid;
    blockDim = threads;
    const unsigned n = threads.x * threads.y * threads.z;
    const unsigned blocks = grid.x * grid.y * grid.z;
    // The launching thread and the n CUDA threads meet before and after each block.
    std::barrier<> start(n + 1), done(n + 1);
    dim3 at;
    std::vector<std::thread> pool;
    pool.reserve(n);
    for (unsigned t = 0; t < n; t++) {
        pool.emplace_back([&, t] {
            threadIdx = {t % threads.x, t / threads.x % threads.y, t / (threads.x * threads.y)};
            for (unsigned i = 0; i < blocks; i++) {
                start.arrive_and_wait();
                blockIdx = at;
                kernel(static_cast<P>(args)...);
                // A thread that has returned no longer takes part in its block's barriers or its warp's
                // shuffles, as on the GPU.
                block->sync.arrive_and_drop();
                block->warps[t / 32]->arrive_and_drop();
                done.arrive_and_wait();
            }
        });
    }
    for (unsigned i = 0; i < blocks; i++) {
        const unsigned b = order == Order::Forward ? i : blocks - 1 - i;
        at = {b % grid.x, b / grid.x % grid.y, b / (grid.x * grid.y)};
        Block state(n);
        block = &state;
        poison_shared();
        start.arrive_and_wait();
        done.arrive_and_wait();
        block = nullptr;
    }
    for (std::thread& t : pool) t.join();
}
}  // namespace cuda_cpu
