// Tensor-core building blocks shared by the k-NN filter (knn.cu) and the
// k-means assignment (cluster.cu): cp.async tile loads into a multi-stage
// shared-memory pipeline, TF32 / 16-bit mma.sync and ldmatrix fragments.

#define VA_FM 128            // queries per block tile
#define VA_FN 128            // base rows per block tile
#define VA_FK 32             // dimensions per pipeline stage
#define VA_FS (VA_FK + 4)    // shared-memory row stride (floats): conflict-free fragments
#define VA_FSTAGES 3         // cp.async pipeline depth

__device__ __forceinline__ void va_cp_async16(float* smem, const float* gmem, int src_bytes) {
    u32 s = (u32)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}

__device__ __forceinline__ void va_cp_async4(float* smem, const float* gmem, int src_bytes) {
    u32 s = (u32)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes));
}

__device__ __forceinline__ void va_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void va_cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Loads rows [r0, r0 + 128) x elements [k0, k0 + 128 / ES) of a row-major
// matrix of ES-byte elements (`rows` rows, `d` elements, leading dimension
// ld elements) into smem (row stride VA_FS floats = 144 bytes), zero-filling
// everything outside the matrix. A stage is 128 bytes of every row: 32
// floats, or 64 16-bit values.
template <bool VEC, int THREADS, int ES>
__device__ __forceinline__ void va_load_tile(float* smem, const char* __restrict__ g, i64 ld, int rows, int d,
                                             int r0, int k0) {
    if (VEC) {
        // 128 rows x 8 chunks of 16 bytes = 1024 chunks.
        constexpr int PER = 16 / ES;
#pragma unroll
        for (int it = 0; it < 1024 / THREADS; ++it) {
            int idx = threadIdx.x + it * THREADS;
            int r = idx >> 3;
            int c = idx & 7;
            int gr = r0 + r, gc = k0 + c * PER;
            int bytes = (gr < rows && gc < d) ? min(PER, d - gc) * ES : 0;
            const char* src = bytes ? g + ((i64)gr * ld + gc) * ES : g;
            va_cp_async16(smem + r * VA_FS + c * 4, reinterpret_cast<const float*>(src), bytes);
        }
    } else {
        // 4-byte elements only.
        const float* gf = reinterpret_cast<const float*>(g);
#pragma unroll 4
        for (int it = 0; it < 4096 / THREADS; ++it) {
            int idx = threadIdx.x + it * THREADS;
            int r = idx >> 5;
            int c = idx & 31;
            int gr = r0 + r, gc = k0 + c;
            int bytes = (gr < rows && gc < d) ? 4 : 0;
            const float* src = bytes ? gf + (i64)gr * ld + gc : gf;
            va_cp_async4(smem + r * VA_FS + c, src, bytes);
        }
    }
}

__device__ __forceinline__ u32 va_tf32(float x) {
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ void va_mma_tf32(float* c, const u32* a, const u32* b) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// 16 x 8 x 16 products of 16-bit inputs (bf16 or f16), fp32 accumulation.
template <bool BF16>
__device__ __forceinline__ void va_mma_16bit(float* c, const u32* a, const u32* b) {
    if (BF16) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    } else {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
}

__device__ __forceinline__ void va_ldsm_x4(u32* r, const float* p) {
    u32 a = (u32)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// Operand kinds of the block product: TF32 (f32 bits as they are), 3xTF32
// (each f32 split into a TF32 high and low part, three products: near-fp32
// accuracy), or 16-bit rows (bf16, f16) packed two per 32-bit word.
#define VA_KIND_TF32 0
#define VA_KIND_3XTF32 1
#define VA_KIND_BF16 2
#define VA_KIND_F16 3

// One pipeline stage of a 128 x 128 block product: the warp's 64 x NI * 8
// tile (rows wm.., columns wn..) accumulates the VA_FK-wide slice held in
// shared memory by A (rows) and B (columns), both of row stride VA_FS.
// Fragment layout of acc[mi][ni]: c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t),
// c3 (g+8, 2t+1) with g = lane / 4, t = lane % 4.
template <int KIND, int NI>
__device__ __forceinline__ void va_mma_stage(float (&acc)[4][NI][4], const float* A, const float* B, int wm, int wn,
                                             int lane) {
    constexpr bool SPLIT3 = KIND == VA_KIND_3XTF32;
    constexpr bool HALF = KIND >= VA_KIND_BF16;
#pragma unroll
    for (int kk = 0; kk < VA_FK; kk += 8) {
        float af[4][4], bf[NI][2];
        const int mat = lane >> 3, rr = lane & 7;
#pragma unroll
        for (int mi = 0; mi < 4; ++mi) {
            u32 r4[4];
            va_ldsm_x4(r4, A + (wm + mi * 16 + rr + (mat & 1) * 8) * VA_FS + kk + (mat >> 1) * 4);
#pragma unroll
            for (int e = 0; e < 4; ++e) af[mi][e] = __uint_as_float(r4[e]);
        }
#pragma unroll
        for (int np = 0; np < NI; np += 2) {
            u32 r4[4];
            va_ldsm_x4(r4, B + (wn + (np + (mat >> 1)) * 8 + rr) * VA_FS + kk + (mat & 1) * 4);
            bf[np][0] = __uint_as_float(r4[0]);
            bf[np][1] = __uint_as_float(r4[1]);
            bf[np + 1][0] = __uint_as_float(r4[2]);
            bf[np + 1][1] = __uint_as_float(r4[3]);
        }
        if (HALF) {
            // The same 32-byte fragments hold 16 values of 16 bits.
            u32 a[4][4], b[NI][2];
#pragma unroll
            for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                for (int e = 0; e < 4; ++e) a[mi][e] = __float_as_uint(af[mi][e]);
#pragma unroll
            for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                for (int e = 0; e < 2; ++e) b[ni][e] = __float_as_uint(bf[ni][e]);
#pragma unroll
            for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) va_mma_16bit<KIND == VA_KIND_BF16>(acc[mi][ni], a[mi], b[ni]);
        } else if (SPLIT3) {
            u32 ah[4][4], al[4][4], bh[NI][2], bl[NI][2];
#pragma unroll
            for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    ah[mi][e] = va_tf32(af[mi][e]);
                    al[mi][e] = va_tf32(af[mi][e] - __uint_as_float(ah[mi][e]));
                }
#pragma unroll
            for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    bh[ni][e] = va_tf32(bf[ni][e]);
                    bl[ni][e] = va_tf32(bf[ni][e] - __uint_as_float(bh[ni][e]));
                }
#pragma unroll
            for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) {
                    va_mma_tf32(acc[mi][ni], al[mi], bh[ni]);
                    va_mma_tf32(acc[mi][ni], ah[mi], bl[ni]);
                    va_mma_tf32(acc[mi][ni], ah[mi], bh[ni]);
                }
        } else {
            u32 a[4][4], b[NI][2];
#pragma unroll
            for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                for (int e = 0; e < 4; ++e) a[mi][e] = __float_as_uint(af[mi][e]);
#pragma unroll
            for (int ni = 0; ni < NI; ++ni)
#pragma unroll
                for (int e = 0; e < 2; ++e) b[ni][e] = __float_as_uint(bf[ni][e]);
#pragma unroll
            for (int mi = 0; mi < 4; ++mi)
#pragma unroll
                for (int ni = 0; ni < NI; ++ni) va_mma_tf32(acc[mi][ni], a[mi], b[ni]);
        }
    }
}

// The block product over nk pipeline stages: load(s) issues the cp.async
// copies of stage s into slot s % VA_FSTAGES of As and Bs (tiles of
// VA_FM x VA_FS floats); acc (zeroed here) accumulates every stage. Returns
// with every copy landed and the block synchronised, so the caller may
// reuse the pipeline's shared memory.
template <int KIND, int NI, typename Load>
__device__ __forceinline__ void va_block_product(float (&acc)[4][NI][4], int nk, Load load, const float* As,
                                                 const float* Bs, int wm, int wn, int lane) {
#pragma unroll
    for (int s0 = 0; s0 < VA_FSTAGES - 1; ++s0) {
        if (s0 < nk) load(s0);
        va_cp_commit();
    }
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
        va_mma_stage<KIND, NI>(acc, As + st * VA_FM * VA_FS, Bs + st * VA_FN * VA_FS, wm, wn, lane);
        __syncthreads();
    }
    va_cp_wait<0>();
    __syncthreads();
}
