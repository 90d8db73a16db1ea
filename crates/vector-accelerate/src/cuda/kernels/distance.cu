// Distance kernels: row norms, the epilogue that turns GEMM dot products into
// L2 / cosine / inner-product values, and tiled direct kernels for the other
// metrics (f32 and bit-packed).

#define VA_TILE 16
#define VA_CHUNK 32

// out[r] = sum_j x[r, j]^2, one warp per row.
extern "C" __global__ void row_sq_norms_f32(const float* __restrict__ x, int rows, int dim,
                                            float* __restrict__ out) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= rows) return;
    const float* row = x + (i64)warp * dim;
    float acc = 0.0f;
    for (int j = lane; j < dim; j += 32) {
        float v = row[j];
        acc += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) out[warp] = acc;
}

// In place: d[i, j] (a dot product q_i . x_j) becomes the metric's value.
// Same formulas as the host's cpu::distance::gemm_epilogue.
extern "C" __global__ void gemm_epilogue_f32(float* __restrict__ d, i64 ld, int rows, int cols,
                                             const float* __restrict__ qn, const float* __restrict__ xn,
                                             int metric, int normalized) {
    i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 total = (i64)rows * cols;
    for (; idx < total; idx += (i64)gridDim.x * blockDim.x) {
        int i = (int)(idx / cols);
        int j = (int)(idx - (i64)i * cols);
        float* p = d + (i64)i * ld + j;
        float v = va_epilogue(*p, normalized ? 1.0f : qn[i], normalized ? 1.0f : xn[j], metric, normalized);
        *p = v;
    }
}

// Direct metrics on f32 rows: a 16 x 16 tile of (query, base) pairs per
// block, dimensions staged through shared memory in chunks of 32.
// out[i * ld + j] = dist(q_i, x_j).
extern "C" __global__ void pairwise_f32(const float* __restrict__ q, int nq,
                                        const float* __restrict__ x, int nx, int dim,
                                        int metric, float p, const float* __restrict__ w,
                                        float thr, float* __restrict__ out, i64 ld) {
    __shared__ float qs[VA_TILE][VA_CHUNK + 1];
    __shared__ float xs[VA_TILE][VA_CHUNK + 1];
    int ty = threadIdx.y, tx = threadIdx.x;
    int qi = blockIdx.y * VA_TILE + ty;
    int xj = blockIdx.x * VA_TILE + tx;
    int tid = ty * VA_TILE + tx;
    // Minkowski makes two passes: the largest difference, then the scaled sum.
    int passes = (metric == VA_MINKOWSKI) ? 2 : 1;
    float acc = 0.0f, acc2 = 0.0f, m = 0.0f, inv = 0.0f;
    for (int pass = 0; pass < passes; ++pass) {
        if (pass == 1) {
            m = acc;
            inv = 1.0f / m;
            acc = 0.0f;
        }
        for (int c0 = 0; c0 < dim; c0 += VA_CHUNK) {
            for (int e = tid; e < VA_TILE * VA_CHUNK; e += VA_TILE * VA_TILE) {
                int r = e / VA_CHUNK, c = e % VA_CHUNK;
                int gq = blockIdx.y * VA_TILE + r, gx = blockIdx.x * VA_TILE + r;
                qs[r][c] = (gq < nq && c0 + c < dim) ? q[(i64)gq * dim + c0 + c] : 0.0f;
                xs[r][c] = (gx < nx && c0 + c < dim) ? x[(i64)gx * dim + c0 + c] : 0.0f;
            }
            __syncthreads();
            int lim = min(VA_CHUNK, dim - c0);
            for (int c = 0; c < lim; ++c) {
                float a = qs[ty][c], b = xs[tx][c];
                float diff = fabsf(a - b);
                switch (metric) {
                case VA_L1:
                    acc += (w ? w[c0 + c] : 1.0f) * diff;
                    break;
                case VA_LINF:
                    acc = va_nan_max(acc, w ? w[c0 + c] * diff : diff);
                    break;
                case VA_MINKOWSKI:
                    if (pass == 0) acc = va_nan_max(acc, diff);
                    else acc += powf(diff * inv, p);
                    break;
                case VA_HAMMING:
                case VA_HAMMING_NORM:
                    acc += ((a > thr) != (b > thr)) ? 1.0f : 0.0f;
                    break;
                case VA_JACCARD:
                    if (va_isnan(a) || va_isnan(b)) {
                        acc = va_nan();
                        acc2 = va_nan();
                    } else {
                        acc += fminf(a, b);
                        acc2 += fmaxf(a, b);
                    }
                    break;
                }
            }
            __syncthreads();
        }
    }
    if (qi >= nq || xj >= nx) return;
    float v;
    if (metric == VA_MINKOWSKI) {
        // A NaN, zero or infinite largest difference is the answer itself.
        v = (va_isnan(m) || m == 0.0f || m == va_inf()) ? m : m * powf(acc, 1.0f / p);
    } else if (metric == VA_HAMMING_NORM) {
        v = acc / (float)dim;
    } else if (metric == VA_JACCARD) {
        v = (acc2 == 0.0f) ? 0.0f : 1.0f - acc / acc2;
    } else {
        v = acc;
    }
    out[(i64)qi * ld + xj] = v;
}

// Hamming / Jaccard on bit-packed rows of `words` u64 words.
extern "C" __global__ void pairwise_bits(const u64* __restrict__ q, int nq,
                                         const u64* __restrict__ x, int nx, int words, int bits,
                                         int metric, float* __restrict__ out, i64 ld) {
    __shared__ u64 qs[VA_TILE][VA_CHUNK + 1];
    __shared__ u64 xs[VA_TILE][VA_CHUNK + 1];
    int ty = threadIdx.y, tx = threadIdx.x;
    int qi = blockIdx.y * VA_TILE + ty;
    int xj = blockIdx.x * VA_TILE + tx;
    int tid = ty * VA_TILE + tx;
    u32 a1 = 0, a2 = 0;
    for (int c0 = 0; c0 < words; c0 += VA_CHUNK) {
        for (int e = tid; e < VA_TILE * VA_CHUNK; e += VA_TILE * VA_TILE) {
            int r = e / VA_CHUNK, c = e % VA_CHUNK;
            int gq = blockIdx.y * VA_TILE + r, gx = blockIdx.x * VA_TILE + r;
            qs[r][c] = (gq < nq && c0 + c < words) ? q[(i64)gq * words + c0 + c] : 0ull;
            xs[r][c] = (gx < nx && c0 + c < words) ? x[(i64)gx * words + c0 + c] : 0ull;
        }
        __syncthreads();
        int lim = min(VA_CHUNK, words - c0);
        for (int c = 0; c < lim; ++c) {
            u64 a = qs[ty][c], b = xs[tx][c];
            if (metric == VA_JACCARD) {
                a1 += __popcll(a & b);
                a2 += __popcll(a | b);
            } else {
                a1 += __popcll(a ^ b);
            }
        }
        __syncthreads();
    }
    if (qi >= nq || xj >= nx) return;
    float v;
    if (metric == VA_JACCARD) v = (a2 == 0) ? 0.0f : 1.0f - (float)a1 / (float)a2;
    else if (metric == VA_HAMMING_NORM) v = (float)a1 / (float)bits;
    else v = (float)a1;
    out[(i64)qi * ld + xj] = v;
}
