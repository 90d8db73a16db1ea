// Shared helpers, prepended to every kernel module. No includes: the
// modules compile with NVRTC alone.
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

#define VA_MISSING_ID 0xFFFFFFFFFFFFFFFFull
#define VA_KEY_MAX 0xFFFFFFFFu

// Metric codes shared with the host (cuda/distance.rs).
#define VA_L2 0
#define VA_EUCLIDEAN 1
#define VA_COSINE 2
#define VA_COSINE_SIM 3
#define VA_IP 4
#define VA_ABS_IP 5
#define VA_L1 6
#define VA_LINF 7
#define VA_MINKOWSKI 8
#define VA_HAMMING 9
#define VA_HAMMING_NORM 10
#define VA_JACCARD 11

__device__ __forceinline__ float va_nan() { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ float va_inf() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ bool va_isnan(float v) { return v != v; }

// The logistic function without overflow for any x (the vector family's
// Sigmoid, also the fused epilogue of the ML scores).
__device__ __forceinline__ float va_sigmoid(float x) {
    if (x >= 0.0f) return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
    const float e = expf(x);
    return __fdiv_rn(e, __fadd_rn(1.0f, e));
}

// Maximum that keeps NaN (fmaxf drops it).
__device__ __forceinline__ float va_nan_max(float acc, float v) {
    return (v > acc || va_isnan(v)) ? v : acc;
}

// Order-preserving map of a value to u32 (best first), identical to the
// host's ops::select::sort_key: -0 == +0, NaN ranks last in both orders.
__device__ __forceinline__ u32 va_sort_key(float v, int desc) {
    if (va_isnan(v)) return VA_KEY_MAX;
    u32 b = (v == 0.0f) ? 0u : __float_as_uint(v);
    u32 asc = (b >> 31) ? ~b : (b | 0x80000000u);
    return desc ? ~asc : asc;
}

// Inverse of va_sort_key (NaN for the NaN key).
__device__ __forceinline__ float va_key_value(u32 key, int desc) {
    if (key == VA_KEY_MAX) return va_nan();
    u32 asc = desc ? ~key : key;
    u32 b = (asc >> 31) ? (asc & 0x7fffffffu) : ~asc;
    return __uint_as_float(b);
}

// A ranked candidate: compares by (key, id).
struct VaItem {
    u32 key;
    u32 pad;
    u64 id;
};

__device__ __forceinline__ bool va_less(const VaItem& a, const VaItem& b) {
    return a.key < b.key || (a.key == b.key && a.id < b.id);
}

__device__ __forceinline__ VaItem va_item(u32 key, u64 id) {
    VaItem it;
    it.key = key;
    it.pad = 0;
    it.id = id;
    return it;
}

// The ranked item of a (value, id) result entry; a missing entry ranks last.
__device__ __forceinline__ VaItem va_item_of(float d, u64 id, int desc) {
    return va_item(id == VA_MISSING_ID ? VA_KEY_MAX : va_sort_key(d, desc), id);
}

// The GEMM metrics' value from a dot product and the rows' squared norms;
// the same formulas as the host's cpu::distance::gemm_epilogue.
__device__ __forceinline__ float va_epilogue(float dot, float qn, float xn, int metric, int normalized) {
    if (metric == VA_L2 || metric == VA_EUCLIDEAN) {
        float t = qn + xn - 2.0f * dot;
        t = (t < 0.0f) ? 0.0f : t;
        return (metric == VA_EUCLIDEAN) ? sqrtf(t) : t;
    }
    if (metric == VA_COSINE || metric == VA_COSINE_SIM) {
        float c;
        if (normalized) {
            c = dot;
        } else {
            float den = sqrtf(qn) * sqrtf(xn);
            c = (den == 0.0f) ? 0.0f : dot / den;
        }
        if (!va_isnan(c)) c = fminf(fmaxf(c, -1.0f), 1.0f);
        return (metric == VA_COSINE) ? 1.0f - c : c;
    }
    if (metric == VA_ABS_IP) return fabsf(dot);
    return dot;
}

// How a kernel turns a stored tile value into the metric's value: as is, or
// through va_epilogue when the tile holds raw dot products.
struct VaEpi {
    int on;
    int metric;
    int normalized;
    const float* qn;
    const float* xn;
};
