// Vector utilities: element-wise chains and broadcast binary operations
// (grid-stride, 16-byte loads when aligned), row L2 normalisation,
// reductions over everything / rows / columns, row log-sum-exp and softmax.
// Every reduction combines partial results in a fixed order (fixed trees,
// no atomics), so a result does not change from run to run. The formulas
// are those of the host's cpu::vector; each arithmetic step is rounded on
// its own (__f*_rn: no FMA contraction) so element-wise results match the
// CPU bit for bit where no math-library function is involved.

#define VA_MAX_CHAIN 8
#define VA_NONE 0xFFFFFFFFFFFFFFFFull

// A chain of unary steps (ops::vector::Unary codes of cuda/vector.rs).
struct VaChain {
    int len;
    int op[VA_MAX_CHAIN];
    float a[VA_MAX_CHAIN];
    float b[VA_MAX_CHAIN];
};

__device__ __forceinline__ float va_unary(int op, float x, float a, float b) {
    switch (op) {
    case 0: return __fadd_rn(x, a);
    case 1: return __fmul_rn(x, a);
    case 2: return powf(x, a);
    case 3: return x < a ? a : (x > b ? b : x);
    case 4: return fabsf(x);
    case 5: return __fmul_rn(x, x);
    case 6: return __fsqrt_rn(x);
    case 7: return __fdiv_rn(1.0f, x);
    case 8: return -x;
    case 9: return expf(x);
    case 10: return logf(x);
    case 11: return sinf(x);
    case 12: return cosf(x);
    case 13: return tanf(x);
    case 14: return tanhf(x);
    case 15: return va_sigmoid(x);
    case 16: return (x > 0.0f || x != x) ? x : 0.0f;
    case 17: return __fmul_rn(__fmul_rn(0.5f, x), erfcf(__fmul_rn(-x, 0.70710678118654752f)));
    }
    return x;
}

// The chain applied to one value, or to four (each step decoded once for
// the four). Steps are not unrolled: one copy of the operation switch per
// call site keeps the kernel small (an unrolled 8-step chain of 18-way
// switches for 4 lanes thrashed the instruction cache).
__device__ __forceinline__ float va_chain(const VaChain& c, float x) {
#pragma unroll 1
    for (int s = 0; s < c.len; ++s) x = va_unary(c.op[s], x, c.a[s], c.b[s]);
    return x;
}

__device__ __forceinline__ float4 va_chain4(const VaChain& c, float4 v) {
#pragma unroll 1
    for (int s = 0; s < c.len; ++s) {
        const int op = c.op[s];
        const float a = c.a[s], b = c.b[s];
        v.x = va_unary(op, v.x, a, b);
        v.y = va_unary(op, v.y, a, b);
        v.z = va_unary(op, v.z, a, b);
        v.w = va_unary(op, v.w, a, b);
    }
    return v;
}

// The chain argument copied to shared memory once per block (indexed by a
// run-time step there, not in the parameter space).
#define VA_SHARED_CHAIN(c)                     \
    __shared__ VaChain sc;                     \
    if (threadIdx.x == 0) sc = c;              \
    __syncthreads();

// Binary codes of cuda/vector.rs: add, sub, mul, div, pow, max, min
// (max / min propagate NaN and return the left value on equality).
__device__ __forceinline__ float va_binary(int op, float x, float y) {
    switch (op) {
    case 0: return __fadd_rn(x, y);
    case 1: return __fsub_rn(x, y);
    case 2: return __fmul_rn(x, y);
    case 3: return __fdiv_rn(x, y);
    case 4: return powf(x, y);
    case 5: return (x != x) ? x : ((y != y || y > x) ? y : x);
    case 6: return (x != x) ? x : ((y != y || y < x) ? y : x);
    }
    return x;
}

// In-place transpose of an n x n row-major matrix: thread (i, j) with j > i
// swaps a[i][j] and a[j][i], so each pair is swapped exactly once.
extern "C" __global__ void va_transpose_square_f32(float* a, i64 n) {
    i64 j = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 i = (i64)blockIdx.y * blockDim.y + threadIdx.y;
    if (i < n && j < n && j > i) {
        float t = a[i * n + j];
        a[i * n + j] = a[j * n + i];
        a[j * n + i] = t;
    }
}

// y = chain(x) over n elements; x == y is allowed (in place).
extern "C" __global__ void va_map_f32(const float* x, float* y, i64 n, VaChain chain) {
    VA_SHARED_CHAIN(chain);
    const VaChain& c = sc;
    i64 tid = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 stride = (i64)gridDim.x * blockDim.x;
    bool vec = ((((size_t)x) | ((size_t)y)) & 15) == 0;
    i64 n4 = vec ? n / 4 : 0;
    for (i64 i = tid; i < n4; i += stride) {
        reinterpret_cast<float4*>(y)[i] = va_chain4(c, reinterpret_cast<const float4*>(x)[i]);
    }
    for (i64 i = n4 * 4 + tid; i < n; i += stride) y[i] = va_chain(c, x[i]);
}

// y[i, j] = chain(op(a[i, j], rhs)) over [rows x dim], rhs = scalar when b is
// null, else b[i * brs + j * bcs] (strides 0 along broadcast axes). y == a
// is allowed.
extern "C" __global__ void va_binary_f32(const float* a, const float* b, float* y, i64 rows,
                                         i64 dim, i64 brs, i64 bcs, float scalar, int op,
                                         VaChain chain) {
    VA_SHARED_CHAIN(chain);
    const VaChain& c = sc;
    i64 tid = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 stride = (i64)gridDim.x * blockDim.x;
    i64 n = rows * dim;
    bool flat_b = (b != 0) && brs == dim && bcs == 1;  // same shape
    if (b == 0 || flat_b) {
        bool vec = ((((size_t)a) | ((size_t)y) | (flat_b ? (size_t)b : 0)) & 15) == 0;
        i64 n4 = vec ? n / 4 : 0;
        for (i64 i = tid; i < n4; i += stride) {
            float4 u = reinterpret_cast<const float4*>(a)[i];
            float4 w = flat_b ? reinterpret_cast<const float4*>(b)[i]
                              : make_float4(scalar, scalar, scalar, scalar);
            u.x = va_binary(op, u.x, w.x);
            u.y = va_binary(op, u.y, w.y);
            u.z = va_binary(op, u.z, w.z);
            u.w = va_binary(op, u.w, w.w);
            reinterpret_cast<float4*>(y)[i] = va_chain4(c, u);
        }
        for (i64 i = n4 * 4 + tid; i < n; i += stride)
            y[i] = va_chain(c, va_binary(op, a[i], flat_b ? b[i] : scalar));
        return;
    }
    // Broadcast with rows of a multiple of 4: 16-byte loads and stores of
    // a and y, one division per 4 elements.
    if (dim % 4 == 0 && n / 4 < 0x7fffffffll && ((((size_t)a) | ((size_t)y)) & 15) == 0) {
        const u32 d4 = (u32)(dim / 4);
        for (i64 q = tid; q < n / 4; q += stride) {
            const u32 r = (u32)q / d4;
            const i64 j = 4 * (q - (i64)r * d4);
            const float* br = b + (i64)r * brs + j * bcs;
            float4 u = reinterpret_cast<const float4*>(a)[q];
            u.x = va_binary(op, u.x, br[0]);
            u.y = va_binary(op, u.y, br[bcs]);
            u.z = va_binary(op, u.z, br[2 * bcs]);
            u.w = va_binary(op, u.w, br[3 * bcs]);
            reinterpret_cast<float4*>(y)[q] = va_chain4(c, u);
        }
        return;
    }
    bool small = n < 0x7fffffffll;
    for (i64 i = tid; i < n; i += stride) {
        i64 r = small ? (i64)((u32)i / (u32)dim) : i / dim;
        i64 j = i - r * dim;
        y[i] = va_chain(c, va_binary(op, a[i], b[r * brs + j * bcs]));
    }
}

// ------------------------------------------------------------ group helpers
// A group of T threads (32: one warp; 256: the whole block) handles a row.
// Results are combined by a fixed butterfly inside warps and a fixed
// sequential pass over the warps, so every thread of the group ends with the
// same bits.

__device__ __forceinline__ double va_warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int T>
__device__ __forceinline__ double va_group_sum(double v, double* sh) {
    v = va_warp_sum(v);
    if (T == 32) return v;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    double t = 0.0;
    for (int w = 0; w < T / 32; ++w) t += sh[w];
    return t;
}

// NaN-propagating maximum (commutative up to which NaN is kept).
__device__ __forceinline__ float va_max_nan(float a, float b) {
    return (b > a || b != b) ? b : a;
}

template <int T>
__device__ __forceinline__ float va_group_max(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v = va_max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (T == 32) return v;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = sh[0];
    for (int w = 1; w < T / 32; ++w) t = va_max_nan(t, sh[w]);
    return t;
}

// The elements j = lane, lane + T, ... of a row, f(j, x[j]) in a fixed
// order per lane: 16-byte loads of 4 consecutive elements per step when the
// row starts 16-byte aligned (every row when dim % 4 == 0).
template <int T, class F>
__device__ __forceinline__ void va_row_each(const float* xr, i64 dim, int lane, F f) {
    i64 d4 = ((((size_t)xr) & 15) == 0) ? dim >> 2 : 0;
    for (i64 q = lane; q < d4; q += T) {
        const float4 v = reinterpret_cast<const float4*>(xr)[q];
        f(4 * q, v.x);
        f(4 * q + 1, v.y);
        f(4 * q + 2, v.z);
        f(4 * q + 3, v.w);
    }
    for (i64 j = 4 * d4 + lane; j < dim; j += T) f(j, xr[j]);
}

// yr[j] = g(xr[j]) over a row, with 16-byte loads and stores when both rows
// start 16-byte aligned.
template <int T, class G>
__device__ __forceinline__ void va_row_map(const float* xr, float* yr, i64 dim, int lane, G g) {
    i64 d4 = (((((size_t)xr) | ((size_t)yr)) & 15) == 0) ? dim >> 2 : 0;
    for (i64 q = lane; q < d4; q += T) {
        float4 v = reinterpret_cast<const float4*>(xr)[q];
        v.x = g(v.x);
        v.y = g(v.y);
        v.z = g(v.z);
        v.w = g(v.w);
        reinterpret_cast<float4*>(yr)[q] = v;
    }
    for (i64 j = 4 * d4 + lane; j < dim; j += T) yr[j] = g(xr[j]);
}

// ------------------------------------------------------------ normalisation

// y[r] = x[r] * (1 / |x[r]|) (norm and inverse in f64), zero rows unchanged;
// norms[r] = |x[r]|. y == x is allowed.
template <int T>
__device__ void va_normalize(const float* x, float* y, float* norms, i64 rows, i64 dim) {
    __shared__ double sh[8];
    int lane = threadIdx.x % T, groups = blockDim.x / T;
    for (i64 r = (i64)blockIdx.x * groups + threadIdx.x / T; r < rows; r += (i64)gridDim.x * groups) {
        const float* xr = x + r * dim;
        double ss = 0.0;
        va_row_each<T>(xr, dim, lane, [&](i64, float f) {
            double v = (double)f;
            ss = __dadd_rn(ss, __dmul_rn(v, v));
        });
        ss = va_group_sum<T>(ss, sh);
        double norm = sqrt(ss);
        if (norm != 0.0) {
            double inv = 1.0 / norm;
            va_row_map<T>(xr, y + r * dim, dim, lane, [&](float f) { return (float)__dmul_rn((double)f, inv); });
        } else if (y != x) {
            va_row_map<T>(xr, y + r * dim, dim, lane, [](float f) { return f; });
        }
        if (lane == 0) norms[r] = (float)norm;
    }
}

extern "C" __global__ void va_normalize_warp(const float* x, float* y, float* norms, i64 rows, i64 dim) {
    va_normalize<32>(x, y, norms, rows, dim);
}
extern "C" __global__ void va_normalize_block(const float* x, float* y, float* norms, i64 rows, i64 dim) {
    va_normalize<256>(x, y, norms, rows, dim);
}

// Rows of at most 1,024 elements with dim % 4 == 0 (16-byte aligned): a warp
// per row holding it in registers (read once; the same per-lane order as
// va_normalize, so the same bits).
#define VA_NR_REGS 8
extern "C" __global__ void __launch_bounds__(256) va_normalize_warp_regs(const float* x, float* y, float* norms,
                                                                         i64 rows, i64 dim) {
    if ((((size_t)x) | ((size_t)y)) & 15) {
        va_normalize<32>(x, y, norms, rows, dim);
        return;
    }
    const int lane = threadIdx.x & 31, groups = blockDim.x / 32;
    const i64 d4 = dim >> 2;
    for (i64 r = (i64)blockIdx.x * groups + threadIdx.x / 32; r < rows; r += (i64)gridDim.x * groups) {
        const float4* xr = reinterpret_cast<const float4*>(x + r * dim);
        float4* yr = reinterpret_cast<float4*>(y + r * dim);
        float4 v[VA_NR_REGS];
        double ss = 0.0;
#pragma unroll
        for (int i = 0; i < VA_NR_REGS; ++i) {
            const i64 q = lane + 32 * i;
            if (q < d4) {
                v[i] = xr[q];
                double e = (double)v[i].x;
                ss = __dadd_rn(ss, __dmul_rn(e, e));
                e = (double)v[i].y;
                ss = __dadd_rn(ss, __dmul_rn(e, e));
                e = (double)v[i].z;
                ss = __dadd_rn(ss, __dmul_rn(e, e));
                e = (double)v[i].w;
                ss = __dadd_rn(ss, __dmul_rn(e, e));
            }
        }
        ss = va_group_sum<32>(ss, nullptr);
        const double norm = sqrt(ss);
        if (norm != 0.0) {
            const double inv = 1.0 / norm;
#pragma unroll
            for (int i = 0; i < VA_NR_REGS; ++i)
                if (lane + 32 * i < d4)
                    yr[lane + 32 * i] = make_float4(
                        (float)__dmul_rn((double)v[i].x, inv), (float)__dmul_rn((double)v[i].y, inv),
                        (float)__dmul_rn((double)v[i].z, inv), (float)__dmul_rn((double)v[i].w, inv));
        } else if (y != x) {
#pragma unroll
            for (int i = 0; i < VA_NR_REGS; ++i)
                if (lane + 32 * i < d4) yr[lane + 32 * i] = v[i];
        }
        if (lane == 0) norms[r] = (float)norm;
    }
}

// ------------------------------------------------------------ reductions
// Kinds (cpu::vector::Kind): 0 sum, 1 shifted moments, 2 min, 3 max.
// Finishing codes: 0 sum, 1 mean, 2 variance, 3 min, 4 max, 5 argmin, 6 argmax.

struct VaAcc {
    double s1;
    double s2;
    float v;
    u32 pad;
    u64 idx;
};

__device__ __forceinline__ VaAcc va_acc_empty() {
    VaAcc a;
    a.s1 = 0.0;
    a.s2 = 0.0;
    a.v = 0.0f;
    a.pad = 0;
    a.idx = VA_NONE;
    return a;
}

// Whether extremum state a wins over b: NaN first (the first NaN among
// NaNs), then the better value, then the smaller index.
__device__ __forceinline__ bool va_better(const VaAcc& a, const VaAcc& b, bool mx) {
    if (a.idx == VA_NONE) return false;
    if (b.idx == VA_NONE) return true;
    bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) return (an && bn) ? a.idx < b.idx : an;
    if (a.v != b.v) return mx ? a.v > b.v : a.v < b.v;
    return a.idx < b.idx;
}

template <int K>
__device__ __forceinline__ VaAcc va_merge(VaAcc a, const VaAcc& b) {
    if (K <= 1) {
        a.s1 = __dadd_rn(a.s1, b.s1);
        a.s2 = __dadd_rn(a.s2, b.s2);
        return a;
    }
    return va_better(b, a, K == 3) ? b : a;
}

// Adds element (v, idx) to a state (shift: the reduction's first element).
template <int K>
__device__ __forceinline__ void va_push(VaAcc& a, float v, u64 idx, double shift) {
    if (K == 0) {
        a.s1 = __dadd_rn(a.s1, (double)v);
    } else if (K == 1) {
        double d = __dsub_rn((double)v, shift);
        a.s1 = __dadd_rn(a.s1, d);
        a.s2 = __dadd_rn(a.s2, __dmul_rn(d, d));
    } else {
        VaAcc e = va_acc_empty();
        e.v = v;
        e.idx = idx;
        if (va_better(e, a, K == 3)) a = e;
    }
}

template <int K>
__device__ __forceinline__ VaAcc va_shfl_merge(VaAcc a, int o) {
    VaAcc b;
    b.s1 = __shfl_xor_sync(0xffffffffu, a.s1, o);
    b.s2 = __shfl_xor_sync(0xffffffffu, a.s2, o);
    b.v = __shfl_xor_sync(0xffffffffu, a.v, o);
    b.pad = 0;
    b.idx = __shfl_xor_sync(0xffffffffu, a.idx, o);
    return va_merge<K>(a, b);
}

template <int K, int T>
__device__ __forceinline__ VaAcc va_group_merge(VaAcc a, VaAcc* sh) {
    for (int o = 16; o > 0; o >>= 1) a = va_shfl_merge<K>(a, o);
    if (T == 32) return a;
    __syncthreads();
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = a;
    __syncthreads();
    VaAcc t = sh[0];
    for (int w = 1; w < T / 32; ++w) t = va_merge<K>(t, sh[w]);
    return t;
}

// The result of a finished state (same formulas as cpu::vector::finish).
__device__ __forceinline__ void va_finish(const VaAcc& a, double n, int code, i64 ddof, float* out_v,
                                          u64* out_i, i64 o) {
    switch (code) {
    case 0: out_v[o] = (float)a.s1; break;
    case 1: out_v[o] = (float)__ddiv_rn(a.s1, n); break;
    case 2: {
        double v = __ddiv_rn(__dsub_rn(a.s2, __ddiv_rn(__dmul_rn(a.s1, a.s1), n)), n - (double)ddof);
        out_v[o] = (float)(v < 0.0 ? 0.0 : v);
        break;
    }
    case 3:
    case 4: out_v[o] = a.v; break;
    default: out_i[o] = a.idx; break;
    }
}

// One result per row; T threads per row.
template <int K, int T>
__device__ void va_reduce_rows(const float* x, i64 rows, i64 dim, int code, i64 ddof, float* out_v,
                               u64* out_i) {
    __shared__ VaAcc sh[8];
    int lane = threadIdx.x % T, groups = blockDim.x / T;
    for (i64 r = (i64)blockIdx.x * groups + threadIdx.x / T; r < rows; r += (i64)gridDim.x * groups) {
        const float* xr = x + r * dim;
        double shift = (K == 1) ? (double)xr[0] : 0.0;
        VaAcc a = va_acc_empty();
        va_row_each<T>(xr, dim, lane, [&](i64 j, float v) { va_push<K>(a, v, (u64)j, shift); });
        a = va_group_merge<K, T>(a, sh);
        if (lane == 0) va_finish(a, (double)dim, code, ddof, out_v, out_i, r);
    }
}

// Per-column partials: block (32 columns x 8 row lanes), blockIdx.y a chunk
// of `rpc` rows; part[chunk * dim + col]. Reads are coalesced along columns.
template <int K>
__device__ void va_reduce_cols_part(const float* x, i64 rows, i64 dim, i64 rpc, VaAcc* part) {
    __shared__ VaAcc sh[8][32];
    i64 c = (i64)blockIdx.x * 32 + threadIdx.x;
    i64 r0 = (i64)blockIdx.y * rpc, r1 = min(rows, r0 + rpc);
    VaAcc a = va_acc_empty();
    if (c < dim) {
        double shift = (K == 1) ? (double)x[c] : 0.0;
        for (i64 r = r0 + threadIdx.y; r < r1; r += 8) va_push<K>(a, x[r * dim + c], (u64)r, shift);
    }
    sh[threadIdx.y][threadIdx.x] = a;
    __syncthreads();
    if (threadIdx.y == 0 && c < dim) {
        VaAcc t = sh[0][threadIdx.x];
        for (int i = 1; i < 8; ++i) t = va_merge<K>(t, sh[i][threadIdx.x]);
        part[(i64)blockIdx.y * dim + c] = t;
    }
}

// Partials of the whole array: each block reduces a grid-stride share
// (16-byte loads when aligned) with a fixed shared-memory tree; part[block].
template <int K>
__device__ void va_reduce_all_part(const float* x, i64 n, VaAcc* part) {
    __shared__ VaAcc sh[256];
    i64 tid = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 stride = (i64)gridDim.x * blockDim.x;
    double shift = (K == 1) ? (double)x[0] : 0.0;
    VaAcc a = va_acc_empty();
    bool vec = (((size_t)x) & 15) == 0;
    i64 n4 = vec ? n / 4 : 0;
    for (i64 i = tid; i < n4; i += stride) {
        float4 v = reinterpret_cast<const float4*>(x)[i];
        va_push<K>(a, v.x, (u64)(4 * i), shift);
        va_push<K>(a, v.y, (u64)(4 * i + 1), shift);
        va_push<K>(a, v.z, (u64)(4 * i + 2), shift);
        va_push<K>(a, v.w, (u64)(4 * i + 3), shift);
    }
    for (i64 i = n4 * 4 + tid; i < n; i += stride) va_push<K>(a, x[i], (u64)i, shift);
    sh[threadIdx.x] = a;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] = va_merge<K>(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

// Second stage: column c combines part[k * dim + c] for k = 0..chunks in
// order and writes its result (n elements behind each).
template <int K>
__device__ void va_reduce_final(const VaAcc* part, i64 chunks, i64 dim, double n, int code, i64 ddof,
                                float* out_v, u64* out_i) {
    i64 c = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    VaAcc t = part[c];
    for (i64 k = 1; k < chunks; ++k) t = va_merge<K>(t, part[k * dim + c]);
    va_finish(t, n, code, ddof, out_v, out_i, c);
}

// Second stage of a whole-array reduction, one block of 256: thread t
// merges part[t], part[t + 256], ... in order, then a fixed shared-memory
// tree (deterministic, and not one thread walking every partial).
template <int K>
__device__ void va_reduce_final_one(const VaAcc* part, i64 chunks, double n, int code, i64 ddof,
                                    float* out_v, u64* out_i) {
    __shared__ VaAcc sh[256];
    VaAcc a = va_acc_empty();
    for (i64 k = threadIdx.x; k < chunks; k += 256) a = va_merge<K>(a, part[k]);
    sh[threadIdx.x] = a;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] = va_merge<K>(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    if (threadIdx.x == 0) va_finish(sh[0], n, code, ddof, out_v, out_i, 0);
}

#define VA_REDUCE_KERNELS(K, NAME)                                                                 \
    extern "C" __global__ void va_reduce_rows_warp_##NAME(const float* x, i64 rows, i64 dim,     \
                                                          int code, i64 ddof, float* v, u64* i) { \
        va_reduce_rows<K, 32>(x, rows, dim, code, ddof, v, i);                                   \
    }                                                                                            \
    extern "C" __global__ void va_reduce_rows_block_##NAME(const float* x, i64 rows, i64 dim,    \
                                                           int code, i64 ddof, float* v, u64* i) { \
        va_reduce_rows<K, 256>(x, rows, dim, code, ddof, v, i);                                  \
    }                                                                                            \
    extern "C" __global__ void va_reduce_cols_part_##NAME(const float* x, i64 rows, i64 dim,     \
                                                          i64 rpc, VaAcc* part) {                \
        va_reduce_cols_part<K>(x, rows, dim, rpc, part);                                         \
    }                                                                                            \
    extern "C" __global__ void va_reduce_all_part_##NAME(const float* x, i64 n, VaAcc* part) {   \
        va_reduce_all_part<K>(x, n, part);                                                       \
    }                                                                                            \
    extern "C" __global__ void va_reduce_final_##NAME(const VaAcc* part, i64 chunks, i64 dim,    \
                                                      double n, int code, i64 ddof, float* v,    \
                                                      u64* i) {                                  \
        va_reduce_final<K>(part, chunks, dim, n, code, ddof, v, i);                              \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                            \
        va_reduce_final_one_##NAME(const VaAcc* part, i64 chunks, double n, int code, i64 ddof,  \
                                   float* v, u64* i) {                                           \
        va_reduce_final_one<K>(part, chunks, n, code, ddof, v, i);                               \
    }

VA_REDUCE_KERNELS(0, sum)
VA_REDUCE_KERNELS(1, moments)
VA_REDUCE_KERNELS(2, min)
VA_REDUCE_KERNELS(3, max)

// Whether (av, ai) wins over (bv, bi) as va_better does (u32 indices, NONE
// = 0xFFFFFFFF for a lane that saw no element).
__device__ __forceinline__ bool va_better_vi(float av, u32 ai, float bv, u32 bi, bool mx) {
    if (ai == 0xFFFFFFFFu) return false;
    if (bi == 0xFFFFFFFFu) return true;
    bool an = av != av, bn = bv != bv;
    if (an || bn) return (an && bn) ? ai < bi : an;
    if (av != bv) return mx ? av > bv : av < bv;
    return ai < bi;
}

// Rows of at most 1,024 elements with dim % 4 == 0 (16-byte aligned rows): a
// warp takes R = 8 / NPR rows at a time (NPR: 16-byte groups per lane and
// row, d4 <= 32 * NPR) and issues every load of those R rows before it
// accumulates, so R * NPR 16-byte loads per lane are in flight at once
// (va_reduce_rows waits for each group of a row in turn). The results are
// those of va_reduce_rows bit for bit: per row and lane the elements are
// accumulated in the same order (groups lane, lane + 32, ...; x, y, z, w)
// from the same start, and the lanes are combined by the same xor
// butterfly (sums); min/max keep only (value, index) and pick the one
// winner of the total order of va_better (NaN first by index, then value,
// then index), which does not depend on the merge order. Within a lane
// indices grow, so an element wins over the state only when it is strictly
// better (a NaN state is never replaced).
template <int K, int NPR>
__device__ void va_reduce_rows_regs(const float* x, i64 rows, i64 dim, int code, i64 ddof, float* out_v,
                                    u64* out_i) {
    constexpr int R = 8 / NPR;
    if (((size_t)x) & 15) {
        va_reduce_rows<K, 32>(x, rows, dim, code, ddof, out_v, out_i);
        return;
    }
    const int lane = threadIdx.x & 31, groups = blockDim.x >> 5;
    const i64 d4 = dim >> 2;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    for (i64 r0 = ((i64)blockIdx.x * groups + (threadIdx.x >> 5)) * R; r0 < rows;
         r0 += (i64)gridDim.x * groups * R) {
        float4 v[R][NPR];
#pragma unroll
        for (int k = 0; k < R; ++k)
#pragma unroll
            for (int i = 0; i < NPR; ++i) {
                const i64 q = lane + 32 * i;
                v[k][i] = (r0 + k < rows && q < d4) ? x4[(r0 + k) * d4 + q] : make_float4(0.f, 0.f, 0.f, 0.f);
            }
#pragma unroll
        for (int k = 0; k < R; ++k) {
            const i64 r = r0 + k;
            if (r >= rows) break;  // warp-uniform
            if (K <= 1) {
                // shift: the row's first element (lane 0's first group).
                const double shift = K == 1 ? (double)__shfl_sync(0xffffffffu, v[k][0].x, 0) : 0.0;
                double s1 = 0.0, s2 = 0.0;
#pragma unroll
                for (int i = 0; i < NPR; ++i)
                    if (lane + 32 * i < d4) {
                        const float e[4] = {v[k][i].x, v[k][i].y, v[k][i].z, v[k][i].w};
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            if (K == 0) {
                                s1 = __dadd_rn(s1, (double)e[c]);
                            } else {
                                const double d = __dsub_rn((double)e[c], shift);
                                s1 = __dadd_rn(s1, d);
                                s2 = __dadd_rn(s2, __dmul_rn(d, d));
                            }
                        }
                    }
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) {
                    s1 = __dadd_rn(s1, __shfl_xor_sync(0xffffffffu, s1, o));
                    if (K == 1) s2 = __dadd_rn(s2, __shfl_xor_sync(0xffffffffu, s2, o));
                }
                if (lane == 0) {
                    VaAcc a = va_acc_empty();
                    a.s1 = s1;
                    a.s2 = s2;
                    va_finish(a, (double)dim, code, ddof, out_v, out_i, r);
                }
            } else {
                constexpr bool mx = K == 3;
                float bv = 0.0f;
                u32 bi = 0xFFFFFFFFu;
#pragma unroll
                for (int i = 0; i < NPR; ++i)
                    if (lane + 32 * i < d4) {
                        const float e[4] = {v[k][i].x, v[k][i].y, v[k][i].z, v[k][i].w};
                        const u32 j0 = 4u * (u32)(lane + 32 * i);
#pragma unroll
                        for (int c = 0; c < 4; ++c) {
                            const bool win = bi == 0xFFFFFFFFu ||
                                             (bv == bv && (mx ? !(e[c] <= bv) : !(e[c] >= bv)));
                            if (win) {
                                bv = e[c];
                                bi = j0 + c;
                            }
                        }
                    }
#pragma unroll
                for (int o = 16; o > 0; o >>= 1) {
                    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
                    const u32 oi = __shfl_xor_sync(0xffffffffu, bi, o);
                    if (va_better_vi(ov, oi, bv, bi, mx)) {
                        bv = ov;
                        bi = oi;
                    }
                }
                if (lane == 0) {
                    if (code == 3 || code == 4)
                        out_v[r] = bv;
                    else
                        out_i[r] = (u64)bi;
                }
            }
        }
    }
}

#define VA_REDUCE_REGS_KERNELS(K, NAME, NPR)                                                          \
    extern "C" __global__ void __launch_bounds__(256) va_reduce_rows_regs##NPR##_##NAME(               \
        const float* x, i64 rows, i64 dim, int code, i64 ddof, float* v, u64* i) {                     \
        va_reduce_rows_regs<K, NPR>(x, rows, dim, code, ddof, v, i);                                    \
    }
#define VA_REDUCE_REGS_ALL(K, NAME)     \
    VA_REDUCE_REGS_KERNELS(K, NAME, 1)  \
    VA_REDUCE_REGS_KERNELS(K, NAME, 2)  \
    VA_REDUCE_REGS_KERNELS(K, NAME, 4)  \
    VA_REDUCE_REGS_KERNELS(K, NAME, 8)

VA_REDUCE_REGS_ALL(0, sum)
VA_REDUCE_REGS_ALL(1, moments)
VA_REDUCE_REGS_ALL(2, min)
VA_REDUCE_REGS_ALL(3, max)

// ------------------------------------------------------------ softmax

// Per row: lse[r] = log-sum-exp (when lse is not null) and y[r] = softmax
// (when y is not null; y == x allowed). Semantics of cpu::vector::softmax_row.
template <int T>
__device__ void va_softmax(const float* x, float* y, float* lse, i64 rows, i64 dim) {
    __shared__ double shd[8];
    __shared__ float shf[8];
    int lane = threadIdx.x % T, groups = blockDim.x / T;
    for (i64 r = (i64)blockIdx.x * groups + threadIdx.x / T; r < rows; r += (i64)gridDim.x * groups) {
        const float* xr = x + r * dim;
        float* yr = y ? y + r * dim : 0;
        float m = -va_inf();
        va_row_each<T>(xr, dim, lane, [&](i64, float v) { m = va_max_nan(m, v); });
        m = va_group_max<T>(m, shf);
        float l;
        if (m != m || m == -va_inf()) {
            l = m;
            if (yr)
                for (i64 j = lane; j < dim; j += T) yr[j] = va_nan();
        } else if (m == va_inf()) {
            l = m;
            double cnt = 0.0;
            for (i64 j = lane; j < dim; j += T) cnt += (xr[j] == m) ? 1.0 : 0.0;
            cnt = va_group_sum<T>(cnt, shd);
            float p = (float)(1.0 / cnt);
            if (yr)
                for (i64 j = lane; j < dim; j += T) yr[j] = (xr[j] == m) ? p : 0.0f;
        } else {
            double s = 0.0;
            va_row_each<T>(xr, dim, lane, [&](i64, float v) { s = __dadd_rn(s, (double)expf(__fsub_rn(v, m))); });
            s = va_group_sum<T>(s, shd);
            l = (float)__dadd_rn((double)m, log(s));
            if (yr) {
                double inv = 1.0 / s;
                va_row_map<T>(xr, yr, dim, lane,
                              [&](float v) { return (float)__dmul_rn((double)expf(__fsub_rn(v, m)), inv); });
            }
        }
        if (lse && lane == 0) lse[r] = l;
    }
}

extern "C" __global__ void va_softmax_warp(const float* x, float* y, float* lse, i64 rows, i64 dim) {
    va_softmax<32>(x, y, lse, rows, dim);
}
extern "C" __global__ void va_softmax_block(const float* x, float* y, float* lse, i64 rows, i64 dim) {
    va_softmax<256>(x, y, lse, rows, dim);
}

// Rows of at most 1,024 elements with dim % 4 == 0 (16-byte aligned): a warp
// per row, each lane holding its at most 8 groups of 4 in registers, so the
// row is read once instead of three times. The same per-lane order as
// va_softmax (groups lane, lane + 32, ...; x, y, z, w), so the same bits.
#define VA_SM_REGS 8
extern "C" __global__ void __launch_bounds__(256) va_softmax_warp_regs(const float* x, float* y, float* lse,
                                                                       i64 rows, i64 dim) {
    if ((((size_t)x) | ((size_t)y)) & 15) {
        va_softmax<32>(x, y, lse, rows, dim);
        return;
    }
    const int lane = threadIdx.x & 31, groups = blockDim.x / 32;
    const i64 d4 = dim >> 2;
    for (i64 r = (i64)blockIdx.x * groups + threadIdx.x / 32; r < rows; r += (i64)gridDim.x * groups) {
        const float4* xr = reinterpret_cast<const float4*>(x + r * dim);
        float4* yr = y ? reinterpret_cast<float4*>(y + r * dim) : 0;
        float4 v[VA_SM_REGS];
        float m = -va_inf();
#pragma unroll
        for (int i = 0; i < VA_SM_REGS; ++i) {
            const i64 q = lane + 32 * i;
            if (q < d4) {
                v[i] = xr[q];
                m = va_max_nan(m, v[i].x);
                m = va_max_nan(m, v[i].y);
                m = va_max_nan(m, v[i].z);
                m = va_max_nan(m, v[i].w);
            }
        }
        m = va_group_max<32>(m, nullptr);
        float l;
        if (m != m || m == -va_inf()) {
            l = m;
            if (yr) {
                const float nan = va_nan();
#pragma unroll
                for (int i = 0; i < VA_SM_REGS; ++i)
                    if (lane + 32 * i < d4) yr[lane + 32 * i] = make_float4(nan, nan, nan, nan);
            }
        } else if (m == va_inf()) {
            l = m;
            double cnt = 0.0;
#pragma unroll
            for (int i = 0; i < VA_SM_REGS; ++i)
                if (lane + 32 * i < d4)
                    cnt += (v[i].x == m) + (v[i].y == m) + (v[i].z == m) + (v[i].w == m);
            cnt = va_group_sum<32>(cnt, nullptr);
            const float p = (float)(1.0 / cnt);
            if (yr) {
#pragma unroll
                for (int i = 0; i < VA_SM_REGS; ++i)
                    if (lane + 32 * i < d4)
                        yr[lane + 32 * i] = make_float4(v[i].x == m ? p : 0.0f, v[i].y == m ? p : 0.0f,
                                                        v[i].z == m ? p : 0.0f, v[i].w == m ? p : 0.0f);
            }
        } else {
            double s = 0.0;
#pragma unroll
            for (int i = 0; i < VA_SM_REGS; ++i)
                if (lane + 32 * i < d4) {
                    s = __dadd_rn(s, (double)expf(__fsub_rn(v[i].x, m)));
                    s = __dadd_rn(s, (double)expf(__fsub_rn(v[i].y, m)));
                    s = __dadd_rn(s, (double)expf(__fsub_rn(v[i].z, m)));
                    s = __dadd_rn(s, (double)expf(__fsub_rn(v[i].w, m)));
                }
            s = va_group_sum<32>(s, nullptr);
            l = (float)__dadd_rn((double)m, log(s));
            if (yr) {
                const double inv = 1.0 / s;
#pragma unroll
                for (int i = 0; i < VA_SM_REGS; ++i)
                    if (lane + 32 * i < d4) {
                        float4 o;
                        o.x = (float)__dmul_rn((double)expf(__fsub_rn(v[i].x, m)), inv);
                        o.y = (float)__dmul_rn((double)expf(__fsub_rn(v[i].y, m)), inv);
                        o.z = (float)__dmul_rn((double)expf(__fsub_rn(v[i].z, m)), inv);
                        o.w = (float)__dmul_rn((double)expf(__fsub_rn(v[i].w, m)), inv);
                        yr[lane + 32 * i] = o;
                    }
            }
        }
        if (lse && lane == 0) lse[r] = l;
    }
}

// Row i of out is row idx[i] of x (rows of dim floats).
extern "C" __global__ void va_gather_rows(const float* __restrict__ x, const u64* __restrict__ idx, i64 n,
                                          i64 dim, float* __restrict__ out) {
    for (i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x; e < n * dim; e += (i64)gridDim.x * blockDim.x) {
        const i64 i = e / dim;
        out[e] = x[(i64)idx[i] * dim + (e - i * dim)];
    }
}
