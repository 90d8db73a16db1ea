// Histograms and kernel density estimates (host side: cuda/histogram.rs).
//
// A value v finds its bin with the binning plan of ops::histogram::AxisPlan:
// a table t[0..bins] of f32 thresholds (t[i] is the smallest f32 >= edge i,
// so for a finite f32 v, v >= t[i] exactly when (double)v >= edge i) and
// hi, the largest f32 <= the last edge. Below t[0] or above hi is an
// outlier; otherwise the bin is the i with t[i] <= v < t[i + 1] (the last
// bin for v == hi), found from an arithmetic estimate corrected against
// the table (uniform, logarithmic) or by binary search (custom, adaptive).
// The CPU (cpu/histogram.rs) takes exactly the same steps, so counts agree.
//
// Counts: per-block u32 histograms in shared memory (`copies` interleaved
// copies, thread t adding to copy t % copies, so lanes of a warp that hit
// the same bin use different words), flushed once per block to the global
// u64 counts with integer atomics; bins that do not fit in shared memory
// use global u64 atomics directly. Integer addition is associative, so the
// counts do not depend on the schedule. The host keeps every block's share
// of one launch below 2^31 elements, so no u32 counter can wrap.

#define VA_HIST_THREADS 256

// Binning plan of one axis (ops::histogram::AxisPlan; cuda/histogram.rs
// `Axis`). mode: 0 uniform, 1 log, 2 search.
struct VaAxis {
    int bins;
    int mode;
    float off;
    float scale;
    float lo;  // t[0]
    float hi;
};

// Per-block statistics of the finite values (ops::histogram::Stats).
struct VaStat {
    double sum;
    u64 count;
    float min;
    float max;
};

__device__ __forceinline__ bool va_finite(float v) { return fabsf(v) <= 3.402823466e38f; }

// The i with t[i] <= v < t[i + 1] (i <= bins - 1) from an estimate f, for
// t[0] <= v <= hi. Same steps as AxisPlan::correct.
__device__ __forceinline__ int va_hist_correct(const float* t, int bins, float v, float f) {
    f = fminf(fmaxf(f, 0.0f), (float)(bins - 1));
    int i = (int)f;
    while (i > 0 && v < t[i]) --i;
    while (i < bins - 1 && v >= t[i + 1]) ++i;
    return i;
}

// Number of t[0..bins] that are <= v, minus one, at most bins - 1 (t
// non-decreasing; t[0] <= v). Same result as AxisPlan::search.
__device__ __forceinline__ int va_hist_search(const float* t, int bins, float v) {
    int first = 0, len = bins + 1;  // first index with t[index] > v
    while (len > 0) {
        int half = len >> 1;
        if (t[first + half] <= v) {
            first += half + 1;
            len -= half + 1;
        } else {
            len = half;
        }
    }
    int i = first - 1;
    return i < bins - 1 ? i : bins - 1;
}

// The bin of v with t[0] <= v <= hi.
template <int MODE>
__device__ __forceinline__ int va_hist_bin(const VaAxis& a, const float* t, float v) {
    if (MODE == 0) return va_hist_correct(t, a.bins, v, (v - a.off) * a.scale);
    if (MODE == 1) return va_hist_correct(t, a.bins, v, (log2f(v) - a.off) * a.scale);
    return va_hist_search(t, a.bins, v);
}

__device__ __forceinline__ int va_hist_bin_rt(const VaAxis& a, const float* t, float v) {
    if (a.mode == 0) return va_hist_bin<0>(a, t, v);
    if (a.mode == 1) return va_hist_bin<1>(a, t, v);
    return va_hist_bin<2>(a, t, v);
}

// Sums a per-thread u32 over the block and adds it to *dst (one atomic per
// warp with a non-zero sum).
__device__ __forceinline__ void va_hist_add_block(u32 v, u64* dst) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0 && v != 0) atomicAdd(dst, (u64)v);
}

// Dynamic shared memory: the threshold table (bins + 1 floats, padded to
// 16 bytes), then bins * copies u32 counters.
extern __shared__ __align__(16) unsigned char va_hist_smem[];

__device__ __forceinline__ int va_pad16(int bytes) { return (bytes + 15) & ~15; }

// 1-D histogram of x[0..n). t: the global threshold table; counts: bins
// u64; extra: below, above, non-finite (u64 each). copies == 0: no shared
// memory (global atomics, table read from global memory); else a power of
// two <= 32.
template <int MODE>
__device__ void va_hist_1d(const float* __restrict__ x, i64 n, const float* __restrict__ tg, VaAxis a,
                           int clip, int copies, u64* __restrict__ counts, u64* __restrict__ extra) {
    const bool sh = copies > 0;
    float* st = reinterpret_cast<float*>(va_hist_smem);
    u32* sc = reinterpret_cast<u32*>(va_hist_smem + va_pad16((a.bins + 1) * 4));
    if (sh) {
        for (int j = threadIdx.x; j <= a.bins; j += blockDim.x) st[j] = tg[j];
        for (int j = threadIdx.x; j < a.bins * copies; j += blockDim.x) sc[j] = 0u;
    }
    __syncthreads();
    const float* t = sh ? st : tg;
    const int copy = sh ? (int)(threadIdx.x & (copies - 1)) : 0;
    u32 below = 0, above = 0, bad = 0;
    auto put = [&](float v) {
        int i;
        if (!va_finite(v)) {
            ++bad;
            return;
        }
        if (v < a.lo) {
            ++below;
            if (!clip) return;
            i = 0;
        } else if (v > a.hi) {
            ++above;
            if (!clip) return;
            i = a.bins - 1;
        } else {
            i = va_hist_bin<MODE>(a, t, v);
        }
        if (sh)
            atomicAdd(&sc[i * copies + copy], 1u);
        else
            atomicAdd(&counts[i], 1ull);
    };
    const i64 tid = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    const bool vec = (((size_t)x) & 15) == 0;
    const i64 n4 = vec ? n / 4 : 0;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    i64 i = tid;
    // Two 16-byte loads in flight per thread, then the rest one at a time.
    for (; i + stride < n4; i += 2 * stride) {
        float4 p = __ldg(&x4[i]);
        float4 q = __ldg(&x4[i + stride]);
        put(p.x);
        put(p.y);
        put(p.z);
        put(p.w);
        put(q.x);
        put(q.y);
        put(q.z);
        put(q.w);
    }
    for (; i < n4; i += stride) {
        float4 p = __ldg(&x4[i]);
        put(p.x);
        put(p.y);
        put(p.z);
        put(p.w);
    }
    for (i64 k = n4 * 4 + tid; k < n; k += stride) put(__ldg(&x[k]));
    __syncthreads();
    if (sh) {
        for (int j = threadIdx.x; j < a.bins; j += blockDim.x) {
            u64 s = 0;
            for (int c = 0; c < copies; ++c) s += sc[j * copies + c];
            if (s) atomicAdd(&counts[j], s);
        }
    }
    va_hist_add_block(below, &extra[0]);
    va_hist_add_block(above, &extra[1]);
    va_hist_add_block(bad, &extra[2]);
}

#define VA_HIST_1D(MODE, NAME)                                                                    \
    extern "C" __global__ void __launch_bounds__(VA_HIST_THREADS)                                 \
        va_hist_1d_##NAME(const float* x, i64 n, const float* t, VaAxis a, int clip, int copies,  \
                          u64* counts, u64* extra) {                                              \
        va_hist_1d<MODE>(x, n, t, a, clip, copies, counts, extra);                                \
    }

VA_HIST_1D(0, uniform)
VA_HIST_1D(1, log)
VA_HIST_1D(2, search)

// 2-D histogram of the pairs (x[k], y[k]), k < n: cells row-major
// [ax.bins x ay.bins]. extra: outside, non-finite. copies == 0: global
// atomics and tables; else shared tables (x then y, each padded to 16
// bytes) and cells * copies u32 counters.
extern "C" __global__ void __launch_bounds__(VA_HIST_THREADS)
    va_hist_2d(const float* __restrict__ x, const float* __restrict__ y, i64 n,
               const float* __restrict__ tgx, const float* __restrict__ tgy, VaAxis ax, VaAxis ay,
               int clip, int copies, u64* __restrict__ counts, u64* __restrict__ extra) {
    const bool sh = copies > 0;
    const int cells = ax.bins * ay.bins;
    const int offy = va_pad16((ax.bins + 1) * 4);
    const int offc = offy + va_pad16((ay.bins + 1) * 4);
    float* stx = reinterpret_cast<float*>(va_hist_smem);
    float* sty = reinterpret_cast<float*>(va_hist_smem + offy);
    u32* sc = reinterpret_cast<u32*>(va_hist_smem + offc);
    if (sh) {
        for (int j = threadIdx.x; j <= ax.bins; j += blockDim.x) stx[j] = tgx[j];
        for (int j = threadIdx.x; j <= ay.bins; j += blockDim.x) sty[j] = tgy[j];
        for (int j = threadIdx.x; j < cells * copies; j += blockDim.x) sc[j] = 0u;
    }
    __syncthreads();
    const float* tx = sh ? stx : tgx;
    const float* ty = sh ? sty : tgy;
    const int copy = sh ? (int)(threadIdx.x & (copies - 1)) : 0;
    u32 outside = 0, bad = 0;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 k = (i64)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        const float u = __ldg(&x[k]), v = __ldg(&y[k]);
        if (!va_finite(u) || !va_finite(v)) {
            ++bad;
            continue;
        }
        const bool ux = u < ax.lo || u > ax.hi;
        const bool vy = v < ay.lo || v > ay.hi;
        if (ux || vy) {
            ++outside;
            if (!clip) continue;
        }
        const int i = u < ax.lo ? 0 : (u > ax.hi ? ax.bins - 1 : va_hist_bin_rt(ax, tx, u));
        const int j = v < ay.lo ? 0 : (v > ay.hi ? ay.bins - 1 : va_hist_bin_rt(ay, ty, v));
        const int c = i * ay.bins + j;
        if (sh)
            atomicAdd(&sc[c * copies + copy], 1u);
        else
            atomicAdd(&counts[c], 1ull);
    }
    __syncthreads();
    if (sh) {
        for (int j = threadIdx.x; j < cells; j += blockDim.x) {
            u64 s = 0;
            for (int c = 0; c < copies; ++c) s += sc[j * copies + c];
            if (s) atomicAdd(&counts[j], s);
        }
    }
    va_hist_add_block(outside, &extra[0]);
    va_hist_add_block(bad, &extra[1]);
}

// Per-block statistics of the finite values of x[0..n) (only v > 0 when
// positive): count, min, max, and the sum in f64 (a fixed tree per block;
// the host adds the blocks in order).
extern "C" __global__ void __launch_bounds__(VA_HIST_THREADS)
    va_hist_stats(const float* __restrict__ x, i64 n, int positive, VaStat* __restrict__ part) {
    __shared__ double ss[VA_HIST_THREADS];
    __shared__ u64 sn[VA_HIST_THREADS];
    __shared__ float smin[VA_HIST_THREADS];
    __shared__ float smax[VA_HIST_THREADS];
    double s = 0.0;
    u64 cnt = 0;
    float lo = va_inf(), hi = -va_inf();
    auto push = [&](float v) {
        if (va_finite(v) && (!positive || v > 0.0f)) {
            ++cnt;
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
            s = __dadd_rn(s, (double)v);
        }
    };
    const i64 tid = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    const bool vec = (((size_t)x) & 15) == 0;
    const i64 n4 = vec ? n / 4 : 0;
    for (i64 i = tid; i < n4; i += stride) {
        float4 p = __ldg(&reinterpret_cast<const float4*>(x)[i]);
        push(p.x);
        push(p.y);
        push(p.z);
        push(p.w);
    }
    for (i64 k = n4 * 4 + tid; k < n; k += stride) push(__ldg(&x[k]));
    ss[threadIdx.x] = s;
    sn[threadIdx.x] = cnt;
    smin[threadIdx.x] = lo;
    smax[threadIdx.x] = hi;
    __syncthreads();
    for (int w = VA_HIST_THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) {
            ss[threadIdx.x] = __dadd_rn(ss[threadIdx.x], ss[threadIdx.x + w]);
            sn[threadIdx.x] += sn[threadIdx.x + w];
            smin[threadIdx.x] = fminf(smin[threadIdx.x], smin[threadIdx.x + w]);
            smax[threadIdx.x] = fmaxf(smax[threadIdx.x], smax[threadIdx.x + w]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        VaStat r;
        r.sum = ss[0];
        r.count = sn[0];
        r.min = smin[0];
        r.max = smax[0];
        part[blockIdx.x] = r;
    }
}

// Per-block sum of (v - mean)^2 over the finite values of x[0..n) (a
// fixed tree per block; the host adds the blocks in order).
extern "C" __global__ void __launch_bounds__(VA_HIST_THREADS)
    va_hist_sq_dev(const float* __restrict__ x, i64 n, double mean, double* __restrict__ part) {
    __shared__ double ss[VA_HIST_THREADS];
    double s = 0.0;
    const i64 stride = (i64)gridDim.x * blockDim.x;
    for (i64 k = (i64)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += stride) {
        const float v = __ldg(&x[k]);
        if (va_finite(v)) {
            const double d = __dsub_rn((double)v, mean);
            s = __dadd_rn(s, __dmul_rn(d, d));
        }
    }
    ss[threadIdx.x] = s;
    __syncthreads();
    for (int w = VA_HIST_THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) ss[threadIdx.x] = __dadd_rn(ss[threadIdx.x], ss[threadIdx.x + w]);
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = ss[0];
}

// Kernel density sums, first stage: part[c * g + j] = sum over the finite
// elements i of chunk c (elements c * chunk .. min(n, (c + 1) * chunk)), in
// element order, of exp(-0.5 * u * u) with u = (grid[j] - x[i]) / h. One
// thread per grid value (blockIdx.x), one chunk per blockIdx.y; the chunk's
// elements pass through shared memory 256 at a time. Every operation is
// rounded on its own (no FMA), as on the CPU (cpu::histogram::kde_sums).
extern "C" __global__ void __launch_bounds__(VA_HIST_THREADS)
    va_kde_part(const float* __restrict__ x, i64 n, i64 chunk, const double* __restrict__ grid, i64 g,
                double h, double* __restrict__ part) {
    __shared__ float sx[VA_HIST_THREADS];
    const i64 j = (i64)blockIdx.x * VA_HIST_THREADS + threadIdx.x;
    const i64 c = blockIdx.y;
    const i64 s0 = c * chunk;
    const i64 s1 = min(n, s0 + chunk);
    const double gj = j < g ? grid[j] : 0.0;
    double s = 0.0;
    for (i64 b = s0; b < s1; b += VA_HIST_THREADS) {
        const i64 k = b + threadIdx.x;
        sx[threadIdx.x] = k < s1 ? x[k] : va_nan();
        __syncthreads();
        const int m = (int)min((i64)VA_HIST_THREADS, s1 - b);
        for (int q = 0; q < m; ++q) {
            const float v = sx[q];
            if (va_finite(v)) {
                const double u = __ddiv_rn(__dsub_rn(gj, (double)v), h);
                s = __dadd_rn(s, exp(__dmul_rn(-0.5, __dmul_rn(u, u))));
            }
        }
        __syncthreads();
    }
    if (j < g) part[c * g + j] = s;
}

// Second stage: out[j] = sum of part[c * g + j] over c = 0..chunks in
// order.
extern "C" __global__ void va_kde_final(const double* __restrict__ part, i64 chunks, i64 g,
                                        double* __restrict__ out) {
    const i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= g) return;
    double s = part[j];
    for (i64 c = 1; c < chunks; ++c) s = __dadd_rn(s, part[c * g + j]);
    out[j] = s;
}
