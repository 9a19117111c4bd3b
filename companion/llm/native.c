/* The decode step's hot loops, for x86-64 CPUs with AVX2: int8 weights times
 * int8-quantized activations, RMSNorm, rotary embedding, SiLU-gate.
 *
 * y[m, n] = bias[n] + scale[n] * sum_b xs[m, b] * dot(w[n, 32b:32b+32], xq[m, 32b:32b+32])
 *
 * The weights are symmetric per-row int8 (companion.llm.quantize.quantize_int8);
 * each activation row is quantized on the fly to int8 in blocks of 32 with a
 * float scale per block (the Q8_0 layout llama.cpp uses for its activations),
 * so a 32-byte block product is two AVX2 multiply-adds of bytes instead of
 * thirty-two float multiplies: a decode step reads the weights at the memory's
 * speed rather than the converting loop's. Built on first use by
 * companion/llm/native.py (gcc -O3 -mavx2 -mfma -fopenmp) and called through
 * ctypes; OpenMP resolves to the libgomp torch has already loaded.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stddef.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define QK 32

int companion_native_abi(void) { return 3; }

static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

/* One row of K floats (K a multiple of 32) to int8 blocks and their scales. */
static void quantize_row(const float *x, int K, int8_t *q, float *s) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < K / QK; b++) {
        const float *xb = x + b * QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 mx = _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1));
        mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v2));
        mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v3));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f;
        s[b] = d;
        __m256 id = _mm256_set1_ps(d > 0.0f ? 1.0f / d : 0.0f);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, id), _MM_FROUND_TO_NEAREST_INT));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, id), _MM_FROUND_TO_NEAREST_INT));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, id), _MM_FROUND_TO_NEAREST_INT));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, id), _MM_FROUND_TO_NEAREST_INT));
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, perm);
        _mm256_storeu_si256((__m256i *)(q + b * QK), i0);
    }
}

/* Four weight rows against one quantized activation row. */
static inline void dot4(const int8_t *w0, size_t K, const int8_t *xq, const float *xs,
                        float out[4]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    const int8_t *w1 = w0 + K, *w2 = w0 + 2 * K, *w3 = w0 + 3 * K;
    for (size_t b = 0; b < K / QK; b++) {
        __m256i vx = _mm256_loadu_si256((const __m256i *)(xq + b * QK));
        __m256i ax = _mm256_sign_epi8(vx, vx);
        __m256 sc = _mm256_broadcast_ss(xs + b);
#define ROW(acc, w)                                                                        \
    {                                                                                      \
        __m256i vw = _mm256_loadu_si256((const __m256i *)((w) + b * QK));                 \
        __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(vw, vx)), ones); \
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, acc);                              \
    }
        ROW(a0, w0) ROW(a1, w1) ROW(a2, w2) ROW(a3, w3)
#undef ROW
    }
    out[0] = hsum8(a0);
    out[1] = hsum8(a1);
    out[2] = hsum8(a2);
    out[3] = hsum8(a3);
}

static inline float dot1(const int8_t *w, size_t K, const int8_t *xq, const float *xs) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < K / QK; b++) {
        __m256i vx = _mm256_loadu_si256((const __m256i *)(xq + b * QK));
        __m256i vw = _mm256_loadu_si256((const __m256i *)(w + b * QK));
        __m256i p = _mm256_madd_epi16(
            _mm256_maddubs_epi16(_mm256_sign_epi8(vx, vx), _mm256_sign_epi8(vw, vx)), ones);
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_broadcast_ss(xs + b), acc);
    }
    return hsum8(acc);
}

/* y [M, N] (+)= x [M, K] @ (w [N, K] * scale [N]).T + bias [N] (bias may be NULL;
 * accumulate adds into y, for a residual). Each row of x is quantized to int8
 * blocks first; rows of w are taken in tiles so that a tile stays in cache
 * while every activation row passes (the prefill's case). */
int companion_int8_linear(const float *x, int M, int K, const int8_t *w, const float *scale,
                          const float *bias, int N, float *y, int accumulate, int threads) {
    if (K % QK)
        return -1;
    int8_t *xq = (int8_t *)aligned_alloc(64, ((size_t)M * K + 63) / 64 * 64);
    float *xs = (float *)malloc(sizeof(float) * (size_t)M * (K / QK));
    if (!xq || !xs) {
        free(xq);
        free(xs);
        return -2;
    }
#pragma omp parallel for num_threads(threads) schedule(static) if (M > 1 && threads > 1)
    for (int m = 0; m < M; m++)
        quantize_row(x + (size_t)m * K, K, xq + (size_t)m * K, xs + (size_t)m * (K / QK));
    const int tile = M == 1 ? 64 : 16;
    const int tiles = (N + tile - 1) / tile;
    const size_t Kz = (size_t)K;
    const int par = threads > 1 && (size_t)M * N * Kz >= (1u << 18);
#pragma omp parallel for num_threads(threads) schedule(static) if (par)
    for (int t = 0; t < tiles; t++) {
        const int n0 = t * tile, n1 = n0 + tile < N ? n0 + tile : N;
        for (int m = 0; m < M; m++) {
            const int8_t *xqm = xq + (size_t)m * Kz;
            const float *xsm = xs + (size_t)m * (Kz / QK);
            float *ym = y + (size_t)m * N;
            for (int n = n0; n < n1;) {
                float d[4];
                int r = n + 4 <= n1 ? 4 : 1;
                if (r == 4)
                    dot4(w + (size_t)n * Kz, Kz, xqm, xsm, d);
                else
                    d[0] = dot1(w + (size_t)n * Kz, Kz, xqm, xsm);
                for (int j = 0; j < r; j++) {
                    float v = d[j] * scale[n + j] + (bias ? bias[n + j] : 0.0f);
                    ym[n + j] = accumulate ? ym[n + j] + v : v;
                }
                n += r;
            }
        }
    }
    free(xq);
    free(xs);
    return 0;
}

/* out [M, K] = x * rsqrt(mean(x^2) + eps) * weight, row by row. */
void companion_rmsnorm(const float *x, int M, int K, const float *weight, float eps, float *out) {
    for (int m = 0; m < M; m++) {
        const float *r = x + (size_t)m * K;
        float *o = out + (size_t)m * K;
        double ss = 0.0;
        for (int k = 0; k < K; k++)
            ss += (double)r[k] * r[k];
        float inv = 1.0f / sqrtf((float)(ss / K) + eps);
        for (int k = 0; k < K; k++)
            o[k] = r[k] * inv * weight[k];
    }
}

/* Rotary embedding in place on the first `heads` heads of each of M rows
 * (row stride `stride` floats, heads of `dim` floats, the halves rotated as
 * transformers' rotate_half does); cos/sin are [M, dim/2]. */
void companion_rope(float *x, int M, int stride, int heads, int dim, const float *cos_,
                    const float *sin_) {
    const int half = dim / 2;
    for (int m = 0; m < M; m++) {
        const float *c = cos_ + (size_t)m * half, *s = sin_ + (size_t)m * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t)m * stride + (size_t)h * dim;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

/* out [M, I] = silu(gu[:, :I]) * gu[:, I:] for gu [M, 2I]. */
void companion_silu_mul(const float *gu, int M, int I, float *out) {
    for (int m = 0; m < M; m++) {
        const float *g = gu + (size_t)m * 2 * I, *u = g + I;
        float *o = out + (size_t)m * I;
        for (int i = 0; i < I; i++)
            o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

static inline float dot_f32(const float *a, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum8(acc);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Scores of 8 consecutive keys (rows of dim floats, dim a multiple of 8) against q. */
static inline __m256 dot8keys(const float *q, const float *k, int dim) {
    __m256 acc[8];
    for (int r = 0; r < 8; r++)
        acc[r] = _mm256_setzero_ps();
    for (int i = 0; i < dim; i += 8) {
        const __m256 qv = _mm256_loadu_ps(q + i);
        for (int r = 0; r < 8; r++)
            acc[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + (size_t)r * dim + i), acc[r]);
    }
    const __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    const __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(acc[4], acc[5]), _mm256_hadd_ps(acc[6], acc[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                         _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

/* exp(x) for 8 floats (Cephes' polynomial, as in avx_mathfun; relative error
 * about 2e-7). Deterministic, unlike a libm call whose result may differ between
 * a vectorized and a scalar path. */
static inline __m256 exp256(__m256 x) {
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365447505531f));
    __m256 fx = _mm256_floor_ps(
        _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, z, x), _mm256_set1_ps(1.0f));
    __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(0x7f)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

static inline float exp1(float x) {
    return _mm256_cvtss_f32(exp256(_mm256_set1_ps(x)));
}

/* Keys per block of the attention below. */
#define KB 64
/* Query rows per task of the attention below. */
#define RB 16

/* One (row, head) pair's running softmax over the keys [k0, k0 + n) of a block. */
static inline void attend_block(const float *qh, const float *kh, const float *vh, int dim, int k0,
                                int n, float scale, float *m, float *l, float *acc, float *sc) {
    int j = 0;
    if (dim % 8 == 0)
        for (; j + 8 <= n; j += 8)
            _mm256_storeu_ps(sc + j, _mm256_mul_ps(dot8keys(qh, kh + (size_t)(k0 + j) * dim, dim),
                                                   _mm256_set1_ps(scale)));
    for (; j < n; j++)
        sc[j] = dot_f32(qh, kh + (size_t)(k0 + j) * dim, dim) * scale;
    float top = *m;
    for (j = 0; j < n; j++)
        if (sc[j] > top)
            top = sc[j];
    const float alpha = *m == -INFINITY ? 0.0f : exp1(*m - top);
    __m256 psum = _mm256_setzero_ps();
    j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(sc + j), _mm256_set1_ps(top)));
        _mm256_storeu_ps(sc + j, p);
        psum = _mm256_add_ps(psum, p);
    }
    float sum = hsum8(psum);
    for (; j < n; j++) {
        sc[j] = exp1(sc[j] - top);
        sum += sc[j];
    }
    *l = *l * alpha + sum;
    *m = top;
    if (dim == 64) { /* the common head size: the sum stays in registers */
        __m256 a[8];
        const __m256 al = _mm256_set1_ps(alpha);
        for (int c = 0; c < 8; c++)
            a[c] = _mm256_mul_ps(_mm256_loadu_ps(acc + 8 * c), al);
        for (j = 0; j < n; j++) {
            const float *vj = vh + (size_t)(k0 + j) * dim;
            const __m256 w = _mm256_set1_ps(sc[j]);
            for (int c = 0; c < 8; c++)
                a[c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vj + 8 * c), a[c]);
        }
        for (int c = 0; c < 8; c++)
            _mm256_storeu_ps(acc + 8 * c, a[c]);
        return;
    }
    for (int d = 0; d < dim; d++)
        acc[d] *= alpha;
    for (j = 0; j < n; j++) {
        const float *vj = vh + (size_t)(k0 + j) * dim;
        for (int d = 0; d < dim; d++)
            acc[d] = fmaf(sc[j], vj[d], acc[d]);
    }
}

/* Causal attention of `rows` new positions, the first at position `start`:
 * row i of q (stride q_stride floats, heads of dim floats) attends to the first
 * start + i + 1 positions of k, v [kv_heads, capacity, dim] (query head h reads
 * key head h / (heads / kv_heads)); out row i (stride out_stride) gets the
 * result. Keys are taken in blocks of KB with a running softmax (as flash
 * attention does), so a block of keys serves every row and head of a task
 * while it is in cache. Every (row, head) sees the same blocks in the same order
 * whatever the number of rows, so a position gets the same bits whether it came
 * in a prefill or alone in a decode step: a conversation continued from a cached
 * prefix continues exactly as a cold run of the whole prompt would. */
int companion_attend(const float *q, int rows, int q_stride, const float *k, const float *v,
                     int heads, int kv_heads, int dim, int capacity, int start, float scale,
                     float *out, int out_stride, int threads) {
    const int group = heads / kv_heads;
    const int chunks = (rows + RB - 1) / RB;
    const int tasks = kv_heads * chunks;
    const size_t work = (size_t)rows * (start + rows) * heads * dim;
    const int par = threads > 1 && tasks > 1 && work >= (1u << 16);
    int failed = 0;
#pragma omp parallel num_threads(threads) if (par)
    {
        const size_t pairs = (size_t)RB * group;
        float *state = (float *)malloc(sizeof(float) * (pairs * (2 + dim) + KB));
        if (!state) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int task = 0; task < tasks; task++) {
            if (!state)
                continue;
            const int kvh = task / chunks, r0 = (task % chunks) * RB;
            const int r1 = r0 + RB < rows ? r0 + RB : rows;
            float *m = state, *l = state + pairs, *acc = state + 2 * pairs;
            float *sc = acc + pairs * dim;
            for (size_t p = 0; p < pairs; p++) {
                m[p] = -INFINITY;
                l[p] = 0.0f;
            }
            for (size_t p = 0; p < pairs * dim; p++)
                acc[p] = 0.0f;
            const float *kh = k + (size_t)kvh * capacity * dim;
            const float *vh = v + (size_t)kvh * capacity * dim;
            const int longest = start + r1; /* the last row's length */
            for (int k0 = 0; k0 < longest; k0 += KB) {
                for (int i = r0; i < r1; i++) {
                    const int length = start + i + 1;
                    if (k0 >= length)
                        continue;
                    const int n = length - k0 < KB ? length - k0 : KB;
                    for (int g = 0; g < group; g++) {
                        const size_t p = (size_t)(i - r0) * group + g;
                        const int h = kvh * group + g;
                        attend_block(q + (size_t)i * q_stride + (size_t)h * dim, kh, vh, dim, k0, n,
                                     scale, m + p, l + p, acc + p * dim, sc);
                    }
                }
            }
            for (int i = r0; i < r1; i++)
                for (int g = 0; g < group; g++) {
                    const size_t p = (size_t)(i - r0) * group + g;
                    const float inv = 1.0f / l[p];
                    float *o = out + (size_t)i * out_stride + (size_t)(kvh * group + g) * dim;
                    for (int d = 0; d < dim; d++)
                        o[d] = acc[p * dim + d] * inv;
                }
        }
        free(state);
    }
    return failed ? -2 : 0;
}

/* 4-bit weights in blocks of 32 (GGUF's Q4_1 layout): a block is 16 bytes, byte
 * j holding element j in its low nibble and element j + 16 in its high one, and
 * a float16 scale d and minimum m, so that w = d * q + m for q in 0..15. Against
 * an int8 activation block (scale s, element sum S):
 *     sum_j w_j x_j = d * s * sum_j q_j xq_j + m * s * S. */
static inline __m256i unpack_q4(const uint8_t *p) {
    __m128i raw = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* `nrows` rows (1 to 4) of 4-bit weights against one activation row, either
 * packed (decode: nibbles unpacked on the fly, float16 scales) or unpacked by
 * companion_q4_linear into bytes and floats (prefill: unpacked once per tile,
 * used by every activation row). Each row's arithmetic is the same sequence of
 * operations in both, so a position gets the same bits in a prefill as in a
 * decode step. Inlined with constant nrows/unpacked, so each use is specialized. */
static inline __attribute__((always_inline)) void q4_rows(
    int nrows, int unpacked, const uint8_t *w, size_t wstride, const float *df, const float *mf,
    const uint16_t *d, const uint16_t *mn, size_t sstride, size_t nb, const int8_t *xq,
    const float *xs, const float *xsum, float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 a[4], am[4];
    float tail[4];
    for (int r = 0; r < nrows; r++) {
        a[r] = am[r] = _mm256_setzero_ps();
        tail[r] = 0.0f;
    }
    size_t b = 0;
    for (; b + 8 <= nb; b += 8) { /* eight blocks' scales converted and multiplied at once */
        const __m256 sx = _mm256_loadu_ps(xs + b), sum = _mm256_loadu_ps(xsum + b);
        __m256 dv[4];
        for (int r = 0; r < nrows; r++) {
            const size_t o = r * sstride + b;
            __m256 dd = unpacked ? _mm256_loadu_ps(df + o)
                                 : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(d + o)));
            __m256 mm = unpacked ? _mm256_loadu_ps(mf + o)
                                 : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(mn + o)));
            dv[r] = _mm256_mul_ps(dd, sx);
            am[r] = _mm256_fmadd_ps(mm, sum, am[r]);
        }
        for (int j = 0; j < 8; j++) {
            const __m256i vx = _mm256_loadu_si256((const __m256i *)(xq + (b + j) * QK));
            const __m256i lane = _mm256_set1_epi32(j);
            for (int r = 0; r < nrows; r++) {
                __m256i q = unpacked
                    ? _mm256_loadu_si256((const __m256i *)(w + r * wstride + (b + j) * QK))
                    : unpack_q4(w + r * wstride + (b + j) * 16);
                __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, vx), ones);
                a[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_permutevar8x32_ps(dv[r], lane),
                                       a[r]);
            }
        }
    }
    for (; b < nb; b++) {
        const __m256i vx = _mm256_loadu_si256((const __m256i *)(xq + b * QK));
        for (int r = 0; r < nrows; r++) {
            const size_t o = r * sstride + b;
            float dd = unpacked ? df[o] : _cvtsh_ss(d[o]);
            float mm = unpacked ? mf[o] : _cvtsh_ss(mn[o]);
            __m256i q = unpacked ? _mm256_loadu_si256((const __m256i *)(w + r * wstride + b * QK))
                                 : unpack_q4(w + r * wstride + b * 16);
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, vx), ones);
            a[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dd * xs[b]), a[r]);
            tail[r] = fmaf(mm, xsum[b], tail[r]);
        }
    }
    for (int r = 0; r < nrows; r++)
        out[r] = hsum8(a[r]) + hsum8(am[r]) + tail[r];
}

/* y [M, N] (+)= x [M, K] @ W.T + bias with W [N, K] in the 4-bit layout above:
 * w [N, K/2] bytes, d and mn [N, K/32] float16 (as raw 16-bit words). */
int companion_q4_linear(const float *x, int M, int K, const uint8_t *w, const uint16_t *d,
                        const uint16_t *mn, const float *bias, int N, float *y, int accumulate,
                        int threads) {
    if (K % QK)
        return -1;
    const size_t nb = (size_t)K / QK, Kz = (size_t)K;
    int8_t *xq = (int8_t *)aligned_alloc(64, ((size_t)M * K + 63) / 64 * 64);
    float *xs = (float *)malloc(sizeof(float) * (size_t)M * nb * 2);
    if (!xq || !xs) {
        free(xq);
        free(xs);
        return -2;
    }
    float *xsum = xs + (size_t)M * nb;
#pragma omp parallel for num_threads(threads) schedule(static) if (M > 1 && threads > 1)
    for (int m = 0; m < M; m++) {
        int8_t *q = xq + (size_t)m * K;
        quantize_row(x + (size_t)m * K, K, q, xs + (size_t)m * nb);
        for (size_t b = 0; b < nb; b++) {
            int s = 0;
            for (int j = 0; j < QK; j++)
                s += q[b * QK + j];
            xsum[(size_t)m * nb + b] = (float)s * xs[(size_t)m * nb + b];
        }
    }
    const int tile = M == 1 ? 64 : 16;
    const int tiles = (N + tile - 1) / tile;
    const int par = threads > 1 && (size_t)M * N * K >= (1u << 18);
    int failed = 0;
#pragma omp parallel num_threads(threads) if (par)
    {
        /* the prefill unpacks a tile once for all its activation rows */
        uint8_t *uq = M > 1 ? (uint8_t *)aligned_alloc(64, (size_t)tile * Kz) : NULL;
        float *uf = M > 1 ? (float *)malloc(sizeof(float) * tile * nb * 2) : NULL;
        if (M > 1 && (!uq || !uf)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int t = 0; t < tiles; t++) {
            if (M > 1 && (!uq || !uf))
                continue;
            const int n0 = t * tile, n1 = n0 + tile < N ? n0 + tile : N;
            if (M > 1) {
                for (int r = 0; r < n1 - n0; r++) {
                    const size_t row = (size_t)(n0 + r);
                    for (size_t b = 0; b < nb; b++) {
                        _mm256_storeu_si256((__m256i *)(uq + r * Kz + b * QK),
                                            unpack_q4(w + row * nb * 16 + b * 16));
                        uf[r * nb + b] = _cvtsh_ss(d[row * nb + b]);
                        uf[(size_t)tile * nb + r * nb + b] = _cvtsh_ss(mn[row * nb + b]);
                    }
                }
            }
            for (int m = 0; m < M; m++) {
                const int8_t *xqm = xq + (size_t)m * K;
                const float *xsm = xs + (size_t)m * nb, *xsumm = xsum + (size_t)m * nb;
                float *ym = y + (size_t)m * N;
                for (int n = n0; n < n1;) {
                    float r4[4];
                    const int r = n + 4 <= n1 ? 4 : 1;
                    const size_t i = (size_t)(n - n0);
                    if (M > 1 && r == 4)
                        q4_rows(4, 1, uq + i * Kz, Kz, uf + i * nb, uf + tile * nb + i * nb, NULL,
                                NULL, nb, nb, xqm, xsm, xsumm, r4);
                    else if (M > 1)
                        q4_rows(1, 1, uq + i * Kz, Kz, uf + i * nb, uf + tile * nb + i * nb, NULL,
                                NULL, nb, nb, xqm, xsm, xsumm, r4);
                    else if (r == 4)
                        q4_rows(4, 0, w + (size_t)n * nb * 16, nb * 16, NULL, NULL,
                                d + (size_t)n * nb, mn + (size_t)n * nb, nb, nb, xqm, xsm, xsumm, r4);
                    else
                        q4_rows(1, 0, w + (size_t)n * nb * 16, nb * 16, NULL, NULL,
                                d + (size_t)n * nb, mn + (size_t)n * nb, nb, nb, xqm, xsm, xsumm, r4);
                    for (int j = 0; j < r; j++) {
                        float v = r4[j] + (bias ? bias[n + j] : 0.0f);
                        ym[n + j] = accumulate ? ym[n + j] + v : v;
                    }
                    n += r;
                }
            }
        }
        free(uq);
        free(uf);
    }
    free(xq);
    free(xs);
    return failed ? -2 : 0;
}
