// Nearest-centroid assignment (k-means) on tensor cores, exact.
//
// Centroid c of point x is ranked by the TF32 value v = h[c] - x.c
// (h[c] = |c|^2 / 2 for squared L2, 0 for unit centroids under cosine),
// computed on chip and never written out. With the dot-product bound of
// knn.cu (the TF32 value lies within cbound |x| |c| of the exact one, plus
// rounding slack), the exact nearest centroid has v <= v_min + 2 B with
// B = cbound |x| max|c| + slack. A pass over the centroids keeps each
// point's running minimum m of v and appends every centroid with
// v <= m + 2 B at the time it is seen. The minimum only falls, so every
// centroid within 2 B of the final minimum is among the candidates. The
// running minimum starts from an upper bound of the final one, the
// tighter the fewer extra candidates (in high dimension many centroids lie
// within 2 B of a poor early minimum): the minimum itself from a first
// pass that only takes minima (va_assign_tf32_min), or, in k-means, the
// exact value of the previous iteration's centroid plus 2 B
// (va_assign_hint). va_assign_finish then re-scores the candidates exactly
// in fp32 (every centroid when they overflow), ties to the smaller index:
// the exact argmin whatever the TF32 rounding.

#define VA_ACAP 32  // candidates kept per point

// |x|^2 of a point row, as a warp computes it (every lane gets it).
__device__ __forceinline__ float va_warp_sqnorm(const float* __restrict__ x, int d) {
    float xn = 0.0f;
    for (int j = threadIdx.x & 31; j < d; j += 32) xn = fmaf(x[j], x[j], xn);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) xn += __shfl_xor_sync(0xffffffffu, xn, off);
    return xn;
}

// The band 2 B of a point of squared norm xn, with the rounding slack
// taken for |v| <= cmax^2 / 2 + |x| cmax; NaN for a non-finite point.
__device__ __forceinline__ float va_assign_band(float xn, float cbound, float cmax) {
    const float slack = 4.76837158e-7f;  // 2^-21
    const float xr = sqrtf(xn);
    const float mag = 0.5f * cmax * cmax + xr * cmax;
    return isfinite(xn) ? 2.0f * (cbound * xr * cmax + 2.0f * slack * mag) : va_nan();
}

// One block: 128 points x every centroid, in tiles of 128 centroids; one
// cp.async pipeline runs through all (tile, depth slice) steps, so the
// loads of the next tile overlap the epilogue of the current one.
// MIN: writes each point's smallest v to bound[p]. Otherwise: the running
// minimum starts at bound[p] (an upper bound of the final minimum; +inf
// when none is known); appends the candidates of point p to
// cand[p * VA_ACAP ..] and writes their number to count[p] (more than
// VA_ACAP: overflow, the ids past it dropped; 0 for a non-finite point or
// one whose values are all NaN).
template <bool VEC, bool MIN>
__device__ __forceinline__ void va_assign(const float* __restrict__ X, i64 ldx, int n,
                                          const float* __restrict__ C, int k, int d,
                                          const float* __restrict__ h, float cbound, float cmax,
                                          float* __restrict__ bound, int* __restrict__ cand,
                                          int* __restrict__ count) {
    constexpr int WARPS = 8, THREADS = 256, NI = 4;  // warp tile 64 points x 32 centroids
    extern __shared__ __align__(16) float va_asm[];
    float* As = va_asm;                               // VA_FSTAGES x 128 x VA_FS
    float* Bs = va_asm + VA_FSTAGES * VA_FM * VA_FS;  // VA_FSTAGES x 128 x VA_FS
    __shared__ float s_min[VA_FM];                    // running minimum of v
    __shared__ float s_band[VA_FM];                   // 2 B (NaN: emit nothing)
    __shared__ float s_tile[WARPS / 2][VA_FM];        // the last tile's minima
    __shared__ int s_cnt[VA_FM];

    const int p0 = blockIdx.x * VA_FM;
    const int tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int wm = (warp / (WARPS / 2)) * 64;
    const int wcol = warp % (WARPS / 2);
    const int wn = wcol * NI * 8;
    const char* Xc = reinterpret_cast<const char*>(X);
    const char* Cc = reinterpret_cast<const char*>(C);

    // The band of each point (NaN past the end: nothing emitted) and the
    // start of its running minimum.
    for (int r = warp; r < VA_FM; r += WARPS) {
        const int p = p0 + r;
        float xn = va_nan();
        if (!MIN && p < n) xn = va_warp_sqnorm(X + (i64)p * ldx, d);
        if (lane == 0) {
            s_band[r] = va_assign_band(xn, cbound, cmax);
            s_min[r] = MIN || p >= n ? va_inf() : bound[p];
            s_cnt[r] = 0;
        }
    }

    const int nk = (d + VA_FK - 1) / VA_FK;
    const int steps = nk * ((k + VA_FN - 1) / VA_FN);
    // Step s multiplies depth slice s % nk of centroid tile s / nk.
    auto load = [&](int s) {
        const int tile = s / nk, kt = s - tile * nk;
        const int st = s % VA_FSTAGES;
        va_load_tile<VEC, THREADS, 4>(As + st * VA_FM * VA_FS, Xc, ldx, n, d, p0, kt * VA_FK);
        va_load_tile<VEC, THREADS, 4>(Bs + st * VA_FN * VA_FS, Cc, d, k, d, tile * VA_FN, kt * VA_FK);
    };
#pragma unroll
    for (int s0 = 0; s0 < VA_FSTAGES - 1; ++s0) {
        if (s0 < steps) load(s0);
        va_cp_commit();
    }

    float acc[4][NI][4];
    for (int s = 0; s < steps; ++s) {
        const int tile = s / nk, kt = s - tile * nk;
        if (kt == 0) {
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < NI; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
        }
        if (s + VA_FSTAGES - 1 < steps) load(s + VA_FSTAGES - 1);
        va_cp_commit();
        va_cp_wait<VA_FSTAGES - 1>();
        __syncthreads();
        const int st = s % VA_FSTAGES;
        va_mma_stage<VA_KIND_TF32, NI>(acc, As + st * VA_FM * VA_FS, Bs + st * VA_FN * VA_FS, wm, wn, lane);
        __syncthreads();
        if (kt != nk - 1) continue;

        // Epilogue of the tile: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t),
        // c3 (g+8, 2t+1). The threshold uses the minimum of the earlier
        // tiles (s_min) and of this thread's values in this tile: never
        // below the final minimum, so no candidate is missed.
        const int c0 = tile * VA_FN;
        float hc[NI][2];
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int c = c0 + wn + ni * 8 + 2 * t + e;
                hc[ni][e] = c < k ? h[c] : va_nan();  // NaN: never a minimum, never emitted
            }
#pragma unroll
        for (int mi = 0; mi < 4; ++mi)
#pragma unroll
            for (int hh = 0; hh < 2; ++hh) {
                const int r = wm + mi * 16 + g + hh * 8;
                float lo = va_inf();
#pragma unroll
                for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                    for (int e = 0; e < 2; ++e) lo = fminf(lo, hc[ni][e] - acc[mi][ni][hh * 2 + e]);
                const float m = fminf(s_min[r], lo);
                if (!MIN && m == -va_inf()) {
                    atomicMax(s_cnt + r, VA_ACAP + 1);  // overflow: the full exact scan
                } else if (!MIN) {
                    const float thr = m + s_band[r];
#pragma unroll
                    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                        for (int e = 0; e < 2; ++e)
                            if (hc[ni][e] - acc[mi][ni][hh * 2 + e] <= thr) {
                                const int slot = atomicAdd(s_cnt + r, 1);
                                if (slot < VA_ACAP)
                                    cand[(i64)(p0 + r) * VA_ACAP + slot] = c0 + wn + ni * 8 + 2 * t + e;
                            }
                }
                lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, 1));
                lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, 2));
                if (t == 0) s_tile[wcol][r] = lo;
            }
        __syncthreads();
        if (tid < VA_FM) {
            float m = s_min[tid];
#pragma unroll
            for (int w = 0; w < WARPS / 2; ++w) m = fminf(m, s_tile[w][tid]);
            s_min[tid] = m;
        }
        // The next read of s_min and write of s_tile are behind the next
        // step's barriers.
    }
    __syncthreads();
    if (tid < VA_FM && p0 + tid < n) {
        if (MIN)
            bound[p0 + tid] = s_min[tid];
        else
            count[p0 + tid] = s_cnt[tid];
    }
}

#define VA_ASSIGN_ARGS                                                                                \
    const float *__restrict__ X, i64 ldx, int n, const float *__restrict__ C, int k, int d,           \
        const float *__restrict__ h, float cbound, float cmax, float *__restrict__ bound,                 \
        int *__restrict__ cand, int *__restrict__ count
#define VA_ASSIGN_PASS X, ldx, n, C, k, d, h, cbound, cmax, bound, cand, count

extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_min_v4(VA_ASSIGN_ARGS) {
    va_assign<true, true>(VA_ASSIGN_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_min_v1(VA_ASSIGN_ARGS) {
    va_assign<false, true>(VA_ASSIGN_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_emit_v4(VA_ASSIGN_ARGS) {
    va_assign<true, false>(VA_ASSIGN_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_assign_tf32_emit_v1(VA_ASSIGN_ARGS) {
    va_assign<false, false>(VA_ASSIGN_PASS);
}

// One warp per point: the upper bound of its smallest TF32 value from a
// known centroid (k-means: the previous iteration's): the fp32 value
// h[c] - x.c plus the band 2 B, which covers its TF32 error and the fp32
// rounding; +inf for an id past k.
extern "C" __global__ void va_assign_hint(const float* __restrict__ X, i64 ldx, int n,
                                          const float* __restrict__ C, int k, int d,
                                          const float* __restrict__ h, float cbound, float cmax,
                                          const u32* __restrict__ hint, float* __restrict__ bound) {
    const i64 p = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (p >= n) return;
    const int lane = threadIdx.x & 31;
    const u32 c = hint[p];
    const float* x = X + p * ldx;
    const float xn = va_warp_sqnorm(x, d);
    if (c >= (u32)k) {
        if (lane == 0) bound[p] = va_inf();
        return;
    }
    const float* cv = C + (i64)c * d;
    float dot = 0.0f;
    for (int j = lane; j < d; j += 32) dot = fmaf(x[j], cv[j], dot);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
    if (lane == 0) bound[p] = (h[c] - dot) + va_assign_band(xn, cbound, cmax);
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

// k-means update: member sums without contended atomics, for `groups`
// independent problems at once (k-means: one group; product-quantizer
// training: one per sub-space). Element e = p * groups + j is the part of
// point p in group j (columns j * d .. (j + 1) * d) and belongs to the
// combined cluster j * k + ids[e]. Elements are grouped by combined cluster
// (counting sort: counts, offsets on the host, scatter), then each block
// sums a contiguous range of the grouped elements column by column in
// 64-bit fixed point (value * scale rounded; integer addition is
// associative, so the sums do not depend on the scatter's order).
extern "C" __global__ void va_count_members(const u32* __restrict__ ids, i64 n, int groups, int k,
                                            u64* __restrict__ counts) {
    const i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e < n) atomicAdd(counts + (i64)(e % groups) * k + ids[e], 1ull);
}

// perm[cursor[c]++] = e for each element e of combined cluster c (cursor
// starts at the cluster's offset).
extern "C" __global__ void va_scatter_members(const u32* __restrict__ ids, i64 n, int groups, int k,
                                              u64* __restrict__ cursor, i64* __restrict__ perm) {
    const i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e < n) perm[atomicAdd(cursor + (i64)(e % groups) * k + ids[e], 1ull)] = e;
}

// Block b sums grouped elements [b * span, (b + 1) * span): each thread owns
// columns, keeps a running sum while the combined cluster stays the same
// and adds it to sums[cluster * d + column] when it changes (a few atomics
// per block instead of one per value).
extern "C" __global__ void va_grouped_sums(const float* __restrict__ X, i64 ldx, int d, i64 n, int span,
                                           const i64* __restrict__ perm, const u32* __restrict__ ids,
                                           int groups, int k, float scale,
                                           unsigned long long* __restrict__ sums) {
    const i64 a = (i64)blockIdx.x * span;
    const i64 b = min(n, a + span);
    for (int col = threadIdx.x; col < d; col += blockDim.x) {
        long long s = 0;
        i64 cur = -1;
        for (i64 j = a; j < b; ++j) {
            const i64 e = perm[j];
            const int g = (int)(e % groups);
            const i64 c = (i64)g * k + ids[e];
            if (c != cur) {
                if (cur >= 0) atomicAdd(sums + cur * d + col, (unsigned long long)s);
                cur = c;
                s = 0;
            }
            s += __float2ll_rn(X[(e / groups) * ldx + (i64)g * d + col] * scale);
        }
        if (cur >= 0) atomicAdd(sums + cur * d + col, (unsigned long long)s);
    }
}

// Nearest centroid of each (row, sub-space): the k-means assignment in
// small sub-spaces (product-quantizer training and encoding). Squared L2
// summed in order (no fused multiply-add), ties to the smaller index. Rows have `ld`
// columns of which the first `dv` are data (zeros beyond); sub-space j
// covers columns j*ds .. (j+1)*ds. Grid (row blocks, m); centroids of the
// sub-space pass through shared memory in tiles of `tile` centroids.
extern "C" __global__ void va_nearest_centroid(const float* __restrict__ x, long long n, int ld,
                                               int dv, int m, int ds, int kc, int tile,
                                               const float* __restrict__ cent,
                                               u32* __restrict__ codes, float* __restrict__ dist) {
    extern __shared__ float sc[];
    int j = blockIdx.y;
    long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    bool live = r < n;
    const float* row = x + (live ? r : 0) * ld;
    float xr[32];
    bool in_regs = ds <= 32;
    if (in_regs) {
#pragma unroll
        for (int t = 0; t < 32; ++t) {
            int c = j * ds + t;
            xr[t] = (t < ds && c < dv && live) ? row[c] : 0.0f;
        }
    }
    const float* book = cent + (long long)j * kc * ds;
    float best = va_inf();
    int arg = 0;
    for (int c0 = 0; c0 < kc; c0 += tile) {
        int cn = min(tile, kc - c0);
        __syncthreads();
        for (int i = threadIdx.x; i < cn * ds; i += blockDim.x) sc[i] = book[(long long)c0 * ds + i];
        __syncthreads();
        if (!live) continue;
        for (int c = 0; c < cn; ++c) {
            const float* cv = sc + c * ds;
            float acc = 0.0f;
            if (in_regs) {
#pragma unroll
                for (int t = 0; t < 32; ++t) {
                    if (t < ds) {
                        float e = __fsub_rn(xr[t], cv[t]);
                        acc = __fadd_rn(acc, __fmul_rn(e, e));
                    }
                }
            } else {
                for (int t = 0; t < ds; ++t) {
                    int col = j * ds + t;
                    float xv = col < dv ? row[col] : 0.0f;
                    float e = __fsub_rn(xv, cv[t]);
                    acc = __fadd_rn(acc, __fmul_rn(e, e));
                }
            }
            if (acc < best) {
                best = acc;
                arg = c0 + c;
            }
        }
    }
    if (live) {
        codes[r * m + j] = (u32)arg;
        dist[r * m + j] = best;
    }
}

// Per-iteration k-means statistics without downloading the assignment:
// block b adds the distances of points [b * 4096, (b + 1) * 4096) in f64
// in a fixed order into partial[b] (the host adds the blocks in order:
// deterministic), counts the points whose id differs from prev (when
// given) into *changed, and keeps the smallest index of a non-finite
// distance in *bad (initialised to all ones).
#define VA_STATS_SPAN 4096
extern "C" __global__ void __launch_bounds__(256) va_lloyd_stats(const u32* __restrict__ ids,
                                                                  const u32* __restrict__ prev,
                                                                  const float* __restrict__ dist, i64 n,
                                                                  double* __restrict__ partial,
                                                                  unsigned long long* __restrict__ changed,
                                                                  unsigned long long* __restrict__ bad) {
    __shared__ double s[256];
    const i64 a = (i64)blockIdx.x * VA_STATS_SPAN;
    const i64 b = min(n, a + VA_STATS_SPAN);
    double acc = 0.0;
    unsigned int ch = 0;
    for (i64 p = a + threadIdx.x; p < b; p += blockDim.x) {
        const float v = dist[p];
        if (isfinite(v))
            acc += (double)v;
        else
            atomicMin(bad, (unsigned long long)p);
        if (prev != nullptr && prev[p] != ids[p]) ++ch;
    }
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int w = 128; w > 0; w >>= 1) {
        if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) ch += __shfl_xor_sync(0xffffffffu, ch, off);
    if ((threadIdx.x & 31) == 0 && ch) atomicAdd(changed, (unsigned long long)ch);
}
