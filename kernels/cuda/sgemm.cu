// C = A * B in fp32, row-major: A is M x K, B is K x N, C is M x N. M, N, K must be multiples of BM, BN, BK
// (the spec's constraints say so).
//
// Tiling: a block computes a BM x BN tile of C from BK-wide slices of A and B staged in shared memory;
// each of its (BM / TM) * (BN / TN) threads computes a TM x TN sub-tile in registers (an outer product
// per k). Tunables of both kernels:
//   BM, BN, BK   block tile
//   TM, TN       thread tile
//   ALG          which kernel: 0 = register-staged loads, 1 = warp tiling with a cp.async pipeline
//   GROUP        block rasterization: 1 = blockIdx as launched (x along N, then y along M); G > 1 = the
//                launch order walks G block rows down M before moving along N, so that the blocks resident
//                at one time share more rows of A and columns of B in L2 (see block_tile)
//
// ALG 0: register-staged loads. Tunables:
//   VEC          width of the global loads (1, 2, 4 floats: 4 is a 16-byte load)
//   PAD          floats of padding per shared row (0 or 4: breaks bank conflicts of the transposed A stores)
//   MAP          thread-to-tile mapping: 0 = consecutive threads take consecutive column tiles,
//                1 = consecutive threads take consecutive row tiles
//   DB           1 = double-buffered shared memory: the next slices are loaded into registers while the
//                current ones are multiplied, one barrier per slice instead of two
// A is stored transposed in shared memory (As[k][m]) so that a thread's TM values of one k are contiguous
// and read as float4.
//
// ALG 1: warp tiling with a cp.async pipeline. Tunables:
//   WM, WN       warp tile: each warp owns a WM x WN piece of the block tile; (WM / TM) * (WN / TN) == 32
//   STAGES       slices in flight (2..4): cp.async copies fill slice k + STAGES - 1 while slice k is
//                multiplied, one barrier per slice; the slices live in dynamic shared memory
//   ATRANS       how A is stored in shared memory: 0 = row-major (16-byte copies), 1 = transposed (4-byte
//                copies); see below
//   PAD          floats of padding per shared row of A (0 or 4, see below)
//   RDB          1 = register double buffering: a lane loads the fragments (its A and B values) of step
//                k + 1 from shared memory while it multiplies those of step k, across the slice boundary
//                too (the wait and barrier for slice kt + 1 come before the last step of slice kt);
//                0 = the fragments of a step are loaded and used in turn, the barrier at the slice's top
// VEC, MAP and DB are unused (the spec pins them), as is RDB by ALG 0. The layouts are described before the kernel.
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
#ifndef ALG
#define ALG 0
#endif
#ifndef WM
#define WM 32
#endif
#ifndef WN
#define WN 64
#endif
#ifndef STAGES
#define STAGES 3
#endif
#ifndef ATRANS
#define ATRANS 0
#endif
#ifndef RDB
#define RDB 0
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

// The block's tile of C: its row (along M) and column (along N) in the grid of tiles. Blocks are started
// in launch order, blockIdx.x fastest; with GROUP > 1 the launch order is remapped so that it walks down GROUP
// tile rows, then moves one tile column along N, and takes the next GROUP rows once the columns run out
// (the last group may be shorter). The blocks resident together then cover a squarer patch of C, reading
// fewer distinct rows of A and columns of B. A bijection on the grid for any grid size.
__device__ __forceinline__ void block_tile(int& tile_m, int& tile_n) {
#if GROUP > 1
    const int launched = blockIdx.y * gridDim.x + blockIdx.x;
    const int per_group = GROUP * gridDim.x;
    const int first = launched / per_group * GROUP;
    const int rows = min(GROUP, (int)gridDim.y - first);
    const int in_group = launched % per_group;
    tile_m = first + in_group % rows;
    tile_n = in_group / rows;
#else
    tile_m = blockIdx.y;
    tile_n = blockIdx.x;
#endif
}

#if ALG == 0

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
    int tile_m, tile_n;
    block_tile(tile_m, tile_n);
    const int bm0 = tile_m * BM;
    const int bn0 = tile_n * BN;
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

#else  // ALG == 1

// Warp tiling (siboehm's "warptiling" SGEMM, kernel 10): the block tile is cut into (BM / WM) x (BN / WN)
// warp tiles, and a warp's 32 lanes form a LANES_M x LANES_N grid over its tile. A lane owns TN columns in
// groups of 4 (one float4), 4 * LANES_N apart, so the lanes that read one row of B read contiguous float4s
// (or the same one: a broadcast). Its TM rows depend on how A is stored (ATRANS):
//
// ATRANS 0: A is copied as it lies in global memory, row-major (As[m][k]), with 16-byte cp.async. A lane
// owns TM rows LANES_M apart, and reads a float4 of 4 consecutive k of each, used over 4 steps of k: as
// many shared loads as a transposed A needs, for 4 * TM registers instead of TM. A 16-byte shared load
// serves 8 lanes (a quarter warp) at a time, and those read max(1, 8 / LANES_N) consecutive rows at one k.
// With PAD = 4 a row is BK / 4 + 1 bank groups (of 4 banks) long, an odd number, so 8 consecutive rows
// start in 8 different groups and the read is conflict-free for every BK; with PAD = 0 the rows are BK / 4
// groups apart and up to 8 of them share one (BK = 32): the tuner may still pick it where it does not hurt.
//
// ATRANS 1: A is transposed on the way in (As[k][m]) by 4-byte cp.async, one float each (a 16-byte copy
// cannot transpose): four times the copy instructions for A, in exchange for TM registers of A a k and
// B's layout for A's rows (groups of 4 rows, 4 * LANES_M apart), whose reads never conflict. The lanes of
// a warp copy consecutive k of a row (coalesced reads); their shared writes are BM + PAD floats apart, so
// PAD = 4 spreads them over the banks (a 2-way conflict at BK = 16, which the asynchronous copy absorbs).
#define LANES_N (WN / TN)
#define LANES_M (WM / TM)
#define WARPS_N (BN / WN)
#if ATRANS
#define A_TILE (BK * (BM + PAD))
#define A_COPIES (BM * BK / THREADS)
#else
#define A_STRIDE (BK + PAD)
#define A_TILE (BM * A_STRIDE)
#define A_COPIES (BM * BK / 4 / THREADS)
#endif
#define B_TILE (BK * BN)
#define STAGE_FLOATS (A_TILE + B_TILE)
#define B_COPIES (BK * BN / 4 / THREADS)

#if LANES_M * LANES_N != 32 || TN % 4 != 0 || BK % 4 != 0 || (ATRANS && TM % 4 != 0)
#error "ALG 1 needs (WM / TM) * (WN / TN) == 32, TN and BK multiples of 4 (and TM when ATRANS)"
#endif
// With RDB and A row-major, the two sets of A alternate every 4 steps, so a slice must hold an even number
// of them for step 0 of every slice to fill the same set.
#if RDB && !ATRANS && BK % 8 != 0
#error "ALG 1 with RDB = 1 and ATRANS = 0 needs BK a multiple of 8"
#endif

// Copies 16 bytes from global to shared memory without going through registers; .cg bypasses L1, which
// the tiles would only pass through once.
__device__ __forceinline__ void cp_async16(float* smem, const float* gmem) {
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(gmem) : "memory");
}
// Copies one float (4-byte copies must go through L1: .ca).
__device__ __forceinline__ void cp_async4(float* smem, const float* gmem) {
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// RDB = 1's fragments: the values of A and B a lane multiplies at one step k of a slice, in two sets, so
// that the set of step k + 1 fills while step k multiplies. The set of step k is k % 2; with A row-major
// (ATRANS 0) a set of A is the float4 of 4 consecutive k of each of the lane's rows, loaded every 4th step,
// and the sets of A alternate every 4 steps. k is a constant once the loops over k are unrolled, so every
// index below is too and the fragments stay in registers.
#if ATRANS
#define A_FRAG (TM / 4)
#else
#define A_FRAG TM
#endif

// Loads the fragments of step k; As and Bs point to the lane's first row of A and first column of B in
// the stage being read.
__device__ __forceinline__ void fetch(float4 (&fa)[2][A_FRAG], float4 (&fb)[2][TN / 4], const float* As,
                                      const float* Bs, int k) {
#if ATRANS
#pragma unroll
    for (int i = 0; i < TM / 4; i++)
        fa[k % 2][i] = *reinterpret_cast<const float4*>(As + k * (BM + PAD) + i * 4 * LANES_M);
#else
    if (k % 4 == 0) {
#pragma unroll
        for (int i = 0; i < TM; i++)
            fa[k / 4 % 2][i] = *reinterpret_cast<const float4*>(As + i * LANES_M * A_STRIDE + k);
    }
#endif
#pragma unroll
    for (int j = 0; j < TN / 4; j++) fb[k % 2][j] = *reinterpret_cast<const float4*>(Bs + k * BN + j * 4 * LANES_N);
}

// Adds the outer product of step k's fragments to the accumulators.
__device__ __forceinline__ void multiply(float (&acc)[TM][TN], const float4 (&fa)[2][A_FRAG],
                                         const float4 (&fb)[2][TN / 4], int k) {
#pragma unroll
    for (int i = 0; i < TM; i++) {
#if ATRANS
        const float ai = lane(fa[k % 2][i / 4], i % 4);
#else
        const float ai = lane(fa[k / 4 % 2][i], k % 4);
#endif
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = fmaf(ai, lane(fb[k % 2][j / 4], j % 4), acc[i][j]);
    }
}

// No minimum of resident blocks: capping the registers at 128 for two blocks of 256 threads an SM ran
// slower on an H100 (0.76-0.79 of cuBLAS at 4096^3, against 0.83-0.86 uncapped), the compiler losing the
// registers it prefetches shared loads into.
extern "C" __global__ void __launch_bounds__(THREADS)
sgemm(const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, int M, int N, int K) {
    // STAGES slices, each A's tile then B's BK x BN; the bench's `shared` gives the size.
    extern __shared__ __align__(16) float smem[];

    const int tid = threadIdx.x;
    const int warp = tid / 32;
    const int lane_id = tid % 32;
#if ATRANS
    // The lane's first row; then the rest of its group of 4, and further groups every 4 * LANES_M.
    const int row0 = (warp / WARPS_N) * WM + (lane_id / LANES_N) * 4;
#else
    const int row0 = (warp / WARPS_N) * WM + lane_id / LANES_N;        // the lane's first row; then every LANES_M
#endif
    const int col0 = (warp % WARPS_N) * WN + (lane_id % LANES_N) * 4;  // its first float4; then every 4 * LANES_N
    int tile_m, tile_n;
    block_tile(tile_m, tile_n);
    const int bm0 = tile_m * BM;
    const int bn0 = tile_n * BN;
    const float* Ab = A + (size_t)bm0 * K;
    const float* Bb = B + bn0;

    // Issues the copies of the slices at k0 into stage s (no wait, no commit).
    auto load = [&](int s, int k0) {
        float* As = smem + s * STAGE_FLOATS;
        float* Bs = As + A_TILE;
#pragma unroll
        for (int i = 0; i < A_COPIES; i++) {
            const int v = tid + i * THREADS;
#if ATRANS
            const int r = v / BK;
            const int c = v % BK;
            cp_async4(As + c * (BM + PAD) + r, Ab + (size_t)r * K + k0 + c);
#else
            const int r = v / (BK / 4);
            const int c = (v % (BK / 4)) * 4;
            cp_async16(As + r * A_STRIDE + c, Ab + (size_t)r * K + k0 + c);
#endif
        }
#pragma unroll
        for (int i = 0; i < B_COPIES; i++) {
            const int v = tid + i * THREADS;
            const int r = v / (BN / 4);
            const int c = (v % (BN / 4)) * 4;
            cp_async16(Bs + r * BN + c, Bb + (size_t)(k0 + r) * N + c);
        }
    };

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;

    // The pipeline: STAGES - 1 slices in flight before the first multiply. Every iteration commits one
    // group, empty past the end, so that "slice kt has landed" is always "at most STAGES - 2 groups pending".
    const int tiles = K / BK;
#pragma unroll
    for (int s = 0; s < STAGES - 1; s++) {
        if (s < tiles) load(s, s * BK);
        cp_async_commit();
    }
    int read = 0;             // the stage holding slice kt
    int write = STAGES - 1;   // the stage slice kt + STAGES - 1 goes to: the one read in iteration kt - 1
#if RDB
    // The wait and barrier for slice kt + 1 come at the last step of slice kt, before its multiply, so that
    // the first fragments of slice kt + 1 load while the last of slice kt multiply. Past that barrier every
    // thread has loaded its last fragment of slice kt - 1 (at step BK - 2 of iteration kt - 1), so the
    // copies issued at step 0 of iteration kt may overwrite its stage.
    float4 fa[2][A_FRAG], fb[2][TN / 4];
#if ATRANS
    const int a_lane = row0;  // the lane's first row of A in a stage
#else
    const int a_lane = row0 * A_STRIDE;
#endif
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    const float* As = smem + a_lane;
    const float* Bs = smem + A_TILE + col0;
    fetch(fa, fb, As, Bs, 0);
    for (int kt = 0; kt < tiles; kt++) {
#pragma unroll
        for (int k = 0; k < BK; k++) {
            if (k == 0) {
                if (kt + STAGES - 1 < tiles) load(write, (kt + STAGES - 1) * BK);
                cp_async_commit();
            }
            if (k < BK - 1) {
                fetch(fa, fb, As, Bs, k + 1);
            } else if (kt + 1 < tiles) {
                cp_async_wait<STAGES - 2>();
                __syncthreads();
                read = read == STAGES - 1 ? 0 : read + 1;
                write = write == STAGES - 1 ? 0 : write + 1;
                As = smem + read * STAGE_FLOATS + a_lane;
                Bs = smem + read * STAGE_FLOATS + A_TILE + col0;
                fetch(fa, fb, As, Bs, 0);
            }
            multiply(acc, fa, fb, k);
        }
    }
#else
    for (int kt = 0; kt < tiles; kt++) {
        cp_async_wait<STAGES - 2>();
        // Slice kt is visible to every thread, and every thread is done with the stage read last iteration.
        __syncthreads();
        if (kt + STAGES - 1 < tiles) load(write, (kt + STAGES - 1) * BK);
        cp_async_commit();

        const float* Bs = smem + read * STAGE_FLOATS + A_TILE + col0;
#if ATRANS
        const float* As = smem + read * STAGE_FLOATS + row0;
#pragma unroll
        for (int k = 0; k < BK; k++) {
            float4 a[TM / 4], b[TN / 4];
#pragma unroll
            for (int i = 0; i < TM / 4; i++)
                a[i] = *reinterpret_cast<const float4*>(As + k * (BM + PAD) + i * 4 * LANES_M);
#pragma unroll
            for (int j = 0; j < TN / 4; j++) b[j] = *reinterpret_cast<const float4*>(Bs + k * BN + j * 4 * LANES_N);
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = fmaf(lane(a[i / 4], i % 4), lane(b[j / 4], j % 4), acc[i][j]);
        }
#else
        const float* As = smem + read * STAGE_FLOATS + row0 * A_STRIDE;
#pragma unroll
        for (int k4 = 0; k4 < BK; k4 += 4) {
            float4 a[TM];
#pragma unroll
            for (int i = 0; i < TM; i++) a[i] = *reinterpret_cast<const float4*>(As + i * LANES_M * A_STRIDE + k4);
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                float4 b[TN / 4];
#pragma unroll
                for (int j = 0; j < TN / 4; j++)
                    b[j] = *reinterpret_cast<const float4*>(Bs + (k4 + kk) * BN + j * 4 * LANES_N);
#pragma unroll
                for (int i = 0; i < TM; i++) {
                    const float ai = lane(a[i], kk);
#pragma unroll
                    for (int j = 0; j < TN; j++) acc[i][j] = fmaf(ai, lane(b[j / 4], j % 4), acc[i][j]);
                }
            }
        }
#endif
        read = read == STAGES - 1 ? 0 : read + 1;
        write = write == STAGES - 1 ? 0 : write + 1;
    }
#endif

#pragma unroll
    for (int i = 0; i < TM; i++) {
#if ATRANS
        const int r = row0 + (i / 4) * 4 * LANES_M + i % 4;
#else
        const int r = row0 + i * LANES_M;
#endif
        float* row = C + (size_t)(bm0 + r) * N + bn0 + col0;
#pragma unroll
        for (int j = 0; j < TN; j += 4)
            *reinterpret_cast<float4*>(row + j * LANES_N) =
                make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
    }
}

#endif
