// Nearest-centroid assignment (k-means) on tensor cores, exact.
//
// Centroid c of point x is ranked by the TF32 value v = h[c] - x.c
// (h[c] = |c|^2 / 2 for squared L2, 0 for unit centroids under cosine),
// computed on chip and never written out. With the dot-product bound of
// knn.cu (the TF32 value lies within cbound |x| |c| of the exact one), the
// exact nearest centroid has v <= v_min + 2 B, B = cbound |x| max|c| plus
// rounding slack. Three steps:
//   va_assign_tf32_min   v_min of every point;
//   va_assign_threshold  thr = v_min + 2 B from |x|;
//   va_assign_tf32_emit  the same products again; every centroid with
//                        v <= thr is appended to the point's candidates;
//   va_assign_finish     exact fp32 re-score of the candidates (or of every
//                        centroid when they overflow), ties to the smaller
//                        index.
// The result is the exact argmin whatever the TF32 rounding.

#define VA_ACAP 32  // candidates kept per point

// One block: 128 points x every centroid, in tiles of 128 centroids.
// EMIT false: writes vmin[p]. EMIT true: appends the centroids with
// v <= thr[p] to cand[p * VA_ACAP ..] and counts them in count[p] (zeroed
// by the caller; counts past VA_ACAP are kept, the ids dropped).
template <bool VEC, bool EMIT>
__device__ __forceinline__ void va_assign(const float* __restrict__ X, i64 ldx, int n,
                                          const float* __restrict__ C, int k, int d,
                                          const float* __restrict__ h, float* __restrict__ vmin,
                                          const float* __restrict__ thr, int* __restrict__ cand,
                                          int* __restrict__ count) {
    constexpr int WARPS = 8, THREADS = 256, NI = 4;  // warp tile 64 points x 32 centroids
    extern __shared__ __align__(16) float va_asm[];
    float* As = va_asm;                               // VA_FSTAGES x 128 x VA_FS
    float* Bs = va_asm + VA_FSTAGES * VA_FM * VA_FS;  // VA_FSTAGES x 128 x VA_FS
    __shared__ float s_h[VA_FN];
    __shared__ float s_t[VA_FM];

    const int p0 = blockIdx.x * VA_FM;
    const int tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int wm = (warp / (WARPS / 2)) * 64;
    const int wn = (warp % (WARPS / 2)) * NI * 8;
    const char* Xc = reinterpret_cast<const char*>(X);
    const char* Cc = reinterpret_cast<const char*>(C);

    if (EMIT)
        for (int i = tid; i < VA_FM; i += THREADS) s_t[i] = p0 + i < n ? thr[p0 + i] : -va_inf();
    // Per point row of this thread (4 m-tiles x 2 halves): the smallest v.
    float best[4][2];
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) best[mi][hh] = va_inf();

    const int nk = (d + VA_FK - 1) / VA_FK;
    for (int c0 = 0; c0 < k; c0 += VA_FN) {
        __syncthreads();  // s_h and the stages of the previous tile are free
        for (int i = tid; i < VA_FN; i += THREADS) s_h[i] = c0 + i < k ? h[c0 + i] : 0.0f;

        float acc[4][NI][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < NI; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

#pragma unroll
        for (int s0 = 0; s0 < VA_FSTAGES - 1; ++s0) {
            if (s0 < nk) {
                va_load_tile<VEC, THREADS, 4>(As + s0 * VA_FM * VA_FS, Xc, ldx, n, d, p0, s0 * VA_FK);
                va_load_tile<VEC, THREADS, 4>(Bs + s0 * VA_FN * VA_FS, Cc, d, k, d, c0, s0 * VA_FK);
            }
            va_cp_commit();
        }
        for (int kt = 0; kt < nk; ++kt) {
            const int st = kt % VA_FSTAGES;
            const int nt = kt + VA_FSTAGES - 1;
            if (nt < nk) {
                const int ns = nt % VA_FSTAGES;
                va_load_tile<VEC, THREADS, 4>(As + ns * VA_FM * VA_FS, Xc, ldx, n, d, p0, nt * VA_FK);
                va_load_tile<VEC, THREADS, 4>(Bs + ns * VA_FN * VA_FS, Cc, d, k, d, c0, nt * VA_FK);
            }
            va_cp_commit();
            va_cp_wait<VA_FSTAGES - 1>();
            __syncthreads();
            const float* A = As + st * VA_FM * VA_FS;
            const float* B = Bs + st * VA_FN * VA_FS;
#pragma unroll
            for (int kk = 0; kk < VA_FK; kk += 8) {
                u32 a[4][4], b[NI][2];
                const int mat = lane >> 3, rr = lane & 7;
#pragma unroll
                for (int mi = 0; mi < 4; ++mi)
                    va_ldsm_x4(a[mi], A + (wm + mi * 16 + rr + (mat & 1) * 8) * VA_FS + kk + (mat >> 1) * 4);
#pragma unroll
                for (int np = 0; np < NI; np += 2) {
                    u32 r4[4];
                    va_ldsm_x4(r4, B + (wn + (np + (mat >> 1)) * 8 + rr) * VA_FS + kk + (mat & 1) * 4);
                    b[np][0] = r4[0];
                    b[np][1] = r4[1];
                    b[np + 1][0] = r4[2];
                    b[np + 1][1] = r4[3];
                }
#pragma unroll
                for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                    for (int ni = 0; ni < NI; ++ni) va_mma_tf32(acc[mi][ni], a[mi], b[ni]);
            }
            __syncthreads();
        }

        // Epilogue: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1).
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int c = wn + ni * 8 + 2 * t + e;
                if (c0 + c < k) {
                    const float hc = s_h[c];
#pragma unroll
                    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                        for (int hh = 0; hh < 2; ++hh) {
                            const float v = hc - acc[mi][ni][hh * 2 + e];
                            if (EMIT) {
                                const int r = wm + mi * 16 + g + hh * 8;
                                if (v <= s_t[r]) {
                                    const i64 p = p0 + r;
                                    const int slot = atomicAdd(count + p, 1);
                                    if (slot < VA_ACAP) cand[p * VA_ACAP + slot] = c0 + c;
                                }
                            } else {
                                best[mi][hh] = fminf(best[mi][hh], v);
                            }
                        }
                }
            }
    }
    if (EMIT) return;

    // The four threads of a quad hold the same rows; then the four warps
    // along centroids through shared memory (the pipeline stages are free
    // after the last tile's final barrier).
    float* sv = va_asm;  // [4][128]
    const int wcol = warp % (WARPS / 2);
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
            float v = best[mi][hh];
            v = fminf(v, __shfl_xor_sync(0xffffffffu, v, 1));
            v = fminf(v, __shfl_xor_sync(0xffffffffu, v, 2));
            if (t == 0) sv[wcol * VA_FM + wm + mi * 16 + g + hh * 8] = v;
        }
    __syncthreads();
    if (tid < VA_FM && p0 + tid < n) {
        float v = sv[tid];
        for (int w = 1; w < WARPS / 2; ++w) v = fminf(v, sv[w * VA_FM + tid]);
        vmin[p0 + tid] = v;
    }
}

#define VA_ASSIGN_ARGS                                                                                \
    const float *__restrict__ X, i64 ldx, int n, const float *__restrict__ C, int k, int d,           \
        const float *__restrict__ h, float *__restrict__ vmin, const float *__restrict__ thr,          \
        int *__restrict__ cand, int *__restrict__ count
#define VA_ASSIGN_PASS X, ldx, n, C, k, d, h, vmin, thr, cand, count

extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_min_v4(VA_ASSIGN_ARGS) {
    va_assign<true, false>(VA_ASSIGN_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_min_v1(VA_ASSIGN_ARGS) {
    va_assign<false, false>(VA_ASSIGN_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_emit_v4(VA_ASSIGN_ARGS) {
    va_assign<true, true>(VA_ASSIGN_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_emit_v1(VA_ASSIGN_ARGS) {
    va_assign<false, true>(VA_ASSIGN_PASS);
}

// |x|^2 of a point row, as a warp computes it (every lane gets it).
__device__ __forceinline__ float va_warp_sqnorm(const float* __restrict__ x, int d) {
    float xn = 0.0f;
    for (int j = threadIdx.x & 31; j < d; j += 32) xn = fmaf(x[j], x[j], xn);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) xn += __shfl_xor_sync(0xffffffffu, xn, off);
    return xn;
}

// One warp per point: thr[p] = vmin + 2 B with B = cbound |x| cmax plus
// the rounding of h - dot (2^-21 of the magnitudes involved); -inf for a
// non-finite point (no candidates; the finish reports it).
extern "C" __global__ void va_assign_threshold(const float* __restrict__ X, i64 ldx, int n, int d,
                                               float cbound, float cmax, const float* __restrict__ vmin,
                                               float* __restrict__ thr) {
    const i64 p = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (p >= n) return;
    const float xn = va_warp_sqnorm(X + p * ldx, d);
    if ((threadIdx.x & 31) != 0) return;
    const float v = vmin[p];
    if (!isfinite(xn) || !isfinite(v)) {
        thr[p] = -va_inf();
        return;
    }
    const float slack = 4.76837158e-7f;  // 2^-21
    const float xr = sqrtf(xn);
    const float b = cbound * xr * cmax + slack * (0.5f * cmax * cmax + xr * cmax + fabsf(v));
    thr[p] = v + 2.0f * b;
}

// The exact distance of point row x to centroid c as a warp computes it
// (every lane gets the result): squared L2 as sum (x - c)^2, or the cosine
// distance 1 - x.c / (|x| |c|) (0 similarity for a zero vector).
__device__ __forceinline__ float va_exact(const float* __restrict__ x, const float* __restrict__ c, int d,
                                          int cosine, float xn) {
    float s = 0.0f, cc = 0.0f;
    for (int j = threadIdx.x & 31; j < d; j += 32) {
        const float xv = x[j], cv = c[j];
        if (cosine) {
            s = fmaf(xv, cv, s);
            cc = fmaf(cv, cv, cc);
        } else {
            const float e = xv - cv;
            s = fmaf(e, e, s);
        }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        s += __shfl_xor_sync(0xffffffffu, s, off);
        cc += __shfl_xor_sync(0xffffffffu, cc, off);
    }
    if (!cosine) return s;
    const float den = sqrtf(xn) * sqrtf(cc);
    return den > 0.0f ? 1.0f - s / den : 1.0f;
}

// One warp per point: the exact distance to each candidate (or, when the
// candidates overflowed, to every centroid), the nearest written with its
// distance; ties to the smaller index. scans counts the full scans.
extern "C" __global__ void va_assign_finish(const float* __restrict__ X, i64 ldx, int n,
                                            const float* __restrict__ C, int k, int d, int cosine,
                                            const int* __restrict__ cand, const int* __restrict__ count,
                                            u32* __restrict__ ids, float* __restrict__ dist,
                                            unsigned long long* __restrict__ scans) {
    const i64 p = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (p >= n) return;
    const int lane = threadIdx.x & 31;
    const float* x = X + p * ldx;
    const float xn = va_warp_sqnorm(x, d);
    if (!isfinite(xn)) {
        // A non-finite point: centroid 0 at distance NaN (as exact k-NN).
        if (lane == 0) {
            ids[p] = 0;
            dist[p] = va_nan();
        }
        return;
    }
    const int m = count[p];
    int best = -1;
    float bd = va_inf();
    if (m >= 1 && m <= VA_ACAP) {
        for (int q = 0; q < m; ++q) {
            const int c = cand[p * VA_ACAP + q];
            const float e = va_exact(x, C + (i64)c * d, d, cosine, xn);
            if (best < 0 || e < bd || (e == bd && c < best)) {
                bd = e;
                best = c;
            }
        }
    } else {
        if (lane == 0) atomicAdd(scans, 1ull);
        for (int c = 0; c < k; ++c) {
            const float e = va_exact(x, C + (i64)c * d, d, cosine, xn);
            if (best < 0 || e < bd) {
                bd = e;
                best = c;
            }
        }
    }
    if (lane == 0) {
        ids[p] = (u32)best;
        dist[p] = bd;
    }
}

// k-means update: member sums without contended atomics. Points are
// grouped by cluster (counting sort: counts, offsets on the host, scatter),
// then each block sums a contiguous range of the grouped points column by
// column in 64-bit fixed point (value * scale rounded; integer addition is
// associative, so the sums do not depend on the scatter's order).
extern "C" __global__ void va_count_members(const u32* __restrict__ ids, i64 n, int* __restrict__ counts) {
    const i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (p < n) atomicAdd(counts + ids[p], 1);
}

// perm[cursor[c]++] = p for each point p of cluster c (cursor starts at the
// cluster's offset).
extern "C" __global__ void va_scatter_members(const u32* __restrict__ ids, i64 n, int* __restrict__ cursor,
                                              int* __restrict__ perm) {
    const i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (p < n) perm[atomicAdd(cursor + ids[p], 1)] = (int)p;
}

// Block b sums grouped points [b * span, (b + 1) * span): each thread owns
// columns, keeps a running sum while the cluster stays the same and adds it
// to sums[cluster * d + column] when the cluster changes (a few atomics per
// block instead of one per value).
extern "C" __global__ void va_grouped_sums(const float* __restrict__ X, i64 ldx, int d, i64 n, int span,
                                           const int* __restrict__ perm, const u32* __restrict__ ids,
                                           float scale, unsigned long long* __restrict__ sums) {
    const i64 a = (i64)blockIdx.x * span;
    const i64 b = min(n, a + span);
    for (int col = threadIdx.x; col < d; col += blockDim.x) {
        long long s = 0;
        u32 cur = 0xFFFFFFFFu;
        for (i64 j = a; j < b; ++j) {
            const int p = perm[j];
            const u32 c = ids[p];
            if (c != cur) {
                if (cur != 0xFFFFFFFFu) atomicAdd(sums + (i64)cur * d + col, (unsigned long long)s);
                cur = c;
                s = 0;
            }
            s += __float2ll_rn(X[(i64)p * ldx + col] * scale);
        }
        if (cur != 0xFFFFFFFFu) atomicAdd(sums + (i64)cur * d + col, (unsigned long long)s);
    }
}
