/* Quantized GGUF blocks, read in place: y = x @ W^T straight from the file's bytes.
 *
 * Each block type is a layout and a dot product, found through the table at the
 * end (TYPES): Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K, and F16/F32 matrices.
 * As in llama.cpp (ggml-common.h, ggml-cpu/quants.c), every row of activations
 * is first quantized to the format its weights pair with (Q8_0 blocks of 32 for
 * the 32-element types, with Q8_1's d*sum for Q4_1; Q8_K blocks of 256 with
 * 16-element sums for the K-quants), so a block product is integer multiply-adds
 * (AVX2 maddubs) and one float fma per block. The layouts are those of
 * gguf-py's quants.py.
 *
 * The bit-for-bit prefix property: a token's outputs do not depend on how many
 * tokens are in the call, nor on the thread count. Every dot kernel takes up to
 * four tokens at once (sharing the unpacked weight block between them: the
 * prefill's speed-up) but each token's accumulators see exactly the operations a
 * lone token would. Built with -ffp-contract=off so the compiler cannot fuse
 * differently in different inlined copies.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define GK_AVX2 1
#else
#define GK_AVX2 0
#endif

#define GK_INLINE inline __attribute__((always_inline))
#define QK 32
#define QKK 256
#define NT_MAX 4
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && !defined(GK_TILE8)
#define TILE 16 /* tokens in a tile (the lanes of the tile kernels) */
#else
#define TILE 8
#endif
#define TILE_MAX 2 /* tiles a tile kernel takes at once */

typedef void (*gk_task)(void *ctx, int64_t begin, int64_t end);
void gk_parallel(gk_task fn, void *ctx, int64_t n, int64_t chunk, int threads);

int gk_abi(void) { return 1; }


/* ---- half floats ------------------------------------------------------------ */

static inline uint32_t f2bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bits2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float f16_to_f32(uint16_t h) {
#if GK_AVX2
    return _cvtsh_ss(h);
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0)
        return bits2f(sign | f2bits(ldexpf((float)man, -24)));
    if (exp == 31)
        return bits2f(sign | 0x7F800000u | (man << 13));
    return bits2f(sign | ((exp + 112) << 23) | (man << 13));
#endif
}

static inline uint16_t f32_to_f16(float f) { /* round to nearest even */
#if GK_AVX2
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#else
    const uint32_t w = f2bits(f), shl1 = w + w, sign = w & 0x80000000u;
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    uint32_t bias = shl1 & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = bits2f((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f2bits(base);
    const uint32_t nonsign = ((bits >> 13) & 0x7C00u) + (bits & 0x0FFFu);
    return (uint16_t)((sign >> 16) | (shl1 > 0xFF000000u ? 0x7E00u : nonsign));
#endif
}

static inline float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return f16_to_f32(h);
}
static inline float round_f16(float f) { return f16_to_f32(f32_to_f16(f)); }

/* ---- activations -------------------------------------------------------------- */

enum { ACT_F32, ACT_Q8_0, ACT_Q8_1, ACT_Q8_K };

/* T rows of activations in the form one weight type reads. */
typedef struct {
    const float *xf;      /* [T, cols] as given (F32/F16 weights) */
    int8_t *qs;           /* [T, cols] */
    float *d;             /* [T, cols/32] (Q8_0/Q8_1) or [T, cols/256] (Q8_K) */
    float *s;             /* [T, cols/32]: d * sum(qs), Q8_1 only */
    int16_t *bsums;       /* [T, cols/16]: Q8_K only */
    int64_t cols;
    /* For a tile kernel, the first tiles * TILE tokens again, TILE by TILE: per
     * tile and block of 32, the block's bytes + 128 as [4-byte group][token][4]
     * (tq, 32 * TILE bytes, 64-byte aligned), and the tokens' d (td, TILE floats). */
    int64_t tiles, T; /* the last tile may be padded past T */
    uint8_t *tq;
    float *td;
} act_t;

/* One row to Q8_0 blocks as llama.cpp's x86 quantize_row_q8_0 does: d = amax/127
 * stored as f16, x * (127/amax) rounded to nearest even; with `s` (Q8_1) also
 * f16(d * sum of the block). */
static void quantize_q8_0(const float *x, int64_t cols, int8_t *q, float *d, float *s) {
    for (int64_t b = 0; b < cols / QK; b++) {
        const float *xb = x + b * QK;
        int8_t *qb = q + b * QK;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++)
            amax = fmaxf(amax, fabsf(xb[j]));
        const float dd = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        d[b] = round_f16(dd);
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            qb[j] = (int8_t)(int)nearbyintf(xb[j] * id);
            sum += qb[j];
        }
        if (s)
            s[b] = round_f16(dd * (float)sum);
    }
}

/* One row to Q8_K blocks as quantize_row_q8_K_ref: scale -127/max by the
 * signed value of largest magnitude, round to nearest, sums of 16. */
static void quantize_q8_K(const float *x, int64_t cols, int8_t *q, float *d, int16_t *bsums) {
    for (int64_t b = 0; b < cols / QKK; b++) {
        const float *xb = x + b * QKK;
        int8_t *qb = q + b * QKK;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QKK; j++) {
            float ax = fabsf(xb[j]);
            if (ax > amax) {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax == 0.0f) {
            d[b] = 0.0f;
            memset(qb, 0, QKK);
            memset(bsums + b * 16, 0, 16 * sizeof(int16_t));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QKK; j++) {
            int v = (int)nearbyintf(iscale * xb[j]);
            qb[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += qb[j * 16 + i];
            bsums[b * 16 + j] = (int16_t)sum;
        }
        d[b] = 1.0f / iscale;
    }
}

typedef struct {
    int kind;
    const float *x;
    act_t *a;
} quant_ctx;

static void quantize_task(void *vc, int64_t t0, int64_t t1) {
    const quant_ctx *c = (const quant_ctx *)vc;
    const int64_t cols = c->a->cols;
    for (int64_t t = t0; t < t1; t++) {
        const float *x = c->x + t * cols;
        if (c->kind == ACT_Q8_K)
            quantize_q8_K(x, cols, c->a->qs + t * cols, c->a->d + t * (cols / QKK),
                          c->a->bsums + t * (cols / 16));
        else
            quantize_q8_0(x, cols, c->a->qs + t * cols, c->a->d + t * (cols / QK),
                          c->kind == ACT_Q8_1 ? c->a->s + t * (cols / QK) : NULL);
    }
}

typedef struct {
    act_t *a;
    int64_t nb;
} tile_ctx;

static void tile_task(void *vc, int64_t k0, int64_t k1) {
    const tile_ctx *c = (const tile_ctx *)vc;
    const act_t *a = c->a;
    for (int64_t k = k0; k < k1; k++)
        for (int64_t i = 0; i < c->nb; i++) {
            uint8_t *dst = a->tq + (k * c->nb + i) * 32 * TILE;
            for (int l = 0; l < TILE; l++) {
                const int64_t t = k * TILE + l;
                float *td = a->td + (k * c->nb + i) * TILE + l;
                if (t >= a->T) { /* padding: y = 0 */
                    for (int g = 0; g < 8; g++)
                        memset(dst + 4 * TILE * g + 4 * l, 128, 4);
                    *td = 0.0f;
                    continue;
                }
                const int8_t *src = a->qs + t * a->cols + i * QK;
                for (int g = 0; g < 8; g++)
                    for (int e = 0; e < 4; e++)
                        dst[4 * TILE * g + 4 * l + e] = (uint8_t)(src[4 * g + e] + 128);
                *td = a->d[t * c->nb + i];
            }
        }
}

/* Allocate and fill the activations of kind `kind` for x [T, cols] (with the
 * tiles a tile kernel reads when `tiled`); NULL on OOM. */
static void *make_act(int kind, const float *x, int64_t T, int64_t cols, act_t *a, int threads,
                      int tiled) {
    memset(a, 0, sizeof *a);
    a->cols = cols;
    a->xf = x;
    if (kind == ACT_F32)
        return NULL;
    const int64_t nd = kind == ACT_Q8_K ? cols / QKK : cols / QK;
    /* A last, partial tile is padded with zero tokens when it is at least 13/16
     * full: the tile kernel then costs less than that many tokens' dot products. */
    a->T = T;
    a->tiles = tiled && kind == ACT_Q8_0 ? T / TILE + (T % TILE >= TILE * 13 / 16) : 0;
    const size_t tile_bytes = (size_t)(a->tiles * TILE) * (size_t)cols * 2;
    const size_t bytes = (size_t)T * (size_t)cols + (size_t)T * nd * 4 * 2 +
                         (size_t)T * (cols / 16) * 2 + tile_bytes + 128;
    uint8_t *mem = (uint8_t *)malloc(bytes);
    if (!mem)
        return NULL;
    a->d = (float *)mem;
    a->s = a->d + T * nd;
    a->bsums = (int16_t *)(a->s + T * nd);
    a->qs = (int8_t *)(a->bsums + T * (cols / 16));
    quant_ctx c = {kind, x, a};
    gk_parallel(quantize_task, &c, T, 4, T >= 16 ? threads : 1);
    if (a->tiles) {
        uintptr_t end = (uintptr_t)(a->qs + T * cols);
        a->tq = (uint8_t *)((end + 63) & ~(uintptr_t)63);
        a->td = (float *)(a->tq + a->tiles * nd * 32 * TILE);
        tile_ctx tc = {a, nd};
        gk_parallel(tile_task, &tc, a->tiles, 1, a->tiles >= 4 ? threads : 1);
    }
    return mem;
}

/* ---- Q4_K / Q5_K scale packing -------------------------------------------------- */

static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* ---- dequantization (get_rows): the same float operations as gguf-py ------------- */

static void deq_f32(const uint8_t *w, int64_t n, float *y) { memcpy(y, w, (size_t)n * 4); }

static void deq_f16(const uint8_t *w, int64_t n, float *y) {
    for (int64_t i = 0; i < n; i++)
        y[i] = half_at(w + 2 * i);
}

static void deq_q4_0(const uint8_t *w, int64_t nb, float *y) {
    for (int64_t i = 0; i < nb; i++, w += 18, y += QK) {
        const float d = half_at(w);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)((w[2 + j] & 0xF) - 8);
            y[j + 16] = d * (float)((w[2 + j] >> 4) - 8);
        }
    }
}

static void deq_q4_1(const uint8_t *w, int64_t nb, float *y) {
    for (int64_t i = 0; i < nb; i++, w += 20, y += QK) {
        const float d = half_at(w), m = half_at(w + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)(w[4 + j] & 0xF) + m;
            y[j + 16] = d * (float)(w[4 + j] >> 4) + m;
        }
    }
}

static void deq_q5_0(const uint8_t *w, int64_t nb, float *y) {
    for (int64_t i = 0; i < nb; i++, w += 22, y += QK) {
        const float d = half_at(w);
        uint32_t qh;
        memcpy(&qh, w + 2, 4);
        for (int j = 0; j < 16; j++) {
            int lo = (w[6 + j] & 0xF) | (((qh >> j) & 1) << 4);
            int hi = (w[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            y[j] = d * (float)(lo - 16);
            y[j + 16] = d * (float)(hi - 16);
        }
    }
}

static void deq_q8_0(const uint8_t *w, int64_t nb, float *y) {
    for (int64_t i = 0; i < nb; i++, w += 34, y += QK) {
        const float d = half_at(w);
        for (int j = 0; j < QK; j++)
            y[j] = (float)(int8_t)w[2 + j] * d;
    }
}

static void deq_q4_K(const uint8_t *w, int64_t nb, float *y) {
    for (int64_t i = 0; i < nb; i++, w += 144, y += QKK) {
        const float d = half_at(w), dmin = half_at(w + 2);
        const uint8_t *qs = w + 16;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(j, w + 4, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = qs + 32 * (j / 2);
            const int shift = (j & 1) * 4;
            for (int l = 0; l < 32; l++)
                y[32 * j + l] = dl * (float)((q[l] >> shift) & 0xF) - ml;
        }
    }
}

static void deq_q5_K(const uint8_t *w, int64_t nb, float *y) {
    for (int64_t i = 0; i < nb; i++, w += 176, y += QKK) {
        const float d = half_at(w), dmin = half_at(w + 2);
        const uint8_t *qh = w + 16, *qs = w + 48;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(j, w + 4, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = qs + 32 * (j / 2);
            const int shift = (j & 1) * 4;
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4);
                y[32 * j + l] = dl * (float)v - ml;
            }
        }
    }
}

/* Q6_K element e of a block: its 6-bit value (0..63) and its scale index. */
static inline int q6_value(const uint8_t *w, int e) {
    const int half = e / 128, r = e % 128, k = r / 32, l = r % 32;
    const uint8_t *ql = w + 64 * half, *qh = w + 128 + 32 * half;
    int low = k & 1 ? ql[l + 32] : ql[l];
    low = k >= 2 ? low >> 4 : low & 0xF;
    return low | (((qh[l] >> (2 * k)) & 3) << 4);
}

static void deq_q6_K(const uint8_t *w, int64_t nb, float *y) {
    for (int64_t i = 0; i < nb; i++, w += 210, y += QKK) {
        const float d = half_at(w + 208);
        const int8_t *sc = (const int8_t *)(w + 192);
        for (int e = 0; e < QKK; e++)
            y[e] = (d * (float)sc[e / 16]) * (float)(q6_value(w, e) - 32);
    }
}

/* ---- dot products ------------------------------------------------------------------
 * dot(w_row, nb, act, t, nt, res): res[u] = row . activations[t + u], u < nt <= 4. */

typedef void (*dot_fn)(const uint8_t *w, int64_t nb, const act_t *a, int64_t t, int nt,
                       float *res);
/* tile(w_row, nb, act, k0, nk, res): res[j][l] = row . token TILE * (k0 + j) + l,
 * j < nk <= TILE_MAX;
 * the same numbers as dot's. */
typedef void (*tile_fn)(const uint8_t *w, int64_t nb, const act_t *a, int64_t k0, int nk,
                        float res[][TILE]);


#if GK_AVX2

static inline float hsum8(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline float hsum4(__m128 v) {
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
}

/* 16 bytes of packed nibbles to 32 bytes: the low nibbles, then the high ones. */
static inline __m256i nibbles32(const uint8_t *p) {
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* 32 bits to 32 bytes: 0xFF where the bit is set. */
static inline __m256i bits32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7FBFDFEFF7FBFDFE));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

/* VNNI (AVX512-VL or AVX-VNNI CPUs) fuses a multiply-add of bytes or of 16-bit
 * pairs with the int32 accumulation. The integers are the same either way (no
 * product here can saturate maddubs), so results do not depend on the path. */
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define GK_VNNI 1
#define DPBUSD(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#define DPWSSD(acc, a, b) _mm256_dpwssd_epi32(acc, a, b)
#elif defined(__AVXVNNI__)
#define GK_VNNI 1
#define DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#define DPWSSD(acc, a, b) _mm256_dpwssd_avx_epi32(acc, a, b)
#else
#define GK_VNNI 0
#define DPBUSD(acc, u, s)                                                                  \
    _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)))
#define DPWSSD(acc, a, b) _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
#endif

/* Signed bytes times signed bytes, summed in 8 lanes of floats. */
static inline __m256 sum_i8(__m256i x, __m256i y) {
    const __m256i z = _mm256_setzero_si256();
    return _mm256_cvtepi32_ps(DPBUSD(z, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)));
}

/* Unsigned bytes times signed bytes, summed in 8 lanes of floats. */
static inline __m256 sum_u8(__m256i ux, __m256i y) {
    return _mm256_cvtepi32_ps(DPBUSD(_mm256_setzero_si256(), ux, y));
}

#define DOT_NT(name)                                                                       \
    static void name(const uint8_t *w, int64_t nb, const act_t *a, int64_t t, int nt,      \
                     float *r) {                                                           \
        switch (nt) {                                                                      \
        case 4: name##_n(w, nb, a, t, 4, r); break;                                        \
        case 3: name##_n(w, nb, a, t, 3, r); break;                                        \
        case 2: name##_n(w, nb, a, t, 2, r); break;                                        \
        default: name##_n(w, nb, a, t, 1, r); break;                                       \
        }                                                                                  \
    }

#define ACT_Q8(blk)                                                                        \
    const int8_t *qy[NT_MAX];                                                              \
    const float *dy[NT_MAX];                                                               \
    __m256 acc[NT_MAX];                                                                    \
    for (int u = 0; u < nt; u++) {                                                         \
        qy[u] = a->qs + (t + u) * a->cols;                                                 \
        dy[u] = a->d + (t + u) * (a->cols / (blk));                                        \
        acc[u] = _mm256_setzero_ps();                                                      \
    }

#define Y32(u, off) _mm256_loadu_si256((const __m256i *)(qy[u] + (off)))

static GK_INLINE void dot_q4_0_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                                 int nt, float *r) {
    ACT_Q8(QK)
    for (int64_t i = 0; i < nb; i++, w += 18) {
        const float dw = half_at(w);
        const __m256i qx = _mm256_sub_epi8(nibbles32(w + 2), _mm256_set1_epi8(8));
        for (int u = 0; u < nt; u++)
            acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy[u][i]), sum_i8(qx, Y32(u, i * QK)),
                                     acc[u]);
    }
    for (int u = 0; u < nt; u++)
        r[u] = hsum8(acc[u]);
}
DOT_NT(dot_q4_0)

static GK_INLINE void dot_q4_1_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                                 int nt, float *r) {
    ACT_Q8(QK)
    const float *sy[NT_MAX];
    float summs[NT_MAX];
    for (int u = 0; u < nt; u++) {
        sy[u] = a->s + (t + u) * (a->cols / QK);
        summs[u] = 0.0f;
    }
    for (int64_t i = 0; i < nb; i++, w += 20) {
        const float dw = half_at(w), mw = half_at(w + 2);
        const __m256i qx = nibbles32(w + 4);
        for (int u = 0; u < nt; u++) {
            summs[u] += mw * sy[u][i];
            acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy[u][i]), sum_u8(qx, Y32(u, i * QK)),
                                     acc[u]);
        }
    }
    for (int u = 0; u < nt; u++)
        r[u] = hsum8(acc[u]) + summs[u];
}
DOT_NT(dot_q4_1)

/* Q5_0 and Q8_0 (``five``: Q5_0): one block of 32 weights as signed bytes. */
static inline __m256i q32_signed(const uint8_t *b, const int five) {
    if (!five)
        return _mm256_loadu_si256((const __m256i *)(b + 2));
    const __m256i hi = _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xF0));
    return _mm256_or_si256(nibbles32(b + 6), hi); /* q - 16 as int8 */
}

static inline int hsum_i32(__m256i v) {
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
    return _mm_cvtsi128_si32(x);
}

static GK_INLINE void dot_q5_0_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                                 int nt, float *r) {
    ACT_Q8(QK)
    for (int64_t i = 0; i < nb; i++, w += 22) {
        const float dw = half_at(w);
        const __m256i hi = _mm256_andnot_si256(bits32(w + 2), _mm256_set1_epi8((char)0xF0));
        const __m256i qx = _mm256_or_si256(nibbles32(w + 6), hi); /* q - 16 as int8 */
        for (int u = 0; u < nt; u++)
            acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy[u][i]), sum_i8(qx, Y32(u, i * QK)),
                                     acc[u]);
    }
    for (int u = 0; u < nt; u++)
        r[u] = hsum8(acc[u]);
}
DOT_NT(dot_q5_0)

static GK_INLINE void dot_q8_0_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                                 int nt, float *r) {
    ACT_Q8(QK)
    for (int64_t i = 0; i < nb; i++, w += 34) {
        const float dw = half_at(w);
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(w + 2));
        for (int u = 0; u < nt; u++)
            acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dy[u][i]), sum_i8(qx, Y32(u, i * QK)),
                                     acc[u]);
    }
    for (int u = 0; u < nt; u++)
        r[u] = hsum8(acc[u]);
}
DOT_NT(dot_q8_0)

#if GK_VNNI
/* Q5_0 and Q8_0 against tiles of TILE tokens (the prefill), with the numbers of
 * dot_q5_0_n and dot_q8_0_n. Those keep eight float lanes per token, lane g
 * adding dw * dy times the exact sum over elements 4g..4g+3 of each block, and
 * end with hsum8. Here the tokens lie in the lanes and there is one vector per g:
 * a block is eight byte multiply-adds of weights 4g..4g+3 broadcast against
 * those four bytes of each token. The activations come as y + 128 (unsigned;
 * act_t.tq), so the sum for g starts at -128 * (w[4g] + ... + w[4g+3]). */
#if TILE == 16 /* the tile in a 512-bit vector */
#define VF __m512
#define VI __m512i
#define V_ZERO_F _mm512_setzero_ps()
#define V_SET1_I _mm512_set1_epi32
#define V_SET1_F _mm512_set1_ps
#define V_LOAD_I(p) _mm512_load_si512((const void *)(p))
#define V_LOAD_F _mm512_load_ps
#define V_STORE_F _mm512_storeu_ps
#define V_DPBUSD _mm512_dpbusd_epi32
#define V_CVT _mm512_cvtepi32_ps
#define V_MUL _mm512_mul_ps
#define V_ADD _mm512_add_ps
#define V_FMADD _mm512_fmadd_ps
#else
#define VF __m256
#define VI __m256i
#define V_ZERO_F _mm256_setzero_ps()
#define V_SET1_I _mm256_set1_epi32
#define V_SET1_F _mm256_set1_ps
#define V_LOAD_I(p) _mm256_load_si256((const __m256i *)(p))
#define V_LOAD_F _mm256_load_ps
#define V_STORE_F _mm256_storeu_ps
#define V_DPBUSD DPBUSD
#define V_CVT _mm256_cvtepi32_ps
#define V_MUL _mm256_mul_ps
#define V_ADD _mm256_add_ps
#define V_FMADD _mm256_fmadd_ps
#endif

static GK_INLINE void tile_q32_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t k0,
                                 int nk, float res[][TILE], const int five) {
    VF acc[TILE_MAX][8];
    for (int j = 0; j < nk; j++)
        for (int g = 0; g < 8; g++)
            acc[j][g] = V_ZERO_F;
    const int64_t bytes = five ? 22 : 34;
    const __m256i ones8 = _mm256_set1_epi8(1), m128 = _mm256_set1_epi16(-128);
    int32_t wq[8] __attribute__((aligned(32))), start[8] __attribute__((aligned(32)));
    for (int64_t i = 0; i < nb; i++, w += bytes) {
        const __m256i q = q32_signed(w, five);
        _mm256_store_si256((__m256i *)wq, q);
        _mm256_store_si256((__m256i *)start,
                           _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), m128));
        const VF dw = V_SET1_F(half_at(w));
        for (int j = 0; j < nk; j++) {
            const int64_t at = (k0 + j) * nb + i;
            const uint8_t *ty = a->tq + at * 32 * TILE;
            const VF scale = V_MUL(dw, V_LOAD_F(a->td + at * TILE));
            for (int g = 0; g < 8; g++) {
                const VI sum = V_DPBUSD(V_SET1_I(start[g]), V_LOAD_I(ty + 4 * TILE * g),
                                        V_SET1_I(wq[g]));
                acc[j][g] = V_FMADD(scale, V_CVT(sum), acc[j][g]);
            }
        }
    }
    for (int j = 0; j < nk; j++) { /* hsum8's order: ((0+4)+(2+6)) + ((1+5)+(3+7)) */
        const VF e = V_ADD(V_ADD(acc[j][0], acc[j][4]), V_ADD(acc[j][2], acc[j][6]));
        const VF o = V_ADD(V_ADD(acc[j][1], acc[j][5]), V_ADD(acc[j][3], acc[j][7]));
        V_STORE_F(res[j], V_ADD(e, o));
    }
}

#define TILE_NK(name, five)                                                                \
    static void name(const uint8_t *w, int64_t nb, const act_t *a, int64_t k0, int nk,    \
                     float res[][TILE]) {                                                  \
        if (nk == 2)                                                                       \
            tile_q32_n(w, nb, a, k0, 2, res, five);                                        \
        else                                                                               \
            tile_q32_n(w, nb, a, k0, 1, res, five);                                        \
    }
TILE_NK(tile_q5_0, 1)
TILE_NK(tile_q8_0, 0)
#define TILE_Q5_0 tile_q5_0
#define TILE_Q8_0 tile_q8_0
#endif

/* Q4_K/Q5_K: the 8 six-bit scales and mins of a block as 16-bit lanes (scales in
 * the low half, mins in the high half), unpacked as llama.cpp's utmp trick does. */
static inline __m256i k4_scales_mins(const uint8_t *packed) {
    uint32_t u[4];
    memcpy(u, packed, 12);
    u[3] = ((u[2] >> 4) & 0x0F0F0F0Fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    const uint32_t aux = u[1] & 0x3F3F3F3Fu;
    u[1] = (u[2] & 0x0F0F0F0Fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    u[2] = aux;
    u[0] &= 0x3F3F3F3Fu;
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)u));
}

/* The part of a K-quant dot product that the mins contribute, per token:
 * mins . (sums of the activations over each 32-element sub-block). */
static inline __m128 k4_mins(__m128i mins, const int16_t *bsums) {
    const __m256i s = _mm256_loadu_si256((const __m256i *)bsums);
    const __m128i pairs =
        _mm_hadd_epi16(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return _mm_cvtepi32_ps(_mm_madd_epi16(mins, pairs));
}

#define ACT_Q8K                                                                            \
    ACT_Q8(QKK)                                                                            \
    const int16_t *by[NT_MAX];                                                             \
    __m128 accm[NT_MAX];                                                                   \
    __m256i sumi[NT_MAX];                                                                  \
    for (int u = 0; u < nt; u++) {                                                         \
        by[u] = a->bsums + (t + u) * (a->cols / 16);                                       \
        accm[u] = _mm_setzero_ps();                                                        \
    }

/* Close a K-quant block with mins: acc += d*dy*sumi, accm -= dmin*dy*(mins . bsums). */
#define K_BLOCK_END(dw, dmin, mins)                                                        \
    for (int u = 0; u < nt; u++) {                                                         \
        const float yd = dy[u][i];                                                         \
        accm[u] = _mm_fmadd_ps(_mm_set1_ps(-yd * (dmin)), k4_mins(mins, by[u] + i * 16),   \
                               accm[u]);                                                   \
        acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(yd * (dw)), _mm256_cvtepi32_ps(sumi[u]),   \
                                 acc[u]);                                                  \
    }

/* Q4_K and Q5_K (``five``: the fifth bits come from the block's 32 high-bit
 * bytes). Two chains of integer sums per block (low and high nibbles), so that
 * the multiply-adds of one block overlap instead of waiting on each other;
 * exact integers, so the result does not depend on it. */
static GK_INLINE void dot_k4_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                               int nt, float *r, const int five) {
    ACT_Q8K
    const __m256i m4 = _mm256_set1_epi8(0x0F), m1 = _mm256_set1_epi8(1);
    const int64_t stride = five ? 176 : 144, qs = five ? 48 : 16;
    for (int64_t i = 0; i < nb; i++, w += stride) {
        const float dw = half_at(w), dmin = half_at(w + 2);
        const __m256i sm = k4_scales_mins(w + 4);
        const __m128i sc = _mm256_castsi256_si128(sm);
        const __m256i scales = _mm256_set_m128i(sc, sc);
        __m256i hb = five ? _mm256_loadu_si256((const __m256i *)(w + 16)) : _mm256_setzero_si256();
        __m256i sumh[NT_MAX];
        for (int u = 0; u < nt; u++)
            sumi[u] = sumh[u] = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(w + qs + 32 * j));
            __m256i lo = _mm256_and_si256(bits, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, m1), 4));
                hi = _mm256_or_si256(
                    hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), m1), 4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            const __m256i sl = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)((4 * j + 1) << 8 | 4 * j)));
            const __m256i sh = _mm256_shuffle_epi8(scales, _mm256_set1_epi16((short)((4 * j + 3) << 8 | (4 * j + 2))));
            for (int u = 0; u < nt; u++) {
                const int64_t o = i * QKK + 64 * j;
                sumi[u] = DPWSSD(sumi[u], sl, _mm256_maddubs_epi16(lo, Y32(u, o)));
                sumh[u] = DPWSSD(sumh[u], sh, _mm256_maddubs_epi16(hi, Y32(u, o + 32)));
            }
        }
        for (int u = 0; u < nt; u++)
            sumi[u] = _mm256_add_epi32(sumi[u], sumh[u]);
        K_BLOCK_END(dw, dmin, _mm256_extracti128_si256(sm, 1))
    }
    for (int u = 0; u < nt; u++)
        r[u] = hsum8(acc[u]) + hsum4(accm[u]);
}

static GK_INLINE void dot_q4_K_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                                 int nt, float *r) {
    dot_k4_n(w, nb, a, t, nt, r, 0);
}
DOT_NT(dot_q4_K)

static GK_INLINE void dot_q5_K_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                                 int nt, float *r) {
    dot_k4_n(w, nb, a, t, nt, r, 1);
}
DOT_NT(dot_q5_K)

/* Q6_K: sum over 16-element groups g of sc_g * (q - 32) . y, with the -32 taken out
 * through the activations' own sums of 16 (bsums): one madd per block and token
 * instead of a maddubs per 32 elements. Exact integers, so the order is free. */
static GK_INLINE void dot_q6_K_n(const uint8_t *w, int64_t nb, const act_t *a, int64_t t,
                                 int nt, float *r) {
    ACT_Q8(QKK)
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
    const int16_t *by[NT_MAX];
    __m256i sumi[NT_MAX], sumo[NT_MAX]; /* two chains of sums (even and odd k) */
    for (int u = 0; u < nt; u++)
        by[u] = a->bsums + (t + u) * (a->cols / 16);
    for (int64_t i = 0; i < nb; i++, w += 210) {
        const float dw = half_at(w + 208);
        const __m128i scales = _mm_loadu_si128((const __m128i *)(w + 192));
        const __m256i sc16 = _mm256_cvtepi8_epi16(scales);
        for (int u = 0; u < nt; u++) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *)(by[u] + i * 16));
            sumi[u] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
            sumo[u] = _mm256_setzero_si256();
        }
        for (int j = 0; j < 2; j++) {
            const __m256i bh = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * j));
            for (int k = 0; k < 4; k++) {
                const __m256i lo = _mm256_loadu_si256((const __m256i *)(w + 64 * j + 32 * (k & 1)));
                const __m256i nib = k < 2 ? lo : _mm256_srli_epi16(lo, 4);
                const __m256i q = _mm256_or_si256(
                    _mm256_and_si256(nib, m4),
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2 * k), m3), 4));
                const int s = 8 * j + 2 * k; /* its groups of 16: s and s + 1 */
                const __m128i shuf = _mm_set_epi64x((long long)(0x0101010101010101ull * (uint64_t)(s + 1)),
                                                    (long long)(0x0101010101010101ull * (uint64_t)s));
                const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, shuf));
                for (int u = 0; u < nt; u++) {
                    const __m256i y = Y32(u, i * QKK + 128 * j + 32 * k);
                    if (k & 1)
                        sumo[u] = DPWSSD(sumo[u], sc, _mm256_maddubs_epi16(q, y));
                    else
                        sumi[u] = DPWSSD(sumi[u], sc, _mm256_maddubs_epi16(q, y));
                }
            }
        }
        for (int u = 0; u < nt; u++)
            sumi[u] = _mm256_add_epi32(sumi[u], sumo[u]);
        for (int u = 0; u < nt; u++)
            acc[u] = _mm256_fmadd_ps(_mm256_set1_ps(dy[u][i] * dw), _mm256_cvtepi32_ps(sumi[u]),
                                     acc[u]);
    }
    for (int u = 0; u < nt; u++)
        r[u] = hsum8(acc[u]);
}
DOT_NT(dot_q6_K)

#define DOT_FLOAT(name, esize, LOAD8, LOAD1)                                              \
    static GK_INLINE void name##_n(const uint8_t *w, int64_t n, const act_t *a, int64_t t, \
                                   int nt, float *r) {                                     \
        const float *x[NT_MAX];                                                            \
        __m256 acc[NT_MAX];                                                                \
        for (int u = 0; u < nt; u++) {                                                     \
            x[u] = a->xf + (t + u) * a->cols;                                              \
            acc[u] = _mm256_setzero_ps();                                                  \
        }                                                                                  \
        int64_t i = 0;                                                                     \
        for (; i + 8 <= n; i += 8) {                                                       \
            const __m256 wv = LOAD8(w + (esize) * i);                                      \
            for (int u = 0; u < nt; u++)                                                   \
                acc[u] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[u] + i), acc[u]);           \
        }                                                                                  \
        for (int u = 0; u < nt; u++) {                                                     \
            float s = hsum8(acc[u]);                                                       \
            for (int64_t k = i; k < n; k++)                                                \
                s += LOAD1(w + (esize) * k) * x[u][k];                                     \
            r[u] = s;                                                                      \
        }                                                                                  \
    }                                                                                      \
    DOT_NT(name)

static inline __m256 load8_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }
static inline __m256 load8_f16(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
static inline float load1_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}
DOT_FLOAT(dot_f32, 4, load8_f32, load1_f32)
DOT_FLOAT(dot_f16, 2, load8_f16, half_at)

#else /* the portable path: exact integer sums per block, one token at a time */

#define DOT_LOOP(name)                                                                     \
    static void name(const uint8_t *w, int64_t nb, const act_t *a, int64_t t, int nt,      \
                     float *r) {                                                           \
        for (int u = 0; u < nt; u++)                                                       \
            r[u] = name##_1(w, nb, a, t + u);                                              \
    }

static float dot_q4_0_1(const uint8_t *w, int64_t nb, const act_t *a, int64_t t) {
    const int8_t *y = a->qs + t * a->cols;
    const float *d = a->d + t * (a->cols / QK);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++, w += 18, y += QK) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += ((w[2 + j] & 0xF) - 8) * y[j] + ((w[2 + j] >> 4) - 8) * y[j + 16];
        sum += (half_at(w) * d[i]) * (float)s;
    }
    return sum;
}
DOT_LOOP(dot_q4_0)

static float dot_q4_1_1(const uint8_t *w, int64_t nb, const act_t *a, int64_t t) {
    const int8_t *y = a->qs + t * a->cols;
    const float *d = a->d + t * (a->cols / QK), *sy = a->s + t * (a->cols / QK);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++, w += 20, y += QK) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += (w[4 + j] & 0xF) * y[j] + (w[4 + j] >> 4) * y[j + 16];
        sum += (half_at(w) * d[i]) * (float)s + half_at(w + 2) * sy[i];
    }
    return sum;
}
DOT_LOOP(dot_q4_1)

static float dot_q5_0_1(const uint8_t *w, int64_t nb, const act_t *a, int64_t t) {
    const int8_t *y = a->qs + t * a->cols;
    const float *d = a->d + t * (a->cols / QK);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++, w += 22, y += QK) {
        uint32_t qh;
        memcpy(&qh, w + 2, 4);
        int s = 0;
        for (int j = 0; j < 16; j++) {
            int lo = (w[6 + j] & 0xF) | (((qh >> j) & 1) << 4);
            int hi = (w[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
            s += (lo - 16) * y[j] + (hi - 16) * y[j + 16];
        }
        sum += (half_at(w) * d[i]) * (float)s;
    }
    return sum;
}
DOT_LOOP(dot_q5_0)

static float dot_q8_0_1(const uint8_t *w, int64_t nb, const act_t *a, int64_t t) {
    const int8_t *y = a->qs + t * a->cols;
    const float *d = a->d + t * (a->cols / QK);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++, w += 34, y += QK) {
        int s = 0;
        for (int j = 0; j < QK; j++)
            s += (int8_t)w[2 + j] * y[j];
        sum += (half_at(w) * d[i]) * (float)s;
    }
    return sum;
}
DOT_LOOP(dot_q8_0)

/* Q4_K and Q5_K: `qh` NULL for Q4_K. */
static float dot_k4(const uint8_t *w, int64_t nb, const act_t *a, int64_t t, int five) {
    const int8_t *y = a->qs + t * a->cols;
    const float *d = a->d + t * (a->cols / QKK);
    const int16_t *bs = a->bsums + t * (a->cols / 16);
    const int size = five ? 176 : 144;
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++, w += size, y += QKK, bs += 16) {
        const uint8_t *qh = w + 16, *qs = w + (five ? 48 : 16);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(j, w + 4, &sc, &m);
            const uint8_t *q = qs + 32 * (j / 2);
            const int shift = (j & 1) * 4;
            int s = 0;
            for (int l = 0; l < 32; l++) {
                int v = (q[l] >> shift) & 0xF;
                if (five)
                    v |= ((qh[l] >> j) & 1) << 4;
                s += v * y[32 * j + l];
            }
            sumi += sc * s;
            summ += m * (bs[2 * j] + bs[2 * j + 1]);
        }
        sum += (d[i] * half_at(w)) * (float)sumi;
        sum -= (d[i] * half_at(w + 2)) * (float)summ;
    }
    return sum;
}
static float dot_q4_K_1(const uint8_t *w, int64_t nb, const act_t *a, int64_t t) {
    return dot_k4(w, nb, a, t, 0);
}
static float dot_q5_K_1(const uint8_t *w, int64_t nb, const act_t *a, int64_t t) {
    return dot_k4(w, nb, a, t, 1);
}
DOT_LOOP(dot_q4_K)
DOT_LOOP(dot_q5_K)

static float dot_q6_K_1(const uint8_t *w, int64_t nb, const act_t *a, int64_t t) {
    const int8_t *y = a->qs + t * a->cols;
    const float *d = a->d + t * (a->cols / QKK);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++, w += 210, y += QKK) {
        const int8_t *sc = (const int8_t *)(w + 192);
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += (q6_value(w, 16 * g + l) - 32) * y[16 * g + l];
            sumi += sc[g] * s;
        }
        sum += (d[i] * half_at(w + 208)) * (float)sumi;
    }
    return sum;
}
DOT_LOOP(dot_q6_K)

static float dot_f32_1(const uint8_t *w, int64_t n, const act_t *a, int64_t t) {
    const float *x = a->xf + t * a->cols;
    float s = 0.0f;
    for (int64_t k = 0; k < n; k++) {
        float v;
        memcpy(&v, w + 4 * k, 4);
        s += v * x[k];
    }
    return s;
}
static float dot_f16_1(const uint8_t *w, int64_t n, const act_t *a, int64_t t) {
    const float *x = a->xf + t * a->cols;
    float s = 0.0f;
    for (int64_t k = 0; k < n; k++)
        s += half_at(w + 2 * k) * x[k];
    return s;
}
DOT_LOOP(dot_f32)
DOT_LOOP(dot_f16)

#endif

#ifndef TILE_Q5_0
#define TILE_Q5_0 NULL
#define TILE_Q8_0 NULL
#endif


/* Tokens per tile of the prefill's tile kernels (Q5_0, Q8_0); 0 without them. */
int gk_tile(void) {
#if GK_AVX2 && GK_VNNI
    return TILE;
#else
    return 0;
#endif
}

/* 0: plain C, 1: AVX2, 2: AVX2 with VNNI. */
int gk_simd(void) {
#if GK_AVX2
    return 1 + GK_VNNI;
#else
    return 0;
#endif
}

/* ---- the table of block types ------------------------------------------------------ */

typedef struct {
    int qtype; /* gguf.GGMLQuantizationType */
    int block; /* elements per block */
    int bytes; /* bytes per block */
    int act;   /* the activation format it pairs with */
    dot_fn dot;
    void (*deq)(const uint8_t *w, int64_t nb, float *y);
    tile_fn tile; /* NULL: no tile kernel (dot alone) */
} qtraits;

static const qtraits TYPES[] = {
    {0, 1, 4, ACT_F32, dot_f32, deq_f32, NULL},
    {1, 1, 2, ACT_F32, dot_f16, deq_f16, NULL},
    {2, 32, 18, ACT_Q8_0, dot_q4_0, deq_q4_0, NULL},
    {3, 32, 20, ACT_Q8_1, dot_q4_1, deq_q4_1, NULL},
    {6, 32, 22, ACT_Q8_0, dot_q5_0, deq_q5_0, TILE_Q5_0},
    {8, 32, 34, ACT_Q8_0, dot_q8_0, deq_q8_0, TILE_Q8_0},
    {12, 256, 144, ACT_Q8_K, dot_q4_K, deq_q4_K, NULL},
    {13, 256, 176, ACT_Q8_K, dot_q5_K, deq_q5_K, NULL},
    {14, 256, 210, ACT_Q8_K, dot_q6_K, deq_q6_K, NULL},
};

static const qtraits *find_type(int qtype) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].qtype == qtype)
            return &TYPES[i];
    return NULL;
}

/* Block size and bytes of a supported type; 0 when it is not supported. */
int gk_type_info(int qtype, int *block, int *bytes) {
    const qtraits *tr = find_type(qtype);
    if (!tr)
        return 0;
    *block = tr->block;
    *bytes = tr->bytes;
    return 1;
}

/* ---- matmul -------------------------------------------------------------------------- */

typedef struct {
    const qtraits *tr;
    const uint8_t *w;
    int64_t rows, nb, row_bytes, T;
    act_t act;
    float *out;
    const float *bias;
    int accumulate;
} mm_ctx;

static inline void mm_put(const mm_ctx *c, int64_t t, int64_t r, float y) {
    if (c->bias)
        y = y + c->bias[r];
    float *o = c->out + t * c->rows + r;
    *o = c->accumulate ? *o + y : y;
}

/* Rows [r0, r1) for every token: the tiles of TILE tokens by the tile kernel,
 * TILE_MAX tiles at a time, then the rest four tokens at a time; the rows of the
 * chunk stay in cache while the token groups pass over them. */
static void mm_task(void *vc, int64_t r0, int64_t r1) {
    const mm_ctx *c = (const mm_ctx *)vc;
    for (int64_t k = 0; k < c->act.tiles; k += TILE_MAX) {
        const int nk = c->act.tiles - k < TILE_MAX ? (int)(c->act.tiles - k) : TILE_MAX;
        for (int64_t r = r0; r < r1; r++) {
            float v[TILE_MAX][TILE];
            c->tr->tile(c->w + r * c->row_bytes, c->nb, &c->act, k, nk, v);
            for (int j = 0; j < nk; j++)
                for (int l = 0; l < TILE && (k + j) * TILE + l < c->T; l++)
                    mm_put(c, (k + j) * TILE + l, r, v[j][l]);
        }
    }
    const int64_t tiled = c->act.tiles * TILE;
    for (int64_t t = tiled < c->T ? tiled : c->T; t < c->T; t += NT_MAX) {
        const int nt = c->T - t < NT_MAX ? (int)(c->T - t) : NT_MAX;
        for (int64_t r = r0; r < r1; r++) {
            float v[NT_MAX];
            c->tr->dot(c->w + r * c->row_bytes, c->nb, &c->act, t, nt, v);
            for (int u = 0; u < nt; u++)
                mm_put(c, t + u, r, v[u]);
        }
    }
}

/* out [T, rows] (+)= x [T, cols] @ W^T (+ bias). 0, or -1 for an unknown type,
 * -2 when cols is not a whole number of blocks, -3 out of memory. */
int gk_matmul(int qtype, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
              int64_t T, float *out, const float *bias, int accumulate, int threads) {
    const qtraits *tr = find_type(qtype);
    if (!tr)
        return -1;
    if (cols <= 0 || cols % tr->block || (tr->act == ACT_Q8_K && cols % QKK) ||
        (tr->act != ACT_F32 && cols % QK))
        return -2;
    mm_ctx c = {tr, w, rows, cols / tr->block, cols / tr->block * tr->bytes, T,
                {0}, out, bias, accumulate};
    void *mem = make_act(tr->act, x, T, cols, &c.act, threads, tr->tile != NULL);
    if (tr->act != ACT_F32 && !mem)
        return -3;
    if (threads < 1)
        threads = 1;
    int64_t chunk = rows / ((int64_t)threads * 8);
    chunk = chunk < 8 ? 8 : chunk > 64 ? 64 : (chunk + 7) / 8 * 8; /* whole groups of 8 rows */
    gk_parallel(mm_task, &c, rows, chunk, threads);
    free(mem);
    return 0;
}

/* Rows ids[0..n) of W, dequantized into out [n, cols]. -1 unknown type, -2 bad id. */
int gk_get_rows(int qtype, const uint8_t *w, int64_t rows, int64_t cols, const int32_t *ids,
                int64_t n, float *out) {
    const qtraits *tr = find_type(qtype);
    if (!tr)
        return -1;
    const int64_t nb = cols / tr->block, row_bytes = nb * tr->bytes;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= rows)
            return -2;
        tr->deq(w + ids[i] * row_bytes, nb, out + i * cols);
    }
    return 0;
}

/* The activations a weight type pairs with, for tests: qs [T, cols], d [T, nd],
 * s [T, cols/32] (Q8_1 only), bsums [T, cols/16] (Q8_K only). 0, or as gk_matmul. */
int gk_quantize(int qtype, const float *x, int64_t T, int64_t cols, int8_t *qs, float *d,
                float *s, int16_t *bsums) {
    const qtraits *tr = find_type(qtype);
    if (!tr || tr->act == ACT_F32)
        return -1;
    if (cols % (tr->act == ACT_Q8_K ? QKK : QK))
        return -2;
    act_t a;
    void *mem = make_act(tr->act, x, T, cols, &a, 1, 0);
    if (!mem)
        return -3;
    const int64_t nd = tr->act == ACT_Q8_K ? cols / QKK : cols / QK;
    memcpy(qs, a.qs, (size_t)(T * cols));
    memcpy(d, a.d, sizeof(float) * (size_t)(T * nd));
    if (tr->act == ACT_Q8_1)
        memcpy(s, a.s, sizeof(float) * (size_t)(T * nd));
    if (tr->act == ACT_Q8_K)
        memcpy(bsums, a.bsums, sizeof(int16_t) * (size_t)(T * (cols / 16)));
    free(mem);
    return 0;
}

/* ---- a plain read, for the benchmark's memory-bandwidth yardstick -------------------- */

typedef struct {
    const uint8_t *p;
    int64_t n;
    uint64_t sink;
} read_ctx;

#define READ_CHUNK 65536

static void read_task(void *vc, int64_t b, int64_t e) {
    read_ctx *c = (read_ctx *)vc;
    const int64_t end = e * READ_CHUNK < c->n ? e * READ_CHUNK : c->n;
    uint64_t s = 0;
    int64_t i = b * READ_CHUNK;
#if GK_AVX2
    __m256i acc = _mm256_setzero_si256();
    for (; i + 32 <= end; i += 32)
        acc = _mm256_xor_si256(acc, _mm256_loadu_si256((const __m256i *)(c->p + i)));
    s = (uint64_t)_mm256_extract_epi64(acc, 0) ^ (uint64_t)_mm256_extract_epi64(acc, 3);
#endif
    for (; i < end; i++)
        s += c->p[i];
    __atomic_fetch_xor(&c->sink, s, __ATOMIC_RELAXED);
}

/* Read n bytes once on `threads` threads; returns a checksum (so the reads happen). */
uint64_t gk_read(const uint8_t *p, int64_t n, int threads) {
    read_ctx c = {p, n, 0};
    gk_parallel(read_task, &c, (n + READ_CHUNK - 1) / READ_CHUNK, 4, threads);
    return c.sink;
}
