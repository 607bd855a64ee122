// C = A * B in fp32, row-major: A is M x K, B is K x N, C is M x N. M, N, K must be multiples of BM, BN, BK
// (the spec's constraints say so).
//
// Tiling: a block computes a BM x BN tile of C from BK-wide slices of A and B staged in shared memory;
// each of its (BM / TM) * (BN / TN) threads computes a TM x TN sub-tile in registers (an outer product
// per k). Tunables:
//   BM, BN, BK   block tile
//   TM, TN       thread tile
//   VEC          width of the global loads (1, 2, 4 floats: 4 is a 16-byte load)
//   PAD          floats of padding per shared row (0 or 4: breaks bank conflicts of the transposed A stores)
//   MAP          thread-to-tile mapping: 0 = consecutive threads take consecutive column tiles,
//                1 = consecutive threads take consecutive row tiles
//   DB           1 = double-buffered shared memory: the next slices are loaded into registers while the
//                current ones are multiplied, one barrier per slice instead of two
// A is stored transposed in shared memory (As[k][m]) so that a thread's TM values of one k are contiguous
// and read as float4.
#ifndef BM
#define BM 128
#endif
#ifndef BN
#define BN 128
#endif
#ifndef BK
#define BK 8
#endif
#ifndef TM
#define TM 8
#endif
#ifndef TN
#define TN 8
#endif
#ifndef VEC
#define VEC 4
#endif
#ifndef PAD
#define PAD 4
#endif
#ifndef MAP
#define MAP 0
#endif
#ifndef DB
#define DB 1
#endif

#define THREADS ((BM / TM) * (BN / TN))
#define A_VECS_PER_ROW (BK / VEC)
#define B_VECS_PER_ROW (BN / VEC)
#define A_LOADS (BM * BK / VEC / THREADS)
#define B_LOADS (BK * BN / VEC / THREADS)

#if VEC == 4
typedef float4 vec_t;
#elif VEC == 2
typedef float2 vec_t;
#else
typedef float vec_t;
#endif

__device__ __forceinline__ float lane(const float& v, int) { return v; }
__device__ __forceinline__ float lane(const float2& v, int j) { return j == 0 ? v.x : v.y; }
__device__ __forceinline__ float lane(const float4& v, int j) { return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w; }

// Reads N contiguous floats from shared memory with the widest aligned loads.
template <int N>
__device__ __forceinline__ void read_smem(float* dst, const float* src) {
    if constexpr (N % 4 == 0) {
#pragma unroll
        for (int i = 0; i < N; i += 4) *reinterpret_cast<float4*>(dst + i) = *reinterpret_cast<const float4*>(src + i);
    } else if constexpr (N % 2 == 0) {
#pragma unroll
        for (int i = 0; i < N; i += 2) *reinterpret_cast<float2*>(dst + i) = *reinterpret_cast<const float2*>(src + i);
    } else {
#pragma unroll
        for (int i = 0; i < N; i++) dst[i] = src[i];
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sgemm(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, int M, int N, int K) {
    __shared__ __align__(16) float As[DB + 1][BK][BM + PAD];
    __shared__ __align__(16) float Bs[DB + 1][BK][BN + PAD];

    const int tid = threadIdx.x;
#if MAP == 0
    const int tcol = tid % (BN / TN);
    const int trow = tid / (BN / TN);
#else
    const int trow = tid % (BM / TM);
    const int tcol = tid / (BM / TM);
#endif
    const int bm0 = blockIdx.y * BM;
    const int bn0 = blockIdx.x * BN;
    const float* Ab = A + (size_t)bm0 * K;
    const float* Bb = B + bn0;

    vec_t ra[A_LOADS];
    vec_t rb[B_LOADS];

    auto load = [&](int k0) {
#pragma unroll
        for (int i = 0; i < A_LOADS; i++) {
            const int v = tid + i * THREADS;
            const int r = v / A_VECS_PER_ROW;
            const int c = (v % A_VECS_PER_ROW) * VEC;
            ra[i] = *reinterpret_cast<const vec_t*>(Ab + (size_t)r * K + k0 + c);
        }
#pragma unroll
        for (int i = 0; i < B_LOADS; i++) {
            const int v = tid + i * THREADS;
            const int r = v / B_VECS_PER_ROW;
            const int c = (v % B_VECS_PER_ROW) * VEC;
            rb[i] = *reinterpret_cast<const vec_t*>(Bb + (size_t)(k0 + r) * N + c);
        }
    };
    auto store = [&](int s) {
#pragma unroll
        for (int i = 0; i < A_LOADS; i++) {
            const int v = tid + i * THREADS;
            const int r = v / A_VECS_PER_ROW;
            const int c = (v % A_VECS_PER_ROW) * VEC;
#pragma unroll
            for (int j = 0; j < VEC; j++) As[s][c + j][r] = lane(ra[i], j);
        }
#pragma unroll
        for (int i = 0; i < B_LOADS; i++) {
            const int v = tid + i * THREADS;
            const int r = v / B_VECS_PER_ROW;
            const int c = (v % B_VECS_PER_ROW) * VEC;
            *reinterpret_cast<vec_t*>(&Bs[s][r][c]) = rb[i];
        }
    };

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
    float rm[TM], rn[TN];

    int s = 0;
    load(0);
    store(0);
    __syncthreads();
    for (int k0 = 0; k0 < K; k0 += BK) {
#if DB
        const bool more = k0 + BK < K;
        if (more) load(k0 + BK);
#endif
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            read_smem<TM>(rm, &As[s][kk][trow * TM]);
            read_smem<TN>(rn, &Bs[s][kk][tcol * TN]);
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = fmaf(rm[i], rn[j], acc[i][j]);
        }
#if DB
        if (more) store(s ^ 1);
        __syncthreads();
        s ^= 1;
#else
        __syncthreads();
        if (k0 + BK < K) {
            load(k0 + BK);
            store(0);
        }
        __syncthreads();
#endif
    }

#pragma unroll
    for (int i = 0; i < TM; i++) {
        float* row = C + (size_t)(bm0 + trow * TM + i) * N + bn0 + tcol * TN;
        if constexpr (TN % 4 == 0) {
#pragma unroll
            for (int j = 0; j < TN; j += 4)
                *reinterpret_cast<float4*>(row + j) = make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
        } else {
#pragma unroll
            for (int j = 0; j < TN; j++) row[j] = acc[i][j];
        }
    }
}
