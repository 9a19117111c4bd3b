/* The float operations of a transformer layer around the matmuls: RMSNorm,
 * rotary embedding (llama.cpp's "normal" pairs and NEOX halves), causal
 * attention over a float32 KV cache, and the SiLU gate. Each computes a token's
 * output the same way whatever else is in the call (the prefix property). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define GK_AVX2 1
#else
#define GK_AVX2 0
#endif

typedef void (*gk_task)(void *ctx, int64_t begin, int64_t end);
void gk_parallel(gk_task fn, void *ctx, int64_t n, int64_t chunk, int threads);

#if GK_AVX2
/* e^x for 8 floats (Cephes' expf: range reduction by ln 2, degree-5 polynomial),
 * within 2 ulp; inputs below -88 give ~1e-38 rather than 0. */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)),
                      _mm256_set1_ps(88.3762626647949f));
    __m256 fx = _mm256_floor_ps(
        _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    const __m256i n = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}
#endif

/* out [T, n] = x * 1/sqrt(mean(x^2) + eps) * w, as ggml's rms_norm then mul. */
void gk_rmsnorm(const float *x, int64_t T, int64_t n, const float *w, float eps, float *out) {
    for (int64_t t = 0; t < T; t++) {
        const float *r = x + t * n;
        float *o = out + t * n;
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++)
            sum += (double)(r[i] * r[i]);
        const float mean = (float)(sum / (double)n);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int64_t i = 0; i < n; i++)
            o[i] = (r[i] * scale) * w[i];
    }
}

/* Rotate x [T, heads*dim] in place at positions pos[T]: theta_i = p * base^(-2i/dim),
 * computed as ggml does (theta *= base^(-2/dim) step by step, in float). NEOX
 * pairs element i with i + dim/2; "normal" pairs 2i with 2i+1. */
void gk_rope(float *x, int64_t T, const int32_t *pos, int heads, int dim, float base, int neox) {
    float cache[2048]; /* dim <= 2048, checked by the caller */
    const float theta_scale = powf(base, -2.0f / (float)dim);
    const int half = dim / 2;
    for (int64_t t = 0; t < T; t++) {
        float theta = (float)pos[t];
        for (int i = 0; i < dim; i += 2) {
            cache[i] = cosf(theta);
            cache[i + 1] = sinf(theta);
            theta *= theta_scale;
        }
        for (int h = 0; h < heads; h++) {
            float *v = x + (t * heads + h) * (int64_t)dim;
            for (int i = 0; i < half; i++) {
                const float c = cache[2 * i], s = cache[2 * i + 1];
                const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

/* out [T, ff] = silu(gate) * up, rows of gate/up `gs`/`us` floats apart. */
void gk_silu_mul(const float *gate, int64_t gs, const float *up, int64_t us, int64_t T,
                 int64_t ff, float *out) {
    for (int64_t t = 0; t < T; t++) {
        const float *g = gate + t * gs, *u = up + t * us;
        float *o = out + t * ff;
        int64_t i = 0;
#if GK_AVX2
        const __m256 one = _mm256_set1_ps(1.0f);
        for (; i + 8 <= ff; i += 8) {
            const __m256 x = _mm256_loadu_ps(g + i);
            const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
            _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)),
                                                  _mm256_loadu_ps(u + i)));
        }
#endif
        for (; i < ff; i++)
            o[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
    }
}

static inline float dot(const float *a, const float *b, int n) {
#if GK_AVX2
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    float s = _mm_cvtss_f32(lo);
#else
    float s = 0.0f;
    int i = 0;
#endif
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

#if GK_AVX2
/* out[0..8) = scale * (q . K[k]) for the 8 keys K[0..8) (rows of `dim`), each
 * sum exactly as dot() adds it (lanes over the chunks, then hsum's tree), with
 * the eight reductions done together. */
static inline void scores8(const float *q, const float *K, int dim, float scale, float *out) {
    __m256 a[8];
    for (int k = 0; k < 8; k++)
        a[k] = _mm256_setzero_ps();
    for (int i = 0; i < dim; i += 8) {
        const __m256 qc = _mm256_loadu_ps(q + i);
        for (int k = 0; k < 8; k++)
            a[k] = _mm256_fmadd_ps(qc, _mm256_loadu_ps(K + k * dim + i), a[k]);
    }
    __m256 b[4]; /* [key 2m: lane l + lane l+4 | key 2m+1: the same] */
    for (int m = 0; m < 4; m++)
        b[m] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * m], a[2 * m + 1], 0x20),
                             _mm256_permute2f128_ps(a[2 * m], a[2 * m + 1], 0x31));
    /* [(0+4)+(2+6), (1+5)+(3+7)] of keys 0, 2 | 1, 3, and of keys 4, 6 | 5, 7 */
    const __m256 z = _mm256_add_ps(_mm256_shuffle_ps(b[0], b[1], 0x44),
                                   _mm256_shuffle_ps(b[0], b[1], 0xEE));
    const __m256 w = _mm256_add_ps(_mm256_shuffle_ps(b[2], b[3], 0x44),
                                   _mm256_shuffle_ps(b[2], b[3], 0xEE));
    const __m256 s = _mm256_add_ps(_mm256_shuffle_ps(z, w, 0x88), _mm256_shuffle_ps(z, w, 0xDD));
    const __m256 keys = _mm256_permutevar8x32_ps(s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_ps(out, _mm256_mul_ps(keys, _mm256_set1_ps(scale)));
}
#endif

typedef struct {
    const float *q, *k, *v;
    float *out;
    int64_t capacity, start, T;
    int heads, kv_heads, group, dim;
    float scale;
    int failed; /* a thread could not get its scratch memory */
} att_ctx;

/* Each thread's scratch for the scores, grown as needed and kept. */
static __thread float *SCRATCH;
static __thread int64_t SCRATCH_N;

static float *scratch(int64_t n) {
    if (n > SCRATCH_N) {
        float *p = (float *)realloc(SCRATCH, sizeof(float) * (size_t)n);
        if (!p)
            return NULL;
        SCRATCH = p;
        SCRATCH_N = n;
    }
    return SCRATCH;
}

/* p[0..n) = exp(p - max(p)); returns their sum. */
static float softmax_numerators(float *p, int64_t n) {
    float mx = -INFINITY;
    int64_t j = 0;
#if GK_AVX2
    if (n >= 8) { /* max_ps(x, m) keeps m when x is NaN, as the loop below does */
        __m256 m8 = _mm256_set1_ps(-INFINITY);
        for (; j + 8 <= n; j += 8)
            m8 = _mm256_max_ps(_mm256_loadu_ps(p + j), m8);
        float lanes[8];
        _mm256_storeu_ps(lanes, m8);
        for (int l = 0; l < 8; l++)
            mx = lanes[l] > mx ? lanes[l] : mx;
    }
#endif
    for (; j < n; j++)
        mx = p[j] > mx ? p[j] : mx;
    j = 0;
    float sum = 0.0f;
#if GK_AVX2
    const __m256 m = _mm256_set1_ps(mx);
    __m256 s8 = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + j), m));
        _mm256_storeu_ps(p + j, e);
        s8 = _mm256_add_ps(s8, e);
    }
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    sum = _mm_cvtss_f32(lo);
#endif
    for (; j < n; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    return sum;
}

/* o[0..dim) += sum_{j in [j0, j1)} p[j] * V[j], one j after the other (o starts
 * at zeros; a caller that goes on from where the last call stopped gets the same
 * numbers as one call over the whole range). */
static inline __attribute__((always_inline)) void weigh_values(float *o, const float *p,
                                                              const float *V, int64_t j0,
                                                              int64_t j1, int dim) {
#if GK_AVX2
    if (dim % 8 == 0 && dim <= 128) {
        __m256 acc[16];
        const int c8 = dim / 8;
        for (int c = 0; c < c8; c++)
            acc[c] = _mm256_loadu_ps(o + 8 * c);
        for (int64_t j = j0; j < j1; j++) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            for (int c = 0; c < c8; c++)
                acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(V + j * dim + 8 * c), acc[c]);
        }
        for (int c = 0; c < c8; c++)
            _mm256_storeu_ps(o + 8 * c, acc[c]);
        return;
    }
#endif
    for (int64_t j = j0; j < j1; j++)
        for (int i = 0; i < dim; i++)
            o[i] += p[j] * V[j * dim + i];
}

/* Tokens per attention item: their queries share each block of keys and values
 * while it is in cache. */
#define ATT_TOKENS 4
/* Keys per block of the values pass. */
#define ATT_KEYS 64

/* Items [b, e) of ceil(T / ATT_TOKENS) * kv_heads: (tokens t0.., KV head g) with
 * the `group` query heads that share g, so each key and value row is loaded once
 * for all of them. Each head's scores, softmax and sum are computed the same way
 * whatever the call: one key after the other, eight keys' scores at a time. */
static void att_task(void *vc, int64_t b, int64_t e) {
    att_ctx *c = (att_ctx *)vc;
    const int dim = c->dim, group = c->group;
    for (int64_t item = b; item < e; item++) {
        const int64_t t0 = item / c->kv_heads * ATT_TOKENS;
        const int g = (int)(item % c->kv_heads);
        const int nt = c->T - t0 < ATT_TOKENS ? (int)(c->T - t0) : ATT_TOKENS;
        const int64_t nmax = c->start + t0 + nt; /* keys of the last token */
        const int rows = nt * group;               /* (token, head) pairs */
        float *p = scratch(nmax * rows);
        if (!p) {
            __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
            return;
        }
        const float *K = c->k + g * c->capacity * dim, *V = c->v + g * c->capacity * dim;
        /* scores: row (u, h) of p holds token t0 + u's, for its n_u keys */
        for (int64_t j = 0; j < nmax; j += 8)
            for (int u = 0; u < nt; u++) {
                const int64_t n = c->start + t0 + u + 1;
                if (j >= n)
                    continue;
                const float *q = c->q + ((t0 + u) * c->heads + (int64_t)g * group) * dim;
                for (int h = 0; h < group; h++) {
                    float *row = p + (u * group + h) * nmax;
#if GK_AVX2
                    if (dim % 8 == 0 && j + 8 <= n) {
                        scores8(q + h * dim, K + j * dim, dim, c->scale, row + j);
                        continue;
                    }
#endif
                    for (int64_t k = j; k < n && k < j + 8; k++)
                        row[k] = dot(q + h * dim, K + k * dim, dim) * c->scale;
                }
            }
        float sums[ATT_TOKENS * 64];
        float *outs[ATT_TOKENS * 64];
        for (int r = 0; r < rows; r++) {
            const int u = r / group;
            const int64_t n = c->start + t0 + u + 1;
            sums[r] = softmax_numerators(p + r * nmax, n);
            outs[r] = c->out + ((t0 + u) * c->heads + (int64_t)g * group + r % group) * dim;
            memset(outs[r], 0, sizeof(float) * (size_t)dim);
        }
        for (int64_t j0 = 0; j0 < nmax; j0 += ATT_KEYS)
            for (int r = 0; r < rows; r++) {
                const int64_t n = c->start + t0 + r / group + 1;
                const int64_t j1 = j0 + ATT_KEYS < n ? j0 + ATT_KEYS : n;
                if (j0 >= j1)
                    continue;
                if (dim == 64)
                    weigh_values(outs[r], p + r * nmax, V, j0, j1, 64);
                else if (dim == 128)
                    weigh_values(outs[r], p + r * nmax, V, j0, j1, 128);
                else
                    weigh_values(outs[r], p + r * nmax, V, j0, j1, dim);
            }
        for (int r = 0; r < rows; r++) {
            const float inv = 1.0f / sums[r];
            for (int i = 0; i < dim; i++)
                outs[r][i] *= inv;
        }
    }
}

/* out [T, heads*dim]: token t (at position start + t) attends to cache positions
 * 0..start+t of its KV head (GQA: heads/kv_heads query heads share one), with
 * softmax(q.k / sqrt(dim)). k/v caches are [kv_heads, capacity, dim]. 0, or -3 out
 * of memory. */
int gk_attention(const float *q, const float *k, const float *v, int64_t capacity, int64_t start,
                 int64_t T, int heads, int kv_heads, int dim, float *out, int threads) {
    if (heads / kv_heads > 64)
        return -4;
    att_ctx c = {q, k, v, out, capacity, start, T, heads, kv_heads, heads / kv_heads, dim,
                 1.0f / sqrtf((float)dim), 0};
    gk_parallel(att_task, &c, (T + ATT_TOKENS - 1) / ATT_TOKENS * kv_heads, 1, threads);
    return c.failed ? -3 : 0;
}
