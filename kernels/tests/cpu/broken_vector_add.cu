// vector_add with a planted bug, for the harness's own tests: BROKEN 1 reads b one element late
// (c[i] = a[i] + b[i + 1], but at the end: wrong values); BROKEN 2 reads b one element late everywhere,
// past the end of b at i = n - 1 (the address sanitizer's catch).
#define ITEMS 1
#define VEC 1
extern "C" __global__ void vector_add(const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ c, int n) {
    const int i = blockIdx.x * BLOCK + threadIdx.x;
#if BROKEN == 1
    if (i < n) c[i] = a[i] + b[min(i + 1, n - 1)];
#else
    if (i < n) c[i] = a[i] + b[i + 1];
#endif
}
