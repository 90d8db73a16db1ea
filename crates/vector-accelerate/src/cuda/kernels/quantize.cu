// Quantization and clustering kernels: column statistics, scalar and binary
// encode/decode, k-means / product-quantizer assignment and fixed-point
// member sums, code packing, lookup tables and the ADC scan.
//
// Arithmetic that must match the CPU reference bit for bit uses explicit
// round-to-nearest intrinsics (__fmul_rn, __fadd_rn, __fsub_rn) so the
// compiler never fuses a multiply and an add.

// Per-column finite min / max / sum / count over one chunk of rows:
// partials[chunk * d + column].
extern "C" __global__ void va_column_stats(const float* __restrict__ x, long long n, int d,
                                           long long rows_per_chunk, float* __restrict__ lo,
                                           float* __restrict__ hi, double* __restrict__ sum,
                                           unsigned long long* __restrict__ cnt) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    long long chunk = blockIdx.y;
    if (c >= d) return;
    long long r0 = chunk * rows_per_chunk;
    long long r1 = min(n, r0 + rows_per_chunk);
    float mn = va_inf(), mx = -va_inf();
    double s = 0.0;
    unsigned long long k = 0;
    for (long long r = r0; r < r1; ++r) {
        float v = x[r * d + c];
        if (isfinite(v)) {
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
            s += (double)v;
            ++k;
        }
    }
    long long o = chunk * d + c;
    lo[o] = mn;
    hi[o] = mx;
    sum[o] = s;
    cnt[o] = k;
}

// Scale, reciprocal and offset from a range, as the host's `params`.
__device__ __forceinline__ void va_sq_params(float lo, float hi, int asym, float qmax_sym,
                                             float qmax_asym, float* scale, float* inv,
                                             float* off) {
    float s, o;
    if (asym) {
        s = __fdiv_rn(__fsub_rn(hi, lo), qmax_asym);
        o = lo;
    } else {
        s = __fdiv_rn(fmaxf(fabsf(lo), fabsf(hi)), qmax_sym);
        o = 0.0f;
    }
    if (!isfinite(s)) s = 3.40282347e38f;
    *scale = s;
    *inv = s > 0.0f ? __fdiv_rn(1.0f, s) : 0.0f;
    *off = o;
}

// Per-vector parameters: one warp per row.
extern "C" __global__ void va_sq_row_params(const float* __restrict__ x, long long n, int d,
                                            int asym, float qmax_sym, float qmax_asym,
                                            float* __restrict__ scale, float* __restrict__ inv,
                                            float* __restrict__ off) {
    long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (w >= n) return;
    const float* row = x + w * d;
    float mn = va_inf(), mx = -va_inf();
    for (int j = lane; j < d; j += 32) {
        float v = row[j];
        if (isfinite(v)) {
            mn = fminf(mn, v);
            mx = fmaxf(mx, v);
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, o));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    }
    if (lane == 0) {
        if (mn > mx) {
            mn = 0.0f;
            mx = 0.0f;
        }
        va_sq_params(mn, mx, asym, qmax_sym, qmax_asym, scale + w, inv + w, off + w);
    }
}

// One value's code, as the host's `encode_value`.
__device__ __forceinline__ int va_sq_code(float x, float inv, float off, float qmin, float qmax) {
    if (va_isnan(x)) x = 0.0f;
    float t = rintf(__fmul_rn(__fsub_rn(x, off), inv));
    return (int)fminf(fmaxf(t, qmin), qmax);
}

// Scalar encode, any width and scope: each thread writes 4 code bytes of
// one row. Parameters per column (per_vector = 0) or per row.
extern "C" __global__ void va_sq_encode(const float* __restrict__ x, long long n, int d, int bpr,
                                        int int4, const float* __restrict__ inv,
                                        const float* __restrict__ off, int per_vector, float qmin,
                                        float qmax, unsigned char* __restrict__ out) {
    long long per_row = (bpr + 3) / 4;
    long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long r = g / per_row;
    if (r >= n) return;
    int b0 = (int)(g % per_row) * 4;
    const float* row = x + r * d;
    for (int b = b0; b < b0 + 4 && b < bpr; ++b) {
        int code;
        if (!int4) {
            float iv = per_vector ? inv[r] : inv[b];
            float of = per_vector ? off[r] : off[b];
            code = va_sq_code(row[b], iv, of, qmin, qmax) & 0xff;
        } else {
            int j = 2 * b;
            float iv = per_vector ? inv[r] : inv[j];
            float of = per_vector ? off[r] : off[j];
            int lo = va_sq_code(row[j], iv, of, qmin, qmax) & 15;
            int hi = 0;
            if (j + 1 < d) {
                iv = per_vector ? inv[r] : inv[j + 1];
                of = per_vector ? off[r] : off[j + 1];
                hi = va_sq_code(row[j + 1], iv, of, qmin, qmax) & 15;
            }
            code = lo | (hi << 4);
        }
        out[r * bpr + b] = (unsigned char)code;
    }
}

// Per-channel int8 encode of rows whose dimension is a multiple of 16:
// each thread owns one group of 16 columns (its parameters stay in
// registers) and walks rows with a stride, reading 16 values (four 16-byte
// loads) and writing 16 codes (one 16-byte store) per row.
extern "C" __global__ void va_sq8_encode16(const float4* __restrict__ x, long long rows, int groups,
                                           const float* __restrict__ inv,
                                           const float* __restrict__ off, float qmin, float qmax,
                                           uint4* __restrict__ out) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long stride = ((long long)gridDim.x * blockDim.x) / groups;
    int g = (int)(t % groups);
    long long r = t / groups;
    if (r >= stride) return;
    float iv[16], of[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
        iv[i] = inv[g * 16 + i];
        of[i] = off[g * 16 + i];
    }
    for (; r < rows; r += stride) {
        long long e = r * groups + g;
        float4 v[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) v[i] = __ldcs(x + e * 4 + i);
        unsigned int w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            float el[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
            unsigned int acc = 0;
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                int c = 4 * i + u;
                int code = va_sq_code(el[u], iv[c], of[c], qmin, qmax) & 0xff;
                acc |= (unsigned int)code << (8 * u);
            }
            w[i] = acc;
        }
        __stcs(out + e, make_uint4(w[0], w[1], w[2], w[3]));
    }
}

// Scalar decode of rows [r0, r0 + n): offset + code * scale.
extern "C" __global__ void va_sq_decode(const unsigned char* __restrict__ codes, long long r0,
                                        long long n, int d, int bpr, int int4, int is_signed,
                                        const float* __restrict__ scale,
                                        const float* __restrict__ off, int per_vector,
                                        float* __restrict__ out) {
    long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n * d) return;
    long long r = e / d + r0;
    int j = (int)(e % d);
    const unsigned char* row = codes + r * bpr;
    int c;
    if (!int4) {
        c = is_signed ? (int)(signed char)row[j] : (int)row[j];
    } else {
        int nib = (row[j >> 1] >> (4 * (j & 1))) & 15;
        c = is_signed ? ((nib ^ 8) - 8) : nib;
    }
    float s = per_vector ? scale[r] : scale[j];
    float o = per_vector ? off[r] : off[j];
    out[e] = __fadd_rn(o, __fmul_rn((float)c, s));
}

// Binary encode: one warp per (row, 64-bit word); bit j set when x > t[j].
extern "C" __global__ void va_bq_encode(const float* __restrict__ x, long long n, int d, int words,
                                        const float* __restrict__ t, u64* __restrict__ out) {
    long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (w >= n * words) return;
    long long r = w / words;
    int k = (int)(w % words);
    int c0 = k * 64 + lane, c1 = c0 + 32;
    bool b0 = c0 < d && x[r * d + c0] > t[c0];
    bool b1 = c1 < d && x[r * d + c1] > t[c1];
    unsigned lo = __ballot_sync(0xffffffffu, b0);
    unsigned hi = __ballot_sync(0xffffffffu, b1);
    if (lane == 0) out[w] = ((u64)hi << 32) | lo;
}

// Packs `m` codes of `nbits` bits per row, least significant bit first.
extern "C" __global__ void va_pack_codes(const u32* __restrict__ codes, long long n, int m,
                                         int nbits, int rb, unsigned char* __restrict__ out) {
    long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n) return;
    unsigned char* o = out + r * rb;
    if (nbits == 8) {
        for (int j = 0; j < m; ++j) o[j] = (unsigned char)codes[r * m + j];
        return;
    }
    u64 acc = 0;
    int have = 0, b = 0;
    for (int j = 0; j < m; ++j) {
        acc |= (u64)codes[r * m + j] << have;
        have += nbits;
        while (have >= 8) {
            o[b++] = (unsigned char)(acc & 0xff);
            acc >>= 8;
            have -= 8;
        }
    }
    if (have > 0) o[b++] = (unsigned char)(acc & 0xff);
}

// Lookup tables: one thread per (query, sub-space, centroid). Squared L2
// (metric 0) or inner product (1), summed in order without FMA.
extern "C" __global__ void va_pq_tables(const float* __restrict__ q, int nq, int d, int m, int ds,
                                        int kc, const float* __restrict__ cent, int ip,
                                        float* __restrict__ lut) {
    long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long per = (long long)m * kc;
    if (e >= nq * per) return;
    int qi = (int)(e / per);
    int jc = (int)(e % per);
    int j = jc / kc;
    const float* cv = cent + (long long)jc * ds;
    const float* qr = q + (long long)qi * d;
    float acc = 0.0f;
    for (int t = 0; t < ds; ++t) {
        int col = j * ds + t;
        float qv = col < d ? qr[col] : 0.0f;
        if (ip) {
            acc = __fadd_rn(acc, __fmul_rn(qv, cv[t]));
        } else {
            float x = __fsub_rn(qv, cv[t]);
            acc = __fadd_rn(acc, __fmul_rn(x, x));
        }
    }
    lut[e] = acc;
}

// Code j of a packed row (generic widths).
__device__ __forceinline__ u32 va_code_at(const unsigned char* row, int j, int nbits) {
    int bit = j * nbits;
    int byte = bit >> 3, sh = bit & 7;
    u32 w = (u32)row[byte] | ((u32)row[byte + 1] << 8) | ((u32)row[byte + 2] << 16);
    return (w >> sh) & ((1u << nbits) - 1u);
}

// ADC scan. Block: 256 threads, codes [blockIdx.x * 256 * per_thread, ...),
// queries [blockIdx.y * qpb, +qpb) whose tables sit in shared memory.
// Distances are sums over sub-spaces in order (no FMA), as on the CPU.
// dense = 1: writes every distance to out_d[q * ld + r] (the sample pass);
// dense = 0: appends (d, r) to the query's candidates when d is no worse
// than thr[q] (counts may exceed cap: the host then retries larger).
// MC > 0: nbits = 8 and m = 16 * MC, the row read as MC 16-byte words kept
// in registers; MC = 0: any layout, codes re-read per query (L1 hits).
template <int MC>
__device__ __forceinline__ void va_pq_scan_body(
    const unsigned char* __restrict__ codes, long long n, int m, int nbits, int rb, int kc,
    const float* __restrict__ lut, int nq, int qpb, int per_thread, int dense, int desc,
    const float* __restrict__ thr, float* __restrict__ out_d, u64* __restrict__ out_i,
    long long ld, int cap, int* __restrict__ counts) {
    extern __shared__ float sl[];
    int q0 = blockIdx.y * qpb;
    int qn = min(qpb, nq - q0);
    long long per_q = (long long)m * kc;
    for (long long i = threadIdx.x; i < qn * per_q; i += blockDim.x) sl[i] = lut[q0 * per_q + i];
    __syncthreads();
    long long base = (long long)blockIdx.x * blockDim.x * per_thread;
    for (int s = 0; s < per_thread; ++s) {
        long long r = base + (long long)s * blockDim.x + threadIdx.x;
        if (r >= n) return;
        const unsigned char* row = codes + r * rb;
        uint4 cw[MC > 0 ? MC : 1];
        if (MC > 0) {
#pragma unroll
            for (int i = 0; i < MC; ++i) cw[i] = __ldg((const uint4*)row + i);
        }
        for (int qi = 0; qi < qn; ++qi) {
            const float* t = sl + qi * per_q;
            float acc = 0.0f;
            if (MC > 0) {
#pragma unroll
                for (int i = 0; i < MC; ++i) {
                    unsigned int w4[4] = {cw[i].x, cw[i].y, cw[i].z, cw[i].w};
#pragma unroll
                    for (int b = 0; b < 16; ++b) {
                        u32 c = (w4[b >> 2] >> (8 * (b & 3))) & 0xffu;
                        acc = __fadd_rn(acc, t[(i * 16 + b) * kc + c]);
                    }
                }
            } else {
                for (int j = 0; j < m; ++j) {
                    u32 c = nbits == 8 ? (u32)row[j] : va_code_at(row, j, nbits);
                    acc = __fadd_rn(acc, t[(long long)j * kc + c]);
                }
            }
            int q = q0 + qi;
            if (dense) {
                out_d[q * ld + r] = acc;
            } else {
                float th = thr[q];
                bool pass = desc ? !(acc < th) : !(acc > th);
                if (pass) {
                    int p = atomicAdd(counts + q, 1);
                    if (p < cap) {
                        out_d[(long long)q * cap + p] = acc;
                        out_i[(long long)q * cap + p] = (u64)r;
                    }
                }
            }
        }
    }
}

#define VA_PQ_SCAN(NAME, MC)                                                                  \
    extern "C" __global__ void NAME(                                                          \
        const unsigned char* __restrict__ codes, long long n, int m, int nbits, int rb, int kc, \
        const float* __restrict__ lut, int nq, int qpb, int per_thread, int dense, int desc,   \
        const float* __restrict__ thr, float* __restrict__ out_d, u64* __restrict__ out_i,    \
        long long ld, int cap, int* __restrict__ counts) {                                    \
        va_pq_scan_body<MC>(codes, n, m, nbits, rb, kc, lut, nq, qpb, per_thread, dense, desc, \
                            thr, out_d, out_i, ld, cap, counts);                              \
    }
VA_PQ_SCAN(va_pq_scan, 0)
VA_PQ_SCAN(va_pq_scan8_16, 1)
VA_PQ_SCAN(va_pq_scan8_32, 2)
VA_PQ_SCAN(va_pq_scan8_64, 4)

// Exact distance of each query to each of its `r` candidates: one warp per
// pair; squared L2 (ip = 0) or inner product. Missing ids give NaN.
extern "C" __global__ void va_pair_distances(const float* __restrict__ q,
                                             const float* __restrict__ x,
                                             const u64* __restrict__ ids, int nq, int r, int d,
                                             int ip, float* __restrict__ out) {
    long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (w >= (long long)nq * r) return;
    u64 id = ids[w];
    if (id == VA_MISSING_ID) {
        if (lane == 0) out[w] = va_nan();
        return;
    }
    const float* qr = q + (w / r) * d;
    const float* xr = x + (long long)id * d;
    float acc = 0.0f;
    for (int j = lane; j < d; j += 32) {
        float a = qr[j], b = xr[j];
        acc += ip ? a * b : (a - b) * (a - b);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) out[w] = acc;
}

// ------------------------------------------------ fused neural-quantization encode

// Per-vector symmetric int8 codes of z = act(X W^T + b) (optionally scaled
// to unit length) for latents of up to 128 values (the ML family's neural
// quantization): one block takes 128 rows of X and the whole of W (latent x
// d), multiplies them on tensor cores through the cp.async pipeline of
// mma.cuh (KIND: 3xTF32, near-fp32; or TF32), keeps the latent tile in
// shared memory and writes only the codes and each row's scale (offset 0):
// X is read once and the latent never reaches device memory. Codes follow
// va_sq_params / va_sq_code exactly (the unfused encode's arithmetic on
// the same latent values). act: 0 none, 1 ReLU (NaN kept, as the vector
// family's ReLU).
#define VA_ZS (VA_FN + 1)  // latent tile row stride (floats)

template <bool VEC, int KIND>
__device__ __forceinline__ void va_nq_encode(const float* __restrict__ X, i64 ldx, int n,
                                             const float* __restrict__ W, int latent, int d,
                                             const float* __restrict__ bias, int act, int normalize,
                                             unsigned char* __restrict__ codes,
                                             float* __restrict__ scales, float* __restrict__ offsets) {
    constexpr int WARPS = 8, THREADS = 256, NI = 4;  // warp tile 64 rows x 32 latent values
    extern __shared__ __align__(16) float va_asm[];
    float* As = va_asm;                               // VA_FSTAGES x 128 x VA_FS
    float* Bs = va_asm + VA_FSTAGES * VA_FM * VA_FS;  // VA_FSTAGES x 128 x VA_FS
    const int p0 = blockIdx.x * VA_FM;
    const int tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int wm = (warp / (WARPS / 2)) * 64;
    const int wn = (warp % (WARPS / 2)) * NI * 8;
    const char* Xc = reinterpret_cast<const char*>(X);
    const char* Wc = reinterpret_cast<const char*>(W);
    const int nk = (d + VA_FK - 1) / VA_FK;
    auto load = [&](int s) {
        const int st = s % VA_FSTAGES;
        va_load_tile<VEC, THREADS, 4>(As + st * VA_FM * VA_FS, Xc, ldx, n, d, p0, s * VA_FK);
        va_load_tile<VEC, THREADS, 4>(Bs + st * VA_FN * VA_FS, Wc, d, latent, d, 0, s * VA_FK);
    };
    float acc[4][NI][4];
    va_block_product<KIND, NI>(acc, nk, load, As, Bs, wm, wn, lane);
    // The latent tile into shared memory (over the pipeline buffers):
    // c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1).
    float* Z = va_asm;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int r = wm + mi * 16 + g + (e >> 1) * 8;
                const int c = wn + ni * 8 + 2 * t + (e & 1);
                Z[r * VA_ZS + c] = acc[mi][ni][e];
            }
    __syncthreads();
    // One warp per row: bias, activation, unit length, scale, codes.
    for (int r = warp; r < VA_FM; r += WARPS) {
        const i64 p = (i64)p0 + r;
        if (p >= n) break;
        float v[VA_FN / 32];
        float ss = 0.0f;
#pragma unroll
        for (int j = 0; j < VA_FN / 32; ++j) {
            const int c = lane + 32 * j;
            float x = 0.0f;
            if (c < latent) {
                x = Z[r * VA_ZS + c];
                if (bias) x = __fadd_rn(x, bias[c]);
                if (act == 1 && !(x > 0.0f || va_isnan(x))) x = 0.0f;
            }
            v[j] = x;
            ss = fmaf(x, x, ss);
        }
        if (normalize) {
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
            const float nrm = sqrtf(ss);
            if (nrm > 0.0f)
#pragma unroll
                for (int j = 0; j < VA_FN / 32; ++j) v[j] = __fdiv_rn(v[j], nrm);
        }
        // The largest finite magnitude (va_sq_row_params ignores non-finite values).
        float top = 0.0f;
#pragma unroll
        for (int j = 0; j < VA_FN / 32; ++j)
            if (isfinite(v[j])) top = fmaxf(top, fabsf(v[j]));
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
        float sc, inv, off;
        va_sq_params(-top, top, 0, 127.0f, 255.0f, &sc, &inv, &off);
#pragma unroll
        for (int j = 0; j < VA_FN / 32; ++j) {
            const int c = lane + 32 * j;
            if (c < latent) codes[p * latent + c] = (unsigned char)(va_sq_code(v[j], inv, 0.0f, -127.0f, 127.0f) & 0xff);
        }
        if (lane == 0) {
            scales[p] = sc;
            offsets[p] = 0.0f;
        }
    }
}

#define VA_NQ_ARGS                                                                                     \
    const float *__restrict__ X, i64 ldx, int n, const float *__restrict__ W, int latent, int d,       \
        const float *__restrict__ bias, int act, int normalize, unsigned char *__restrict__ codes,     \
        float *__restrict__ scales, float *__restrict__ offsets
#define VA_NQ_PASS X, ldx, n, W, latent, d, bias, act, normalize, codes, scales, offsets

// Three products per pair are compute-bound: two blocks per SM (128
// registers) beat one block of 166 registers. One TF32 product gains
// nothing from it.
extern "C" __global__ void __launch_bounds__(256, 2) va_nq_encode_3xtf32_v4(VA_NQ_ARGS) {
    va_nq_encode<true, VA_KIND_3XTF32>(VA_NQ_PASS);
}
extern "C" __global__ void __launch_bounds__(256, 2) va_nq_encode_3xtf32_v1(VA_NQ_ARGS) {
    va_nq_encode<false, VA_KIND_3XTF32>(VA_NQ_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_nq_encode_tf32_v4(VA_NQ_ARGS) {
    va_nq_encode<true, VA_KIND_TF32>(VA_NQ_PASS);
}
extern "C" __global__ void __launch_bounds__(256) va_nq_encode_tf32_v1(VA_NQ_ARGS) {
    va_nq_encode<false, VA_KIND_TF32>(VA_NQ_PASS);
}

// int8 codes (rows x d bytes) as 16-bit integers (bf16 when bf16, else
// f16; exact in both) in rows of hd >= d values (a multiple of 8; padding
// zero): the A operand of the decoder's product (gemm.cu), which applies
// each row's scale to its sums. Eight values per thread, one 16-byte store.
extern "C" __global__ void va_sq8_codes_half(const unsigned char* __restrict__ codes, long long rows, int d,
                                             int hd, int bf16, uint4* __restrict__ out) {
    const int groups = hd / 8;
    const long long total = rows * groups;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long r = i / groups;
        const int c0 = (int)(i - r * groups) * 8;
        const unsigned char* src = codes + r * d + c0;
        u32 lo = 0, hi = 0;
        if ((d & 7) == 0) {
            const uint2 w = *reinterpret_cast<const uint2*>(src);
            lo = w.x;
            hi = w.y;
        } else {
            for (int e = 0; e < 8 && c0 + e < d; ++e) {
                if (e < 4) lo |= (u32)src[e] << (8 * e);
                else hi |= (u32)src[e] << (8 * (e - 4));
            }
        }
        u32 packed[4];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            const float v = (float)(signed char)(((e < 4 ? lo : hi) >> (8 * (e & 3))) & 0xff);
            unsigned short h;
            if (bf16) {
                asm("cvt.rn.bf16.f32 %0, %1;\n" : "=h"(h) : "f"(v));
            } else {
                asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(v));
            }
            if (e & 1) packed[e / 2] |= (u32)h << 16;
            else packed[e / 2] = h;
        }
        out[i] = make_uint4(packed[0], packed[1], packed[2], packed[3]);
    }
}
