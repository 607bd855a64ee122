// SGEMM with a stream-K schedule: sgemm.cu's ALG 0 kernel (register-staged loads, same tunables, same
// results to the last bit on unsplit tiles) run by a persistent grid of G blocks, G = gridDim.x, best the
// number of blocks the GPU holds at once and at most the number of tiles. A PROTOTYPE: not behind a
// launcher yet; see docs/benchmarks.md, "SGEMM: the wave-quantization prototype", for why and what is left
// to measure.
//
// Why: at 4096^3 the tuned 128 x 256 tile makes T = 512 tiles for 132 SMs, 3.88 waves of one block an SM.
// A launch of one block a tile runs 4 full waves, so the SMs idle for 12% of the last one, 3% of the run.
// Here the first (T / G - 1) * G tiles run as whole tiles (data-parallel, b, b + G, ...), and the last
// G + T % G tiles' K iterations are cut into G equal ranges, one a block: every block does the same work,
// 3.88 tiles' worth, and the run ends when they do.
//
// A range covers at least one tile's iterations (G + T % G >= G), so a tile is cut between two blocks at
// most: block b ends with the first part of tile t, block b + 1 starts with the rest. Each writes its
// partial sums to its own slot of `partials` (2 * BM * BN floats a block: one for the range's first tile,
// one for its last) and counts itself in at counters[b]; the second to arrive adds the other's partial
// and writes the tile, and sets the counter back to zero for the next launch (counters must be zero
// before the first). No block waits for another, so any G is safe, resident together or not; and
// a + b == b + a in floating point, so the bits do not depend on which block arrives second. (A launch
// cut short leaves a counter raised, but on a CUDA GPU that is a kernel fault, which ends the context and
// its buffers with it.)
//
// Tunables: BM, BN, BK, TM, TN, VEC, PAD, MAP, DB and GROUP, as sgemm.cu's ALG 0 (see there).
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
#ifndef GROUP
#define GROUP 1
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

// Tile t's row and column in the grid of tiles: sgemm.cu's block_tile, from a tile number instead of
// blockIdx. GROUP > 1 walks GROUP tile rows down M before moving along N.
__device__ __forceinline__ void tile_at(int t, int tiles_m, int tiles_n, int& tile_m, int& tile_n) {
#if GROUP > 1
    const int per_group = GROUP * tiles_n;
    const int first = t / per_group * GROUP;
    const int rows = min(GROUP, tiles_m - first);
    const int in_group = t % per_group;
    tile_m = first + in_group % rows;
    tile_n = in_group / rows;
#else
    tile_m = t / tiles_n;
    tile_n = t % tiles_n;
#endif
}

__device__ __forceinline__ void zero(float (&acc)[TM][TN]) {
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
}

// A thread's TM x TN values in a block's slot of `partials`, value e of thread tid at e * THREADS + tid, so
// the threads of a warp write and read consecutive floats.
__device__ __forceinline__ void save_partial(float* slot, int tid, const float (&acc)[TM][TN]) {
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) slot[(i * TN + j) * THREADS + tid] = acc[i][j];
}
__device__ __forceinline__ void add_partial(const float* slot, int tid, float (&acc)[TM][TN]) {
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] += __ldcg(slot + (i * TN + j) * THREADS + tid);
}

__device__ __forceinline__ void write_tile(float* C, int N, int row0, int col0, const float (&acc)[TM][TN]) {
#pragma unroll
    for (int i = 0; i < TM; i++) {
        float* row = C + (size_t)(row0 + i) * N + col0;
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

extern "C" __global__ void __launch_bounds__(THREADS)
sgemm_streamk(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, int M, int N,
              int K, float* __restrict__ partials, int* counters) {
    __shared__ __align__(16) float As[DB + 1][BK][BM + PAD];
    __shared__ __align__(16) float Bs[DB + 1][BK][BN + PAD];
    __shared__ int arrived;  // how many of a split tile's two blocks had counted themselves in before this one
    const int tid = threadIdx.x;
#if MAP == 0
    const int tcol = tid % (BN / TN);
    const int trow = tid / (BN / TN);
#else
    const int trow = tid % (BM / TM);
    const int tcol = tid / (BM / TM);
#endif
    float acc[TM][TN];

    // Multiplies and accumulates BK-wide slices k_begin..k_end (in slices) of the tile at (bm0, bn0) into
    // acc: sgemm.cu's ALG 0 main loop over a range of slices instead of all of them.
    auto mainloop = [&](int bm0, int bn0, int k_begin, int k_end) {
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
        zero(acc);
        float rm[TM], rn[TN];
        int s = 0;
        load(k_begin * BK);
        store(0);
        __syncthreads();
        for (int kt = k_begin; kt < k_end; kt++) {
#if DB
            const bool more = kt + 1 < k_end;
            if (more) load((kt + 1) * BK);
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
            if (kt + 1 < k_end) {
                load((kt + 1) * BK);
                store(0);
            }
            __syncthreads();
#endif
        }
    };

    const int tiles_m = M / BM, tiles_n = N / BN;
    const int tiles = tiles_m * tiles_n;
    const int iters = K / BK;
    const int blocks = gridDim.x;
    const int b = blockIdx.x;
    // Whole tiles first: all of them when they fill the waves evenly, else all but the last G + T % G.
    const int whole = tiles % blocks == 0 || tiles < blocks ? tiles : (tiles / blocks - 1) * blocks;

    // This block's range of the remaining tiles' iterations, numbered from the first remaining tile's first.
    const long long shared_iters = (long long)(tiles - whole) * iters;
    long long it = shared_iters * b / blocks;
    const long long end = shared_iters * (b + 1) / blocks;
    // One loop over the block's work, whole tiles first, so that the main loop is inlined once.
    for (int next_whole = b;;) {
        int t, k_begin, k_end;
        if (next_whole < whole) {
            t = next_whole;
            k_begin = 0;
            k_end = iters;
            next_whole += blocks;
        } else if (it < end) {
            t = whole + (int)(it / iters);
            k_begin = (int)(it % iters);
            k_end = (int)min((long long)iters, k_begin + (end - it));
            it += k_end - k_begin;
        } else {
            break;
        }
        int tile_m, tile_n;
        tile_at(t, tiles_m, tiles_n, tile_m, tile_n);
        mainloop(tile_m * BM, tile_n * BN, k_begin, k_end);
        if (k_begin > 0 || k_end < iters) {
            // A tile cut between this block and a neighbour: the range's first tile (its rest, k_begin > 0;
            // the start is block b - 1's) or its last (its start; the rest is block b + 1's). Slot 2b + 0
            // holds this block's part of its first tile, 2b + 1 its part of its last.
            const bool rest = k_begin > 0;
            const int pair = rest ? b - 1 : b;
            save_partial(partials + (size_t)(2 * b + (rest ? 0 : 1)) * (BM * BN), tid, acc);
            __syncthreads();
            if (tid == 0) {
                // The fence before releases the block's partial (written by all its threads before the
                // barrier) to the GPU; the one after acquires the neighbour's, when it came first.
                __threadfence();
                arrived = atomicAdd(&counters[pair], 1);
                __threadfence();
                if (arrived == 1) counters[pair] = 0;
            }
            __syncthreads();
            if (arrived == 0) continue;  // the neighbour is still on its part: it writes the tile
            __threadfence();
            add_partial(partials + (size_t)(rest ? 2 * (b - 1) + 1 : 2 * (b + 1)) * (BM * BN), tid, acc);
        }
        write_tile(C, N, tile_m * BM + trow * TM, tile_n * BN + tcol * TN, acc);
    }
}
