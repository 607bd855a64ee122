// vector_add.cu on the CPU: c = a + b over n floats (argument), grid as the launcher computes it.
#include "cuda_cpu.h"
#include "driver.h"

// broken.cpp swaps in a kernel with a known bug, to show that the check catches one.
#ifndef VECTOR_ADD_SOURCE
#define VECTOR_ADD_SOURCE "../../cuda/vector_add.cu"
#endif
#include VECTOR_ADD_SOURCE

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const int n = std::atoi(argv[1]);
    float* a = driver::random(n, 1);
    float* b = driver::random(n, 2);
    float* c = driver::buffer(n);
    const unsigned per_block = BLOCK * ITEMS * VEC;
    cuda_cpu::launch(vector_add, dim3{(n + per_block - 1) / per_block}, dim3{BLOCK}, cuda_cpu::Order::Forward, a, b,
                     c, n);
    driver::Check check;
    for (int i = 0; i < n; i++) check.add(c[i], (double)a[i] + b[i], 1.0, 1e-6);
    return check.report();
}
