//! Tuned kernels.
