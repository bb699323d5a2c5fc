// plaid-cuda kernels, compiled at run time by NVRTC (no headers needed).
//
// Every kernel here has a plain Rust oracle in the crate's tests; the Rust
// wrapper that launches it (src/ffi.rs) mirrors its signature exactly.
// Sizes are 32-bit ints; offsets into big arrays are 64-bit.

#define FULL 0xffffffffu
#define NEG_INF (__int_as_float(0xff800000))
#define NO_ID 0xffffffffu

__device__ __forceinline__ unsigned short f2h(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL, v, off);
    return v;
}

// a beats b: higher score, ties to the lower id; NaN never beats anything.
__device__ __forceinline__ bool beats(float as, unsigned ai, float bs, unsigned bi) {
    return as > bs || (as == bs && ai < bi);
}

// out[i] = f16(in[i]) for i < n.
extern "C" __global__ void f32_to_f16(unsigned short* out, const float* in, unsigned long long n) {
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        out[i] = f2h(in[i]);
    }
}

// Nearest centroid per row, one warp per row.
// scores: rows x k row-major (approximate, e.g. from an f16 GEMM).
// bias: k floats added to the scores when use_bias (-|c|^2/2 for L2).
// The best two by approximate score are rescored in f32 from x (rows x dim)
// and cent (k x dim); the better wins, ties to the lower index. A row with
// no finite score gets 0.
extern "C" __global__ void argmax_refine(unsigned int* out, const float* scores,
                                         const float* bias, int use_bias, const float* x,
                                         const float* cent, int rows, int k, int dim) {
    int row = (int)((blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* s = scores + (size_t)row * k;
    float b1 = NEG_INF, b2 = NEG_INF;
    unsigned i1 = NO_ID, i2 = NO_ID;
    for (int c = lane; c < k; c += 32) {
        float v = s[c] + (use_bias ? bias[c] : 0.0f);
        if (v > b1) {
            b2 = b1; i2 = i1; b1 = v; i1 = (unsigned)c;
        } else if (v > b2) {
            b2 = v; i2 = (unsigned)c;
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        float o1 = __shfl_down_sync(FULL, b1, off);
        unsigned j1 = __shfl_down_sync(FULL, i1, off);
        float o2 = __shfl_down_sync(FULL, b2, off);
        unsigned j2 = __shfl_down_sync(FULL, i2, off);
        // Merge two sorted pairs into the best two.
        if (beats(o1, j1, b1, i1)) {
            // o1 first; second is the better of b1 and o2.
            if (beats(o2, j2, b1, i1)) { b2 = o2; i2 = j2; } else { b2 = b1; i2 = i1; }
            b1 = o1; i1 = j1;
        } else if (beats(o1, j1, b2, i2)) {
            b2 = o1; i2 = j1;
        }
    }
    i1 = __shfl_sync(FULL, i1, 0);
    i2 = __shfl_sync(FULL, i2, 0);
    if (i1 == NO_ID) {
        if (lane == 0) out[row] = 0;
        return;
    }
    const float* xr = x + (size_t)row * dim;
    float d1 = 0.0f, d2 = 0.0f;
    for (int d = lane; d < dim; d += 32) {
        float xv = xr[d];
        d1 += xv * cent[(size_t)i1 * dim + d];
        if (i2 != NO_ID) d2 += xv * cent[(size_t)i2 * dim + d];
    }
    d1 = warp_sum(d1);
    d2 = warp_sum(d2);
    if (lane == 0) {
        unsigned best = i1;
        if (i2 != NO_ID) {
            float r1 = d1 + (use_bias ? bias[i1] : 0.0f);
            float r2 = d2 + (use_bias ? bias[i2] : 0.0f);
            if (beats(r2, i2, r1, i1)) best = i2;
        }
        out[row] = best;
    }
}

// Residual quantisation and packing, one thread per (row, packed byte).
// cutoffs: dim x nc (nc = 2^bits - 1, ascending per dimension). The bucket of
// a value is the number of cutoffs it exceeds (NaN -> 0). Each bucket is
// written LSB-first into an MSB-first bit stream (numpy packbits order).
extern "C" __global__ void encode_pack(unsigned char* out, const float* x,
                                       const unsigned int* codes, const float* cent,
                                       const float* cutoffs, int rows, int dim, int bits,
                                       int packed_len) {
    unsigned long long total = (unsigned long long)rows * packed_len;
    int per = 8 / bits;
    int nc = (1 << bits) - 1;
    for (unsigned long long t = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         t < total; t += (unsigned long long)gridDim.x * blockDim.x) {
        unsigned long long row = t / packed_len;
        int p = (int)(t % packed_len);
        unsigned code = codes[row];
        unsigned acc = 0;
        for (int j = 0; j < per; ++j) {
            int d = p * per + j;
            float v = x[row * dim + d] - cent[(size_t)code * dim + d];
            int b = 0;
            for (int q = 0; q < nc; ++q) b += (v > cutoffs[d * nc + q]) ? 1 : 0;
            unsigned r = 0;
            for (int z = 0; z < bits; ++z) r |= ((unsigned)(b >> z) & 1u) << (bits - 1 - z);
            acc = (acc << bits) | r;
        }
        out[t] = (unsigned char)acc;
    }
}

// Per query token, its D = 32 * E best centroids (best first, ties to the
// lower id, NaN and -inf never included; missing entries are NO_ID).
// One block of 32 warps per query; warp t ranks token t. S is centroid-major:
// S[c * ld + 32 * b + t]. nq[b] tokens of query b are ranked.
template <int E>
__device__ void topd(unsigned int* out, const float* S, int ld, int k, const int* nq) {
    __shared__ float tile[32][33];
    int b = blockIdx.x;
    int w = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    bool active = w < nq[b];
    float vals[E];
    unsigned ids[E];
#pragma unroll
    for (int e = 0; e < E; ++e) { vals[e] = NEG_INF; ids[e] = NO_ID; }
    float thr = NEG_INF;
    for (int c0 = 0; c0 < k; c0 += 32) {
        int c = c0 + w;
        tile[w][lane] = c < k ? S[(size_t)c * ld + 32 * b + lane] : NEG_INF;
        __syncthreads();
        float v = tile[lane][w];
        __syncthreads();
        if (!active) continue;
        unsigned mask = __ballot_sync(FULL, v > thr);
        while (mask) {
            int src = __ffs(mask) - 1;
            float cv = __shfl_sync(FULL, v, src);
            unsigned cid = (unsigned)(c0 + src);
            // Position: after every kept element >= cv (ties keep lower ids first).
            int pos = 0;
#pragma unroll
            for (int e = 0; e < E; ++e) pos += __popc(__ballot_sync(FULL, vals[e] >= cv));
            float pv = __shfl_up_sync(FULL, vals[E - 1], 1);
            unsigned pi = __shfl_up_sync(FULL, ids[E - 1], 1);
#pragma unroll
            for (int e = E - 1; e >= 0; --e) {
                int i = lane * E + e;
                if (i > pos) {
                    if (e > 0) { vals[e] = vals[e - 1]; ids[e] = ids[e - 1]; }
                    else { vals[e] = pv; ids[e] = pi; }
                } else if (i == pos) {
                    vals[e] = cv; ids[e] = cid;
                }
            }
            thr = __shfl_sync(FULL, vals[E - 1], 31);
            mask &= ~(1u << src);
            mask &= __ballot_sync(FULL, v > thr);
        }
    }
    if (!active) return;
    unsigned int* o = out + ((size_t)b * 32 + w) * (32 * E);
#pragma unroll
    for (int e = 0; e < E; ++e) o[lane * E + e] = ids[e];
}

extern "C" __global__ void __launch_bounds__(1024) topd_1(unsigned int* out, const float* S, int ld, int k, const int* nq) { topd<1>(out, S, ld, k, nq); }
extern "C" __global__ void __launch_bounds__(1024) topd_2(unsigned int* out, const float* S, int ld, int k, const int* nq) { topd<2>(out, S, ld, k, nq); }
extern "C" __global__ void __launch_bounds__(1024) topd_4(unsigned int* out, const float* S, int ld, int k, const int* nq) { topd<4>(out, S, ld, k, nq); }
extern "C" __global__ void __launch_bounds__(1024) topd_8(unsigned int* out, const float* S, int ld, int k, const int* nq) { topd<8>(out, S, ld, k, nq); }

// Per query b, the affine map of its centroid scores onto 0..=255 that the
// CPU's approximate stage uses: lo = min and hi = max of S[c][32b + t] over
// all c and t < nq[b]; range[2b] = lo, range[2b+1] = 255 / (hi - lo) (0 when
// hi <= lo). One block of 8 warps per query, a warp per centroid row.
extern "C" __global__ void score_range(float* range, const float* S, int ld, int k,
                                       const int* nq) {
    __shared__ float slo[8], shi[8];
    int b = blockIdx.x;
    int w = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    bool active = lane < nq[b];
    float lo = __int_as_float(0x7f800000), hi = NEG_INF;
    for (int c = w; c < k; c += 8) {
        if (active) {
            float v = S[(size_t)c * ld + 32 * b + lane];
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
        }
    }
    for (int off = 16; off > 0; off >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(FULL, lo, off));
        hi = fmaxf(hi, __shfl_xor_sync(FULL, hi, off));
    }
    if (lane == 0) { slo[w] = lo; shi[w] = hi; }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int i = 1; i < 8; ++i) { lo = fminf(lo, slo[i]); hi = fmaxf(hi, shi[i]); }
        range[2 * b] = lo;
        range[2 * b + 1] = hi > lo ? __fdiv_rn(255.0f, __fsub_rn(hi, lo)) : 0.0f;
    }
}

// The CPU's 8-bit level of score v: ((v - lo) * scale + 0.5) truncated and
// saturated to 0..=255 (NaN -> 0), rounded exactly as the CPU rounds (no FMA).
__device__ __forceinline__ unsigned level(float v, float lo, float scale) {
    float x = __fadd_rn(__fmul_rn(__fsub_rn(v, lo), scale), 0.5f);
    return x >= 255.0f ? 255u : (x > 0.0f ? (unsigned)x : 0u);
}

// Approximate score of each candidate, one warp per candidate, as the CPU
// computes it: sum over query tokens t < nq[b] of the 8-bit level of
// max over the document's tokens j of S[code(j) * ld + 32 * b + t] (the
// level is monotone, so the max of levels is the level of the max). An
// empty document scores 0. Candidates of query b are
// cand_doc[cand_off[b] .. cand_off[b + 1]] (cand_off ascending,
// cand_off[0] = 0, cand_off[n_queries] = n_cand).
extern "C" __global__ void approx_scores(float* out, const unsigned int* cand_doc,
                                         const unsigned int* cand_off, int n_queries,
                                         int n_cand, const float* S, int ld,
                                         const unsigned int* codes,
                                         const unsigned long long* doc_off, const int* nq,
                                         const float* range) {
    int wi = (int)((blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (wi >= n_cand) return;
    unsigned d = cand_doc[wi];
    // The query: the last b with cand_off[b] <= wi.
    int lo = 0, hi = n_queries;
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (cand_off[mid] <= (unsigned)wi) lo = mid; else hi = mid;
    }
    unsigned b = (unsigned)lo;
    unsigned long long s = doc_off[d], e = doc_off[d + 1];
    const float* sb = S + 32 * (size_t)b + lane;
    float m = NEG_INF;
    for (unsigned long long base = s; base < e; base += 32) {
        unsigned my = base + lane < e ? codes[base + lane] : 0u;
        int n = (int)min((unsigned long long)32, e - base);
        for (int i = 0; i < n; ++i) {
            unsigned c = __shfl_sync(FULL, my, i);
            m = fmaxf(m, sb[(size_t)c * ld]);
        }
    }
    unsigned v = (lane < nq[b] && e > s) ? level(m, range[2 * b], range[2 * b + 1]) : 0u;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(FULL, v, off);
    if (lane == 0) out[wi] = (float)v;
}

// Exact MaxSim over decompressed vectors. Block (x, b): query b, 8 warps,
// each scoring documents docs[off[b] + 8 * x + warp + 8 * gridDim.x * i].
// A token is y = (cent[code] + w[d][bucket]) / max(|.|, 1e-12); a query
// token's score is its max dot over the document's tokens; the document's
// score sums those over t < nq[b] (an empty document scores 0).
// q: queries, 32 rows of dim floats per query (padding rows unused).
// weights: dim x 2^bits decoded residual values.
#define EXACT_WARPS 8
#define MAX_DIM 256
extern "C" __global__ void __launch_bounds__(256) exact_scores(float* out, const unsigned int* docs,
                                        const unsigned int* off, const float* q, const int* nq,
                                        const float* cent, const unsigned int* codes,
                                        const unsigned char* residuals,
                                        const unsigned long long* doc_off, const float* weights,
                                        int dim, int bits) {
    __shared__ float qs[32 * (MAX_DIM + 1)];
    __shared__ float ys[EXACT_WARPS][MAX_DIM];
    int b = blockIdx.y;
    int w = threadIdx.x >> 5;
    int lane = threadIdx.x & 31;
    int n_q = nq[b];
    int qld = dim + 1;
    for (int i = threadIdx.x; i < 32 * dim; i += blockDim.x) {
        int t = i / dim, d = i % dim;
        qs[t * qld + d] = q[((size_t)b * 32 + t) * dim + d];
    }
    __syncthreads();
    unsigned start = off[b], end = off[b + 1];
    int per = 8 / bits;
    int nb = 1 << bits;
    unsigned mask = (unsigned)nb - 1u;
    int plen = dim * bits / 8;
    for (unsigned idx = start + blockIdx.x * EXACT_WARPS + w; idx < end;
         idx += gridDim.x * EXACT_WARPS) {
        unsigned doc = docs[idx];
        unsigned long long s = doc_off[doc], e = doc_off[doc + 1];
        float best = NEG_INF;
        for (unsigned long long j = s; j < e; ++j) {
            unsigned code = codes[j];
            const unsigned char* r = residuals + j * plen;
            float sq = 0.0f;
            for (int d = lane; d < dim; d += 32) {
                unsigned byte = r[d / per];
                int shift = 8 - bits * ((d % per) + 1);
                unsigned g = (byte >> shift) & mask;
                unsigned bk = 0;
                for (int z = 0; z < bits; ++z) bk |= ((g >> z) & 1u) << (bits - 1 - z);
                float v = cent[(size_t)code * dim + d] + weights[d * nb + bk];
                ys[w][d] = v;
                sq += v * v;
            }
            sq = warp_sum(sq);
            float inv = 1.0f / fmaxf(sqrtf(sq), 1e-12f);
            __syncwarp();
            if (lane < n_q) {
                const float* qt = qs + lane * qld;
                float dot = 0.0f;
                for (int d = 0; d < dim; ++d) dot += qt[d] * ys[w][d];
                best = fmaxf(best, dot * inv);
            }
            __syncwarp();
        }
        float v = (lane < n_q && e > s) ? best : 0.0f;
        v = warp_sum(v);
        if (lane == 0) out[idx] = v;
    }
}
