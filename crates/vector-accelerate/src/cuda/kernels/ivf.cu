// IVF list scans: the distance from each query to every vector of its
// probed lists, one block per (query, probe) pair, one warp per list row
// (lanes stride over the dimension, so each row is read coalesced).
//
// The lists are packed: list l holds rows off[l] .. off[l+1] of `data`
// (row-major, `dim` floats each). Output row `pair = q * nprobe + j` has
// `width` entries: the distance of query q to row p of its j-th probed
// list at p, and `missing` past the list's end, for a missing probe, and
// for rows whose slot is not in the `allowed` bitset (when given).

__device__ __forceinline__ float va_ivf_finish(int metric, float a, float b, float qn) {
    switch (metric) {
    case VA_EUCLIDEAN: return sqrtf(a);
    case VA_ABS_IP: return fabsf(a);
    case VA_COSINE:
    case VA_COSINE_SIM: {
        const float den = __fmul_rn(qn, sqrtf(b));
        float c = den > 0.0f ? __fdiv_rn(a, den) : 0.0f;
        if (va_isnan(a) || va_isnan(b)) c = va_nan();
        else c = fminf(fmaxf(c, -1.0f), 1.0f);
        return metric == VA_COSINE ? __fsub_rn(1.0f, c) : c;
    }
    default: return a;
    }
}

// Exact rows: value t of row r.
struct VaIvfF32 {
    const float* __restrict__ data;
    i64 dim;
    __device__ __forceinline__ float at(u64 r, i64 t) const { return data[r * dim + t]; }
};

// Scalar codes of residuals (unsigned, int8: a byte per value; int4: two
// per byte, low nibble first): value t is (offset[t] + code * scale[t]) +
// centroid[t], the host decode's arithmetic. The three arrays are in
// shared memory.
template <int BITS>
struct VaIvfSq {
    const unsigned char* __restrict__ codes;
    i64 row_bytes;
    const float* off;
    const float* scale;
    const float* cent;
    __device__ __forceinline__ float at(u64 r, i64 t) const {
        const unsigned char* c = codes + r * row_bytes;
        const int code = BITS == 8 ? (int)c[t] : (int)((c[t >> 1] >> ((t & 1) * 4)) & 15);
        return __fadd_rn(__fadd_rn(off[t], __fmul_rn((float)code, scale[t])), cent[t]);
    }
};

// One block per (query, probe) pair, one warp per list row; the query is
// in shared memory `sq`. Rows come from the loader R.
template <class R>
__device__ void va_ivf_rows(const R rows, const float* sq, const float* __restrict__ qnorm,
                            const u64* __restrict__ off, const u32* __restrict__ probes,
                            const u64* __restrict__ slots, const u64* __restrict__ allowed,
                            i64 nprobe, i64 dim, i64 width, int metric, float missing,
                            float* __restrict__ out) {
    const i64 pair = blockIdx.x;
    const i64 qi = pair / nprobe;
    float* o = out + pair * width;
    const u32 list = probes[pair];
    const u64 start = list == 0xFFFFFFFFu ? 0 : off[list];
    const i64 len = list == 0xFFFFFFFFu ? 0 : (i64)(off[list + 1] - start);
    for (i64 p = len + threadIdx.x; p < width; p += blockDim.x) o[p] = missing;
    const float qn = qnorm ? qnorm[qi] : 0.0f;
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (i64 p = threadIdx.x >> 5; p < len; p += warps) {
        float a = 0.0f, b = 0.0f;
        for (i64 t = lane; t < dim; t += 32) {
            const float xv = rows.at(start + p, t), qv = sq[t];
            switch (metric) {
            case VA_L2:
            case VA_EUCLIDEAN: {
                const float d = __fsub_rn(qv, xv);
                a = __fmaf_rn(d, d, a);
                break;
            }
            case VA_L1: a = __fadd_rn(a, fabsf(__fsub_rn(qv, xv))); break;
            case VA_LINF: a = va_nan_max(a, fabsf(__fsub_rn(qv, xv))); break;
            default:
                a = __fmaf_rn(qv, xv, a);
                b = __fmaf_rn(xv, xv, b);
            }
        }
        for (int s = 16; s > 0; s >>= 1) {
            const float oa = __shfl_xor_sync(0xffffffffu, a, s);
            const float ob = __shfl_xor_sync(0xffffffffu, b, s);
            a = metric == VA_LINF ? va_nan_max(a, oa) : __fadd_rn(a, oa);
            b = __fadd_rn(b, ob);
        }
        if (lane == 0) {
            float v = va_ivf_finish(metric, a, b, qn);
            if (allowed) {
                const u64 s = slots[start + p];
                if (((allowed[s >> 6] >> (s & 63)) & 1ull) == 0) v = missing;
            }
            o[p] = v;
        }
    }
}

extern "C" __global__ void va_ivf_scan(const float* __restrict__ q, const float* __restrict__ qnorm,
                                       const float* __restrict__ data, const u64* __restrict__ off,
                                       const u32* __restrict__ probes, const u64* __restrict__ slots,
                                       const u64* __restrict__ allowed, i64 nprobe, i64 dim, i64 width,
                                       int metric, float missing, float* __restrict__ out) {
    extern __shared__ float sq[];
    const i64 qi = blockIdx.x / nprobe;
    for (i64 t = threadIdx.x; t < dim; t += blockDim.x) sq[t] = q[qi * dim + t];
    __syncthreads();
    const VaIvfF32 rows = {data, dim};
    va_ivf_rows(rows, sq, qnorm, off, probes, slots, allowed, nprobe, dim, width, metric, missing,
                out);
}

// Scalar-coded lists: `params` holds scale[dim] then offset[dim]; shared
// memory the query, offsets, scales and the probed list's centroid.
template <int BITS>
__device__ void va_ivf_sq(const float* __restrict__ q, const float* __restrict__ qnorm,
                          const unsigned char* __restrict__ codes, const float* __restrict__ cent,
                          const float* __restrict__ params, const u64* __restrict__ off,
                          const u32* __restrict__ probes, const u64* __restrict__ slots,
                          const u64* __restrict__ allowed, i64 nprobe, i64 dim, i64 width,
                          int metric, float missing, float* __restrict__ out) {
    extern __shared__ float sm[];
    float *sq = sm, *so = sm + dim, *ss = sm + 2 * dim, *sc = sm + 3 * dim;
    const i64 qi = blockIdx.x / nprobe;
    const u32 list = probes[blockIdx.x];
    for (i64 t = threadIdx.x; t < dim; t += blockDim.x) {
        sq[t] = q[qi * dim + t];
        ss[t] = params[t];
        so[t] = params[dim + t];
        sc[t] = list == 0xFFFFFFFFu ? 0.0f : cent[(i64)list * dim + t];
    }
    __syncthreads();
    const VaIvfSq<BITS> rows = {codes, BITS == 8 ? dim : (dim + 1) / 2, so, ss, sc};
    va_ivf_rows(rows, sq, qnorm, off, probes, slots, allowed, nprobe, dim, width, metric, missing,
                out);
}

#define VA_IVF_SQ(NAME, BITS)                                                                      \
    extern "C" __global__ void NAME(                                                               \
        const float* __restrict__ q, const float* __restrict__ qnorm,                              \
        const unsigned char* __restrict__ codes, const float* __restrict__ cent,                   \
        const float* __restrict__ params, const u64* __restrict__ off,                             \
        const u32* __restrict__ probes, const u64* __restrict__ slots,                             \
        const u64* __restrict__ allowed, i64 nprobe, i64 dim, i64 width, int metric,               \
        float missing, float* __restrict__ out) {                                                  \
        va_ivf_sq<BITS>(q, qnorm, codes, cent, params, off, probes, slots, allowed, nprobe, dim,   \
                        width, metric, missing, out);                                              \
    }
VA_IVF_SQ(va_ivf_scan_sq8, 8)
VA_IVF_SQ(va_ivf_scan_sq4, 4)

// Product-coded lists (8-bit codes, `m` bytes per row; `books`: m x 256 x
// dsub): one block per (query, probe) builds the pair's lookup table in
// shared memory (squared L2 from the query's residual to the list's
// centroid, or inner products with the query plus <q, centroid>), then a
// thread per row adds up its m entries. For cosine a second table gives
// |x|^2 of the decoded row x = c + r: |c|^2 + sum over sub-spaces of
// <b, 2 c_j + b> for its codeword b.
extern "C" __global__ void va_ivf_scan_pq8(const float* __restrict__ q,
                                           const float* __restrict__ qnorm,
                                           const unsigned char* __restrict__ codes,
                                           const float* __restrict__ cent,
                                           const float* __restrict__ books,
                                           const u64* __restrict__ off,
                                           const u32* __restrict__ probes,
                                           const u64* __restrict__ slots,
                                           const u64* __restrict__ allowed, i64 nprobe, i64 dim,
                                           i64 m, i64 width, int metric, float missing,
                                           float* __restrict__ out) {
    extern __shared__ float sm[];
    float *lut = sm, *qr = sm + m * 256, *lutn = qr + dim;
    __shared__ float part[32], partc[32];
    const i64 pair = blockIdx.x, qi = pair / nprobe;
    float* o = out + pair * width;
    const u32 list = probes[pair];
    if (list == 0xFFFFFFFFu) {
        for (i64 p = threadIdx.x; p < width; p += blockDim.x) o[p] = missing;
        return;
    }
    const bool l2 = metric == VA_L2 || metric == VA_EUCLIDEAN;
    const bool cosm = metric == VA_COSINE || metric == VA_COSINE_SIM;
    const float* cl = cent + (i64)list * dim;
    float dot = 0.0f, cc = 0.0f;
    for (i64 t = threadIdx.x; t < dim; t += blockDim.x) {
        const float qv = q[qi * dim + t], c = cl[t];
        qr[t] = l2 ? __fsub_rn(qv, c) : qv;
        dot = __fmaf_rn(qv, c, dot);
        cc = __fmaf_rn(c, c, cc);
    }
    for (int s = 16; s > 0; s >>= 1) {
        dot += __shfl_xor_sync(0xffffffffu, dot, s);
        cc += __shfl_xor_sync(0xffffffffu, cc, s);
    }
    if ((threadIdx.x & 31) == 0) {
        part[threadIdx.x >> 5] = dot;
        partc[threadIdx.x >> 5] = cc;
    }
    __syncthreads();
    float base = 0.0f, cnorm = 0.0f;
    for (int w = 0; w < (int)(blockDim.x >> 5); ++w) {
        base += part[w];
        cnorm += partc[w];
    }
    const i64 dsub = dim / m;
    for (i64 e = threadIdx.x; e < m * 256; e += blockDim.x) {
        const float* cb = books + e * dsub;
        const float* qs = qr + (e >> 8) * dsub;
        const float* cs = cl + (e >> 8) * dsub;
        float acc = 0.0f, nn = 0.0f;
        for (i64 i = 0; i < dsub; ++i) {
            const float d = l2 ? __fsub_rn(qs[i], cb[i]) : qs[i];
            acc = __fmaf_rn(d, l2 ? d : cb[i], acc);
            if (cosm) nn = __fmaf_rn(cb[i], __fmaf_rn(2.0f, cs[i], cb[i]), nn);
        }
        lut[e] = acc;
        if (cosm) lutn[e] = nn;
    }
    __syncthreads();
    const u64 start = off[list];
    const i64 len = (i64)(off[list + 1] - start);
    for (i64 p = len + threadIdx.x; p < width; p += blockDim.x) o[p] = missing;
    const float qn = qnorm ? qnorm[qi] : 0.0f;
    for (i64 p = threadIdx.x; p < len; p += blockDim.x) {
        const unsigned char* c = codes + (start + p) * m;
        float acc = 0.0f, xn = cnorm;
        for (i64 j = 0; j < m; ++j) {
            acc = __fadd_rn(acc, lut[j * 256 + c[j]]);
            if (cosm) xn = __fadd_rn(xn, lutn[j * 256 + c[j]]);
        }
        float v;
        switch (metric) {
        case VA_L2: v = acc; break;
        case VA_EUCLIDEAN: v = sqrtf(fmaxf(acc, 0.0f)); break;
        case VA_COSINE:
        case VA_COSINE_SIM: {
            const float den = __fmul_rn(qn, sqrtf(fmaxf(xn, 0.0f)));
            const float s = den > 0.0f ? fminf(fmaxf(__fadd_rn(base, acc) / den, -1.0f), 1.0f) : 0.0f;
            v = metric == VA_COSINE ? __fsub_rn(1.0f, s) : s;
            break;
        }
        default: v = __fadd_rn(base, acc);
        }
        if (allowed) {
            const u64 s = slots[start + p];
            if (((allowed[s >> 6] >> (s & 63)) & 1ull) == 0) v = missing;
        }
        o[p] = v;
    }
}

// `n` floats of `out` set to `value`.
extern "C" __global__ void va_ivf_fill(float* __restrict__ out, i64 n, float value) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        out[i] = value;
}

// The list-grouped scan: a block takes one list and up to GQ of the
// queries that probe it (work item w: list wlist[w], queries
// gq[wstart[w] .. wstart[w] + wcount[w]) with their probe ranks gj[...]),
// and computes the GQ x GR distance tiles of those queries against the
// list's rows, VA_GK dimensions at a time through shared memory, 4 x 4
// pairs per thread (256 threads: GR / 4 along the rows, GQ / 4 along the
// queries). A list is read once per GQ queries that probe it. Two shapes:
// 64 x 64 for lists probed by many queries, 16 x 256 for a few.
// Entries it does not write keep the value va_ivf_fill put there. One
// kernel per metric (M), so the inner loop has no branch.
#define VA_GK 16

template <int M>
__device__ __forceinline__ void va_ivf_pair(float a, float b, float& acc) {
    if (M == VA_L2) {
        const float t = __fsub_rn(a, b);
        acc = __fmaf_rn(t, t, acc);
    } else if (M == VA_L1) {
        acc = __fadd_rn(acc, fabsf(__fsub_rn(a, b)));
    } else if (M == VA_LINF) {
        acc = va_nan_max(acc, fabsf(__fsub_rn(a, b)));
    } else {
        acc = __fmaf_rn(a, b, acc);
    }
}

struct VaIvfGroups {
    const u32* list;
    const u32* start;
    const u32* count;
    const u32* query;
    const u32* rank;
};

// M: VA_L2 (also Euclidean), VA_L1, VA_LINF, or VA_IP (every dot metric:
// inner product, its absolute value, cosine); `metric` is the exact one.
template <int M, int GQ, int GR>
__device__ void va_ivf_grouped(const float* __restrict__ q, const float* __restrict__ qnorm,
                               const float* __restrict__ data, const u64* __restrict__ off,
                               const u64* __restrict__ slots, const u64* __restrict__ allowed,
                               VaIvfGroups g, i64 nprobe, i64 dim, i64 width, int metric,
                               float missing, float* __restrict__ out) {
    __shared__ float sq[GQ][VA_GK + 1];
    __shared__ float sx[GR][VA_GK + 1];
    constexpr int TX = GR / 4;
    const u32 w = blockIdx.x;
    const u32 list = g.list[w], s0 = g.start[w];
    const int nqt = (int)g.count[w];
    const u64 start = off[list];
    const i64 len = (i64)(off[list + 1] - start);
    const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
    for (i64 r0 = 0; r0 < len; r0 += GR) {
        float acc[4][4], xx[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            xx[i] = 0.0f;
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
        }
        for (i64 d0 = 0; d0 < dim; d0 += VA_GK) {
#pragma unroll
            for (int e = threadIdx.x; e < VA_GK * GQ; e += 256) {
                const int qq = e / VA_GK, dd = e % VA_GK;
                float v = 0.0f;
                if (qq < nqt && d0 + dd < dim) v = q[(i64)g.query[s0 + qq] * dim + d0 + dd];
                sq[qq][dd] = v;
            }
#pragma unroll
            for (int e = threadIdx.x; e < VA_GK * GR; e += 256) {
                const int rr = e / VA_GK, dd = e % VA_GK;
                float v = 0.0f;
                if (r0 + rr < len && d0 + dd < dim) v = data[(i64)(start + r0 + rr) * dim + d0 + dd];
                sx[rr][dd] = v;
            }
            __syncthreads();
#pragma unroll
            for (int dd = 0; dd < VA_GK; ++dd) {
                float a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    a[i] = sq[ty * 4 + i][dd];
                    b[i] = sx[tx * 4 + i][dd];
                }
#pragma unroll
                for (int j = 0; j < 4; ++j) {
                    if (M == VA_IP) xx[j] = __fmaf_rn(b[j], b[j], xx[j]);
#pragma unroll
                    for (int i = 0; i < 4; ++i) va_ivf_pair<M>(a[i], b[j], acc[i][j]);
                }
            }
            __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int qq = ty * 4 + i;
            if (qq >= nqt) continue;
            const u32 qi = g.query[s0 + qq];
            const float qn = qnorm ? qnorm[qi] : 0.0f;
            float* o = out + ((i64)qi * nprobe + g.rank[s0 + qq]) * width;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const i64 p = r0 + tx * 4 + j;
                if (p >= len) continue;
                float v = va_ivf_finish(metric, acc[i][j], xx[j], qn);
                if (allowed) {
                    const u64 s = slots[start + p];
                    if (((allowed[s >> 6] >> (s & 63)) & 1ull) == 0) v = missing;
                }
                o[p] = v;
            }
        }
    }
}

#define VA_IVF_GROUPED(NAME, M, GQ, GR)                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                              \
        NAME(const float* __restrict__ q, const float* __restrict__ qnorm,                         \
             const float* __restrict__ data, const u64* __restrict__ off,                          \
             const u64* __restrict__ slots, const u64* __restrict__ allowed,                       \
             const u32* __restrict__ wlist, const u32* __restrict__ wstart,                        \
             const u32* __restrict__ wcount, const u32* __restrict__ gq,                           \
             const u32* __restrict__ gj, i64 nprobe, i64 dim, i64 width, int metric,               \
             float missing, float* __restrict__ out) {                                             \
        const VaIvfGroups g = {wlist, wstart, wcount, gq, gj};                                     \
        va_ivf_grouped<M, GQ, GR>(q, qnorm, data, off, slots, allowed, g, nprobe, dim, width,      \
                                  metric, missing, out);                                           \
    }

VA_IVF_GROUPED(va_ivf_scan_grouped_l2, VA_L2, 64, 64)
VA_IVF_GROUPED(va_ivf_scan_grouped_l1, VA_L1, 64, 64)
VA_IVF_GROUPED(va_ivf_scan_grouped_linf, VA_LINF, 64, 64)
VA_IVF_GROUPED(va_ivf_scan_grouped_dot, VA_IP, 64, 64)
VA_IVF_GROUPED(va_ivf_scan_few_l2, VA_L2, 16, 256)
VA_IVF_GROUPED(va_ivf_scan_few_l1, VA_L1, 16, 256)
VA_IVF_GROUPED(va_ivf_scan_few_linf, VA_LINF, 16, 256)
VA_IVF_GROUPED(va_ivf_scan_few_dot, VA_IP, 16, 256)
