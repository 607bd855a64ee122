// sgemm_streamk.cu on the CPU: C = A * B at M x N x K by G blocks (arguments), checked against a float64
// product. The blocks run last to first, a valid order of the GPU's (all resident at once), because a block
// waits only for the one after it. It launches twice: the second launch must find the flags lowered again
// and give the same bits (the split tiles' sums are added in a fixed order).
#include "cuda_cpu.h"
#include "driver.h"

#include "../../cuda/sgemm_streamk.cu"

int main(int argc, char** argv) {
    if (argc != 5) return 2;
    const int M = std::atoi(argv[1]), N = std::atoi(argv[2]), K = std::atoi(argv[3]), G = std::atoi(argv[4]);
    float* A = driver::random((std::size_t)M * K, 1);
    float* B = driver::random((std::size_t)K * N, 2);
    float* C = driver::buffer((std::size_t)M * N);
    float* first = driver::buffer((std::size_t)M * N);
    float* partials = driver::buffer((std::size_t)G * BM * BN);
    int* flags = static_cast<int*>(std::calloc(G, sizeof(int)));
    for (int launch = 0; launch < 2; launch++) {
        std::memcpy(first, C, sizeof(float) * M * N);
        for (std::size_t i = 0; i < (std::size_t)M * N; i++) C[i] = std::numeric_limits<float>::quiet_NaN();
        cuda_cpu::launch(sgemm_streamk, dim3{unsigned(G)}, dim3{THREADS}, cuda_cpu::Order::Reverse, A, B, C, M, N, K,
                         partials, flags);
    }
    driver::Check check;
    // A value that differs from the first launch's counts as wrong.
    driver::check_gemm(check, A, B, M, N, K, [&](std::size_t at) {
        return std::memcmp(&C[at], &first[at], sizeof(float)) == 0 ? C[at] : NAN;
    });
    for (int b = 0; b < G; b++)
        if (flags[b] != 0) {
            std::printf("flag %d left raised\n", b);
            check.bad++;
        }
    return check.report();
}
