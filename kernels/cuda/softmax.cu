// Row softmax: y[r, :] = exp(x[r, :] - max) / sum(exp(x[r, :] - max)) for a rows x cols fp32 matrix.
//
// A block of BLOCK threads handles RPB rows at once; each row gets a group of TPR = BLOCK / RPB threads.
// A thread reads ITEMS vectors of VEC floats per chunk (its part of BLOCK/RPB * ITEMS * VEC consecutive
// row elements), keeping a running max and a running sum rescaled as the max grows (the online softmax),
// so any row length works in one read pass. When one chunk covers the row (cols == TPR * ITEMS * VEC) the
// values stay in registers and the write pass reads nothing; otherwise it reads the row again.
// Tunables:
//   BLOCK   threads per block
//   RPB     rows per block
//   ITEMS   vectors per thread per chunk
//   VEC     floats per vector (4 = 16-byte loads)
//   REDUCE  0 = warp shuffles (then shared memory across the row group's warps), 1 = shared-memory tree
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef RPB
#define RPB 1
#endif
#ifndef ITEMS
#define ITEMS 4
#endif
#ifndef VEC
#define VEC 4
#endif
#ifndef REDUCE
#define REDUCE 0
#endif

#define TPR (BLOCK / RPB)
// -inf without <math.h> (NVRTC compiles without the host headers).
#define NEG_INF __int_as_float(0xff800000)

#if VEC == 4
typedef float4 vec_t;
#elif VEC == 2
typedef float2 vec_t;
#else
typedef float vec_t;
#endif

__device__ __forceinline__ void unpack(const float& v, float* o) { o[0] = v; }
__device__ __forceinline__ void unpack(const float2& v, float* o) { o[0] = v.x; o[1] = v.y; }
__device__ __forceinline__ void unpack(const float4& v, float* o) { o[0] = v.x; o[1] = v.y; o[2] = v.z; o[3] = v.w; }
__device__ __forceinline__ void pack(float& v, const float* o) { v = o[0]; }
__device__ __forceinline__ void pack(float2& v, const float* o) { v = make_float2(o[0], o[1]); }
__device__ __forceinline__ void pack(float4& v, const float* o) { v = make_float4(o[0], o[1], o[2], o[3]); }

// Merges two (max, sum) pairs of the online softmax.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
    const float mx = fmaxf(m, m2);
    s = (m == NEG_INF ? 0.0f : s * __expf(m - mx)) + (m2 == NEG_INF ? 0.0f : s2 * __expf(m2 - mx));
    m = mx;
}

// Reduces (m, s) over the TPR threads of this row group; every thread gets the result.
__device__ __forceinline__ void group_reduce(float& m, float& s, float* sm_m, float* sm_s) {
    const int tid = threadIdx.x;
    const int group = tid / TPR;
    const int t = tid % TPR;
#if REDUCE == 0
#pragma unroll
    for (int off = (TPR < 32 ? TPR : 32) / 2; off > 0; off /= 2) {
        merge(m, s, __shfl_xor_sync(0xffffffffu, m, off), __shfl_xor_sync(0xffffffffu, s, off));
    }
    if (TPR > 32) {
        constexpr int WARPS = TPR > 32 ? TPR / 32 : 1;
        if (t % 32 == 0) {
            sm_m[group * WARPS + t / 32] = m;
            sm_s[group * WARPS + t / 32] = s;
        }
        __syncthreads();
        m = sm_m[group * WARPS];
        s = sm_s[group * WARPS];
        for (int w = 1; w < WARPS; w++) merge(m, s, sm_m[group * WARPS + w], sm_s[group * WARPS + w]);
        __syncthreads();
    }
#else
    sm_m[tid] = m;
    sm_s[tid] = s;
    __syncthreads();
#pragma unroll
    for (int half = TPR / 2; half > 0; half /= 2) {
        if (t < half) {
            float a = sm_m[tid], b = sm_s[tid];
            merge(a, b, sm_m[tid + half], sm_s[tid + half]);
            sm_m[tid] = a;
            sm_s[tid] = b;
        }
        __syncthreads();
    }
    m = sm_m[group * TPR];
    s = sm_s[group * TPR];
    __syncthreads();
#endif
}

extern "C" __global__ void __launch_bounds__(BLOCK)
softmax(const float* __restrict__ x, float* __restrict__ y, int rows, int cols) {
    __shared__ float sm_m[BLOCK];
    __shared__ float sm_s[BLOCK];
    const int group = threadIdx.x / TPR;
    const int t = threadIdx.x % TPR;
    const long long row = (long long)blockIdx.x * RPB + group;
    // Rows past the end still take part in the block's barriers; they read and write nothing.
    const bool live = row < rows;
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    constexpr int CHUNK = TPR * ITEMS * VEC;
    const int chunks = cols / CHUNK;

    float m = NEG_INF, s = 0.0f;
    float v[ITEMS * VEC];
    for (int c = 0; c < chunks; c++) {
        if (live) {
#pragma unroll
            for (int i = 0; i < ITEMS; i++) {
                const vec_t w = *reinterpret_cast<const vec_t*>(xr + c * CHUNK + (i * TPR + t) * VEC);
                unpack(w, v + i * VEC);
            }
            float cm = v[0];
#pragma unroll
            for (int i = 1; i < ITEMS * VEC; i++) cm = fmaxf(cm, v[i]);
            float cs = 0.0f;
#pragma unroll
            for (int i = 0; i < ITEMS * VEC; i++) cs += __expf(v[i] - cm);
            merge(m, s, cm, cs);
        }
    }
    group_reduce(m, s, sm_m, sm_s);
    if (!live) return;
    const float inv = 1.0f / s;
    if (chunks == 1) {
#pragma unroll
        for (int i = 0; i < ITEMS; i++) {
            float o[VEC];
#pragma unroll
            for (int j = 0; j < VEC; j++) o[j] = __expf(v[i * VEC + j] - m) * inv;
            vec_t w;
            pack(w, o);
            *reinterpret_cast<vec_t*>(yr + (i * TPR + t) * VEC) = w;
        }
    } else {
        for (int c = 0; c < chunks; c++) {
#pragma unroll
            for (int i = 0; i < ITEMS; i++) {
                const int off = c * CHUNK + (i * TPR + t) * VEC;
                float o[VEC];
                unpack(*reinterpret_cast<const vec_t*>(xr + off), o);
#pragma unroll
                for (int j = 0; j < VEC; j++) o[j] = __expf(o[j] - m) * inv;
                vec_t w;
                pack(w, o);
                *reinterpret_cast<vec_t*>(yr + off) = w;
            }
        }
    }
}
