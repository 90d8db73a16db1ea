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

extern "C" __global__ void va_ivf_scan(const float* __restrict__ q, const float* __restrict__ qnorm,
                                       const float* __restrict__ data, const u64* __restrict__ off,
                                       const u32* __restrict__ probes, const u64* __restrict__ slots,
                                       const u64* __restrict__ allowed, i64 nprobe, i64 dim, i64 width,
                                       int metric, float missing, float* __restrict__ out) {
    extern __shared__ float sq[];
    const i64 pair = blockIdx.x;
    const i64 qi = pair / nprobe;
    for (i64 t = threadIdx.x; t < dim; t += blockDim.x) sq[t] = q[qi * dim + t];
    __syncthreads();
    float* o = out + pair * width;
    const u32 list = probes[pair];
    const u64 start = list == 0xFFFFFFFFu ? 0 : off[list];
    const i64 len = list == 0xFFFFFFFFu ? 0 : (i64)(off[list + 1] - start);
    for (i64 p = len + threadIdx.x; p < width; p += blockDim.x) o[p] = missing;
    const float qn = qnorm ? qnorm[qi] : 0.0f;
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (i64 p = threadIdx.x >> 5; p < len; p += warps) {
        const float* x = data + (start + p) * dim;
        float a = 0.0f, b = 0.0f;
        for (i64 t = lane; t < dim; t += 32) {
            const float xv = x[t], qv = sq[t];
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
