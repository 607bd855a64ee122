// c = a + b over n floats. Tunables: BLOCK threads, ITEMS vectors per thread, VEC floats per vector.
// A block covers BLOCK * ITEMS * VEC consecutive elements; within it, iteration i of every thread reads
// one VEC-wide vector, and consecutive threads read consecutive vectors (coalesced, 16-byte accesses at
// VEC = 4). ITEMS > 1 puts several independent loads in flight per thread before the first add.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif
#ifndef VEC
#define VEC 1
#endif

#if VEC == 4
typedef float4 vec_t;
#elif VEC == 2
typedef float2 vec_t;
#elif VEC == 1
typedef float vec_t;
#else
#error "VEC must be 1, 2 or 4"
#endif

__device__ __forceinline__ float add1(float x, float y) { return x + y; }
__device__ __forceinline__ float2 add1(float2 x, float2 y) { return make_float2(x.x + y.x, x.y + y.y); }
__device__ __forceinline__ float4 add1(float4 x, float4 y) {
    return make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
vector_add(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c, int n) {
    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS * VEC);
    vec_t x[ITEMS], y[ITEMS];
    bool full[ITEMS];
#pragma unroll
    for (int i = 0; i < ITEMS; i++) {
        long long idx = base + ((long long)i * BLOCK + threadIdx.x) * VEC;
        full[i] = idx + VEC <= n;
        if (full[i]) {
            x[i] = *reinterpret_cast<const vec_t*>(a + idx);
            y[i] = *reinterpret_cast<const vec_t*>(b + idx);
        }
    }
#pragma unroll
    for (int i = 0; i < ITEMS; i++) {
        long long idx = base + ((long long)i * BLOCK + threadIdx.x) * VEC;
        if (full[i]) {
            *reinterpret_cast<vec_t*>(c + idx) = add1(x[i], y[i]);
        } else {
            for (long long j = idx; j < n && j < idx + VEC; j++) c[j] = a[j] + b[j];
        }
    }
}
