// Flash-attention-style forward pass: O = softmax(Q K^T / sqrt(D)) V for each of BH (batch x head)
// slices, non-causal. Q, K, V, O are [BH, seq, D] fp16; scores, softmax and the output accumulate in fp32.
//
// A block owns BQ query rows of one slice; each of its BQ / ROWS threads owns ROWS query rows: the row
// of Q (scaled) and its output accumulator live in registers. K and V stream through shared memory in
// tiles of BKV rows; per CHUNK keys of a tile a thread computes the chunk's scores, rescales its
// accumulator once by the new running max (the online softmax), and adds the chunk's weighted V rows. K/V reads are broadcasts (every
// thread reads the same row), so no bank conflicts. Tunables:
//   BQ       query rows per block
//   ROWS     query rows per thread (reuses each shared K/V value ROWS times; costs registers)
//   BKV      keys per shared-memory tile
//   CHUNK    keys per online-softmax step (scores held in registers)
//   KV_HALF  1 = keep tiles in fp16 (half the shared memory, a conversion per use), 0 = convert once to fp32
//   EXP2     1 = exp2 with log2(e) folded into the scale, 0 = exp
#ifndef BQ
#define BQ 64
#endif
#ifndef ROWS
#define ROWS 1
#endif
#ifndef BKV
#define BKV 32
#endif
#ifndef CHUNK
#define CHUNK 8
#endif
#ifndef KV_HALF
#define KV_HALF 0
#endif
#ifndef EXP2
#define EXP2 1
#endif

#define D 64
#define THREADS (BQ / ROWS)
// -inf without <math.h> (NVRTC compiles without the host headers).
#define NEG_INF __int_as_float(0xff800000)

typedef unsigned short half_t;

__device__ __forceinline__ float h2f(half_t h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ half_t f2h(float f) {
    half_t h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float ex(float x) {
#if EXP2
    return exp2f(x);
#else
    return __expf(x);
#endif
}

#if KV_HALF
typedef half_t tile_t;
__device__ __forceinline__ float tv(tile_t v) { return h2f(v); }
#else
typedef float tile_t;
__device__ __forceinline__ float tv(tile_t v) { return v; }
#endif

extern "C" __global__ void __launch_bounds__(THREADS)
attention(const half_t* __restrict__ Q, const half_t* __restrict__ K, const half_t* __restrict__ V,
          half_t* __restrict__ O, int seq) {
    __shared__ __align__(16) tile_t Ks[BKV][D];
    __shared__ __align__(16) tile_t Vs[BKV][D];

    const size_t slice = (size_t)blockIdx.y * seq * D;
    const int tid = threadIdx.x;
    const int q0 = blockIdx.x * BQ;
#if EXP2
    const float scale = 0.125f * 1.4426950408889634f;
#else
    const float scale = 0.125f;
#endif

    float q[ROWS][D], acc[ROWS][D], m[ROWS], l[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        const half_t* qr = Q + slice + (size_t)(q0 + tid + r * THREADS) * D;
#pragma unroll
        for (int d = 0; d < D; d += 8) {
            const uint4 w = *reinterpret_cast<const uint4*>(qr + d);
            const half_t* h = reinterpret_cast<const half_t*>(&w);
#pragma unroll
            for (int j = 0; j < 8; j++) q[r][d + j] = h2f(h[j]) * scale;
        }
#pragma unroll
        for (int d = 0; d < D; d++) acc[r][d] = 0.0f;
        m[r] = NEG_INF;
        l[r] = 0.0f;
    }

    for (int kv0 = 0; kv0 < seq; kv0 += BKV) {
        // Each of BKV * D / 8 16-byte vectors of K and of V is loaded by one thread.
        for (int v = tid; v < BKV * D / 8; v += THREADS) {
            const int row = v / (D / 8);
            const int col = (v % (D / 8)) * 8;
            const size_t g = slice + (size_t)(kv0 + row) * D + col;
            const uint4 kw = *reinterpret_cast<const uint4*>(K + g);
            const uint4 vw = *reinterpret_cast<const uint4*>(V + g);
#if KV_HALF
            *reinterpret_cast<uint4*>(&Ks[row][col]) = kw;
            *reinterpret_cast<uint4*>(&Vs[row][col]) = vw;
#else
            const half_t* kh = reinterpret_cast<const half_t*>(&kw);
            const half_t* vh = reinterpret_cast<const half_t*>(&vw);
#pragma unroll
            for (int j = 0; j < 8; j++) {
                Ks[row][col + j] = h2f(kh[j]);
                Vs[row][col + j] = h2f(vh[j]);
            }
#endif
        }
        __syncthreads();

        // Keys in chunks of CHUNK: the chunk's scores stay in registers (constant indices), and the
        // loop over chunks is not unrolled, which keeps the code (and NVRTC's time) small.
#pragma unroll 1
        for (int j0 = 0; j0 < BKV; j0 += CHUNK) {
            float s[ROWS][CHUNK];
#pragma unroll
            for (int j = 0; j < CHUNK; j++) {
#pragma unroll
                for (int r = 0; r < ROWS; r++) s[r][j] = 0.0f;
#pragma unroll
                for (int d = 0; d < D; d++) {
                    const float k = tv(Ks[j0 + j][d]);
#pragma unroll
                    for (int r = 0; r < ROWS; r++) s[r][j] = fmaf(q[r][d], k, s[r][j]);
                }
            }
#pragma unroll
            for (int r = 0; r < ROWS; r++) {
                float mx = m[r];
#pragma unroll
                for (int j = 0; j < CHUNK; j++) mx = fmaxf(mx, s[r][j]);
                const float corr = ex(m[r] - mx);
                l[r] *= corr;
#pragma unroll
                for (int d = 0; d < D; d++) acc[r][d] *= corr;
#pragma unroll
                for (int j = 0; j < CHUNK; j++) {
                    s[r][j] = ex(s[r][j] - mx);
                    l[r] += s[r][j];
                }
                m[r] = mx;
            }
#pragma unroll
            for (int j = 0; j < CHUNK; j++) {
#pragma unroll
                for (int d = 0; d < D; d++) {
                    const float v = tv(Vs[j0 + j][d]);
#pragma unroll
                    for (int r = 0; r < ROWS; r++) acc[r][d] = fmaf(s[r][j], v, acc[r][d]);
                }
            }
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < ROWS; r++) {
        half_t* orow = O + slice + (size_t)(q0 + tid + r * THREADS) * D;
        const float inv = 1.0f / l[r];
#pragma unroll
        for (int d = 0; d < D; d += 8) {
            uint4 w;
            half_t* h = reinterpret_cast<half_t*>(&w);
#pragma unroll
            for (int j = 0; j < 8; j++) h[j] = f2h(acc[r][d + j] * inv);
            *reinterpret_cast<uint4*>(orow + d) = w;
        }
    }
}
