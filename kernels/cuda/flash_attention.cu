// Attention forward on the tensor cores, FlashAttention-2 structure: O = softmax(Q K^T / sqrt(HD)) V for
// each of BH slices, Q/K/V/O [BH, seq, HD] fp16, fp32 scores and accumulation, optional causal mask.
//
// A block owns BQ query rows, 16 * WM per warp. A warp keeps its Q rows as mma A fragments in registers. K and V
// stream through shared memory in tiles of BKV keys: a STAGES-deep cp.async pipeline keeps STAGES - 1
// tiles in flight while one is used. Per tile a warp computes S = Q K^T (mma.sync m16n8k16, B fragments
// from K with ldmatrix), runs the online softmax on the accumulator fragments (row max and sum reduced
// over the 4 threads of a quad), and adds P V with P repacked to fp16 A fragments in registers and V's
// B fragments read with ldmatrix.trans from the row-major tile, so nothing is transposed by hand.
//
// Tunables:
//   HD      head dimension (64, 128): fixed per launcher
//   BQ      query rows per block
//   WM      16-row m-tiles per warp (BQ / (16 * WM) warps): each K or V fragment read from shared memory
//           feeds WM mma instructions, at the cost of WM times the registers for Q, S and O
//   BKV     keys per tile
//   STAGES  K/V tiles in shared memory (1: load, wait, compute; 2+: cp.async prefetch ahead)
//   SWZ     shared layout: 0 = rows padded by 16 bytes, 1 = 16-byte chunks XOR-swizzled by row (no padding);
//           both make the 8 row addresses of an ldmatrix hit 8 different bank groups
//   QSM     where a warp's Q fragments live: 0 = registers, loaded once (KS * 4 per m-tile); 1 = a Q tile
//           in shared memory, read with ldmatrix two k-steps at a time inside each K tile (8 registers
//           per m-tile, more shared-memory traffic): room for larger tiles at head dimension 128
//   MINB    the blocks per SM __launch_bounds__ asks ptxas to fit (caps registers per thread)
//   WGMMA   which tensor-core instruction: 0 = mma.sync (any sm_80+ GPU); 1 = Hopper's warpgroup MMA
//           (wgmma.mma_async, sm_90a only; other GPUs fail to compile it, and the tuner passes it over).
//           Four warps (a warpgroup) own 64 query rows and issue each product as one: S = Q K^T with K
//           straight from shared memory and Q from shared memory too (QSM = 1) or from registers (QSM =
//           0, the same fragments as mma.sync's), and O += P V with P from registers and V from shared
//           memory, so no K or V fragment goes through registers. The loop is software-pipelined: S of
//           the next tile and P V of this one are issued together, and the softmax of the next tile runs
//           on the warps while P V runs on the tensor cores; tiles j and j + 1 are both resident, so the
//           copies run STAGES - 2 tiles ahead (STAGES >= 2). The spec pins WM = 1 and SWZ = 1, and BQ is a
//           multiple of 64. Tiles are stored in wgmma's 128-byte swizzle layout: 64-column blocks one
//           after the other, each of 128-byte rows whose 16-byte chunks are XOR-swizzled by row (as SWZ = 1
//           does for mma.sync), which both a K-major operand (Q, K) and an N-major one (V: keys are the K
//           dimension, head dimensions N) describe.
// Shared memory: (STAGES * 2 * BKV + QSM * BQ) * (HD + 8 * (1 - SWZ)) halves, dynamic.
// The launch: grid (seq / BQ, BH), block BQ / (16 * WM) * 32 threads; seq must be a multiple of BQ and BKV.
#ifndef HD
#define HD 64
#endif
#ifndef BQ
#define BQ 64
#endif
#ifndef BKV
#define BKV 64
#endif
#ifndef STAGES
#define STAGES 2
#endif
#ifndef SWZ
#define SWZ 1
#endif
#ifndef WM
#define WM 1
#endif
#ifndef QSM
#define QSM 0
#endif
#ifndef MINB
#define MINB 1
#endif
#ifndef WGMMA
#define WGMMA 0
#endif
#if WGMMA && (WM != 1 || SWZ != 1 || BQ % 64 != 0 || STAGES < 2)
#error "WGMMA = 1 needs WM = 1, SWZ = 1, BQ a multiple of 64 and STAGES >= 2"
#endif

#define WARPS (BQ / (16 * WM))
#define THREADS (WARPS * 32)
#define NT (BKV / 8)        // n-tiles of 8 keys in S
#define DT (HD / 8)         // n-tiles of 8 dimensions in O
#define KS (HD / 16)        // k-steps of 16 dimensions in Q K^T
#define CH (HD / 8)         // 16-byte chunks per row
#define ROW (SWZ ? HD : HD + 8)
#define TILE (BKV * ROW)    // halves per K or V tile
#define NEG_INF __int_as_float(0xff800000)

typedef unsigned short half_t;
typedef unsigned int u32;

typedef unsigned long long u64;

// The offset in halves of chunk `c` (8 halves) of row `row` of a tile of `rows` rows.
__device__ __forceinline__ int at(int row, int c, int rows = BKV) {
#if WGMMA
    // 64-column blocks of the tile one after the other, each `rows` rows of 128 bytes with the 16-byte
    // chunks XOR-swizzled by row: wgmma's 128-byte swizzle, which it undoes from the address bits.
    return (((c >> 3) * rows + row) << 6) + (((c & 7) ^ (row & 7)) << 3);
#elif SWZ
    return row * HD + ((c ^ (row & 7)) << 3);
#else
    return row * ROW + (c << 3);
#endif
}

__device__ __forceinline__ u32 smem(const void* p) { return (u32)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(u32 dst, const void* src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N)); }

__device__ __forceinline__ void ldsm4(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldsm4t(u32* r, u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// 2^x with the special-function unit's approximation, denormal results flushed to zero (2^-inf = 0): what
// the softmax needs, without exp2f's denormal handling around it.
__device__ __forceinline__ float ex2(float x) {
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

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

#if WGMMA
// A shared-memory matrix descriptor in 128-byte swizzle mode: start address, leading-dimension byte offset
// (unused for a K-major operand; for an N-major one, between 64-column blocks) and stride byte offset
// (between groups of 8 rows of 128 bytes). Tiles start at 1024-byte boundaries, so the base offset is 0.
__device__ __forceinline__ u64 descriptor(u32 addr, u32 lbo, u32 sbo) {
    return (u64)((addr & 0x3FFFF) >> 4) | (u64)(lbo >> 4) << 16 | (u64)(sbo >> 4) << 32 | 1ull << 62;
}
// Registers written by other instructions are ready for wgmma.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
// Waits until at most N of this warpgroup's committed groups are still running (groups finish in order).
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory"); }
// Keeps the compiler from moving reads or writes of accumulators across a wgmma's issue and its wait.
template <int N>
__device__ __forceinline__ void hold(float* d) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}

// wgmma wrappers (generated by scripts/gen_wgmma.py)
template <int N>
__device__ __forceinline__ void wgmma_ss(float* d, u64 a, u64 b, int accumulate);
template <int N, int TRANS_B>
__device__ __forceinline__ void wgmma_rs(float* d, const u32* a, u64 b, int accumulate);
template <>
__device__ __forceinline__ void wgmma_ss<32>(float* d, u64 a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, %16, %17, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(a), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_ss<64>(float* d, u64 a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(a), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_ss<128>(float* d, u64 a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "l"(a), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_rs<32, 0>(float* d, const u32* a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}, {%16, %17, %18, %19}, %20, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_rs<64, 0>(float* d, const u32* a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_rs<128, 0>(float* d, const u32* a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_rs<64, 1>(float* d, const u32* a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_rs<128, 1>(float* d, const u32* a, u64 b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}

// end of wgmma wrappers
#endif

// The causal mask on a tile of keys from kv0, for the W m-tiles of rows r0 + 16 i + g (elements 0, 1) and
// + 8 (elements 2, 3): keys after a row get -inf. Only a tile that crosses the rows' diagonal has any.
template <int W>
__device__ __forceinline__ void mask(float (&s)[W][NT][4], int kv0, int r0, int g, int t) {
    if (kv0 + BKV - 1 <= r0) return;
#pragma unroll
    for (int i = 0; i < W; i++) {
        const int row = r0 + 16 * i + g;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            const int key = kv0 + n * 8 + 2 * t;
            if (key > row) s[i][n][0] = NEG_INF;
            if (key + 1 > row) s[i][n][1] = NEG_INF;
            if (key > row + 8) s[i][n][2] = NEG_INF;
            if (key + 1 > row + 8) s[i][n][3] = NEG_INF;
        }
    }
}

// One step of the online softmax on the scores `s` of a tile (rows g and g + 8 of each m-tile, reduced
// over the 4 threads of a quad): the running maxima `m` (scaled log2 units) move up, `s` becomes the
// unnormalised probabilities P, the running sums `l` are rescaled and grow, and `c` is the factor the
// output rows must be rescaled by.
template <int W>
__device__ __forceinline__ void softmax(float (&s)[W][NT][4], float (&m)[W][2], float (&l)[W][2], float (&c)[W][2],
                                        float scale) {
#pragma unroll
    for (int i = 0; i < W; i++) {
        float mx0 = NEG_INF, mx1 = NEG_INF;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            mx0 = fmaxf(mx0, fmaxf(s[i][n][0], s[i][n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[i][n][2], s[i][n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        // A row sees key 0 in the first tile, so its maximum is finite from then on; a row with no visible
        // key in this tile keeps its maximum.
        const float n0 = fmaxf(m[i][0], mx0 * scale), n1 = fmaxf(m[i][1], mx1 * scale);
        c[i][0] = ex2(m[i][0] - n0);
        c[i][1] = ex2(m[i][1] - n1);
        m[i][0] = n0;
        m[i][1] = n1;
        l[i][0] *= c[i][0];
        l[i][1] *= c[i][1];
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[i][n][0] = ex2(fmaf(s[i][n][0], scale, -n0));
            s[i][n][1] = ex2(fmaf(s[i][n][1], scale, -n0));
            s[i][n][2] = ex2(fmaf(s[i][n][2], scale, -n1));
            s[i][n][3] = ex2(fmaf(s[i][n][3], scale, -n1));
            l[i][0] += s[i][n][0] + s[i][n][1];
            l[i][1] += s[i][n][2] + s[i][n][3];
        }
    }
}

template <int W>
__device__ __forceinline__ void rescale(float (&o)[W][DT][4], const float (&c)[W][2]) {
#pragma unroll
    for (int i = 0; i < W; i++)
#pragma unroll
        for (int n = 0; n < DT; n++) {
            o[i][n][0] *= c[i][0];
            o[i][n][1] *= c[i][0];
            o[i][n][2] *= c[i][1];
            o[i][n][3] *= c[i][1];
        }
}

// P's k-step kk (keys 16 kk .. 16 kk + 15) of m-tile i as fp16 A fragments: the accumulator layout of two
// 8-key n-tiles is the A fragment layout of one 16-key k-step.
template <int W>
__device__ __forceinline__ void pack_p(u32* a, const float (&s)[W][NT][4], int i, int kk) {
    a[0] = pack(s[i][2 * kk][0], s[i][2 * kk][1]);
    a[1] = pack(s[i][2 * kk][2], s[i][2 * kk][3]);
    a[2] = pack(s[i][2 * kk + 1][0], s[i][2 * kk + 1][1]);
    a[3] = pack(s[i][2 * kk + 1][2], s[i][2 * kk + 1][3]);
}

extern "C" __global__ void __launch_bounds__(THREADS, MINB)
flash_attention(const half_t* __restrict__ Q, const half_t* __restrict__ K, const half_t* __restrict__ V,
                half_t* __restrict__ O, int seq, int causal) {
    extern __shared__ __align__(1024) half_t tiles[];  // STAGES x (K tile, V tile)

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    // Causal blocks near the end of the sequence have the most keys: they start first.
    const int q0 = (causal ? gridDim.x - 1 - blockIdx.x : blockIdx.x) * BQ;
    const int r0 = q0 + warp * 16 * WM;  // the warp's first row; m-tile i holds rows r0 + 16 i ..
    const size_t slice = (size_t)blockIdx.y * seq * HD;
    // 1 / sqrt(HD) in log2 units, for exp2.
    const float scale = (HD == 64 ? 0.125f : 0.08838834764831845f) * 1.4426950408889634f;

#if QSM
    // The block's Q rows, copied with the first K/V tile (the same cp.async group).
    half_t* qs = tiles + STAGES * 2 * TILE;
    for (int c = tid; c < BQ * CH; c += THREADS) {
        const int row = c / CH, ch = c % CH;
        cp_async16(smem(qs + at(row, ch, BQ)), Q + slice + (size_t)(q0 + row) * HD + ch * 8);
    }
#else
    // Q as A fragments (of mma.sync, and of wgmma for the warp's 16 rows): rows g and g + 8 of each
    // m-tile, HD in KS k-steps of 16.
    u32 qa[WM][KS][4];
#pragma unroll
    for (int i = 0; i < WM; i++) {
        const half_t* q0p = Q + slice + (size_t)(r0 + 16 * i + g) * HD;
        const half_t* q8p = q0p + 8 * HD;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            qa[i][ks][0] = *reinterpret_cast<const u32*>(q0p + 16 * ks + 2 * t);
            qa[i][ks][1] = *reinterpret_cast<const u32*>(q8p + 16 * ks + 2 * t);
            qa[i][ks][2] = *reinterpret_cast<const u32*>(q0p + 16 * ks + 8 + 2 * t);
            qa[i][ks][3] = *reinterpret_cast<const u32*>(q8p + 16 * ks + 8 + 2 * t);
        }
    }
#endif
    float o[WM][DT][4];
    // Per m-tile: running max (scaled log2 units) and sum of rows g ([0]) and g + 8 ([1]).
    float m[WM][2], l[WM][2];
#pragma unroll
    for (int i = 0; i < WM; i++) {
#pragma unroll
        for (int n = 0; n < DT; n++) o[i][n][0] = o[i][n][1] = o[i][n][2] = o[i][n][3] = 0.0f;
        m[i][0] = m[i][1] = NEG_INF;
        l[i][0] = l[i][1] = 0.0f;
    }

    // Causal: the tiles up to the block's last row.
    const int ntiles = causal ? (min(seq, q0 + BQ) + BKV - 1) / BKV : seq / BKV;
    auto load = [&](int tile, int stage) {
        half_t* ks = tiles + stage * 2 * TILE;
        half_t* vs = ks + TILE;
        const size_t base = slice + (size_t)tile * BKV * HD;
#pragma unroll
        for (int c = tid; c < BKV * CH; c += THREADS) {
            const int row = c / CH, ch = c % CH;
            cp_async16(smem(ks + at(row, ch)), K + base + row * HD + ch * 8);
            cp_async16(smem(vs + at(row, ch)), V + base + row * HD + ch * 8);
        }
    };
#pragma unroll
    for (int st = 0; st < STAGES - 1; st++) {
        if (st < ntiles) load(st, st);
        cp_commit();  // empty groups keep the count uniform
    }
    float s[WM][NT][4], c[WM][2];

#if WGMMA
    // Software-pipelined per warpgroup: while O += P_j V_j runs on the tensor cores, the warps compute the
    // softmax of S_{j+1} = Q K_{j+1}^T, issued just before it. Tiles j and j + 1 are in shared memory
    // together, so the copies run STAGES - 2 tiles ahead (STAGES >= 2).
    const int wrow = q0 + (warp >> 2) * 64;  // the warpgroup's first row
    // The tiles the warpgroup reads: causal, those up to its last row.
    const int mine = causal ? min(ntiles, (wrow + 64 + BKV - 1) / BKV) : ntiles;
#if QSM
    const u32 qa = smem(qs) + (warp >> 2) * 64 * 128;  // the warpgroup's rows in each 64-column block
#endif
    // Issues S = Q K^T of the tile in `stage` into s, 16 dimensions per instruction, the first overwriting S.
    auto scores = [&](int stage) {
        const u32 ka = smem(tiles + stage * 2 * TILE);
#pragma unroll
        for (int kk = 0; kk < KS; kk++) {
            // Dimensions 16 kk ..: 32 bytes into a row of 64-column block kk / 4.
            const u32 k = (kk >> 2) * BKV * 128 + (kk & 3) * 32;
#if QSM
            wgmma_ss<BKV>(&s[0][0][0], descriptor(qa + (kk >> 2) * BQ * 128 + (kk & 3) * 32, 16, 1024),
                          descriptor(ka + k, 16, 1024), kk);
#else
            wgmma_rs<BKV, 0>(&s[0][0][0], qa[0][kk], descriptor(ka + k, 16, 1024), kk);
#endif
        }
    };
    cp_wait<STAGES - 2>();  // tile 0 has landed (this thread's copies)
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // visible to wgmma's reads
    __syncthreads();
    wgmma_fence();
    scores(0);
    wgmma_commit();
    wgmma_wait<0>();
    hold<BKV / 2>(&s[0][0][0]);
    if (causal) mask<1>(s, 0, r0, g, t);
    softmax<1>(s, m, l, c, scale);

    for (int j = 0; j < ntiles; j++) {
        __syncthreads();  // every warpgroup is done with tile j - 1, whose stage is loaded next
        if (j + STAGES - 1 < ntiles) load(j + STAGES - 1, (j + STAGES - 1) % STAGES);
        cp_commit();
        cp_wait<STAGES - 2>();  // tile j + 1 has landed (this thread's copies)
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        __syncthreads();  // (everyone's)
        if (j >= mine) continue;  // uniform over the warpgroup, which issues wgmma as one
        // P_j's fragments; O += P_j V_j with V's keys as the K dimension, 16 rows of 128 bytes an
        // instruction, and its 64-column blocks BKV * 128 bytes apart.
        u32 pa[BKV / 16][4];
#pragma unroll
        for (int kk = 0; kk < BKV / 16; kk++) pack_p<1>(pa[kk], s, 0, kk);
        const u32 va = smem(tiles + (j % STAGES) * 2 * TILE + TILE);
        // The last tile issues S again on its own keys and drops it: a branch around the issue would make
        // ptxas serialise every wgmma of the loop.
        const bool next = j + 1 < mine;
        wgmma_fence();
        scores((next ? j + 1 : j) % STAGES);  // S_{j+1}, overwriting S
        wgmma_commit();
#pragma unroll
        for (int kk = 0; kk < BKV / 16; kk++)
            wgmma_rs<HD, 1>(&o[0][0][0], pa[kk], descriptor(va + kk * 16 * 128, BKV * 128, 1024), 1);
        wgmma_commit();
        wgmma_wait<1>();  // S_{j+1}; P_j V_j may still run
        hold<BKV / 2>(&s[0][0][0]);
        if (next) {
            if (causal) mask<1>(s, (j + 1) * BKV, r0, g, t);
            softmax<1>(s, m, l, c, scale);
        }
        wgmma_wait<0>();
        hold<HD / 2>(&o[0][0][0]);
        if (next) rescale<1>(o, c);
    }
#else
#if QSM
    // Lane l's row of the ldmatrix that reads an m-tile's A fragments.
    const int qrow = warp * 16 * WM + (lane & 7) + (lane & 8);
#endif
    for (int j = 0; j < ntiles; j++) {
        __syncthreads();  // the stage loaded next was last read in iteration j - 1
        if (j + STAGES - 1 < ntiles) load(j + STAGES - 1, (j + STAGES - 1) % STAGES);
        cp_commit();
        cp_wait<STAGES - 1>();  // tile j has landed (this thread's copies)
        __syncthreads();        // (everyone's)
        const int kv0 = j * BKV;
        if (causal && kv0 > r0 + 16 * WM - 1) continue;  // no key of this tile is visible to the warp's rows
        const half_t* ks = tiles + (j % STAGES) * 2 * TILE;
        const half_t* vs = ks + TILE;

        // S = Q K^T: NT n-tiles of 8 keys; one ldmatrix.x4 gives the B fragments of two k-steps, used by
        // every m-tile.
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int i = 0; i < WM; i++) s[i][n][0] = s[i][n][1] = s[i][n][2] = s[i][n][3] = 0.0f;
#if QSM
#pragma unroll
        for (int kk = 0; kk < KS; kk += 2) {
            u32 qa[WM][2][4];  // k-steps kk and kk + 1 of each m-tile
#pragma unroll
            for (int i = 0; i < WM; i++) {
                ldsm4(qa[i][0], smem(qs + at(qrow + 16 * i, 2 * kk + (lane >> 4))));
                ldsm4(qa[i][1], smem(qs + at(qrow + 16 * i, 2 * kk + 2 + (lane >> 4))));
            }
#pragma unroll
            for (int n = 0; n < NT; n++) {
                u32 b[4];
                ldsm4(b, smem(ks + at(n * 8 + (lane & 7), 2 * kk + (lane >> 3))));
#pragma unroll
                for (int i = 0; i < WM; i++) {
                    mma(s[i][n], qa[i][0], b[0], b[1]);
                    mma(s[i][n], qa[i][1], b[2], b[3]);
                }
            }
        }
#else
#pragma unroll
        for (int n = 0; n < NT; n++) {
#pragma unroll
            for (int kk = 0; kk < KS; kk += 2) {
                u32 b[4];
                ldsm4(b, smem(ks + at(n * 8 + (lane & 7), 2 * kk + (lane >> 3))));
#pragma unroll
                for (int i = 0; i < WM; i++) {
                    mma(s[i][n], qa[i][kk], b[0], b[1]);
                    mma(s[i][n], qa[i][kk + 1], b[2], b[3]);
                }
            }
        }
#endif
        if (causal) mask<WM>(s, kv0, r0, g, t);
        softmax<WM>(s, m, l, c, scale);
        rescale<WM>(o, c);
        // O += P V: P's accumulators are the A fragments of BKV / 16 k-steps of 16 keys; one
        // ldmatrix.x4.trans gives the B fragments of two 8-wide n-tiles of V, used by every m-tile.
#pragma unroll
        for (int kk = 0; kk < BKV / 16; kk++) {
            u32 pa[WM][4];
#pragma unroll
            for (int i = 0; i < WM; i++) pack_p<WM>(pa[i], s, i, kk);
#pragma unroll
            for (int n = 0; n < DT; n += 2) {
                u32 b[4];
                ldsm4t(b, smem(vs + at(16 * kk + (lane & 7) + (lane & 8), n + (lane >> 4))));
#pragma unroll
                for (int i = 0; i < WM; i++) {
                    mma(o[i][n], pa[i], b[0], b[1]);
                    mma(o[i][n + 1], pa[i], b[2], b[3]);
                }
            }
        }
    }
#endif
    cp_wait<0>();  // no copy outlives the block

#pragma unroll
    for (int i = 0; i < WM; i++) {
        float l0 = l[i][0], l1 = l[i][1];
        l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
        l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
        l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
        const float i0 = 1.0f / l0, i1 = 1.0f / l1;
        half_t* o0 = O + slice + (size_t)(r0 + 16 * i + g) * HD;
        half_t* o8 = o0 + 8 * HD;
#pragma unroll
        for (int n = 0; n < DT; n++) {
            *reinterpret_cast<u32*>(o0 + 8 * n + 2 * t) = pack(o[i][n][0] * i0, o[i][n][1] * i0);
            *reinterpret_cast<u32*>(o8 + 8 * n + 2 * t) = pack(o[i][n][2] * i1, o[i][n][3] * i1);
        }
    }
}
