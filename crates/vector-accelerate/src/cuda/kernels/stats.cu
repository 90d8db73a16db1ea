// Statistics: moment accumulators, radix-selection histograms and sorted
// short segments (host side: cuda/stats.rs; reference: cpu/stats.rs).
//
// Moments: each thread accumulates power sums of its values shifted by a
// running shift, in blocks of VA_MOM_BLOCK values, converts each block to
// (count, mean, M2, M3, M4) and merges it into its running accumulator
// with the pairwise formulas (Chan / Pebay). The shift of a block is the
// running mean (the first finite value before there is one), so a mean
// large against the spread does not cancel. Accumulators are then merged
// by fixed trees: results do not change from run to run.
//
// Quantiles: values map to order-preserving u32 keys. Segments of up to
// 4096 values are sorted whole in shared memory (one block each); longer
// ones are radix-selected by counting passes over digits of 11, 11 and 10
// bits (va_radix_first, va_radix_refine) driven by the host.

#define VA_MOM_BLOCK 64

struct VaMom {
    double n, mean, m2, m3, m4;
    float mn, mx;
    u64 nf;
};

struct VaSums {
    double s1, s2, s3, s4;
    u32 k;
    float mn, mx;
    u64 nf;
};

__device__ __forceinline__ bool va_finite(float x) {
    return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u;
}

__device__ __forceinline__ VaMom va_mom_empty() {
    VaMom m;
    m.n = 0.0; m.mean = 0.0; m.m2 = 0.0; m.m3 = 0.0; m.m4 = 0.0;
    m.mn = va_inf(); m.mx = -va_inf(); m.nf = 0;
    return m;
}

__device__ __forceinline__ VaSums va_sums_empty() {
    VaSums s;
    s.k = 0; s.s1 = 0.0; s.s2 = 0.0; s.s3 = 0.0; s.s4 = 0.0;
    s.mn = va_inf(); s.mx = -va_inf(); s.nf = 0;
    return s;
}

// The accumulator of both sets (Moments::merge of ops/stats/moments.rs).
__device__ __forceinline__ VaMom va_mom_merge(const VaMom& a, const VaMom& b) {
    if (b.n == 0.0 || a.n == 0.0) {
        VaMom r = (b.n == 0.0) ? a : b;
        r.nf = a.nf + b.nf;
        return r;
    }
    double na = a.n, nb = b.n, n = na + nb;
    double delta = b.mean - a.mean, dn = delta / n, dn2 = dn * dn, nab = na * nb;
    VaMom r;
    r.n = n;
    r.mean = a.mean + dn * nb;
    r.m2 = a.m2 + b.m2 + delta * dn * nab;
    r.m3 = a.m3 + b.m3 + delta * dn2 * nab * (na - nb) + 3.0 * dn * (na * b.m2 - nb * a.m2);
    r.m4 = a.m4 + b.m4 + delta * dn2 * dn * nab * (na * na - nab + nb * nb) +
           6.0 * dn2 * (na * na * b.m2 + nb * nb * a.m2) + 4.0 * dn * (na * b.m3 - nb * a.m3);
    r.mn = fminf(a.mn, b.mn);
    r.mx = fmaxf(a.mx, b.mx);
    r.nf = a.nf + b.nf;
    return r;
}

// Central moments of shifted power sums (cpu::stats::Sums::moments) of k
// values (passed apart: a warp's total may exceed s.k's 32 bits).
__device__ __forceinline__ VaMom va_sums_moments(const VaSums& s, double k, double sh) {
    VaMom m = va_mom_empty();
    m.nf = s.nf;
    if (k == 0.0) return m;
    double a = s.s1 / k, a2 = a * a;
    m.n = k;
    m.mean = sh + a;
    m.m2 = fmax(s.s2 - s.s1 * a, 0.0);
    m.m3 = s.s3 - 3.0 * a * s.s2 + 2.0 * k * a2 * a;
    m.m4 = fmax(s.s4 - 4.0 * a * s.s3 + 6.0 * a2 * s.s2 - 3.0 * k * a2 * a2, 0.0);
    m.mn = s.mn;
    m.mx = s.mx;
    return m;
}

// One thread's running state: the merged accumulator, the open block of
// shifted sums, its shift and how many values it holds.
struct VaMomThread {
    VaMom acc;
    VaSums s;
    double sh;
    int in_block;

    __device__ __forceinline__ void init() {
        acc = va_mom_empty();
        s = va_sums_empty();
        sh = 0.0;
        in_block = 0;
    }
    __device__ __forceinline__ void push(float x) {
        if (va_finite(x)) {
            if (s.k == 0 && acc.n == 0.0) sh = (double)x;
            double y = (double)x - sh, y2 = y * y;
            s.k += 1;
            s.s1 += y;
            s.s2 += y2;
            s.s3 = fma(y2, y, s.s3);
            s.s4 = fma(y2, y2, s.s4);
            s.mn = fminf(s.mn, x);
            s.mx = fmaxf(s.mx, x);
        } else {
            s.nf += 1;
        }
    }
    // Counts k values pushed; closes the block when it is full.
    __device__ __forceinline__ void step(int k) {
        in_block += k;
        if (in_block >= VA_MOM_BLOCK) flush();
    }
    __device__ __forceinline__ void flush() {
        acc = va_mom_merge(acc, va_sums_moments(s, (double)s.k, sh));
        s = va_sums_empty();
        if (acc.n > 0.0) sh = acc.mean;
        in_block = 0;
    }
    __device__ __forceinline__ VaMom finish() {
        flush();
        return acc;
    }
};

// Fixed shared-memory tree over blockDim.x (a power of two <= 256) states.
__device__ VaMom va_mom_block_merge(VaMom a) {
    __shared__ VaMom sh[256];
    sh[threadIdx.x] = a;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] = va_mom_merge(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    return sh[0];
}

// Whole-array partials: each block reduces a grid-stride share (16-byte
// loads when aligned); part[block].
extern "C" __global__ void __launch_bounds__(256) va_mom_flat_part(const float* x, i64 n, VaMom* part) {
    i64 tid = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 stride = (i64)gridDim.x * blockDim.x;
    VaMomThread t;
    t.init();
    bool vec = (((size_t)x) & 15) == 0;
    i64 n4 = vec ? n / 4 : 0;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    i64 i = tid;
    // Two 16-byte loads in flight per thread.
    for (; i + stride < n4; i += 2 * stride) {
        float4 v = x4[i], w = x4[i + stride];
        t.push(v.x);
        t.push(v.y);
        t.push(v.z);
        t.push(v.w);
        t.push(w.x);
        t.push(w.y);
        t.push(w.z);
        t.push(w.w);
        t.step(8);
    }
    for (; i < n4; i += stride) {
        float4 v = x4[i];
        t.push(v.x);
        t.push(v.y);
        t.push(v.z);
        t.push(v.w);
        t.step(4);
    }
    for (i64 i = n4 * 4 + tid; i < n; i += stride) {
        t.push(x[i]);
        t.step(1);
    }
    VaMom r = va_mom_block_merge(t.finish());
    if (threadIdx.x == 0) part[blockIdx.x] = r;
}

// Merges part[0..chunks) in a fixed order into out[0] (one block of 256).
extern "C" __global__ void __launch_bounds__(256) va_mom_final_one(const VaMom* part, i64 chunks, VaMom* out) {
    VaMom a = va_mom_empty();
    for (i64 k = threadIdx.x; k < chunks; k += 256) a = va_mom_merge(a, part[k]);
    VaMom r = va_mom_block_merge(a);
    if (threadIdx.x == 0) out[0] = r;
}

__device__ __forceinline__ VaMom va_mom_shfl_down(const VaMom& m, int o) {
    VaMom r;
    r.n = __shfl_down_sync(0xffffffffu, m.n, o);
    r.mean = __shfl_down_sync(0xffffffffu, m.mean, o);
    r.m2 = __shfl_down_sync(0xffffffffu, m.m2, o);
    r.m3 = __shfl_down_sync(0xffffffffu, m.m3, o);
    r.m4 = __shfl_down_sync(0xffffffffu, m.m4, o);
    r.mn = __shfl_down_sync(0xffffffffu, m.mn, o);
    r.mx = __shfl_down_sync(0xffffffffu, m.mx, o);
    r.nf = __shfl_down_sync(0xffffffffu, m.nf, o);
    return r;
}

__device__ __forceinline__ void va_sums_push(VaSums& s, float x, double sh) {
    if (va_finite(x)) {
        double y = (double)x - sh, y2 = y * y;
        s.k += 1;
        s.s1 += y;
        s.s2 += y2;
        s.s3 = fma(y2, y, s.s3);
        s.s4 = fma(y2, y2, s.s4);
        s.mn = fminf(s.mn, x);
        s.mx = fmaxf(s.mx, x);
    } else {
        s.nf += 1;
    }
}

// Per row: a warp per row. The lanes share one shift, the mean of the
// row's first (up to) 32 finite values, so their power sums add directly
// (a shuffle tree of sums, one conversion to moments per row) instead of
// merging 32 accumulators.
extern "C" __global__ void __launch_bounds__(256) va_mom_rows(const float* x, i64 rows, i64 dim, VaMom* out) {
    int lane = threadIdx.x & 31, warps = blockDim.x / 32;
    for (i64 r = (i64)blockIdx.x * warps + threadIdx.x / 32; r < rows; r += (i64)gridDim.x * warps) {
        const float* xr = x + r * dim;
        float f0 = lane < dim ? xr[lane] : 0.0f;
        bool ok = lane < dim && va_finite(f0);
        double sum = ok ? (double)f0 : 0.0;
        int cnt = ok ? 1 : 0;
        for (int o = 16; o > 0; o >>= 1) {
            sum += __shfl_xor_sync(0xffffffffu, sum, o);
            cnt += __shfl_xor_sync(0xffffffffu, cnt, o);
        }
        double sh = cnt ? sum / cnt : 0.0;
        VaSums s = va_sums_empty();
        i64 d4 = ((((size_t)xr) & 15) == 0) ? dim / 4 : 0;
        for (i64 j = lane; j < d4; j += 32) {
            float4 v = reinterpret_cast<const float4*>(xr)[j];
            va_sums_push(s, v.x, sh);
            va_sums_push(s, v.y, sh);
            va_sums_push(s, v.z, sh);
            va_sums_push(s, v.w, sh);
        }
        for (i64 j = d4 * 4 + lane; j < dim; j += 32) va_sums_push(s, xr[j], sh);
        u64 k = s.k;
        for (int o = 16; o > 0; o >>= 1) {
            k += __shfl_xor_sync(0xffffffffu, k, o);
            s.s1 += __shfl_xor_sync(0xffffffffu, s.s1, o);
            s.s2 += __shfl_xor_sync(0xffffffffu, s.s2, o);
            s.s3 += __shfl_xor_sync(0xffffffffu, s.s3, o);
            s.s4 += __shfl_xor_sync(0xffffffffu, s.s4, o);
            s.mn = fminf(s.mn, __shfl_xor_sync(0xffffffffu, s.mn, o));
            s.mx = fmaxf(s.mx, __shfl_xor_sync(0xffffffffu, s.mx, o));
            s.nf += __shfl_xor_sync(0xffffffffu, s.nf, o);
        }
        if (lane == 0) out[r] = va_sums_moments(s, (double)k, sh);
    }
}

// Column partials: block (32 columns x 8 row lanes) over rows
// [by * rpc, (by + 1) * rpc); part[by * dim + c]. Sixteen loads in flight
// per thread: the f64 accumulators hold occupancy to 50%, so each thread
// needs more bytes in flight than eight loads give.
extern "C" __global__ void __launch_bounds__(256) va_mom_cols_part(const float* x, i64 rows, i64 dim, i64 rpc,
                                                                   VaMom* part) {
    constexpr int U = 16, LANES = 8;
    __shared__ VaMom sh[LANES][32];
    i64 c = (i64)blockIdx.x * 32 + threadIdx.x;
    i64 r0 = (i64)blockIdx.y * rpc, r1 = min(rows, r0 + rpc);
    VaMomThread t;
    t.init();
    if (c < dim) {
        i64 r = r0 + threadIdx.y;
        for (; r + (U - 1) * LANES < r1; r += U * LANES) {
            float v[U];
#pragma unroll
            for (int u = 0; u < U; ++u) v[u] = x[(r + LANES * u) * dim + c];
#pragma unroll
            for (int u = 0; u < U; ++u) t.push(v[u]);
            t.step(U);
        }
        for (; r < r1; r += LANES) {
            t.push(x[r * dim + c]);
            t.step(1);
        }
    }
    sh[threadIdx.y][threadIdx.x] = t.finish();
    __syncthreads();
    if (threadIdx.y == 0 && c < dim) {
        VaMom a = sh[0][threadIdx.x];
        for (int i = 1; i < LANES; ++i) a = va_mom_merge(a, sh[i][threadIdx.x]);
        part[(i64)blockIdx.y * dim + c] = a;
    }
}

// Column c merges part[k * dim + c], k = 0..chunks, in order.
extern "C" __global__ void va_mom_cols_final(const VaMom* part, i64 chunks, i64 dim, VaMom* out) {
    i64 c = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    VaMom a = part[c];
    for (i64 k = 1; k < chunks; ++k) a = va_mom_merge(a, part[k * dim + c]);
    out[c] = a;
}

// ------------------------------------------------------------ quantiles

// Order-preserving key (ops::stats::quantile::key).
__device__ __forceinline__ u32 va_qkey(float x) {
    u32 b = __float_as_uint(x);
    return (b >> 31) ? ~b : (b | 0x80000000u);
}

__device__ __forceinline__ float va_qvalue(u32 k) {
    return __uint_as_float((k >> 31) ? (k & 0x7fffffffu) : ~k);
}

// Adds 1 to sh[id] for every lane with id >= 0 (lanes in `active` call
// it together): lanes with equal ids add once, through their leader.
__device__ __forceinline__ void va_count(u32* sh, int id, unsigned active) {
    if (id < 0) return;
    unsigned peers = __match_any_sync(active, id);
    int lane = threadIdx.x & 31;
    if (lane == __ffs(peers) - 1) atomicAdd(&sh[id], (u32)__popc(peers));
}

// The elements [lo, hi) of a segment, visited so that the 32 lanes of a
// warp always iterate together (tail lanes get valid = false): f(x, valid).
template <typename F>
__device__ __forceinline__ void va_visit(const float* s, i64 lo, i64 hi, F f) {
    bool vec = ((((size_t)(s + lo)) & 15) == 0);
    i64 n4 = vec ? (hi - lo) / 4 : 0;
    const float4* s4 = reinterpret_cast<const float4*>(s + lo);
    for (i64 b = 0; b < n4; b += blockDim.x) {
        i64 i = b + threadIdx.x;
        bool ok = i < n4;
        float4 v = ok ? s4[i] : make_float4(0.f, 0.f, 0.f, 0.f);
        f(v.x, ok);
        f(v.y, ok);
        f(v.z, ok);
        f(v.w, ok);
    }
    for (i64 b = lo + n4 * 4; b < hi; b += blockDim.x) {
        i64 i = b + threadIdx.x;
        bool ok = i < hi;
        f(ok ? s[i] : 0.0f, ok);
    }
}

// Pass 0: hist[seg * 2048 + top 11 bits of key] over the finite values of
// segment blockIdx.y (block x covers [bx * per, (bx + 1) * per)), and
// nf[seg] the non-finite ones. hist and nf are zeroed by the host.
extern "C" __global__ void __launch_bounds__(256) va_radix_first(const float* x, i64 len, i64 per, u64* hist,
                                                                 u64* nf) {
    __shared__ u32 sh[2048];
    __shared__ u32 shnf;
    for (int i = threadIdx.x; i < 2048; i += blockDim.x) sh[i] = 0;
    if (threadIdx.x == 0) shnf = 0;
    __syncthreads();
    i64 seg = blockIdx.y;
    const float* s = x + seg * len;
    i64 lo = (i64)blockIdx.x * per, hi = min(len, lo + per);
    u32 bad = 0;
    va_visit(s, lo, hi, [&](float v, bool ok) {
        bool fin = ok && va_finite(v);
        bad += (ok && !fin) ? 1u : 0u;
        unsigned active = __ballot_sync(0xffffffffu, fin);
        if (fin) va_count(sh, (int)(va_qkey(v) >> 21), active);
    });
    if (bad) atomicAdd(&shnf, bad);
    __syncthreads();
    for (int i = threadIdx.x; i < 2048; i += blockDim.x)
        if (sh[i]) atomicAdd(&hist[seg * 2048 + i], (u64)sh[i]);
    if (threadIdx.x == 0 && shnf) atomicAdd(&nf[seg], (u64)shnf);
}

// Pass 1 or 2: for segment s = blockIdx.y, the slots seg_first[s] ..
// seg_first[s + 1] (at most 96 KiB of counts: slots * 2^width * 4 bytes)
// each hold a key prefix `pre` (the key's bits above `shift + width`);
// hist[slot * 2^width + digit] counts the finite values with that prefix
// by their digit (key >> shift) & (2^width - 1). hist is zeroed by the host.
extern "C" __global__ void __launch_bounds__(512) va_radix_refine(const float* x, i64 len, i64 per,
                                                                  const u32* pre, const int* seg_first, int shift,
                                                                  int width, u64* hist) {
    extern __shared__ u32 shd[];
    __shared__ u32 spre[32];
    i64 seg = blockIdx.y;
    int f0 = seg_first[seg], ns = seg_first[seg + 1] - f0;
    if (ns == 0) return;
    int bins = 1 << width, top = shift + width;
    u32 mask = (u32)bins - 1u;
    for (int i = threadIdx.x; i < ns; i += blockDim.x) spre[i] = pre[f0 + i];
    for (int i = threadIdx.x; i < ns * bins; i += blockDim.x) shd[i] = 0;
    __syncthreads();
    const float* s = x + seg * len;
    i64 lo = (i64)blockIdx.x * per, hi = min(len, lo + per);
    va_visit(s, lo, hi, [&](float v, bool ok) {
        int id = -1;
        if (ok && va_finite(v)) {
            u32 k = va_qkey(v), p = k >> top;
            for (int j = 0; j < ns; ++j)
                if (spre[j] == p) {
                    id = j * bins + (int)((k >> shift) & mask);
                    break;
                }
        }
        unsigned active = __ballot_sync(0xffffffffu, id >= 0);
        va_count(shd, id, active);
    });
    __syncthreads();
    for (int i = threadIdx.x; i < ns * bins; i += blockDim.x)
        if (shd[i]) atomicAdd(&hist[(i64)f0 * bins + i], (u64)shd[i]);
}

// NumPy's linear interpolation between the values at ranks floor(h) and
// floor(h) + 1, h = (n - 1) q, each step rounded as on the host
// (ops::stats::quantile::{ranks, lerp}).
__device__ float va_quantile_of(const u32* keys, u64 n, double q) {
    double h = __dmul_rn((double)(n - 1), q);
    double lo = floor(h);
    u64 a = min((u64)lo, n - 1), b = min(a + 1, n - 1);
    double t = __dsub_rn(h, lo);
    double va = (double)va_qvalue(keys[a]), vb = (double)va_qvalue(keys[b]);
    double d = __dsub_rn(vb, va);
    double r = (t >= 0.5) ? __dsub_rn(vb, __dmul_rn(d, __dsub_rn(1.0, t))) : __dadd_rn(va, __dmul_rn(d, t));
    return (float)r;
}

// Short segments (len <= 4096): a block per segment sorts the finite keys
// in shared memory (bitonic; non-finite values become the largest key and
// are counted) and writes out[seg * nl + l] for every level, cnt[seg]
// (finite values) and nf[seg].
extern "C" __global__ void __launch_bounds__(512) va_quantile_sorted(const float* x, i64 nseg, i64 len,
                                                                     const double* levels, int nl, float* out,
                                                                     u64* cnt, u64* nf) {
    __shared__ u32 keys[4096];
    __shared__ u32 bad;
    int p = 1;
    while (p < len) p <<= 1;
    for (i64 seg = blockIdx.x; seg < nseg; seg += gridDim.x) {
        if (threadIdx.x == 0) bad = 0;
        __syncthreads();
        const float* s = x + seg * len;
        u32 mine = 0;
        for (int i = threadIdx.x; i < p; i += blockDim.x) {
            u32 k = 0xffffffffu;
            if (i < len) {
                float v = s[i];
                if (va_finite(v)) k = va_qkey(v);
                else ++mine;
            }
            keys[i] = k;
        }
        if (mine) atomicAdd(&bad, mine);
        __syncthreads();
        for (int k = 2; k <= p; k <<= 1) {
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int i = threadIdx.x; i < p; i += blockDim.x) {
                    int ij = i ^ j;
                    if (ij > i) {
                        u32 a = keys[i], b = keys[ij];
                        bool up = (i & k) == 0;
                        if (up ? (a > b) : (a < b)) {
                            keys[i] = b;
                            keys[ij] = a;
                        }
                    }
                }
                __syncthreads();
            }
        }
        u64 n = (u64)len - bad;
        for (int l = threadIdx.x; l < nl; l += blockDim.x)
            out[seg * nl + l] = (n == 0) ? va_nan() : va_quantile_of(keys, n, levels[l]);
        if (threadIdx.x == 0) {
            cnt[seg] = n;
            nf[seg] = bad;
        }
        __syncthreads();
    }
}

// For target t (a warp each): the digit of histogram slot[t] (bins counts,
// bins a multiple of 32) holding 0-based rank[t], and the rank within it
// (digit[t] = 0xffffffff when the histogram holds fewer values: a defect).
extern "C" __global__ void __launch_bounds__(256) va_radix_pick(const u64* hist, int bins, const u32* slot,
                                                                const u64* rank, i64 nt, u32* digit, u64* rest) {
    i64 t = ((i64)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (t >= nt) return;  // whole warps leave together
    const u64* h = hist + (i64)slot[t] * bins;
    int per = bins / 32;
    u64 mine = 0;
    for (int i = 0; i < per; ++i) mine += h[lane * per + i];
    u64 inc = mine;
    for (int o = 1; o < 32; o <<= 1) {
        u64 v = __shfl_up_sync(0xffffffffu, inc, o);
        if (lane >= o) inc += v;
    }
    u64 r = rank[t], before = inc - mine;
    bool here = r >= before && r < inc;
    if (__ballot_sync(0xffffffffu, here) == 0) {
        if (lane == 0) {
            digit[t] = 0xffffffffu;
            rest[t] = r;
        }
        return;
    }
    if (here) {
        for (int i = 0; i < per; ++i) {
            u64 c = h[lane * per + i];
            if (r < before + c) {
                digit[t] = (u32)(lane * per + i);
                rest[t] = r - before;
                break;
            }
            before += c;
        }
    }
}
