// Flash-attention-2-style forward pass on the tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate):
// O = softmax(Q K^T / sqrt(D)) V for each of BH slices, non-causal, Q/K/V/O [BH, seq, 64] fp16.
//
// A candidate replacement for attention.cu (which runs on the CUDA cores, ~25 TFLOP/s on the H100), timed
// by kernels/examples/versus.rs beside it (BKV 32, 64, 128); not yet an #[autotune] launcher. A block of 4 warps owns 64
// query rows, each warp 16: its Q fragments stay in registers, S = Q K^T for a tile of BKV keys is 8 mma
// n-tiles of 8 keys, the online softmax runs on the accumulator fragments (row max and sum reduced over
// the 4 threads of a quad), and P is repacked to fp16 A fragments for O += P V without going through
// shared memory. K tiles are kept row-major and V tiles transposed in shared memory, both padded so the
// fragment loads hit 32 different banks.
#define D 64
#define BQ 64
#ifndef BKV
#define BKV 64
#endif
#define NT (BKV / 8)
#define PAD 8
#define THREADS 128
#define NEG_INF __int_as_float(0xff800000)

typedef unsigned short half_t;
typedef unsigned int u32;

// Two floats to an f16x2 register: `lo` in the low half (the lower column).
__device__ __forceinline__ u32 pack(float lo, float hi) {
    u32 r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

__device__ __forceinline__ void mma(float* c, const u32* a, u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

extern "C" __global__ void __launch_bounds__(THREADS)
attention_mma(const half_t* __restrict__ Q, const half_t* __restrict__ K, const half_t* __restrict__ V,
              half_t* __restrict__ O, int seq) {
    __shared__ __align__(16) half_t Ks[BKV][D + PAD];
    __shared__ __align__(16) half_t Vt[D][BKV + PAD];

    const size_t slice = (size_t)blockIdx.y * seq * D;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int r0 = blockIdx.x * BQ + warp * 16;
    const float scale = 0.125f * 1.4426950408889634f;  // 1/sqrt(64), in log2 units for exp2

    // Q as A fragments (rows g and g + 8 of the warp's 16, d in 4 k-steps of 16).
    u32 qa[4][4];
    const half_t* q0 = Q + slice + (size_t)(r0 + g) * D;
    const half_t* q8 = Q + slice + (size_t)(r0 + g + 8) * D;
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        qa[ks][0] = *reinterpret_cast<const u32*>(q0 + 16 * ks + 2 * t);
        qa[ks][1] = *reinterpret_cast<const u32*>(q8 + 16 * ks + 2 * t);
        qa[ks][2] = *reinterpret_cast<const u32*>(q0 + 16 * ks + 8 + 2 * t);
        qa[ks][3] = *reinterpret_cast<const u32*>(q8 + 16 * ks + 8 + 2 * t);
    }
    float o[8][4];
#pragma unroll
    for (int n = 0; n < 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m0 = NEG_INF, m1 = NEG_INF, l0 = 0.0f, l1 = 0.0f;

    for (int kv0 = 0; kv0 < seq; kv0 += BKV) {
        __syncthreads();  // the previous tile is no longer read
        for (int v = tid; v < BKV * D / 8; v += THREADS) {
            const int row = v / (D / 8), col = (v % (D / 8)) * 8;
            const size_t off = slice + (size_t)(kv0 + row) * D + col;
            *reinterpret_cast<uint4*>(&Ks[row][col]) = *reinterpret_cast<const uint4*>(K + off);
            const uint4 vw = *reinterpret_cast<const uint4*>(V + off);
            const half_t* vh = reinterpret_cast<const half_t*>(&vw);
#pragma unroll
            for (int j = 0; j < 8; j++) Vt[col + j][row] = vh[j];
        }
        __syncthreads();

        // S = Q K^T: NT n-tiles of 8 keys.
        float s[NT][4];
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                const u32 b0 = *reinterpret_cast<const u32*>(&Ks[n * 8 + g][16 * ks + 2 * t]);
                const u32 b1 = *reinterpret_cast<const u32*>(&Ks[n * 8 + g][16 * ks + 8 + 2 * t]);
                mma(s[n], qa[ks], b0, b1);
            }
        }
        // Online softmax on rows g (elements 0, 1) and g + 8 (elements 2, 3).
        float mx0 = m0, mx1 = m1;
#pragma unroll
        for (int n = 0; n < NT; n++) {
#pragma unroll
            for (int i = 0; i < 4; i++) s[n][i] *= scale;
            mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float c0 = exp2f(m0 - mx0), c1 = exp2f(m1 - mx1);
        m0 = mx0;
        m1 = mx1;
        l0 *= c0;
        l1 *= c1;
#pragma unroll
        for (int n = 0; n < 8; n++) {
            o[n][0] *= c0;
            o[n][1] *= c0;
            o[n][2] *= c1;
            o[n][3] *= c1;
        }
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[n][0] = exp2f(s[n][0] - mx0);
            s[n][1] = exp2f(s[n][1] - mx0);
            s[n][2] = exp2f(s[n][2] - mx1);
            s[n][3] = exp2f(s[n][3] - mx1);
            l0 += s[n][0] + s[n][1];
            l1 += s[n][2] + s[n][3];
        }
        // O += P V: P's accumulator fragments are the A fragments of BKV / 16 k-steps of 16 keys.
#pragma unroll
        for (int kk = 0; kk < BKV / 16; kk++) {
            u32 pa[4];
            pa[0] = pack(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int n = 0; n < 8; n++) {
                const u32 b0 = *reinterpret_cast<const u32*>(&Vt[n * 8 + g][16 * kk + 2 * t]);
                const u32 b1 = *reinterpret_cast<const u32*>(&Vt[n * 8 + g][16 * kk + 8 + 2 * t]);
                mma(o[n], pa, b0, b1);
            }
        }
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float i0 = 1.0f / l0, i1 = 1.0f / l1;
    half_t* o0 = O + slice + (size_t)(r0 + g) * D;
    half_t* o8 = O + slice + (size_t)(r0 + g + 8) * D;
#pragma unroll
    for (int n = 0; n < 8; n++) {
        *reinterpret_cast<u32*>(o0 + 8 * n + 2 * t) = pack(o[n][0] * i0, o[n][1] * i0);
        *reinterpret_cast<u32*>(o8 + 8 * n + 2 * t) = pack(o[n][2] * i1, o[n][3] * i1);
    }
}
