// softmax.cu on the CPU: rows x cols (arguments), grid as the launcher computes it, checked against a
// float64 softmax of each row.
#include "cuda_cpu.h"
#include "driver.h"

#include "../../cuda/softmax.cu"

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    const int rows = std::atoi(argv[1]), cols = std::atoi(argv[2]);
    float* x = driver::random((std::size_t)rows * cols, 3);
    for (std::size_t i = 0; i < (std::size_t)rows * cols; i++) x[i] *= 8.0f;
    float* y = driver::buffer((std::size_t)rows * cols);
    cuda_cpu::launch(softmax, dim3{unsigned((rows + RPB - 1) / RPB)}, dim3{BLOCK}, cuda_cpu::Order::Forward, x, y,
                     rows, cols);
    driver::Check check;
    for (int r = 0; r < rows; r++) {
        const float* xr = x + (std::size_t)r * cols;
        double m = xr[0], s = 0.0;
        for (int c = 1; c < cols; c++) m = std::max(m, (double)xr[c]);
        for (int c = 0; c < cols; c++) s += std::exp(xr[c] - m);
        for (int c = 0; c < cols; c++) check.add(y[(std::size_t)r * cols + c], std::exp(xr[c] - m) / s, 1.0, 1e-6);
    }
    return check.report();
}
