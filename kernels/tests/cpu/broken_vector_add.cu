// vector_add with a planted bug, for the harness's own tests:
// BROKEN 1 reads b one element late (c[i] = a[i] + b[i + 1], but at the end): wrong values;
// BROKEN 2 reads b one element late everywhere, past the end of b at i = n - 1: the address sanitizer's;
// BROKEN 3 passes b through shared memory, each thread staging its neighbour's element, with no barrier
//          between the writes and the reads: the thread sanitizer's (the values may well come out right);
// BROKEN 4 reads a shared element that no thread wrote: NaN, once the shared arrays are poisoned.
#define ITEMS 1
#define VEC 1
extern "C" __global__ void vector_add(const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ c, int n) {
    const int i = blockIdx.x * BLOCK + threadIdx.x;
#if BROKEN == 1
    if (i < n) c[i] = a[i] + b[min(i + 1, n - 1)];
#elif BROKEN == 2
    if (i < n) c[i] = a[i] + b[i + 1];
#else
    __shared__ float staged[BLOCK + 1];
    const int t = threadIdx.x;
    if ((i ^ 1) < n) staged[t ^ 1] = b[i ^ 1];
    if (i < n) c[i] = a[i] + staged[BROKEN == 3 ? t : BLOCK];
#endif
}
