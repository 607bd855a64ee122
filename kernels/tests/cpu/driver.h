// What the CPU drivers share: inputs, and the one line of output the test reads.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <vector>
#include <algorithm>

namespace driver {
// n floats, 64-byte aligned (the kernels read float4s) and no larger than asked, so that the address
// sanitizer sees a read one float past the end; filled with NaN, so that an element no thread writes shows
// up as wrong.
inline float* buffer(std::size_t n) {
    float* p = static_cast<float*>(::operator new(n * sizeof(float), std::align_val_t(64)));
    for (std::size_t i = 0; i < n; i++) p[i] = std::numeric_limits<float>::quiet_NaN();
    return p;
}

// n floats in [-1, 1) from a fixed linear congruential sequence: the same inputs on every machine.
inline float* random(std::size_t n, unsigned seed) {
    float* p = buffer(n);
    unsigned long long s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (std::size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = static_cast<float>((s >> 40) & 0xffffff) / 8388608.0f - 1.0f;
    }
    return p;
}

// Counts the outputs, and those further than `tol` from the reference (relative to `scale`, the size of
// the terms that were summed) or not finite; prints one line for the test to read.
struct Check {
    std::size_t checked = 0, bad = 0;
    double max_err = 0.0;
    void add(double got, double want, double scale, double tol) {
        const double err = std::fabs(got - want) / (scale > 0.0 ? scale : 1.0);
        checked++;
        if (!std::isfinite(got) || !(err <= tol)) bad++;
        if (std::isfinite(err) && err > max_err) max_err = err;
    }
    int report() const {
        std::printf("checked=%zu bad=%zu max_err=%.3g\n", checked, bad, max_err);
        return bad == 0 ? 0 : 1;
    }
};
// Checks C (through got(i * N + j), which may say a value is wrong by making it NaN) against the float64
// product of the M x K matrix A and the K x N matrix B, row-major.
template <class Got>
void check_gemm(Check& check, const float* A, const float* B, int M, int N, int K, Got got) {
    // Row by row, k outside j, so that B is read along its rows.
    std::vector<double> want(N), scale(N);
    for (int i = 0; i < M; i++) {
        std::fill(want.begin(), want.end(), 0.0);
        std::fill(scale.begin(), scale.end(), 0.0);
        for (int k = 0; k < K; k++) {
            const double a = A[(std::size_t)i * K + k];
            const float* b = B + (std::size_t)k * N;
            for (int j = 0; j < N; j++) {
                const double p = a * b[j];
                want[j] += p;
                scale[j] += std::fabs(p);
            }
        }
        for (int j = 0; j < N; j++) check.add(got((std::size_t)i * N + j), want[j], scale[j], 1e-5);
    }
}
}  // namespace driver
