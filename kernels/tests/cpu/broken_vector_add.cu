// c = a + b with an off-by-one read of b (c[i] = a[i] + b[i + 1] but at the end), for the harness's own test.
#define ITEMS 1
#define VEC 1
extern "C" __global__ void vector_add(const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ c, int n) {
    const int i = blockIdx.x * BLOCK + threadIdx.x;
    if (i < n) c[i] = a[i] + b[min(i + 1, n - 1)];
}
