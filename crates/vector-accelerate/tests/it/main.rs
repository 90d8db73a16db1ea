//! The one integration-test binary. Every test body runs on the CPU and, when
//! a CUDA device is present, on CUDA (see `common::for_each_backend`).
//! `VECTOR_ACCELERATE_REQUIRE_GPU=1` turns a missing GPU into a failure.

mod cluster;
mod common;
mod context;
mod distance;
mod errors;
mod histogram;
mod index;
mod kernels;
mod knn;
mod layers;
mod linalg;
mod ml;
mod quantize;
mod select;
mod stats;
mod vector;
