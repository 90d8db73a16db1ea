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

