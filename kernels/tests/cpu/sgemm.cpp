// sgemm.cu on the CPU: C = A * B at M x N x K (arguments), grid and block as the launcher computes them,
// checked against a float64 product.
#include "cuda_cpu.h"
#include "driver.h"

#include "../../cuda/sgemm.cu"

int main(int argc, char** argv) {
    if (argc != 4) return 2;
    const int M = std::atoi(argv[1]), N = std::atoi(argv[2]), K = std::atoi(argv[3]);
    float* A = driver::random((std::size_t)M * K, 1);
    float* B = driver::random((std::size_t)K * N, 2);
    float* C = driver::buffer((std::size_t)M * N);
    cuda_cpu::launch(sgemm, dim3{unsigned(N / BN), unsigned(M / BM)}, dim3{THREADS}, cuda_cpu::Order::Forward, A,
                     B, C, M, N, K);
    driver::Check check;
    driver::check_gemm(check, A, B, M, N, K, [&](std::size_t at) { return C[at]; });
    return check.report();
}
