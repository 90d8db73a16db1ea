// Selection kernels: exact row-wise top-k for any k (radix select on the
// 96-bit key (value key, id), then a bitonic sort of the k winners), and a
// merge of two sorted lists.

#define VA_SELECT_THREADS 256
#define VA_SMEM_ITEMS 2048

__device__ __forceinline__ void va_bitonic_sort(VaItem* items, int n) {
    // n is a power of two; the block sorts ascending by (key, id).
    for (int size = 2; size <= n; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < n; i += blockDim.x) {
                int j = i ^ stride;
                if (j > i) {
                    bool up = (i & size) == 0;
                    VaItem a = items[i], b = items[j];
                    if (va_less(b, a) == up) {
                        items[i] = b;
                        items[j] = a;
                    }
                }
            }
            __syncthreads();
        }
    }
}

// Digit d (0 = most significant) of the 96-bit key (key, id), 8 bits each.
__device__ __forceinline__ u32 va_digit(u32 key, u64 id, int d) {
    return d < 4 ? (key >> (24 - 8 * d)) & 0xffu : (u32)(id >> (56 - 8 * (d - 4))) & 0xffu;
}

// Whether (key, id) agrees with the prefix on its first `done` digits.
__device__ __forceinline__ bool va_prefix_match(u32 key, u64 id, u32 pk, u64 pid, int done) {
    if (done == 0) return true;
    if (done <= 4) {
        u32 mask = done == 4 ? 0xffffffffu : ~(0xffffffffu >> (8 * done));
        return (key & mask) == (pk & mask);
    }
    if (key != pk) return false;
    int idd = done - 4;
    u64 mask = idd == 8 ? ~0ull : ~(~0ull >> (8 * idd));
    return (id & mask) == (pid & mask);
}

// The best k of vals[row, 0..n_in) per row (ids: ids[row * ids_ld + j] when
// given, ids_ld = 0 sharing one id per column; else id_offset + j; the id
// VA_MISSING_ID marks an absent candidate), sorted, written to
// out_d/out_i[block * k ..]. With split > 1, `split` consecutive blocks share
// a row, each taking one contiguous part of it (its own list of k). Rows
// with fewer than k values get missing markers in the tail. `scratch` holds
// scratch_stride items per block and is only used when the power of two
// above min(k, n) exceeds VA_SMEM_ITEMS. When `counts` is given, row r has
// counts[r] candidates, or, if counts[r] > cap, selects from full_vals
// instead (see filter_candidates).
extern "C" __global__ void __launch_bounds__(VA_SELECT_THREADS)
topk_rows_f32(const float* __restrict__ vals, i64 ld, int n_in, int k, int desc,
              const u64* __restrict__ ids, i64 ids_ld, u64 id_offset_in,
              float* __restrict__ out_d, u64* __restrict__ out_i,
              VaItem* __restrict__ scratch, i64 scratch_stride,
              const int* __restrict__ counts, int cap,
              const float* __restrict__ full_vals, i64 full_ld, int full_n, u64 full_offset,
              VaEpi epi, int split) {
    __shared__ u32 hist[256];
    __shared__ VaItem sitems[VA_SMEM_ITEMS];
    __shared__ u32 s_pk;
    __shared__ u64 s_pid;
    __shared__ int s_done, s_krem, s_all, s_count;
    const int row = blockIdx.x / split;
    const int part = blockIdx.x % split;
    // Candidate rows whose filter overflowed (counts[row] > cap) select from
    // the full row instead, when it is given.
    const bool full = counts && counts[row] > cap && full_vals;
    const float* v = full ? full_vals + (i64)row * full_ld : vals + (i64)row * ld;
    const int n_row = full ? full_n : (counts ? min(counts[row], n_in) : n_in);
    const u64* rid = (ids && !full) ? ids + (i64)row * ids_ld : 0;
    const u64 id_offset = full ? full_offset : id_offset_in;
    // Full rows of a raw dot-product tile go through the epilogue.
    const bool raw = full && epi.on;
    const float qrow = (raw && !epi.normalized) ? epi.qn[row] : 1.0f;
    auto value = [&](int j) -> float {
        float x = v[j];
        return raw ? va_epilogue(x, qrow, epi.normalized ? 1.0f : epi.xn[j], epi.metric, epi.normalized) : x;
    };
    // This block's part [c0, c1) of the row (parts are multiples of 4 long).
    const int w = (((n_row + split - 1) / split) + 3) & ~3;
    const int c0 = min(n_row, part * w);
    const int c1 = min(n_row, c0 + w);
    const int n = c1 - c0;
    const int kk = min(k, n);
    int kpad = 1;
    while (kpad < kk) kpad <<= 1;
    VaItem* items = kpad <= VA_SMEM_ITEMS ? sitems : scratch + (i64)blockIdx.x * scratch_stride;

    if (threadIdx.x == 0) {
        s_pk = 0;
        s_pid = 0;
        s_done = 0;
        s_krem = kk;
        s_all = (kk == n);  // everything is selected
        s_count = 0;
    }
    __syncthreads();

    // Radix select: after the loop, every element whose key agrees with the
    // prefix on `s_done` digits and is <= it in the rest is selected.
    while (!s_all && s_done < 12) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
        __syncthreads();
        const int done = s_done;
        const u32 pk = s_pk;
        const u64 pid = s_pid;
        for (int j = c0 + threadIdx.x; j < c1; j += blockDim.x) {
            u64 id = rid ? rid[j] : id_offset + (u64)j;
            u32 key = id == VA_MISSING_ID ? VA_KEY_MAX : va_sort_key(value(j), desc);
            if (va_prefix_match(key, id, pk, pid, done)) atomicAdd(&hist[va_digit(key, id, done)], 1u);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int krem = s_krem;
            u32 cum = 0;
            int dsel = 255;
            for (int d = 0; d < 256; ++d) {
                if (cum + hist[d] >= (u32)krem) {
                    dsel = d;
                    break;
                }
                cum += hist[d];
            }
            krem -= (int)cum;
            if (done < 4) s_pk = pk | ((u32)dsel << (24 - 8 * done));
            else s_pid = pid | ((u64)dsel << (56 - 8 * (done - 4)));
            s_krem = krem;
            s_done = done + 1;
            // The whole chosen bucket is needed: no further digit matters.
            if (hist[dsel] == (u32)krem) s_all = 2;
        }
        __syncthreads();
    }
    const int done = s_done;
    const u32 pk = s_pk;
    const u64 pid = s_pid;
    const int mode = s_all;  // 1: take all; 2: take prefix bucket whole; 0: exact 96-bit threshold

    // Compaction of the kk winners (any order; sorted below). The threshold
    // is the prefix extended with all-ones digits. Candidates strictly below
    // it number fewer than kk and go first; candidates equal to it (identical
    // duplicates, e.g. missing markers) then fill the remaining slots.
    u32 tk = pk;
    u64 tid = pid;
    if (done < 4) {
        tk |= 0xffffffffu >> (8 * done);
        tid = ~0ull;
    } else if (done < 12) {
        tid |= ~0ull >> (8 * (done - 4));
    }
    for (int pass = 0; pass < (mode == 1 ? 1 : 2); ++pass) {
        const int base = s_count;
        __syncthreads();
        if (threadIdx.x == 0) s_count = 0;
        __syncthreads();
        for (int j = c0 + threadIdx.x; j < c1; j += blockDim.x) {
            u64 id = rid ? rid[j] : id_offset + (u64)j;
            u32 key = id == VA_MISSING_ID ? VA_KEY_MAX : va_sort_key(value(j), desc);
            bool take;
            if (mode == 1) take = true;
            else if (pass == 0) take = key < tk || (key == tk && id < tid);
            else take = key == tk && id == tid;
            if (take) {
                int slot = (pass == 0 ? 0 : base) + atomicAdd(&s_count, 1);
                if (slot < kk) items[slot] = va_item(key, id);
            }
        }
        __syncthreads();
        if (pass == 0 && threadIdx.x == 0) s_count = min(s_count, kk);
        __syncthreads();
    }
    for (int i = kk + threadIdx.x; i < kpad; i += blockDim.x) items[i] = va_item(VA_KEY_MAX, VA_MISSING_ID);
    __syncthreads();
    va_bitonic_sort(items, kpad);
    float miss = desc ? -va_inf() : va_inf();
    for (int i = threadIdx.x; i < k; i += blockDim.x) {
        i64 o = (i64)blockIdx.x * k + i;
        if (i < kk && items[i].id != VA_MISSING_ID) {
            out_d[o] = va_key_value(items[i].key, desc);
            out_i[o] = items[i].id;
        } else {
            out_d[o] = miss;
            out_i[o] = VA_MISSING_ID;
        }
    }
}

// Merge of two sorted lists per row (ka and kb entries) into the best k.
// Each entry's output slot is its rank: i + (#B before it) for A (B entries
// equal to it come after), j + (#A not after it) for B.
extern "C" __global__ void merge_sorted(const float* __restrict__ ad, const u64* __restrict__ ai, int ka,
                                        const float* __restrict__ bd, const u64* __restrict__ bi, int kb,
                                        int k, int desc, float* __restrict__ od, u64* __restrict__ oi) {
    const int row = blockIdx.x;
    const float* a_d = ad + (i64)row * ka;
    const u64* a_i = ai + (i64)row * ka;
    const float* b_d = bd + (i64)row * kb;
    const u64* b_i = bi + (i64)row * kb;
    float* o_d = od + (i64)row * k;
    u64* o_i = oi + (i64)row * k;
    for (int i = threadIdx.x; i < ka; i += blockDim.x) {
        VaItem x = va_item_of(a_d[i], a_i[i], desc);
        int lo = 0, hi = kb;  // count of B strictly less than x
        while (lo < hi) {
            int mid = (lo + hi) >> 1;
            if (va_less(va_item_of(b_d[mid], b_i[mid], desc), x)) lo = mid + 1;
            else hi = mid;
        }
        int pos = i + lo;
        if (pos < k) {
            o_d[pos] = a_d[i];
            o_i[pos] = a_i[i];
        }
    }
    for (int j = threadIdx.x; j < kb; j += blockDim.x) {
        VaItem x = va_item_of(b_d[j], b_i[j], desc);
        int lo = 0, hi = ka;  // count of A less than or equal to x
        while (lo < hi) {
            int mid = (lo + hi) >> 1;
            if (!va_less(x, va_item_of(a_d[mid], a_i[mid], desc))) lo = mid + 1;
            else hi = mid;
        }
        int pos = j + lo;
        if (pos < k) {
            o_d[pos] = b_d[j];
            o_i[pos] = b_i[j];
        }
    }
    float miss = desc ? -va_inf() : va_inf();
    for (int p = ka + kb + threadIdx.x; p < k; p += blockDim.x) {
        o_d[p] = miss;
        o_i[p] = VA_MISSING_ID;
    }
}

// `split` blocks per row of a distance tile (or, with epi.on, of raw dot
// products turned into distances on the fly), each scanning one part: the
// entries that beat the row's current k-th best (st_d/st_i, sorted lists of
// k) are the only ones that can enter its top-k. They are appended to
// cd/ci[row * cap ..] and counted in counts[row] (zeroed by the caller); a
// count above cap means overflow, and topk_rows_f32 then selects from the
// full row.
extern "C" __global__ void __launch_bounds__(VA_SELECT_THREADS)
filter_candidates(const float* __restrict__ vals, i64 ld, int n, int desc, u64 id_offset,
                  const float* __restrict__ st_d, const u64* __restrict__ st_i, int k,
                  float* __restrict__ cd, u64* __restrict__ ci, int cap, int* __restrict__ counts,
                  VaEpi epi, int split) {
    const int row = blockIdx.x / split;
    const int part = blockIdx.x % split;
    const VaItem t = va_item_of(st_d[(i64)row * k + k - 1], st_i[(i64)row * k + k - 1], desc);
    const float* v = vals + (i64)row * ld;
    const float qrow = (epi.on && !epi.normalized) ? epi.qn[row] : 1.0f;
    float* c_d = cd + (i64)row * cap;
    u64* c_i = ci + (i64)row * cap;
    int* cnt = counts + row;
    const int w = (((n + split - 1) / split) + 3) & ~3;
    const int c0 = min(n, part * w);
    const int c1 = min(n, c0 + w);
    const float* vp = v + c0;
    const bool xn_aligned = !epi.on || epi.normalized || ((((unsigned long long)(epi.xn + c0)) & 15) == 0);
    const bool vec4 = ((ld & 3) == 0) && ((((unsigned long long)vp) & 15) == 0) && xn_aligned;
    const int n4 = vec4 ? ((c1 - c0) >> 2) : 0;
    for (int q = threadIdx.x; q < n4; q += blockDim.x) {
        float4 f = reinterpret_cast<const float4*>(vp)[q];
        float e[4] = {f.x, f.y, f.z, f.w};
        if (epi.on) {
            const float4 xq = epi.normalized ? make_float4(1.0f, 1.0f, 1.0f, 1.0f)
                                             : reinterpret_cast<const float4*>(epi.xn + c0)[q];
            e[0] = va_epilogue(e[0], qrow, xq.x, epi.metric, epi.normalized);
            e[1] = va_epilogue(e[1], qrow, xq.y, epi.metric, epi.normalized);
            e[2] = va_epilogue(e[2], qrow, xq.z, epi.metric, epi.normalized);
            e[3] = va_epilogue(e[3], qrow, xq.w, epi.metric, epi.normalized);
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            u32 key = va_sort_key(e[u], desc);
            u64 id = id_offset + (u64)(c0 + 4 * q + u);
            if (key < t.key || (key == t.key && id < t.id)) {
                int slot = atomicAdd(cnt, 1);
                if (slot < cap) {
                    c_d[slot] = e[u];
                    c_i[slot] = id;
                }
            }
        }
    }
    for (int j = c0 + 4 * n4 + threadIdx.x; j < c1; j += blockDim.x) {
        float x = v[j];
        if (epi.on) x = va_epilogue(x, qrow, epi.normalized ? 1.0f : epi.xn[j], epi.metric, epi.normalized);
        u32 key = va_sort_key(x, desc);
        u64 id = id_offset + (u64)j;
        if (key < t.key || (key == t.key && id < t.id)) {
            int slot = atomicAdd(cnt, 1);
            if (slot < cap) {
                c_d[slot] = x;
                c_i[slot] = id;
            }
        }
    }
}

// Whether (ak, ai) ranks before (bk, bi): by key, ties by the smaller id.
__device__ __forceinline__ bool va_before(u32 ak, u64 ai, u32 bk, u64 bi) {
    return ak < bk || (ak == bk && ai < bi);
}

// The best k (k <= 32) of vals[row, 0..n) per row, one warp per row (ids
// id_offset + column): lane i holds the row's i-th best so far, sorted
// across the warp; each 32 values are tested against the k-th best with one
// ballot, and the few that beat it are inserted one at a time by shifting
// the lanes after their place. Four loads per lane are in flight at once.
// Same results as topk_rows_f32 (order by (key, column), missing markers
// past the row's end).
extern "C" __global__ void __launch_bounds__(256)
topk_warp_f32(const float* __restrict__ vals, i64 ld, int rows, int n, int k, int desc,
              u64 id_offset, float* __restrict__ out_d, u64* __restrict__ out_i) {
    const unsigned full = 0xffffffffu;
    const int row = (int)((blockIdx.x * (i64)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* v = vals + (i64)row * ld;
    u32 bk = VA_KEY_MAX;
    u64 bi = VA_MISSING_ID;
    for (int j0 = 0; j0 < n; j0 += 128) {
        float x[4];
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            int j = j0 + 32 * u + lane;
            x[u] = j < n ? v[j] : 0.0f;
        }
#pragma unroll
        for (int u = 0; u < 4; ++u) {
            const int j = j0 + 32 * u + lane;
            const u32 key = va_sort_key(x[u], desc);
            const u64 id = id_offset + (u64)j;
            u32 tk = __shfl_sync(full, bk, k - 1);
            u64 ti = __shfl_sync(full, bi, k - 1);
            unsigned want = __ballot_sync(full, j < n && va_before(key, id, tk, ti));
            while (want) {
                const int src = __ffs(want) - 1;
                want &= want - 1;
                const u32 ck = __shfl_sync(full, key, src);
                const u64 ci = __shfl_sync(full, id, src);
                tk = __shfl_sync(full, bk, k - 1);
                ti = __shfl_sync(full, bi, k - 1);
                if (!va_before(ck, ci, tk, ti)) continue;  // the same on every lane
                // Lanes ranking before the new item stay; it takes the next
                // lane, and the lanes after it move up one.
                const int pos = __popc(__ballot_sync(full, va_before(bk, bi, ck, ci)));
                const u32 uk = __shfl_up_sync(full, bk, 1);
                const u64 ui = __shfl_up_sync(full, bi, 1);
                if (lane == pos) {
                    bk = ck;
                    bi = ci;
                } else if (lane > pos) {
                    bk = uk;
                    bi = ui;
                }
            }
        }
    }
    if (lane < k) {
        const i64 o = (i64)row * k + lane;
        const bool have = bi != VA_MISSING_ID;
        out_d[o] = have ? va_key_value(bk, desc) : (desc ? -va_inf() : va_inf());
        out_i[o] = have ? bi : VA_MISSING_ID;
    }
}
