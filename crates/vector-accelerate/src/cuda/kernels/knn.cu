// Fused k-NN kernels for the GEMM metrics (L2, cosine, inner product):
// tensor-core (TF32) dot products of a query tile against a base tile whose
// results never leave the chip; only pairs that can still enter a query's
// top-k (its current k-th best, widened by a proven error bound) are written
// out, as base-row indices. A second kernel re-scores those candidates in
// fp32, so the values returned are fp32 results.
//
// Error bound. With s = sum_i |q_i x_i| <= |q| |x|, the TF32 product of an
// fp32 pair has relative error below 2^-9 (each operand keeps 10 mantissa
// bits, rounded or truncated), the tensor core's fp32 accumulation and the
// fp32 re-score each lose at most d * 2^-23 * s. The host passes
// c = 2^-9 + (d + 32) * 2^-22 (times a safety factor) for one TF32 pass and
// c = 2^-19 + (3d + 64) * 2^-22 for three (hi/lo split); the pair's dot
// product as the re-score computes it lies within c |q| |x| of the
// tensor-core value.

// The filter chain's state on the device (VA_ST_LEN ints per call, zeroed
// when the call starts), so that no pass choice waits on the host: whether
// the pass about to run runs (GO) and whether it overflowed (OVER), whether
// the tile still lacks complete candidate lists (PENDING), per pass whether
// later tiles skip it (SKIP + pass: it overflowed once), and per pass its
// runs and overflows (STATS + 2 pass, + 1), which test builds read.
#define VA_ST_GO 0
#define VA_ST_OVER 1
#define VA_ST_PENDING 2
#define VA_ST_SKIP 3
#define VA_ST_STATS 8
#define VA_ST_LEN 18

// Books the pass that just ran (if it did): an overflow leaves the tile
// pending and, unless the pass is the chain's last, skips it from now on.
__device__ __forceinline__ void va_settle(int* st, int pass, bool last) {
    if (!st[VA_ST_GO]) return;
    st[VA_ST_GO] = 0;
    st[VA_ST_STATS + 2 * pass] += 1;
    if (st[VA_ST_OVER]) {
        st[VA_ST_STATS + 2 * pass + 1] += 1;
        if (!last) st[VA_ST_SKIP + pass] = 1;
    } else {
        st[VA_ST_PENDING] = 0;
    }
}

// Before each filter pass of a tile (one block): books the previous pass
// (prev < 0: the tile's first), then lets `pass` run only while the tile is
// pending and the pass is not skipped, zeroing its counts.
extern "C" __global__ void filter_step(int* __restrict__ st, int pass, int prev, int* __restrict__ counts,
                                       int m) {
    __shared__ int go;
    if (threadIdx.x == 0) {
        if (prev < 0) {
            st[VA_ST_GO] = 0;
            st[VA_ST_PENDING] = 1;
        } else {
            va_settle(st, prev, false);
        }
        go = st[VA_ST_PENDING] && !st[VA_ST_SKIP + pass];
        st[VA_ST_GO] = go;
        st[VA_ST_OVER] = 0;
    }
    __syncthreads();
    if (go)
        for (int i = threadIdx.x; i < m; i += blockDim.x) counts[i] = 0;
}

// Per-query constants of the pass test fma(E, F, dot') >= A + B (see the
// per-base-row half below) from the query's squared norm qn and its current
// k-th best value td (`missing`: fewer than k so far, everything passes).
// The bound is c |q| |x| on the dot product; the 2^-21 terms cover the fp32
// rounding of this test and of the re-score's epilogue (a few ulps of the
// magnitudes involved), so a pair whose re-scored value can still beat td
// always passes.
//   L2:         dot + c|q||x| >= (qn - td)/2 + xn/2 (minus slack)
//   Euclidean:  the same with td^2 (rounded up)
//   cosine:     dot + (c - s)|q||x| >= 0 with s = 1 - td (distance) or td (similarity)
//   IP, normalized cosine: dot + c|q||x| >= td (minus slack); |dot| for |IP|
__device__ __forceinline__ void va_row_constants(float qn, float td, bool missing, int metric, int normalized,
                                                 float c, float uabs, float* a, float* e) {
    const float slack = 4.76837158e-7f;  // 2^-21
    const float qr = sqrtf(qn);
    if (missing || va_isnan(td) || isinf(td) || va_isnan(qn) || isinf(qn)) {
        *a = -va_inf();
        *e = 0.0f;
        return;
    }
    if (metric == VA_L2 || metric == VA_EUCLIDEAN) {
        float t2 = metric == VA_EUCLIDEAN ? td * td * (1.0f + 2.0f * slack) : td;
        *a = 0.5f * (qn - t2) - slack * (qn + fabsf(t2));
        *e = c * qr;
    } else if ((metric == VA_COSINE || metric == VA_COSINE_SIM) && !normalized) {
        float sim = metric == VA_COSINE ? 1.0f - td : td;
        *a = 0.0f;
        *e = (c + 2.0f * slack - sim) * qr;
    } else {
        // Inner product, |inner product|, cosine on normalized inputs.
        float sim = metric == VA_COSINE ? 1.0f - td : td;
        *a = sim - slack * fabsf(sim);
        *e = (c + 2.0f * slack) * qr;
    }
    // An absolute error uabs (|q| + |x|) (f16 inputs below its normal
    // range) splits into a per-query and a per-base-row part.
    *a -= uabs * qr;
}

// Per-base-row constants of the pass test (B, F) from the row's squared norm.
__device__ __forceinline__ void va_col_constants(float xn, int metric, int normalized, float uabs, float* b,
                                                 float* f) {
    const float slack = 4.76837158e-7f;  // 2^-21
    *f = sqrtf(xn);
    *b = (metric == VA_L2 || metric == VA_EUCLIDEAN) ? 0.5f * xn * (1.0f - slack) - slack * xn : 0.0f;
    *b -= uabs * *f;
}

// One block: 128 queries x 128 base rows. Pairs
// whose optimistic value (the dot product moved by the bound towards
// "better") does not rank after the query's current k-th best are appended
// to cand[q * cap + slot] as base-row indices and counted in counts[q]
// (zeroed by filter_step); a count past cap sets st[VA_ST_OVER]. The block
// does nothing unless filter_step chose this pass (st[VA_ST_GO]).
// KIND: how the dot products are computed (VA_KIND_*). For the 16-bit
// kinds Q and X hold bf16 / f16 rows, d (a multiple of 8) counts their
// elements and padding columns are zero.
template <int KIND, bool VEC, int WARPS>
__device__ __forceinline__ void va_fused_filter(const void* __restrict__ Qv, i64 ldq, int m,
                                                const void* __restrict__ Xv, i64 ldx, int n, int d,
                                                const float* __restrict__ qn, const float* __restrict__ xn,
                                                int metric, int normalized, float cbound, float uabs,
                                                const float* __restrict__ st_d, const u64* __restrict__ st_i,
                                                int k, int desc, u32* __restrict__ cand, int cap,
                                                int* __restrict__ counts, int* __restrict__ st) {
    if (st[VA_ST_GO] == 0) return;
    constexpr bool SPLIT3 = KIND == VA_KIND_3XTF32;
    constexpr bool HALF = KIND >= VA_KIND_BF16;
    constexpr int ES = HALF ? 2 : 4;  // bytes per element
    constexpr int EPS = 128 / ES;     // elements per pipeline stage
    const char* Q = reinterpret_cast<const char*>(Qv);
    const char* X = reinterpret_cast<const char*>(Xv);
    extern __shared__ __align__(16) float va_fsm[];
    float* As = va_fsm;                                // VA_FSTAGES x 128 x VA_FS
    float* Bs = va_fsm + VA_FSTAGES * VA_FM * VA_FS;   // VA_FSTAGES x 128 x VA_FS
    // The test of a pair, in dot-product space: it can enter the query's
    // top-k unless fma(E[r], F[c], dot') < A[r] + B[c] (dot' = |dot| for
    // the absolute inner product). See va_pass_constants.
    __shared__ float s_a[VA_FM], s_e[VA_FM], s_b[VA_FN], s_f[VA_FN];

    // Consecutive blocks share a base tile (read once from memory while the
    // few query tiles stay in L2).
    const int nqt = (m + VA_FM - 1) / VA_FM;
    const int q0 = (blockIdx.x % nqt) * VA_FM;
    const int x0 = (blockIdx.x / nqt) * VA_FN;
    const int tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    // Warps: 2 along queries x WARPS / 2 along base rows; a warp's tile is
    // 64 queries x NI * 8 base rows.
    constexpr int THREADS = 32 * WARPS;
    constexpr int NI = 2 * VA_FN / (8 * WARPS);
    const int wm = (warp / (WARPS / 2)) * 64;
    const int wn = (warp % (WARPS / 2)) * NI * 8;

    for (int i = tid; i < VA_FM + VA_FN; i += THREADS) {
        if (i < VA_FM) {
            const int q = q0 + i;
            float a = va_inf(), e = 0.0f;  // rows past the end never pass
            if (q < m) {
                const float td = st_d[(i64)q * k + (k - 1)];
                const bool missing = st_i[(i64)q * k + (k - 1)] == VA_MISSING_ID;
                va_row_constants(qn[q], td, missing, metric, normalized, cbound, uabs, &a, &e);
            }
            s_a[i] = a;
            s_e[i] = e;
        } else {
            const int j = i - VA_FM;
            const int x = x0 + j;
            const float v = x < n ? xn[x] : 0.0f;
            float b, f;
            va_col_constants(v, metric, normalized, uabs, &b, &f);
            s_b[j] = b;
            s_f[j] = f;
        }
    }

    float acc[4][NI][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    const int nk = (d + EPS - 1) / EPS;
    // Stages kt + 1 and kt + 2 load while stage kt is multiplied.
#pragma unroll
    for (int s0 = 0; s0 < VA_FSTAGES - 1; ++s0) {
        if (s0 < nk) {
            va_load_tile<VEC, THREADS, ES>(As + s0 * VA_FM * VA_FS, Q, ldq, m, d, q0, s0 * EPS);
            va_load_tile<VEC, THREADS, ES>(Bs + s0 * VA_FN * VA_FS, X, ldx, n, d, x0, s0 * EPS);
        }
        va_cp_commit();
    }
    for (int kt = 0; kt < nk; ++kt) {
        const int st = kt % VA_FSTAGES;
        const int nt = kt + VA_FSTAGES - 1;
        if (nt < nk) {
            const int ns = nt % VA_FSTAGES;
            va_load_tile<VEC, THREADS, ES>(As + ns * VA_FM * VA_FS, Q, ldq, m, d, q0, nt * EPS);
            va_load_tile<VEC, THREADS, ES>(Bs + ns * VA_FN * VA_FS, X, ldx, n, d, x0, nt * EPS);
        }
        va_cp_commit();
        va_cp_wait<VA_FSTAGES - 1>();
        __syncthreads();
        va_mma_stage<KIND, NI>(acc, As + st * VA_FM * VA_FS, Bs + st * VA_FN * VA_FS, wm, wn, lane);
        __syncthreads();
    }

    // Epilogue in registers: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t),
    // c3 (g+8, 2t+1). A NaN never fails the test (non-finite data can
    // never be excluded).
    const bool absdot = metric == VA_ABS_IP;
    float cb[NI][2], cf[NI][2];
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int c = wn + ni * 8 + 2 * t + e;
            cb[ni][e] = s_b[c];
            cf[ni][e] = s_f[c];
        }
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int r = wm + mi * 16 + g + h * 8;
            const float ra = s_a[r], re = s_e[r];
#pragma unroll
            for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    float dot = acc[mi][ni][h * 2 + e];
                    if (absdot) dot = fabsf(dot);
                    const float lhs = fmaf(re, cf[ni][e], dot);
                    if (!(lhs < ra + cb[ni][e])) {
                        const int q = q0 + r;
                        const int j = x0 + wn + ni * 8 + 2 * t + e;
                        if (q < m && j < n) {
                            int slot = atomicAdd(counts + q, 1);
                            if (slot < cap) cand[(i64)q * cap + slot] = (u32)j;
                            else st[VA_ST_OVER] = 1;
                        }
                    }
                }
        }
}

#define VA_FUSED_ARGS                                                                                   \
    const void *__restrict__ Q, i64 ldq, int m, const void *__restrict__ X, i64 ldx, int n, int d,       \
        const float *__restrict__ qn, const float *__restrict__ xn, int metric, int normalized,          \
        float cbound, float uabs, const float *__restrict__ st_d, const u64 *__restrict__ st_i, int k,   \
        int desc, u32 *__restrict__ cand, int cap, int *__restrict__ counts, int *__restrict__ st
#define VA_FUSED_PASS \
    Q, ldq, m, X, ldx, n, d, qn, xn, metric, normalized, cbound, uabs, st_d, st_i, k, desc, cand, cap, counts, st

extern "C" __global__ void __launch_bounds__(256) fused_filter_tf32_v4(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_TF32, true, 8>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(256) fused_filter_tf32_v1(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_TF32, false, 8>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(256) fused_filter_3xtf32_v4(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_3XTF32, true, 8>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(256) fused_filter_3xtf32_v1(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_3XTF32, false, 8>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(128) fused_filter_tf32_v4_w4(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_TF32, true, 4>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(128) fused_filter_3xtf32_v4_w4(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_3XTF32, true, 4>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(256) fused_filter_bf16(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_BF16, true, 8>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(128) fused_filter_bf16_w4(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_BF16, true, 4>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(256) fused_filter_f16(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_F16, true, 8>(VA_FUSED_PASS);
}
extern "C" __global__ void __launch_bounds__(128) fused_filter_f16_w4(VA_FUSED_ARGS) {
    va_fused_filter<VA_KIND_F16, true, 4>(VA_FUSED_PASS);
}

// f32 rows (rows x d, leading dimension ldx) to 16-bit rows of hd >= d
// elements (bf16 when bf16, else f16; round to nearest even), padding
// columns zero. For f16, the largest finite magnitude above the f16 range
// (65504) is recorded in *too_big as its bit pattern (0: none).
extern "C" __global__ void to_half_rows(const float* __restrict__ X, i64 ldx, int rows, int d,
                                        unsigned short* __restrict__ out, int hd, int bf16,
                                        u32* __restrict__ too_big) {
    const i64 total = (i64)rows * hd;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
        const i64 r = i / hd;
        const int c = (int)(i - r * hd);
        const float v = c < d ? X[r * ldx + c] : 0.0f;
        unsigned short h;
        if (bf16) {
            asm("cvt.rn.bf16.f32 %0, %1;\n" : "=h"(h) : "f"(v));
        } else {
            asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(v));
            const float a = fabsf(v);
            if (a > 65504.0f && a <= 3.40282347e38f) atomicMax(too_big, __float_as_uint(a));
        }
        out[i] = h;
    }
}

// Base rows are f32 (xkind VA_X_F32) or 16-bit (VA_X_BF16, VA_X_F16; rows
// of a multiple of 8 elements), widened to f32 exactly on load.
#define VA_X_F32 0
#define VA_X_BF16 1
#define VA_X_F16 2

__device__ __forceinline__ float va_widen(u32 h, int xkind) {
    if (xkind == VA_X_BF16) return __uint_as_float(h << 16);
    float f;
    asm("cvt.f32.f16 %0, %1;\n" : "=f"(f) : "h"((unsigned short)h));
    return f;
}

// Row j of a base of kind xkind with leading dimension ldx (elements).
__device__ __forceinline__ const void* va_x_row(const void* X, i64 j, i64 ldx, int xkind) {
    return reinterpret_cast<const char*>(X) + j * ldx * (xkind == VA_X_F32 ? 4 : 2);
}

// The fp32 dot product of a query row and a base row as one warp computes
// it (the result is lane 0's): lane-strided fused multiply-adds (four
// values per lane when rows are aligned multiples of 4), then a fixed
// xor-shuffle tree. rescore_candidates, rescore_lists and simt_filter all
// use it, so one pair always gets one value; a 16-bit row gives the value
// its widened f32 row would.
__device__ __forceinline__ float va_warp_dot(const float* __restrict__ q, const void* __restrict__ xv, int d,
                                             bool vec, int lane, int xkind) {
    float s = 0.0f;
    if (xkind == VA_X_F32) {
        const float* x = reinterpret_cast<const float*>(xv);
        if (vec) {
            const float4* q4 = reinterpret_cast<const float4*>(q);
            const float4* x4 = reinterpret_cast<const float4*>(x);
            for (int i = lane; i < (d >> 2); i += 32) {
                const float4 a = q4[i], b = x4[i];
                s = fmaf(a.x, b.x, s);
                s = fmaf(a.y, b.y, s);
                s = fmaf(a.z, b.z, s);
                s = fmaf(a.w, b.w, s);
            }
        } else {
            for (int i = lane; i < d; i += 32) s = fmaf(q[i], x[i], s);
        }
    } else {
        const unsigned short* x = reinterpret_cast<const unsigned short*>(xv);
        if (vec) {
            const float4* q4 = reinterpret_cast<const float4*>(q);
            const uint2* x4 = reinterpret_cast<const uint2*>(x);
            for (int i = lane; i < (d >> 2); i += 32) {
                const float4 a = q4[i];
                const uint2 u = x4[i];
                s = fmaf(a.x, va_widen(u.x & 0xffffu, xkind), s);
                s = fmaf(a.y, va_widen(u.x >> 16, xkind), s);
                s = fmaf(a.z, va_widen(u.y & 0xffffu, xkind), s);
                s = fmaf(a.w, va_widen(u.y >> 16, xkind), s);
            }
        } else {
            for (int i = lane; i < d; i += 32) s = fmaf(q[i], va_widen(x[i], xkind), s);
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}

// Whether query rows (d floats, leading dimension lda) and base rows of
// kind xkind can be read four values at a time (16-bit rows always can:
// their leading dimension is a multiple of 8).
__device__ __forceinline__ bool va_rows_vec4(const float* a, i64 lda, const void* b, i64 ldb, int d, int xkind) {
    const bool qa = ((d & 3) == 0) && ((lda & 3) == 0) && ((((u64)a) & 15) == 0);
    if (xkind != VA_X_F32) return qa;
    return qa && ((ldb & 3) == 0) && ((((u64)b) & 15) == 0);
}

// 16-bit rows (rows x d, leading dimension ldx) widened to f32 rows of d.
extern "C" __global__ void half_to_f32_rows(const unsigned short* __restrict__ X, i64 ldx, int rows, int d,
                                            int xkind, float* __restrict__ out) {
    const i64 total = (i64)rows * d;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
        const i64 r = i / d;
        out[i] = va_widen(X[r * ldx + (i - r * d)], xkind);
    }
}

// fp32 re-score of the candidates of fused_filter_*: one block per query,
// one warp per candidate (lane-strided products, a fixed shuffle tree, so a
// pair's value never depends on where it sits in the list). Writes the
// metric's value and the global id (id_offset + index) of each candidate.
extern "C" __global__ void rescore_candidates(const float* __restrict__ Q, i64 ldq, const void* __restrict__ X,
                                              i64 ldx, int xkind, int d, const float* __restrict__ qn,
                                              const float* __restrict__ xn, int metric, int normalized,
                                              const u32* __restrict__ cand, int cap,
                                              const int* __restrict__ counts, u64 id_offset,
                                              float* __restrict__ out_d, u64* __restrict__ out_i) {
    const int row = blockIdx.x;
    const int cnt = min(counts[row], cap);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int nw = blockDim.x >> 5;
    const float* qr = Q + (i64)row * ldq;
    const float qv = normalized ? 1.0f : qn[row];
    const bool vec = va_rows_vec4(Q, ldq, X, ldx, d, xkind);
    for (int c = warp; c < cnt; c += nw) {
        const u32 j = cand[(i64)row * cap + c];
        const float s = va_warp_dot(qr, va_x_row(X, j, ldx, xkind), d, vec, lane, xkind);
        if (lane == 0) {
            out_d[(i64)row * cap + c] = va_epilogue(s, qv, normalized ? 1.0f : xn[j], metric, normalized);
            out_i[(i64)row * cap + c] = id_offset + (u64)j;
        }
    }
}

// In place: the values of sorted-or-not lists (k per query, global ids,
// VA_MISSING_ID for none) become their fp32 re-scores, the same formula as
// rescore_candidates, so every value the fused path keeps comes from one
// computation (identical rows get identical values wherever they sit).
extern "C" __global__ void rescore_lists(const float* __restrict__ Q, i64 ldq, const void* __restrict__ X,
                                         i64 ldx, int xkind, int d, const float* __restrict__ qn,
                                         const float* __restrict__ xn, int metric, int normalized,
                                         const u64* __restrict__ ids, int k, u64 id_offset,
                                         float* __restrict__ vals) {
    const int row = blockIdx.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int nw = blockDim.x >> 5;
    const float* qr = Q + (i64)row * ldq;
    const float qv = normalized ? 1.0f : qn[row];
    const bool vec = va_rows_vec4(Q, ldq, X, ldx, d, xkind);
    for (int c = warp; c < k; c += nw) {
        const u64 id = ids[(i64)row * k + c];
        if (id == VA_MISSING_ID) continue;
        const u64 j = id - id_offset;
        const float s = va_warp_dot(qr, va_x_row(X, j, ldx, xkind), d, vec, lane, xkind);
        if (lane == 0) vals[(i64)row * k + c] = va_epilogue(s, qv, normalized ? 1.0f : xn[j], metric, normalized);
    }
}

// The exact filter for few queries (m <= VA_SIMT_MAX_Q): one warp per base
// row computes the pair's fp32 value exactly as the re-score does
// (va_warp_dot + va_epilogue) and keeps it when it does not rank after the
// query's current k-th best. Reads the base once at memory bandwidth; the
// queries sit in shared memory (m * d floats, dynamic).
#define VA_SIMT_MAX_Q 16
extern "C" __global__ void __launch_bounds__(256)
simt_filter(const float* __restrict__ Q, i64 ldq, int m, const void* __restrict__ X, i64 ldx, int xkind, int n, int d,
            const float* __restrict__ qn, const float* __restrict__ xn, int metric, int normalized,
            const float* __restrict__ st_d, const u64* __restrict__ st_i, int k, int desc,
            u32* __restrict__ cand, int cap, int* __restrict__ counts, int* __restrict__ st) {
    if (st[VA_ST_GO] == 0) return;
    extern __shared__ __align__(16) float va_sq[];
    __shared__ u32 s_key[VA_SIMT_MAX_Q];
    __shared__ float s_n[VA_SIMT_MAX_Q];
    for (int i = threadIdx.x; i < m * d; i += blockDim.x) {
        const int r = i / d, c = i - r * d;
        va_sq[i] = Q[(i64)r * ldq + c];
    }
    if (threadIdx.x < m) {
        const int q = threadIdx.x;
        s_key[q] = va_item_of(st_d[(i64)q * k + k - 1], st_i[(i64)q * k + k - 1], desc).key;
        s_n[q] = normalized ? 1.0f : qn[q];
    }
    __syncthreads();
    // The shared copy has leading dimension d; float4 reads need the
    // global rows (and so the re-score) to be float4-aligned too.
    const bool vec = va_rows_vec4(Q, ldq, X, ldx, d, xkind);
    const int lane = threadIdx.x & 31;
    const i64 warps = (i64)gridDim.x * (blockDim.x >> 5);
    for (i64 j = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); j < n; j += warps) {
        const void* xr = va_x_row(X, j, ldx, xkind);
        const float xv = normalized ? 1.0f : xn[j];
        for (int q = 0; q < m; ++q) {
            const float s = va_warp_dot(va_sq + q * d, xr, d, vec, lane, xkind);
            if (lane == 0) {
                const float v = va_epilogue(s, s_n[q], xv, metric, normalized);
                if (va_sort_key(v, desc) <= s_key[q]) {
                    int slot = atomicAdd(counts + q, 1);
                    if (slot < cap) cand[(i64)q * cap + slot] = (u32)j;
                    else st[VA_ST_OVER] = 1;
                }
            }
        }
    }
}

// Every (query, base row) value of a few queries (m <= VA_SIMT_MAX_Q) as the
// re-score computes it (va_warp_dot + va_epilogue), into out[q * n + j]: one
// warp per base row, two rows in flight per warp, the queries in shared
// memory (m * d floats, dynamic). The direct k-NN of a few queries selects
// from these.
extern "C" __global__ void __launch_bounds__(256)
direct_values(const float* __restrict__ Q, i64 ldq, int m, const float* __restrict__ X, i64 ldx, i64 n, int d,
              const float* __restrict__ qn, const float* __restrict__ xn, int metric, int normalized,
              float* __restrict__ out) {
    extern __shared__ __align__(16) float va_sq[];
    __shared__ float s_n[VA_SIMT_MAX_Q];
    for (int i = threadIdx.x; i < m * d; i += blockDim.x) {
        const int r = i / d, c = i - r * d;
        va_sq[i] = Q[(i64)r * ldq + c];
    }
    if (threadIdx.x < m) s_n[threadIdx.x] = normalized ? 1.0f : qn[threadIdx.x];
    __syncthreads();
    const bool vec = va_rows_vec4(Q, ldq, X, ldx, d, VA_X_F32);
    const int lane = threadIdx.x & 31;
    const i64 warps = (i64)gridDim.x * (blockDim.x >> 5);
    const i64 first = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    for (i64 j = first; j < n; j += 2 * warps) {
        const i64 j2 = j + warps;
        const bool two = j2 < n;
        const float* x1 = X + j * ldx;
        const float* x2 = X + (two ? j2 : j) * ldx;
        for (int q = 0; q < m; ++q) {
            const float s1 = va_warp_dot(va_sq + q * d, x1, d, vec, lane, VA_X_F32);
            const float s2 = va_warp_dot(va_sq + q * d, x2, d, vec, lane, VA_X_F32);
            if (lane == 0) {
                out[(i64)q * n + j] = va_epilogue(s1, s_n[q], normalized ? 1.0f : xn[j], metric, normalized);
                if (two) out[(i64)q * n + j2] = va_epilogue(s2, s_n[q], normalized ? 1.0f : xn[j2], metric, normalized);
            }
        }
    }
}

// After a tile's filter passes: block 0 books the last pass, and every
// query whose last pass overflowed (counts[q] > cap: its candidates are
// incomplete) gets instead its min(k, n) best rows of the tile, ranked by
// the value the re-score computes (va_warp_dot + va_epilogue) and then by
// the smaller row, so the re-score and select that follow see a complete
// list. A radix select over the keys (sort key << 32 | row), 11 bits at a
// time, each pass recomputing the values; rare (ties or near-ties beyond
// the list's room), so one block per query suffices.
#define VA_RESCUE_BITS 11
extern "C" __global__ void __launch_bounds__(256)
rescue_overflow(const float* __restrict__ Q, i64 ldq, const void* __restrict__ X, i64 ldx, int xkind, int d,
                const float* __restrict__ qn, const float* __restrict__ xn, int metric, int normalized, int n,
                int k, int desc, u32* __restrict__ cand, int cap, int* __restrict__ counts, int* __restrict__ st,
                int last) {
    if (blockIdx.x == 0 && threadIdx.x == 0) va_settle(st, last, true);
    const int row = blockIdx.x;
    if (counts[row] <= cap) return;
    __shared__ u32 hist[1 << VA_RESCUE_BITS];
    __shared__ u64 s_prefix;
    __shared__ int s_rank, s_done, s_stop, s_found;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int nw = blockDim.x >> 5;
    const float* qr = Q + (i64)row * ldq;
    const float qv = normalized ? 1.0f : qn[row];
    const bool vec = va_rows_vec4(Q, ldq, X, ldx, d, xkind);
    const int want = min(k, n);
    if (threadIdx.x == 0) {
        s_prefix = 0;
        s_rank = want - 1;  // rows ranking before the wanted one, within the prefix
        s_done = 0;         // leading key bits fixed so far
        s_stop = 0;
        s_found = 0;
    }
    __syncthreads();
    while (!s_stop && s_done < 64) {
        const int done = s_done;
        const int width = min(VA_RESCUE_BITS, 64 - done);
        const u64 prefix = s_prefix;
        for (int i = threadIdx.x; i < (1 << width); i += blockDim.x) hist[i] = 0;
        __syncthreads();
        for (int j = warp; j < n; j += nw) {
            const float s = va_warp_dot(qr, va_x_row(X, j, ldx, xkind), d, vec, lane, xkind);
            if (lane == 0) {
                const float v = va_epilogue(s, qv, normalized ? 1.0f : xn[j], metric, normalized);
                const u64 key = ((u64)va_sort_key(v, desc) << 32) | (u32)j;
                if (done == 0 || (key >> (64 - done)) == prefix)
                    atomicAdd(&hist[(key >> (64 - done - width)) & ((1u << width) - 1)], 1u);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int rank = s_rank, b = 0;
            while ((int)hist[b] <= rank) rank -= hist[b++];
            s_prefix = (prefix << width) | (u64)b;
            s_rank = rank;
            s_done = done + width;
            // The wanted row is its bin's last: the whole bin is taken.
            s_stop = rank == (int)hist[b] - 1;
        }
        __syncthreads();
    }
    // Rows whose fixed leading bits are at most the prefix: exactly `want`.
    const int done = s_done;
    const u64 prefix = s_prefix;
    for (int j = warp; j < n; j += nw) {
        const float s = va_warp_dot(qr, va_x_row(X, j, ldx, xkind), d, vec, lane, xkind);
        if (lane == 0) {
            const float v = va_epilogue(s, qv, normalized ? 1.0f : xn[j], metric, normalized);
            const u64 key = ((u64)va_sort_key(v, desc) << 32) | (u32)j;
            if ((key >> (64 - done)) <= prefix) {
                const int slot = atomicAdd(&s_found, 1);
                if (slot < cap) cand[(i64)row * cap + slot] = (u32)j;
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) counts[row] = min(s_found, cap);
}
