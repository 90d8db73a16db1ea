// Tensor-core NT products with a fused epilogue, for the ML family's
// decoder and attention scores:
//
//   C[m][n] = act(alpha * rowscale[m] * colscale[n] * sum_p sum_k A[m][k] B_p[n][k] + bias[n])
//
// A (M x K) and every piece B_p (N x K) are row-major with K contiguous;
// the P pieces of B lie `piece` elements apart. Summing pieces lets an
// f32 matrix enter as bf16 pieces B_1 = bf16(W), B_2 = bf16(W - B_1),
// B_3 = bf16(W - B_1 - B_2): three pieces carry all 24 bits of W, and
// against small-integer A (int8 codes, exact in bf16) every product is
// exact, so the result is fp32-accurate at 1.5 times the cost of one TF32
// product (3xTF32 costs 3). rowscale, colscale, bias: optional (null).
// act: 0 none, 1 ReLU (NaN kept), 2 the stable logistic function of the
// vector family.
//
// Block tile 128 x 128, eight warps of 64 x 32, the cp.async pipeline and
// fragments of mma.cuh. One-dimensional grid over the tiles; m_fast makes
// consecutive blocks walk M (blocks sharing a B tile run together: B read
// from DRAM once when A stays in L2), else N.

// The logistic function and the pipeline loop are written out here, not
// taken from va_sigmoid (common.cuh) and va_block_product (mma.cuh): at
// the 128 registers of two blocks per SM the code generated for these
// kernels is fragile, and the shared forms ran slower (BENCHMARKS, design
// measurements).
__device__ __forceinline__ float va_gemm_act(float x, int act) {
    if (act == 1) return (x > 0.0f || va_isnan(x)) ? x : 0.0f;
    if (act == 2) {
        if (x >= 0.0f) return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
        const float e = expf(x);
        return __fdiv_rn(e, __fadd_rn(1.0f, e));
    }
    return x;
}

#define VA_GZS (VA_FN + 8)       // epilogue tile row stride (floats)
#define VA_GTILE (VA_FM * VA_FS)  // floats of one 128-row stage tile
// Shared memory (floats): the pipeline (larger than the epilogue tile that
// reuses it), then the row scales, column scales and biases of the tile.
#define VA_GPIPE (2 * VA_FSTAGES * VA_GTILE)

template <bool VEC, int KIND>
__device__ __forceinline__ void va_gemm_nt(const char* __restrict__ A, i64 lda, int M, const char* __restrict__ B,
                                           i64 ldb, i64 piece, int pieces, int N, int K, float alpha,
                                           const float* __restrict__ rowscale, const float* __restrict__ colscale,
                                           const float* __restrict__ bias, int act, float* __restrict__ C, i64 ldc,
                                           int m_fast) {
    constexpr int WARPS = 8, THREADS = 256, NI = 4;
    constexpr int ES = KIND >= VA_KIND_BF16 ? 2 : 4;  // element bytes
    constexpr int KS = 128 / ES;                      // elements per pipeline stage
    extern __shared__ __align__(16) float va_gsm[];
    const int tm = (M + VA_FM - 1) / VA_FM, tn = (N + VA_FN - 1) / VA_FN;
    const int bm = m_fast ? (int)(blockIdx.x % tm) : (int)(blockIdx.x / tn);
    const int bn = m_fast ? (int)(blockIdx.x / tm) : (int)(blockIdx.x % tn);
    const int m0 = bm * VA_FM, n0 = bn * VA_FN;
    const int tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int wm = (warp / (WARPS / 2)) * 64;
    const int wn = (warp % (WARPS / 2)) * NI * 8;
    const int ka = (K + KS - 1) / KS;  // stages per piece
    const int nk = ka * pieces;
    float* Bs = va_gsm;
    float* As = va_gsm + VA_FSTAGES * VA_GTILE;
    float* P = va_gsm + VA_GPIPE;
    // The epilogue's per-row and per-column factors, fetched while the
    // pipeline fills.
    if (tid < VA_FM) {
        const int r = m0 + tid, c = n0 + tid;
        P[tid] = rowscale && r < M ? __fmul_rn(alpha, rowscale[r]) : alpha;
        P[VA_FM + tid] = colscale && c < N ? colscale[c] : 1.0f;
        P[2 * VA_FM + tid] = bias && c < N ? bias[c] : 0.0f;
    }
    auto load = [&](int s) {
        const int st = s % VA_FSTAGES;
        const int pc = s / ka, k0 = (s - pc * ka) * KS;
        va_load_tile<VEC, THREADS, ES>(As + st * VA_GTILE, A, lda, M, K, m0, k0);
        va_load_tile<VEC, THREADS, ES>(Bs + st * VA_GTILE, B + (i64)pc * piece * ES, ldb, N, K, n0, k0);
    };
#pragma unroll
    for (int s0 = 0; s0 < VA_FSTAGES - 1; ++s0) {
        if (s0 < nk) load(s0);
        va_cp_commit();
    }
    float acc[4][NI][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    for (int s = 0; s < nk; ++s) {
        if (s + VA_FSTAGES - 1 < nk) load(s + VA_FSTAGES - 1);
        va_cp_commit();
        va_cp_wait<VA_FSTAGES - 1>();
        __syncthreads();
        const int st = s % VA_FSTAGES;
        va_mma_stage<KIND, NI>(acc, As + st * VA_GTILE, Bs + st * VA_GTILE, wm, wn, lane);
        __syncthreads();
    }
    va_cp_wait<0>();
    __syncthreads();
    // Epilogue: the finished tile into shared memory (over the pipeline
    // buffers; row stride VA_GZS keeps the fragments' pair stores free of
    // bank conflicts), then written out a row per warp in 512-byte runs.
    // Fragments: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1).
    float* Z = va_gsm;
#pragma unroll
    for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int rl = wm + mi * 16 + g + h * 8;
            const float s = P[rl];
#pragma unroll
            for (int ni = 0; ni < NI; ++ni) {
                const int cl = wn + ni * 8 + 2 * t;
                float v0 = __fmul_rn(__fmul_rn(s, P[VA_FM + cl]), acc[mi][ni][2 * h]);
                float v1 = __fmul_rn(__fmul_rn(s, P[VA_FM + cl + 1]), acc[mi][ni][2 * h + 1]);
                if (bias) {
                    v0 = __fadd_rn(v0, P[2 * VA_FM + cl]);
                    v1 = __fadd_rn(v1, P[2 * VA_FM + cl + 1]);
                }
                *reinterpret_cast<float2*>(Z + rl * VA_GZS + cl) =
                    make_float2(va_gemm_act(v0, act), va_gemm_act(v1, act));
            }
        }
    __syncthreads();
    const int cols = min(VA_FN, N - n0);
    const bool full = cols == VA_FN && (ldc & 3) == 0;
    for (int rl = warp; rl < VA_FM; rl += WARPS) {
        const int r = m0 + rl;
        if (r >= M) break;
        float* crow = C + (i64)r * ldc + n0;
        const float* zrow = Z + rl * VA_GZS;
        if (full) {
            __stcs(reinterpret_cast<float4*>(crow) + lane, *reinterpret_cast<const float4*>(zrow + 4 * lane));
        } else {
            for (int c = lane; c < cols; c += 32) __stcs(crow + c, zrow[c]);
        }
    }
}

#define VA_GEMM_ARGS                                                                                  \
    const char *__restrict__ A, i64 lda, int M, const char *__restrict__ B, i64 ldb, i64 piece,       \
        int pieces, int N, int K, float alpha, const float *__restrict__ rowscale,                    \
        const float *__restrict__ colscale, const float *__restrict__ bias, int act,                  \
        float *__restrict__ C, i64 ldc, int m_fast
#define VA_GEMM_PASS A, lda, M, B, ldb, piece, pieces, N, K, alpha, rowscale, colscale, bias, act, C, ldc, m_fast

// Two blocks per SM (up to 112 KB of shared memory each): one block's
// stores overlap the other's products.
extern "C" __global__ void __launch_bounds__(256, 2) va_gemm_nt_3xtf32_v4(VA_GEMM_ARGS) {
    va_gemm_nt<true, VA_KIND_3XTF32>(VA_GEMM_PASS);
}
extern "C" __global__ void __launch_bounds__(256, 2) va_gemm_nt_3xtf32_v1(VA_GEMM_ARGS) {
    va_gemm_nt<false, VA_KIND_3XTF32>(VA_GEMM_PASS);
}
// 16-bit operands: rows of lda, ldb multiples of 8 elements (16 bytes).
extern "C" __global__ void __launch_bounds__(256, 2) va_gemm_nt_bf16(VA_GEMM_ARGS) {
    va_gemm_nt<true, VA_KIND_BF16>(VA_GEMM_PASS);
}
extern "C" __global__ void __launch_bounds__(256, 2) va_gemm_nt_f16(VA_GEMM_ARGS) {
    va_gemm_nt<true, VA_KIND_F16>(VA_GEMM_PASS);
}
// The pieces of an f32 matrix (rows x d) as 16-bit rows of hd >= d values
// (padding zero), a warp per row: piece p (p < pieces) at
// out + p * rows * hd rounds (to nearest even) what the earlier pieces left
// of each value. With scale (f16), each row is first multiplied by the
// power of two 2^e that puts its largest finite magnitude in [2^14, 2^15)
// (exact; f16's range and significand used fully, no overflow) and
// scale[r] = 2^-e undoes it (the products' column scale).
extern "C" __global__ void va_split_half(const float* __restrict__ w, long long rows, int d, int hd, int pieces,
                                         int bf16, float* __restrict__ scale, unsigned short* __restrict__ out) {
    const int lane = threadIdx.x & 31;
    const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
    const long long total = rows * hd;
    for (long long r = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += warps) {
        float up = 1.0f;
        if (scale) {
            float top = 0.0f;
            for (int c = lane; c < d; c += 32) {
                const float v = fabsf(w[r * d + c]);
                if (isfinite(v)) top = fmaxf(top, v);
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, o));
            int e = 0;
            if (top > 0.0f) {
                int ex;
                frexpf(top, &ex);  // top = m 2^ex, m in [0.5, 1)
                e = min(15 - ex, 126);
            }
            up = ldexpf(1.0f, e);
            if (lane == 0) scale[r] = ldexpf(1.0f, -e);
        }
        for (int c = lane; c < hd; c += 32) {
            float rest = c < d ? __fmul_rn(w[r * d + c], up) : 0.0f;
            for (int p = 0; p < pieces; ++p) {
                unsigned short h;
                float back;
                if (bf16) {
                    asm("cvt.rn.bf16.f32 %0, %1;\n" : "=h"(h) : "f"(rest));
                    back = __uint_as_float((u32)h << 16);
                } else {
                    asm("cvt.rn.f16.f32 %0, %1;\n" : "=h"(h) : "f"(rest));
                    asm("cvt.f32.f16 %0, %1;\n" : "=f"(back) : "h"(h));
                }
                out[(long long)p * total + r * hd + c] = h;
                rest = __fsub_rn(rest, back);
            }
        }
    }
}
