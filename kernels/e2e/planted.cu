// Planted failures for scripts/device-e2e.sh: y = 2 * x, except where MODE says otherwise.
//   MODE 0  correct
//   MODE 1  wrong output: one element is off (must be reported as wrong_output, worst element named)
//   MODE 2  never finishes: spins on an input that never changes (must time out, its worker killed)
//   MODE 3  illegal address: writes far outside y (poisons the context; the worker is replaced)
// BLOCK is an ordinary tunable so the space has valid configs besides the planted ones.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef MODE
#define MODE 0
#endif

extern "C" __global__ void __launch_bounds__(BLOCK) planted(const float* __restrict__ x, float* __restrict__ y, int n) {
    const long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (i >= n) return;
#if MODE == 2
    // A volatile read the compiler cannot hoist: the inputs are in [-1, 1), so this never ends.
    while (reinterpret_cast<const volatile float*>(x)[0] < 1e30f) {
    }
#endif
    float v = 2.0f * x[i];
#if MODE == 1
    if (i == n / 2) v += 1.0f;
#endif
#if MODE == 3
    y[i + (1LL << 40)] = v;
#endif
    y[i] = v;
}
