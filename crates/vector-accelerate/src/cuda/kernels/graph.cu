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

// The key of a row of `x` against the query `q` (shared memory), computed
// by a team of VA_GW_TEAM lanes (the result is every lane's).
__device__ __forceinline__ float va_gw_key_of(const float* __restrict__ q, const float* __restrict__ x, int d,
                                              bool vec, bool ip, int lane) {
    float s = 0.0f;
    if (vec) {
        const float4* q4 = reinterpret_cast<const float4*>(q);
        const float4* x4 = reinterpret_cast<const float4*>(x);
        for (int i = lane; i < (d >> 2); i += VA_GW_TEAM) {
            const float4 a = q4[i], b = __ldg(x4 + i);
            if (ip) {
                s = fmaf(a.x, b.x, s);
                s = fmaf(a.y, b.y, s);
                s = fmaf(a.z, b.z, s);
                s = fmaf(a.w, b.w, s);
            } else {
                const float e0 = a.x - b.x, e1 = a.y - b.y, e2 = a.z - b.z, e3 = a.w - b.w;
                s = fmaf(e0, e0, s);
                s = fmaf(e1, e1, s);
                s = fmaf(e2, e2, s);
                s = fmaf(e3, e3, s);
            }
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
    // Starts: per-query nodes (or the spread ones), then the parts.
    const int root = (int)sqrt((double)n) / 2;
    const int count = ns > 0 ? 0 : min(n, max(16, min(256, root)));
    const int step = count > 0 ? n / count : 1;
    const u64 mixed = ((u64)(qi + q_offset) * 0x9E3779B9ull) >> 7;
    const int shift = (int)(mixed % (u64)max(step, 1));
    const int total = (ns > 0 ? ns : count) + np;
    for (int c0 = 0; c0 < total; c0 += nbp) {
        for (int t = threadIdx.x; t < nbp; t += blockDim.x) {
            const int c = c0 + t;
            u32 node = VA_GW_NO_NODE;
            if (c < total) {
                const int first = ns > 0 ? ns : count;
                if (c >= first) node = parts[c - first];
                else if (ns > 0) node = starts[(i64)qi * ns + c];
                else node = (u32)(c * step + shift);
            }
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
