// Best-first walks over a proximity graph (index/graph.rs), one block per
// query. The block keeps in shared memory a sorted list of the `ef` best
// nodes seen, each an item (sort key << 32 | node << 1 | expanded), so that
// items compare by key, then node, as the host walk ranks them; it expands
// the best unexpanded item (its `degree` neighbours), scores the neighbours
// it has not visited (an open-addressing hash of node numbers, cleared and
// refilled from the list when half full), sorts them and merges them into
// the list, until every item of the list has been expanded. Keys are the
// squared L2 distance or the negated inner product: smaller is better.
// With a filter, a second list keeps the best `k` allowed nodes.

#define VA_GW_THREADS 128
#define VA_GW_TEAM 8
#define VA_GW_EMPTY 0xFFFFFFFFFFFFFFFFull
#define VA_GW_NO_NODE 0xFFFFFFFFu

__device__ __forceinline__ u64 va_gw_item(float key, u32 node) {
    return ((u64)va_sort_key(key, 0) << 32) | ((u64)node << 1);
}
__device__ __forceinline__ u32 va_gw_node(u64 item) { return (u32)(item >> 1) & 0x7fffffffu; }
__device__ __forceinline__ float va_gw_key(u64 item) { return va_key_value((u32)(item >> 32), 0); }

// The start nodes of query qi of a chunk (q_offset its first query's
// number) on a level of n nodes: its `ns` given ones (row qi of `starts`;
// with none, nodes spread over the level as the host walk takes them for
// query q_offset + qi), then the level's `np` part starts; `total` of them.
struct VaGwStarts {
    const u32* given;  // this query's ns nodes
    const u32* parts;
    int ns, first, total, step, shift;
    __device__ VaGwStarts(const u32* starts, int ns_, const u32* parts_, int np, int n, int qi, int q_offset) {
        const int root = (int)sqrt((double)n) / 2;
        const int count = ns_ > 0 ? 0 : min(n, max(16, min(256, root)));
        step = count > 0 ? n / count : 1;
        const u64 mixed = ((u64)(qi + q_offset) * 0x9E3779B9ull) >> 7;
        shift = (int)(mixed % (u64)max(step, 1));
        given = ns_ > 0 ? starts + (i64)qi * ns_ : nullptr;
        parts = parts_;
        ns = ns_;
        first = ns_ > 0 ? ns_ : count;
        total = first + np;
    }
    // Start `at`, VA_GW_NO_NODE past the last.
    __device__ u32 node(int at) const {
        if (at >= total) return VA_GW_NO_NODE;
        if (at >= first) return parts[at - first];
        if (ns > 0) return given[at];
        return (u32)(at * step + shift);
    }
};

// Items of `a` (len entries, sorted) that rank before `x`.
__device__ __forceinline__ int va_gw_rank(const u64* a, int len, u64 x) {
    int lo = 0, hi = len;
    while (lo < hi) {
        const int mid = (lo + hi) >> 1;
        if ((a[mid] | 1ull) < (x | 1ull)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// Adds four values' terms of a key to `acc`: products (inner product) or
// squared differences (L2), in a fixed order.
__device__ __forceinline__ void va_ww_acc4(float& acc, float4 a, float4 b, bool ip) {
    if (ip) {
        acc = fmaf(a.x, b.x, acc);
        acc = fmaf(a.y, b.y, acc);
        acc = fmaf(a.z, b.z, acc);
        acc = fmaf(a.w, b.w, acc);
    } else {
        const float e0 = a.x - b.x, e1 = a.y - b.y, e2 = a.z - b.z, e3 = a.w - b.w;
        acc = fmaf(e0, e0, acc);
        acc = fmaf(e1, e1, acc);
        acc = fmaf(e2, e2, acc);
        acc = fmaf(e3, e3, acc);
    }
}

// The key of a row of `x` against the query `q` (shared memory), computed
// by a team of VA_GW_TEAM lanes (the result is every lane's).
__device__ __forceinline__ float va_gw_key_of(const float* __restrict__ q, const float* __restrict__ x, int d,
                                              bool vec, bool ip, int lane) {
    float s = 0.0f;
    if (vec) {
        const float4* q4 = reinterpret_cast<const float4*>(q);
        const float4* x4 = reinterpret_cast<const float4*>(x);
        for (int i = lane; i < (d >> 2); i += VA_GW_TEAM) {
            va_ww_acc4(s, q4[i], __ldg(x4 + i), ip);
        }
    } else {
        for (int i = lane; i < d; i += VA_GW_TEAM) {
            const float b = __ldg(x + i);
            if (ip) s = fmaf(q[i], b, s);
            else s = fmaf(q[i] - b, q[i] - b, s);
        }
    }
    // Only the team's lanes take part (other teams of the warp may skip).
    const unsigned team = 0xFFu << ((threadIdx.x & 31) & ~(VA_GW_TEAM - 1));
#pragma unroll
    for (int o = VA_GW_TEAM / 2; o > 0; o >>= 1) s += __shfl_xor_sync(team, s, o, VA_GW_TEAM);
    return ip ? -s : s;
}

// Marks `node` visited; whether it was new.
__device__ __forceinline__ bool va_gw_visit(u32* hash, int bits, u32 node, int* inserted) {
    const u32 mask = (1u << bits) - 1;
    u32 h = (node * 0x9E3779B1u) >> (32 - bits);
    while (true) {
        const u32 old = atomicCAS(hash + h, VA_GW_NO_NODE, node);
        if (old == VA_GW_NO_NODE) {
            atomicAdd(inserted, 1);
            return true;
        }
        if (old == node) return false;
        h = (h + 1) & mask;
    }
}

// Bitonic sort of `a` (len a power of two) by the whole block.
__device__ __forceinline__ void va_gw_sort(u64* a, int len) {
    for (int size = 2; size <= len; size <<= 1) {
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int i = threadIdx.x; i < (len >> 1); i += blockDim.x) {
                const int lo = 2 * i - (i & (stride - 1));
                const int hi = lo + stride;
                const bool up = (lo & size) == 0;
                const u64 x = a[lo], y = a[hi];
                if ((x > y) == up) {
                    a[lo] = y;
                    a[hi] = x;
                }
            }
            __syncthreads();
        }
    }
}

// Merges the sorted `add` (nb items, VA_GW_EMPTY last) into the sorted
// list `from` (*len items) as the best `cap` into `to`; updates *len (by
// thread 0, after the block's reads).
__device__ __forceinline__ void va_gw_merge(const u64* from, u64* to, int* len, int cap, const u64* add, int nb) {
    const int n = *len;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const int pos = i + va_gw_rank(add, nb, from[i]);
        if (pos < cap) to[pos] = from[i];
    }
    for (int j = threadIdx.x; j < nb; j += blockDim.x) {
        if (add[j] == VA_GW_EMPTY) continue;
        const int pos = j + va_gw_rank(from, n, add[j]);
        if (pos < cap) to[pos] = add[j];
    }
    // Valid added items: the first EMPTY's place.
    const int valid = va_gw_rank(add, nb, VA_GW_EMPTY);
    __syncthreads();
    if (threadIdx.x == 0) *len = min(cap, n + valid);
    __syncthreads();
}

struct VaGwShared {
    u64* list[2];   // the candidate list, double-buffered
    u64* res[2];    // allowed results (filtered walks)
    u64* fresh;     // items being added (nbp)
    u64* fresh2;    // their allowed subset (filtered walks)
    u32* hash;
    float* q;
};

// Scores the nodes in s.fresh (node numbers in the low word, VA_GW_EMPTY
// for none; nbp entries), sorts them and merges them into the lists.
__device__ __forceinline__ void va_gw_absorb(VaGwShared& s, int& cur, int* len, int* rlen, int ef, int k, int nbp,
                                             const float* __restrict__ X, int d, bool vec, bool ip,
                                             const u64* __restrict__ allowed) {
    const int team = threadIdx.x / VA_GW_TEAM, lane = threadIdx.x % VA_GW_TEAM;
    for (int t = team; t < nbp; t += VA_GW_THREADS / VA_GW_TEAM) {
        const u64 v = s.fresh[t];
        if (v == VA_GW_EMPTY) continue;  // uniform per team
        const u32 node = (u32)v;
        const float key = va_gw_key_of(s.q, X + (i64)node * d, d, vec, ip, lane);
        if (lane == 0) s.fresh[t] = va_gw_item(key, node);
    }
    __syncthreads();
    va_gw_sort(s.fresh, nbp);
    if (allowed) {
        for (int t = threadIdx.x; t < nbp; t += blockDim.x) {
            const u64 v = s.fresh[t];
            const u32 node = va_gw_node(v);
            const bool ok = v != VA_GW_EMPTY && ((allowed[node >> 6] >> (node & 63)) & 1ull);
            s.fresh2[t] = ok ? v : VA_GW_EMPTY;
        }
        __syncthreads();
        va_gw_sort(s.fresh2, nbp);
        va_gw_merge(s.res[cur], s.res[cur ^ 1], rlen, k, s.fresh2, nbp);
    }
    va_gw_merge(s.list[cur], s.list[cur ^ 1], len, ef, s.fresh, nbp);
    cur ^= 1;
}

// Clears the visited hash and marks the nodes of the lists again.
__device__ __forceinline__ void va_gw_reset(VaGwShared& s, int cur, int len, int rlen, int bits, int* inserted) {
    for (int i = threadIdx.x; i < (1 << bits); i += blockDim.x) s.hash[i] = VA_GW_NO_NODE;
    __syncthreads();
    if (threadIdx.x == 0) *inserted = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < len; i += blockDim.x) va_gw_visit(s.hash, bits, va_gw_node(s.list[cur][i]), inserted);
    for (int i = threadIdx.x; i < rlen; i += blockDim.x) va_gw_visit(s.hash, bits, va_gw_node(s.res[cur][i]), inserted);
    __syncthreads();
}

// One level's walk for every query (grid: one block per query).
//   Q: nq x d queries; X: n x d rows; links: n x degree (VA_GW_NO_NODE pads)
//   starts: nq x ns per-query start nodes; with ns = 0, nodes spread over
//   the level instead (those the host walk takes for query q_offset + qi);
//   parts: np more for every query
//   allowed: bits of the nodes a result may be (null: all)
//   out: nq x kout keys and nodes (mapped through `map` when given;
//   VA_GW_NO_NODE and NaN past the results)
extern "C" __global__ void __launch_bounds__(VA_GW_THREADS)
graph_walk(const float* __restrict__ Q, int d, const float* __restrict__ X, int n, const u32* __restrict__ links,
           int degree, const u32* __restrict__ starts, int ns, const u32* __restrict__ parts, int np, int q_offset, int ef, int k, int ip_flag, const u64* __restrict__ allowed, int nbp, int hash_bits,
           int max_iters, const u32* __restrict__ map, float* __restrict__ out_keys, u32* __restrict__ out_nodes,
           int kout) {
    extern __shared__ __align__(16) unsigned char va_gw_smem[];
    __shared__ int s_len, s_rlen, s_inserted, s_pick;
    const int qi = blockIdx.x;
    const bool ip = ip_flag != 0;
    const int rcap = allowed ? k : 0;
    VaGwShared s;
    {
        u64* p = reinterpret_cast<u64*>(va_gw_smem);
        s.list[0] = p;
        s.list[1] = p + ef;
        p += 2 * ef;
        s.res[0] = p;
        s.res[1] = p + rcap;
        p += 2 * rcap;
        s.fresh = p;
        s.fresh2 = p + nbp;
        p += 2 * nbp;
        s.hash = reinterpret_cast<u32*>(p);
        s.q = reinterpret_cast<float*>(s.hash + (1 << hash_bits));
    }
    const float* qg = Q + (i64)qi * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) s.q[i] = qg[i];
    for (int i = threadIdx.x; i < (1 << hash_bits); i += blockDim.x) s.hash[i] = VA_GW_NO_NODE;
    if (threadIdx.x == 0) {
        s_len = 0;
        s_rlen = 0;
        s_inserted = 0;
    }
    const bool vec = ((d & 3) == 0) && ((((u64)X) & 15) == 0);
    __syncthreads();
    int cur = 0;
    const VaGwStarts from(starts, ns, parts, np, n, qi, q_offset);
    for (int c0 = 0; c0 < from.total; c0 += nbp) {
        for (int t = threadIdx.x; t < nbp; t += blockDim.x) {
            const u32 node = from.node(c0 + t);
            const bool fresh = node != VA_GW_NO_NODE && va_gw_visit(s.hash, hash_bits, node, &s_inserted);
            s.fresh[t] = fresh ? (u64)node : VA_GW_EMPTY;
        }
        __syncthreads();
        va_gw_absorb(s, cur, &s_len, &s_rlen, ef, k, nbp, X, d, vec, ip, allowed);
        // Many starts (part starts) must not fill the hash.
        if (s_inserted > (1 << hash_bits) / 2) va_gw_reset(s, cur, s_len, s_rlen, hash_bits, &s_inserted);
    }
    for (int it = 0; it < max_iters; ++it) {
        // The best unexpanded item.
        if (threadIdx.x < 32) {
            int pick = -1;
            for (int b = 0; b < s_len && pick < 0; b += 32) {
                const int i = b + threadIdx.x;
                const bool open = i < s_len && !(s.list[cur][i] & 1ull);
                const unsigned m = __ballot_sync(0xffffffffu, open);
                if (m) pick = b + __ffs(m) - 1;
            }
            if (threadIdx.x == 0) s_pick = pick;
        }
        __syncthreads();
        const int pick = s_pick;
        if (pick < 0) break;
        const u32 node = va_gw_node(s.list[cur][pick]);
        __syncthreads();
        if (threadIdx.x == 0) s.list[cur][pick] |= 1ull;
        for (int t = threadIdx.x; t < nbp; t += blockDim.x) {
            u32 nb = t < degree ? __ldg(links + (i64)node * degree + t) : VA_GW_NO_NODE;
            const bool fresh = nb != VA_GW_NO_NODE && va_gw_visit(s.hash, hash_bits, nb, &s_inserted);
            s.fresh[t] = fresh ? (u64)nb : VA_GW_EMPTY;
        }
        __syncthreads();
        va_gw_absorb(s, cur, &s_len, &s_rlen, ef, k, nbp, X, d, vec, ip, allowed);
        if (s_inserted > (1 << hash_bits) / 2) va_gw_reset(s, cur, s_len, s_rlen, hash_bits, &s_inserted);
    }
    const u64* best = allowed ? s.res[cur] : s.list[cur];
    const int have = allowed ? s_rlen : s_len;
    for (int i = threadIdx.x; i < kout; i += blockDim.x) {
        float key = va_nan();
        u32 node = VA_GW_NO_NODE;
        if (i < have) {
            key = va_gw_key(best[i]);
            node = va_gw_node(best[i]);
            if (map) node = map[node];
        }
        out_keys[(i64)qi * kout + i] = key;
        out_nodes[(i64)qi * kout + i] = node;
    }
}

// ---------------------------------------------------------------------------
// The warp walk: one warp per query (no block barriers), for walks with
// ef <= 32 * LI and degree <= 32 * CI (with a filter, a second list in
// registers keeps the best kout allowed nodes). The list of the ef best items
// lives in registers (element e = j * 32 + lane in register j, sorted),
// as do the scored neighbours; sorts and merges are bitonic networks of
// shuffles. Each warp has in shared memory its visited hash, its query, and
// the fresh neighbours' nodes and keys. Same order and rules as graph_walk.
// Rows are fp32, f16 bits, or 8-bit codes (value = offset + scale * code
// per dimension, `qp` the d scales then the d offsets): a code row's key
// ranks as the query's to the decoded row, from the dot product of the
// codes with a query b held in shared memory, less a constant per query:
// L2, |s c|^2 - 2 b . c with b = scale (q - offset) and |s c|^2 the row's
// `xnorm`; inner product, -b . c with b = q * scale.

#define VA_WW_WARPS 4

// Compare-exchange of the bitonic networks: this lane's value of the pair
// (v, its partner p), keeping the smaller when `keep_min`.
__device__ __forceinline__ u64 va_ww_cx(u64 v, u64 p, bool keep_min) {
    return keep_min ? (v < p ? v : p) : (v < p ? p : v);
}

// Bitonic sort ascending of the 32 * R elements of `a`.
template <int R>
__device__ __forceinline__ void va_ww_sort(u64 (&a)[R]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int size = 2; size <= 32 * R; size <<= 1) {
#pragma unroll
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
#pragma unroll
            for (int j = 0; j < R; ++j) {
                const int e = j * 32 + lane;
                const bool up = (e & size) == 0;
                if (stride >= 32) {
                    const int js = stride / 32;
                    if ((j & js) == 0) {
                        const u64 x = a[j], y = a[j | js];
                        const bool swap = (x > y) == up;
                        a[j] = swap ? y : x;
                        a[j | js] = swap ? x : y;
                    }
                } else {
                    const u64 p = __shfl_xor_sync(0xffffffffu, a[j], stride);
                    const bool lower = (lane & stride) == 0;
                    a[j] = va_ww_cx(a[j], p, lower == up);
                }
            }
        }
    }
}

// Sorts ascending the bitonic sequence of the 32 * R elements of `a`.
template <int R>
__device__ __forceinline__ void va_ww_merge_bitonic(u64 (&a)[R]) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int stride = 16 * R; stride > 0; stride >>= 1) {
#pragma unroll
        for (int j = 0; j < R; ++j) {
            if (stride >= 32) {
                const int js = stride / 32;
                if ((j & js) == 0) {
                    const u64 x = a[j], y = a[j | js];
                    a[j] = x < y ? x : y;
                    a[j | js] = x < y ? y : x;
                }
            } else {
                const u64 p = __shfl_xor_sync(0xffffffffu, a[j], stride);
                a[j] = va_ww_cx(a[j], p, (lane & stride) == 0);
            }
        }
    }
}

// Marks `node` visited in a warp's hash (open addressing); whether it was new.
__device__ __forceinline__ bool va_ww_visit(u32* hash, int bits, u32 node) {
    const u32 mask = (1u << bits) - 1;
    u32 h = (node * 0x9E3779B1u) >> (32 - bits);
    while (true) {
        const u32 old = atomicCAS(hash + h, VA_GW_NO_NODE, node);
        if (old == VA_GW_NO_NODE) return true;
        if (old == node) return false;
        h = (h + 1) & mask;
    }
}

// A warp's shared memory.
struct VaWwShared {
    u32* hash;
    float* q;
    const float* xnorm;  // an 8-bit walk's |scale * code|^2 per row (L2)
    u32* fnode;  // fresh nodes (32 * CI)
    float* fkey; // their keys
};

// Merges the sorted `add` into the sorted `list`, keeping its best `cap`
// (at most 32 * LI): the list against the added ones reversed (a bitonic
// sequence of element-wise minima), then sorted.
template <int LI, int CI>
__device__ __forceinline__ void va_ww_merge_into(u64 (&list)[LI], const u64 (&add)[CI], int cap) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int j = 0; j < LI; ++j) {
        const int r = LI - 1 - j;
        u64 other = VA_GW_EMPTY;
#pragma unroll
        for (int c = 0; c < CI; ++c)
            if (c == r) other = add[c];
        other = __shfl_sync(0xffffffffu, other, 31 - lane);
        list[j] = list[j] < other ? list[j] : other;
    }
    va_ww_merge_bitonic<LI>(list);
#pragma unroll
    for (int j = 0; j < LI; ++j)
        if (j * 32 + lane >= cap) list[j] = VA_GW_EMPTY;
}

// Rows of the warp walk: fp32, f16 bits (unsigned short) or codes
// (unsigned char).
__device__ __forceinline__ float va_ww_val(float x) { return x; }
__device__ __forceinline__ float va_ww_val(unsigned char c) { return (float)c; }
// Byte `B` of `word` as a float (2^23 + byte, less 2^23: exact).
template <int B>
__device__ __forceinline__ float va_ww_byte(unsigned word) {
    return __uint_as_float(__byte_perm(word, 0x4B000000u, 0x7540u + B)) - 8388608.0f;
}
// Adds the products of four codes (a word) with `b` to `acc`.
__device__ __forceinline__ void va_ww_acc4b(float& acc, float4 b, unsigned word) {
    acc = fmaf(b.x, va_ww_byte<0>(word), acc);
    acc = fmaf(b.y, va_ww_byte<1>(word), acc);
    acc = fmaf(b.z, va_ww_byte<2>(word), acc);
    acc = fmaf(b.w, va_ww_byte<3>(word), acc);
}
__device__ __forceinline__ float va_ww_val(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;\n" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ float4 va_ww_h4(unsigned lo, unsigned hi) {
    return make_float4(va_ww_val((unsigned short)(lo & 0xffffu)), va_ww_val((unsigned short)(lo >> 16)),
                       va_ww_val((unsigned short)(hi & 0xffffu)), va_ww_val((unsigned short)(hi >> 16)));
}

// Whether rows of T, d long, load 16 bytes at a time.
template <typename T>
__device__ __forceinline__ bool va_ww_vec(const T* X, int d) {
    return (d % (16 / (int)sizeof(T))) == 0 && ((((u64)X) & 15) == 0);
}

// Keys of the `fresh` nodes of s.fnode into s.fkey: teams of `team` lanes,
// each team scoring G rows at once (their loads in flight together).
template <int G, typename T>
__device__ __forceinline__ void va_ww_score(const VaWwShared& s, int fresh, const T* __restrict__ X, int d,
                                            bool vec, bool ip, int team) {
    constexpr int W = 16 / (int)sizeof(T);  // values per 16-byte load
    const int lane = threadIdx.x & 31, teams = 32 / team, tl = lane % team;
    for (int t0 = 0; t0 < fresh; t0 += G * teams) {
        const T* x[G];
        bool live[G];
        float acc[G];
#pragma unroll
        for (int g = 0; g < G; ++g) {
            const int t = t0 + g * teams + lane / team;
            live[g] = t < fresh;
            x[g] = X + (i64)(live[g] ? s.fnode[t] : 0u) * d;
            acc[g] = 0.0f;
        }
        if (vec && W == 16) {
            const float4* q4 = reinterpret_cast<const float4*>(s.q);
            for (int i = tl; i < d / W; i += team) {
                float4 b[4];
#pragma unroll
                for (int p = 0; p < 4; ++p) b[p] = q4[4 * i + p];
#pragma unroll
                for (int g = 0; g < G; ++g) {
                    if (!live[g]) continue;
                    const uint4 r = __ldg(reinterpret_cast<const uint4*>(x[g]) + i);
                    va_ww_acc4b(acc[g], b[0], r.x);
                    va_ww_acc4b(acc[g], b[1], r.y);
                    va_ww_acc4b(acc[g], b[2], r.z);
                    va_ww_acc4b(acc[g], b[3], r.w);
                }
            }
        } else if (vec) {
            const float4* q4 = reinterpret_cast<const float4*>(s.q);
#pragma unroll 2
            for (int i = tl; i < d / W; i += team) {
                const float4 a0 = q4[(W / 4) * i];
                const float4 a1 = W == 8 ? q4[2 * i + 1] : a0;
#pragma unroll
                for (int g = 0; g < G; ++g) {
                    if (!live[g]) continue;
                    if constexpr (W == 4) {
                        va_ww_acc4(acc[g], a0, __ldg(reinterpret_cast<const float4*>(x[g]) + i), ip);
                    } else if constexpr (W == 8) {
                        const uint4 r = __ldg(reinterpret_cast<const uint4*>(x[g]) + i);
                        va_ww_acc4(acc[g], a0, va_ww_h4(r.x, r.y), ip);
                        va_ww_acc4(acc[g], a1, va_ww_h4(r.z, r.w), ip);
                    }
                }
            }
        } else {
            for (int i = tl; i < d; i += team) {
                const float a = s.q[i];
#pragma unroll
                for (int g = 0; g < G; ++g) {
                    if (!live[g]) continue;
                    const float b = va_ww_val(__ldg(x[g] + i));
                    acc[g] = ip || W == 16 ? fmaf(a, b, acc[g]) : fmaf(a - b, a - b, acc[g]);
                }
            }
        }
#pragma unroll
        for (int g = 0; g < G; ++g) {
            float v = acc[g];
            for (int o = team / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o, team);
            const int t = t0 + g * teams + lane / team;
            if (live[g] && tl == 0) {
                if (W == 16) s.fkey[t] = s.xnorm ? __ldg(s.xnorm + s.fnode[t]) - 2.0f * v : -v;
                else s.fkey[t] = ip ? -v : v;
            }
        }
    }
}

// Scores the nodes `cand` marked `take` (lane's CI entries) and merges
// them into the list (the allowed ones into the results too); returns how
// many were taken.
template <int LI, int CI, typename T>
__device__ __forceinline__ int va_ww_take(const VaWwShared& s, u64 (&list)[LI], u64 (&res)[LI],
                                          const u32 (&cand)[CI], const bool (&take)[CI], int ef, int k,
                                          const u64* __restrict__ allowed, const T* __restrict__ X, int d, bool vec,
                                          bool ip, int team) {
    const int lane = threadIdx.x & 31;
    int fresh = 0;
#pragma unroll
    for (int c = 0; c < CI; ++c) {
        const unsigned m = __ballot_sync(0xffffffffu, take[c]);
        if (take[c]) s.fnode[fresh + __popc(m & ((1u << lane) - 1))] = cand[c];
        fresh += __popc(m);
    }
    if (fresh == 0) return 0;
    __syncwarp();
    va_ww_score<4, T>(s, fresh, X, d, vec, ip, team);
    __syncwarp();
    u64 add[CI];
#pragma unroll
    for (int c = 0; c < CI; ++c) {
        const int e = c * 32 + lane;
        add[c] = e < fresh ? va_gw_item(s.fkey[e], s.fnode[e]) : VA_GW_EMPTY;
    }
    __syncwarp();
    if (allowed) {
        // The allowed ones, into the results.
        u64 ok[CI];
        bool any = false;
#pragma unroll
        for (int c = 0; c < CI; ++c) {
            const u32 node = va_gw_node(add[c]);
            const bool pass = add[c] != VA_GW_EMPTY && ((allowed[node >> 6] >> (node & 63)) & 1ull);
            ok[c] = pass ? add[c] : VA_GW_EMPTY;
            any |= pass;
        }
        if (__any_sync(0xffffffffu, any)) {
            va_ww_sort<CI>(ok);
            va_ww_merge_into<LI, CI>(res, ok, k);
        }
    }
    va_ww_sort<CI>(add);
    va_ww_merge_into<LI, CI>(list, add, ef);
    return fresh;
}

// Marks the nodes `cand` (lane's CI entries, VA_GW_NO_NODE for none)
// visited in the warp's hash and takes the new ones (va_ww_take); returns
// how many were new.
template <int LI, int CI, typename T>
__device__ __forceinline__ int va_ww_absorb(const VaWwShared& s, int bits, u64 (&list)[LI], u64 (&res)[LI],
                                            const u32 (&cand)[CI], int ef, int k, const u64* __restrict__ allowed,
                                            const T* __restrict__ X, int d, bool vec, bool ip, int team) {
    bool take[CI];
#pragma unroll
    for (int c = 0; c < CI; ++c) take[c] = cand[c] != VA_GW_NO_NODE && va_ww_visit(s.hash, bits, cand[c]);
    return va_ww_take<LI, CI, T>(s, list, res, cand, take, ef, k, allowed, X, d, vec, ip, team);
}

// Clears a warp's hash and marks the lists' nodes again; how many are in.
template <int LI>
__device__ __forceinline__ int va_ww_reset(const VaWwShared& s, int bits, const u64 (&list)[LI],
                                           const u64 (&res)[LI]) {
    const int lane = threadIdx.x & 31;
    for (int i = lane; i < (1 << bits); i += 32) s.hash[i] = VA_GW_NO_NODE;
    __syncwarp();
    int in = 0;
#pragma unroll
    for (int j = 0; j < LI; ++j) {
        const bool add = list[j] != VA_GW_EMPTY && va_ww_visit(s.hash, bits, va_gw_node(list[j]));
        in += __popc(__ballot_sync(0xffffffffu, add));
        const bool kept = res[j] != VA_GW_EMPTY && va_ww_visit(s.hash, bits, va_gw_node(res[j]));
        in += __popc(__ballot_sync(0xffffffffu, kept));
    }
    __syncwarp();
    return in;
}

// One level's walk, a warp per query; arguments as graph_walk's. Shared memory per warp: `wbytes` (a multiple of 16).
template <int LI, int CI, typename T>
__device__ __forceinline__ void va_ww_walk(const float* __restrict__ Q, int d, const T* __restrict__ X,
                                           const float* __restrict__ qp, const float* __restrict__ xnorm, int n,
                                           const u32* __restrict__ links, int degree,
                                           const u32* __restrict__ starts, int ns, const u32* __restrict__ parts,
                                           int np, int q_offset, int m, int ef, int ip_flag,
                                           const u64* __restrict__ allowed, int hash_bits,
                                           int team, int max_iters, const u32* __restrict__ map,
                                           float* __restrict__ out_keys, u32* __restrict__ out_nodes, int kout,
                                           int wbytes) {
    extern __shared__ __align__(16) unsigned char va_ww_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int qi = blockIdx.x * VA_WW_WARPS + warp;
    if (qi >= m) return;
    const bool ip = ip_flag != 0;
    VaWwShared s;
    {
        unsigned char* base = va_ww_smem + (i64)warp * wbytes;
        s.q = reinterpret_cast<float*>(base);
        s.xnorm = sizeof(T) == 1 && !ip ? xnorm : nullptr;
        s.hash = reinterpret_cast<u32*>(base + 4 * ((d + 3) & ~3));
        s.fnode = s.hash + (1 << hash_bits);
        s.fkey = reinterpret_cast<float*>(s.fnode + 32 * CI);
    }
    const float* qg = Q + (i64)qi * d;
    for (int i = lane; i < d; i += 32) {
        if constexpr (sizeof(T) == 1) {
            const float scale = qp[i], offset = qp[d + i];
            s.q[i] = ip ? qg[i] * scale : scale * (qg[i] - offset);
        } else {
            s.q[i] = qg[i];
        }
    }
    for (int i = lane; i < (1 << hash_bits); i += 32) s.hash[i] = VA_GW_NO_NODE;
    const bool vec = va_ww_vec(X, d);
    __syncwarp();
    u64 list[LI], res[LI];
#pragma unroll
    for (int j = 0; j < LI; ++j) list[j] = res[j] = VA_GW_EMPTY;
    int inserted = 0;
    const int half = (1 << hash_bits) / 2;
    const VaGwStarts from(starts, ns, parts, np, n, qi, q_offset);
    for (int c0 = 0; c0 < from.total; c0 += 32 * CI) {
        u32 cand[CI];
#pragma unroll
        for (int c = 0; c < CI; ++c) cand[c] = from.node(c0 + c * 32 + lane);
        inserted += va_ww_absorb<LI, CI, T>(s, hash_bits, list, res, cand, ef, kout, allowed, X, d, vec, ip, team);
        if (inserted > half) inserted = va_ww_reset<LI>(s, hash_bits, list, res);
    }
    for (int it = 0; it < max_iters; ++it) {
        // The best unexpanded item: its register and lane.
        int pj = -1, pl = 0;
#pragma unroll
        for (int j = 0; j < LI; ++j) {
            const bool open = list[j] != VA_GW_EMPTY && !(list[j] & 1ull);
            const unsigned mk = __ballot_sync(0xffffffffu, open);
            if (pj < 0 && mk) {
                pj = j;
                pl = __ffs(mk) - 1;
            }
        }
        if (pj < 0) break;
        u64 picked = 0;
#pragma unroll
        for (int j = 0; j < LI; ++j)
            if (j == pj) {
                picked = list[j];
                if (lane == pl) list[j] |= 1ull;
            }
        const u32 node = va_gw_node(__shfl_sync(0xffffffffu, picked, pl));
        u32 cand[CI];
#pragma unroll
        for (int c = 0; c < CI; ++c) {
            const int t = c * 32 + lane;
            cand[c] = t < degree ? __ldg(links + (i64)node * degree + t) : VA_GW_NO_NODE;
        }
        inserted += va_ww_absorb<LI, CI, T>(s, hash_bits, list, res, cand, ef, kout, allowed, X, d, vec, ip, team);
        if (inserted > half) inserted = va_ww_reset<LI>(s, hash_bits, list, res);
    }
#pragma unroll
    for (int j = 0; j < LI; ++j) {
        const int e = j * 32 + lane;
        if (e >= kout) continue;
        const u64 best = allowed ? res[j] : list[j];
        float key = va_nan();
        u32 node = VA_GW_NO_NODE;
        if (best != VA_GW_EMPTY) {
            key = va_gw_key(best);
            node = va_gw_node(best);
            if (map) node = map[node];
        }
        out_keys[(i64)qi * kout + e] = key;
        out_nodes[(i64)qi * kout + e] = node;
    }
}

#define VA_WW_KERNEL(NAME, T, LI, CI)                                                                            \
    extern "C" __global__ void __launch_bounds__(32 * VA_WW_WARPS)                                               \
        NAME(const float* __restrict__ Q, int d, const T* __restrict__ X, const float* __restrict__ qp,          \
             const float* __restrict__ xnorm, int n,                                                              \
             const u32* __restrict__ links,                                                                       \
             int degree, const u32* __restrict__ starts, int ns, const u32* __restrict__ parts, int np,           \
             int q_offset, int m, int ef, int ip_flag, const u64* __restrict__ allowed, int hash_bits, int team,  \
             int max_iters, const u32* __restrict__ map, float* __restrict__ out_keys, u32* __restrict__ out_nodes, \
             int kout, int wbytes) {                                                                              \
        va_ww_walk<LI, CI, T>(Q, d, X, qp, xnorm, n, links, degree, starts, ns, parts, np, q_offset, m, ef, ip_flag,        \
                              allowed, hash_bits, team, max_iters, map, out_keys, out_nodes, kout, wbytes);       \
    }

VA_WW_KERNEL(graph_walk_warp_1_1, float, 1, 1)
VA_WW_KERNEL(graph_walk_warp_2_1, float, 2, 1)
VA_WW_KERNEL(graph_walk_warp_4_1, float, 4, 1)
VA_WW_KERNEL(graph_walk_warp_8_1, float, 8, 1)
VA_WW_KERNEL(graph_walk_warp_1_2, float, 1, 2)
VA_WW_KERNEL(graph_walk_warp_2_2, float, 2, 2)
VA_WW_KERNEL(graph_walk_warp_4_2, float, 4, 2)
VA_WW_KERNEL(graph_walk_warp_8_2, float, 8, 2)
VA_WW_KERNEL(graph_walk_warp_h_1_1, unsigned short, 1, 1)
VA_WW_KERNEL(graph_walk_warp_h_2_1, unsigned short, 2, 1)
VA_WW_KERNEL(graph_walk_warp_h_4_1, unsigned short, 4, 1)
VA_WW_KERNEL(graph_walk_warp_h_8_1, unsigned short, 8, 1)
VA_WW_KERNEL(graph_walk_warp_h_1_2, unsigned short, 1, 2)
VA_WW_KERNEL(graph_walk_warp_h_2_2, unsigned short, 2, 2)
VA_WW_KERNEL(graph_walk_warp_h_4_2, unsigned short, 4, 2)
VA_WW_KERNEL(graph_walk_warp_h_8_2, unsigned short, 8, 2)
VA_WW_KERNEL(graph_walk_warp_b_1_1, unsigned char, 1, 1)
VA_WW_KERNEL(graph_walk_warp_b_2_1, unsigned char, 2, 1)
VA_WW_KERNEL(graph_walk_warp_b_4_1, unsigned char, 4, 1)
VA_WW_KERNEL(graph_walk_warp_b_8_1, unsigned char, 8, 1)
VA_WW_KERNEL(graph_walk_warp_b_1_2, unsigned char, 1, 2)
VA_WW_KERNEL(graph_walk_warp_b_2_2, unsigned char, 2, 2)
VA_WW_KERNEL(graph_walk_warp_b_4_2, unsigned char, 4, 2)
VA_WW_KERNEL(graph_walk_warp_b_8_2, unsigned char, 8, 2)

// The exact keys (fp32 rows X) of each query's `ef` candidates (nodes, a
// prefix of them valid, VA_GW_NO_NODE after), sorted: the best `k` keys
// and nodes out (NaN and VA_GW_NO_NODE past those found). A warp per
// query; shared memory per warp `wbytes`: the query, then 32 * LI nodes
// and keys.
template <int LI>
__device__ __forceinline__ void va_ww_refine(const float* __restrict__ Q, int d, const float* __restrict__ X,
                                             const u32* __restrict__ nodes, int ef, int m, int ip_flag, int team,
                                             float* __restrict__ out_keys, u32* __restrict__ out_nodes, int k,
                                             int wbytes) {
    extern __shared__ __align__(16) unsigned char va_wr_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int qi = blockIdx.x * VA_WW_WARPS + warp;
    if (qi >= m) return;
    VaWwShared s;
    unsigned char* base = va_wr_smem + (i64)warp * wbytes;
    s.q = reinterpret_cast<float*>(base);
    s.hash = nullptr;
    s.xnorm = nullptr;
    s.fnode = reinterpret_cast<u32*>(base + 4 * ((d + 3) & ~3));
    s.fkey = reinterpret_cast<float*>(s.fnode + 32 * LI);
    for (int i = lane; i < d; i += 32) s.q[i] = Q[(i64)qi * d + i];
    int valid = 0;
    for (int e0 = 0; e0 < ef; e0 += 32) {
        const int e = e0 + lane;
        const u32 node = e < ef ? nodes[(i64)qi * ef + e] : VA_GW_NO_NODE;
        s.fnode[e] = node;
        valid += __popc(__ballot_sync(0xffffffffu, node != VA_GW_NO_NODE));
    }
    __syncwarp();
    va_ww_score<4, float>(s, valid, X, d, va_ww_vec(X, d), ip_flag != 0, team);
    __syncwarp();
    u64 best[LI];
#pragma unroll
    for (int j = 0; j < LI; ++j) {
        const int e = j * 32 + lane;
        best[j] = e < valid ? va_gw_item(s.fkey[e], s.fnode[e]) : VA_GW_EMPTY;
    }
    va_ww_sort<LI>(best);
#pragma unroll
    for (int j = 0; j < LI; ++j) {
        const int e = j * 32 + lane;
        if (e >= k) continue;
        const bool have = best[j] != VA_GW_EMPTY;
        out_keys[(i64)qi * k + e] = have ? va_gw_key(best[j]) : va_nan();
        out_nodes[(i64)qi * k + e] = have ? va_gw_node(best[j]) : VA_GW_NO_NODE;
    }
}

#define VA_WR_KERNEL(LI)                                                                                         \
    extern "C" __global__ void __launch_bounds__(32 * VA_WW_WARPS) graph_refine_##LI(                           \
        const float* __restrict__ Q, int d, const float* __restrict__ X, const u32* __restrict__ nodes, int ef,  \
        int m, int ip_flag, int team, float* __restrict__ out_keys, u32* __restrict__ out_nodes, int k,          \
        int wbytes) {                                                                                            \
        va_ww_refine<LI>(Q, d, X, nodes, ef, m, ip_flag, team, out_keys, out_nodes, k, wbytes);                  \
    }

VA_WR_KERNEL(1)
VA_WR_KERNEL(2)
VA_WR_KERNEL(4)
VA_WR_KERNEL(8)

// ---------------------------------------------------------------------------
// Several walkers per query, for small batches: a block per query of
// `blockDim.x / 32` warps, each a warp walk (as va_ww_walk, fp32 rows) with
// its own list of `ef` items (ef <= 32) from its share of the starts (every
// walker-th). They step together (a block barrier per step) and share one
// visited set, so that each node joins at most one walker's list and the
// walkers spread over the query's neighbourhood: each takes about as many
// steps as its short list needs, where one walk of their lists' total
// would take that many times more. A node first reached in a step goes to
// the lowest-numbered walker that reached it then (its owner, the least
// stamp `step << 8 | walker`), so results do not depend on timing. The
// walk ends when no walker has an unexpanded item, after max_iters steps,
// or once half the hash is filled (it is never cleared). Warp 0 merges the
// lists (of the allowed results, with a filter) into the best kout (kout
// <= 32 * LO), out as graph_walk's. Shared memory: the query (d floats,
// padded to 4), the hash's nodes and owners (1 << hash_bits u32 each), then
// per warp 32 * CI fresh nodes and keys and its list (32 u64).

// Marks `node` reached at `stamp` in the block's hash; its slot.
__device__ __forceinline__ int va_gm_reach(u32* keys, u32* owners, int bits, u32 node, u32 stamp, int& fresh) {
    const u32 mask = (1u << bits) - 1;
    u32 h = (node * 0x9E3779B1u) >> (32 - bits);
    while (true) {
        const u32 old = atomicCAS(keys + h, VA_GW_NO_NODE, node);
        if (old == VA_GW_NO_NODE || old == node) {
            fresh += old == VA_GW_NO_NODE;
            atomicMin(owners + h, stamp);
            return (int)h;
        }
        h = (h + 1) & mask;
    }
}

// One step of a walker: marks `cand` reached, waits for every walker's
// marks, takes the nodes it owns; the hash's fill after the marks.
template <int CI>
__device__ __forceinline__ int va_gm_step(VaWwShared& s, u32* keys, u32* owners, int bits, u32 stamp, int* count,
                                          u64 (&list)[1], u64 (&res)[1], const u32 (&cand)[CI], int ef,
                                          const u64* __restrict__ allowed, const float* __restrict__ X, int d,
                                          bool vec, bool ip, int team) {
    int slot[CI], fresh = 0;
#pragma unroll
    for (int c = 0; c < CI; ++c)
        slot[c] = cand[c] != VA_GW_NO_NODE ? va_gm_reach(keys, owners, bits, cand[c], stamp, fresh) : -1;
    fresh = __reduce_add_sync(0xffffffffu, fresh);
    if ((threadIdx.x & 31) == 0 && fresh) atomicAdd(count, fresh);
    __syncthreads();
    const int filled = *(volatile int*)count;
    bool take[CI];
#pragma unroll
    for (int c = 0; c < CI; ++c) take[c] = slot[c] >= 0 && owners[slot[c]] == stamp;
    va_ww_take<1, CI, float>(s, list, res, cand, take, ef, ef, allowed, X, d, vec, ip, team);
    return filled;
}

template <int LO, int CI>
__device__ __forceinline__ void va_gm_walk(const float* __restrict__ Q, int d, const float* __restrict__ X, int n,
                                           const u32* __restrict__ links, int degree,
                                           const u32* __restrict__ starts, int ns, const u32* __restrict__ parts,
                                           int np, int q_offset, int ef, int ip_flag,
                                           const u64* __restrict__ allowed, int hash_bits, int team, int max_iters,
                                           const u32* __restrict__ map, float* __restrict__ out_keys,
                                           u32* __restrict__ out_nodes, int kout) {
    extern __shared__ __align__(16) unsigned char va_gm_smem[];
    __shared__ int s_count;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, walkers = blockDim.x >> 5;
    const int qi = blockIdx.x;
    const bool ip = ip_flag != 0;
    float* q = reinterpret_cast<float*>(va_gm_smem);
    u32* keys = reinterpret_cast<u32*>(q + ((d + 3) & ~3));
    u32* owners = keys + (1 << hash_bits);
    const int per_warp = 64 * CI + 64;  // u32 words
    VaWwShared s;
    s.hash = nullptr;
    s.q = q;
    s.xnorm = nullptr;
    s.fnode = owners + (1 << hash_bits) + warp * per_warp;
    s.fkey = reinterpret_cast<float*>(s.fnode + 32 * CI);
    u64* lists = reinterpret_cast<u64*>(owners + (1 << hash_bits) + 64 * CI);  // warp 0's; warp w's at w * per_warp
    for (int i = threadIdx.x; i < d; i += blockDim.x) q[i] = Q[(i64)qi * d + i];
    for (int i = threadIdx.x; i < (1 << hash_bits); i += blockDim.x) {
        keys[i] = VA_GW_NO_NODE;
        owners[i] = 0xFFFFFFFFu;
    }
    if (threadIdx.x == 0) s_count = 0;
    __syncthreads();
    const bool vec = va_ww_vec(X, d);
    const int half = (1 << hash_bits) / 2;
    u64 list[1], res[1];
    list[0] = res[0] = VA_GW_EMPTY;
    // This walker's starts: every walkers-th of the query's; as many steps
    // for every walker.
    const VaGwStarts from(starts, ns, parts, np, n, qi, q_offset);
    const int each = (from.total + walkers - 1) / walkers;
    u32 t = 0;
    int filled = 0;
    for (int c0 = 0; c0 < each; c0 += 32 * CI, ++t) {
        u32 cand[CI];
#pragma unroll
        for (int c = 0; c < CI; ++c) {
            const int j = c0 + c * 32 + lane;
            cand[c] = j < each ? from.node(j * walkers + warp) : VA_GW_NO_NODE;
        }
        filled = va_gm_step<CI>(s, keys, owners, hash_bits, (t << 8) | warp, &s_count, list, res, cand, ef, allowed,
                                X, d, vec, ip, team);
        __syncthreads();  // every walker has read the fill before more marks
    }
    for (int it = 0; it < max_iters && filled <= half; ++it, ++t) {
        const bool open = list[0] != VA_GW_EMPTY && !(list[0] & 1ull);
        const unsigned mk = __ballot_sync(0xffffffffu, open);
        u32 cand[CI];
#pragma unroll
        for (int c = 0; c < CI; ++c) cand[c] = VA_GW_NO_NODE;
        if (mk) {
            const int pl = __ffs(mk) - 1;
            if (lane == pl) list[0] |= 1ull;
            const u32 node = va_gw_node(__shfl_sync(0xffffffffu, list[0], pl));
#pragma unroll
            for (int c = 0; c < CI; ++c) {
                const int e = c * 32 + lane;
                cand[c] = e < degree ? __ldg(links + (i64)node * degree + e) : VA_GW_NO_NODE;
            }
        }
        // Every walker steps while any has an item to expand.
        if (!__syncthreads_or(mk != 0)) break;
        filled = va_gm_step<CI>(s, keys, owners, hash_bits, (t << 8) | warp, &s_count, list, res, cand, ef, allowed,
                                X, d, vec, ip, team);
    }
    const u64 mine = allowed ? res[0] : list[0];
    reinterpret_cast<u64*>(reinterpret_cast<u32*>(lists) + warp * per_warp)[lane] =
        mine == VA_GW_EMPTY ? mine : (mine & ~1ull);
    __syncthreads();
    if (warp != 0) return;
    u64 best[LO];
#pragma unroll
    for (int j = 0; j < LO; ++j) best[j] = VA_GW_EMPTY;
    for (int w = 0; w < walkers; ++w) {
        u64 add[1];
        add[0] = reinterpret_cast<const u64*>(reinterpret_cast<const u32*>(lists) + w * per_warp)[lane];
        va_ww_merge_into<LO, 1>(best, add, kout);
    }
#pragma unroll
    for (int j = 0; j < LO; ++j) {
        const int e = j * 32 + lane;
        if (e >= kout) continue;
        float key = va_nan();
        u32 node = VA_GW_NO_NODE;
        if (best[j] != VA_GW_EMPTY) {
            key = va_gw_key(best[j]);
            node = va_gw_node(best[j]);
            if (map) node = map[node];
        }
        out_keys[(i64)qi * kout + e] = key;
        out_nodes[(i64)qi * kout + e] = node;
    }
}

#define VA_GM_KERNEL(LO, CI)                                                                                     \
    extern "C" __global__ void __launch_bounds__(512) graph_walk_multi_##LO##_##CI(                            \
        const float* __restrict__ Q, int d, const float* __restrict__ X, int n, const u32* __restrict__ links,   \
        int degree, const u32* __restrict__ starts, int ns, const u32* __restrict__ parts, int np, int q_offset, \
        int ef, int ip_flag, const u64* __restrict__ allowed, int hash_bits, int team, int max_iters,            \
        const u32* __restrict__ map, float* __restrict__ out_keys, u32* __restrict__ out_nodes, int kout) {      \
        va_gm_walk<LO, CI>(Q, d, X, n, links, degree, starts, ns, parts, np, q_offset, ef, ip_flag, allowed,     \
                           hash_bits, team, max_iters, map, out_keys, out_nodes, kout);                          \
    }

VA_GM_KERNEL(1, 1)
VA_GM_KERNEL(2, 1)
VA_GM_KERNEL(4, 1)
VA_GM_KERNEL(8, 1)
VA_GM_KERNEL(1, 2)
VA_GM_KERNEL(2, 2)
VA_GM_KERNEL(4, 2)
VA_GM_KERNEL(8, 2)

// ---------------------------------------------------------------------------
// Pruning of a k-NN graph by detour counts (index/graph.rs `prune`, the
// same result): a warp per node x, its `wide` neighbours (best first,
// VA_GW_NO_NODE padded) in a shared hash of (node, first rank); a
// neighbour y at rank j has a detour through z at rank i when y is at rank
// r of z's list and max(i, r) < j. The `degree` neighbours of fewest
// detours (ties by rank) out, VA_GW_NO_NODE padded. Shared memory per warp:
// `slots` keys, `slots` ranks and `wide` counts (u32 each).
template <int R>
__device__ __forceinline__ void va_gp_prune(const u32* __restrict__ knn, int n, int wide, int degree, int slots,
                                            u32* __restrict__ out) {
    extern __shared__ __align__(16) unsigned char va_gp_smem[];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const i64 x = (i64)blockIdx.x * VA_WW_WARPS + warp;
    if (x >= n) return;
    u32* key = reinterpret_cast<u32*>(va_gp_smem) + (i64)warp * (2 * slots + wide);
    u32* rank = key + slots;
    u32* detours = rank + slots;
    const u32* mine = knn + x * wide;
    const int bits = __ffs(slots) - 1;
    for (int i = lane; i < slots; i += 32) {
        key[i] = VA_GW_NO_NODE;
        rank[i] = VA_GW_NO_NODE;
    }
    for (int j = lane; j < wide; j += 32) detours[j] = 0;
    __syncwarp();
    for (int j = lane; j < wide; j += 32) {
        const u32 y = mine[j];
        if (y == VA_GW_NO_NODE) continue;
        u32 h = (y * 0x9E3779B1u) >> (32 - bits);
        while (true) {
            const u32 old = atomicCAS(key + h, VA_GW_NO_NODE, y);
            if (old == VA_GW_NO_NODE || old == y) break;
            h = (h + 1) & (slots - 1);
        }
        atomicMin(rank + h, (u32)j);
    }
    __syncwarp();
    for (int i = 0; i < wide; ++i) {
        const u32 z = mine[i];
        if (z == VA_GW_NO_NODE) continue;
        const u32* theirs = knn + (i64)z * wide;
        for (int r = lane; r < wide; r += 32) {
            const u32 y = __ldg(theirs + r);
            if (y == VA_GW_NO_NODE) continue;
            u32 h = (y * 0x9E3779B1u) >> (32 - bits);
            u32 j = VA_GW_NO_NODE;
            while (key[h] != VA_GW_NO_NODE) {
                if (key[h] == y) {
                    j = rank[h];
                    break;
                }
                h = (h + 1) & (slots - 1);
            }
            if (j != VA_GW_NO_NODE && (u32)max(i, r) < j) atomicAdd(detours + j, 1u);
        }
    }
    __syncwarp();
    // Each listed node once (its first rank), by (detours, rank).
    u64 items[R];
#pragma unroll
    for (int c = 0; c < R; ++c) {
        const int j = c * 32 + lane;
        u64 item = VA_GW_EMPTY;
        if (j < wide && mine[j] != VA_GW_NO_NODE) {
            const u32 y = mine[j];
            u32 h = (y * 0x9E3779B1u) >> (32 - bits);
            while (key[h] != y) h = (h + 1) & (slots - 1);
            if (rank[h] == (u32)j) item = ((u64)detours[j] << 32) | (u64)j;
        }
        items[c] = item;
    }
    va_ww_sort<R>(items);
#pragma unroll
    for (int c = 0; c < R; ++c) {
        const int e = c * 32 + lane;
        if (e < degree) out[x * degree + e] = items[c] == VA_GW_EMPTY ? VA_GW_NO_NODE : mine[(u32)items[c]];
    }
    for (int e = 32 * R + lane; e < degree; e += 32) out[x * degree + e] = VA_GW_NO_NODE;
}

#define VA_GP_KERNEL(R)                                                                                          \
    extern "C" __global__ void __launch_bounds__(32 * VA_WW_WARPS)                                               \
        graph_prune_##R(const u32* __restrict__ knn, int n, int wide, int degree, int slots, u32* __restrict__ out) { \
        va_gp_prune<R>(knn, n, wide, degree, slots, out);                                                        \
    }

VA_GP_KERNEL(1)
VA_GP_KERNEL(2)
VA_GP_KERNEL(4)
VA_GP_KERNEL(8)
