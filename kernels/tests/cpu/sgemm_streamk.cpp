// sgemm_streamk.cu on the CPU: C = A * B at M x N x K by G blocks (arguments), checked against a float64
// product. It launches twice, the blocks first to last and then last to first, so that each split tile's
// two blocks arrive in one order and then in the other: the second launch must find the counters back at
// zero and give the same bits. The blocks run one at a time, so this checks the schedule, the slots and
// who writes a split tile, not the fences between blocks, which only a GPU can exercise.
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
    float* partials = driver::buffer((std::size_t)2 * G * BM * BN);
    int* counters = static_cast<int*>(std::calloc(G, sizeof(int)));
    for (int launch = 0; launch < 2; launch++) {
        std::memcpy(first, C, sizeof(float) * M * N);
        for (std::size_t i = 0; i < (std::size_t)M * N; i++) C[i] = std::numeric_limits<float>::quiet_NaN();
        const cuda_cpu::Order order = launch == 0 ? cuda_cpu::Order::Forward : cuda_cpu::Order::Reverse;
        cuda_cpu::launch(sgemm_streamk, dim3{unsigned(G)}, dim3{THREADS}, order, A, B, C, M, N, K, partials, counters);
    }
    driver::Check check;
    // A value that differs from the first launch's counts as wrong.
    driver::check_gemm(check, A, B, M, N, K, [&](std::size_t at) {
        return std::memcmp(&C[at], &first[at], sizeof(float)) == 0 ? C[at] : NAN;
    });
    // The counters must be back at zero for the next launch; printed apart from the outputs.
    int raised = 0;
    for (int b = 0; b < G; b++) raised += counters[b] != 0;
    std::printf("raised=%d ", raised);
    return check.report() == 0 && raised == 0 ? 0 : 1;
}
