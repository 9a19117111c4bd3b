/* A persistent pool of worker threads for the GGUF kernels.
 *
 * gk_parallel(fn, ctx, n, chunk, threads) runs fn(ctx, begin, end) over [0, n)
 * in chunks of `chunk` items handed out through an atomic counter. The calling
 * thread works too, and waits only for workers that actually took a chunk: a
 * worker that a busy core keeps from waking up costs nothing, and one that is
 * descheduled mid-chunk delays the call by that chunk only. After a call a
 * worker spins briefly (GK_SPIN pauses, well under a millisecond) watching for
 * the next one, since a decode step makes hundreds of calls a few microseconds
 * apart and a sleeping thread takes tens of microseconds to wake; then it
 * sleeps on a condition variable (no idle cost between replies). The caller
 * likewise spins briefly for the last busy worker before it sleeps.
 *
 * The pool serves one call at a time; a second caller that finds it busy runs
 * its work alone on its own thread. Results never depend on which thread ran a
 * chunk: every kernel computes each output the same way wherever it runs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define GK_MAX_WORKERS 63
/* Pauses a worker (or the caller) spins before sleeping: ~0.1-0.3 ms. */
#define GK_SPIN 4000

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define gk_pause() _mm_pause()
#else
#define gk_pause() ((void)0)
#endif

typedef void (*gk_task)(void *ctx, int64_t begin, int64_t end);

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a new job was posted */
    pthread_cond_t done; /* the last busy worker left a closed job */
    pthread_mutex_t call; /* one caller at a time */
    int workers;
    unsigned gen; /* job generation, bumped per call */
    gk_task fn;
    void *ctx;
    int64_t n, chunk;
    atomic_llong next;
    int want;   /* workers 0..want-1 may join the current job */
    atomic_int busy; /* workers inside the current job (changed under mu) */
    atomic_uint agen; /* a copy of gen, read without the lock while spinning */
    int sleepers;     /* workers waiting on `wake` */
    int closed; /* the caller ran out of chunks: nobody joins any more */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER,
       .call = PTHREAD_MUTEX_INITIALIZER};

typedef struct {
    int id;
    unsigned seen;
} worker_arg;

static worker_arg ARGS[GK_MAX_WORKERS];

static void drain(gk_task fn, void *ctx, int64_t n, int64_t chunk) {
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&P.next, chunk, memory_order_relaxed);
        if (b >= n)
            return;
        fn(ctx, b, b + chunk < n ? b + chunk : n);
    }
}

static void *worker_main(void *arg) {
    const worker_arg *me = (const worker_arg *)arg;
    unsigned seen = me->seen;
    pthread_mutex_lock(&P.mu);
    for (;;) {
        if (P.gen == seen) { /* spin a little outside the lock, then sleep */
            pthread_mutex_unlock(&P.mu);
            for (int i = 0; i < GK_SPIN; i++) {
                if (atomic_load_explicit(&P.agen, memory_order_acquire) != seen)
                    break;
                gk_pause();
            }
            pthread_mutex_lock(&P.mu);
            while (P.gen == seen) {
                P.sleepers++;
                pthread_cond_wait(&P.wake, &P.mu);
                P.sleepers--;
            }
        }
        seen = P.gen;
        if (P.closed || me->id >= P.want)
            continue;
        P.busy++;
        gk_task fn = P.fn;
        void *ctx = P.ctx;
        int64_t n = P.n, chunk = P.chunk;
        pthread_mutex_unlock(&P.mu);
        drain(fn, ctx, n, chunk);
        pthread_mutex_lock(&P.mu);
        if (--P.busy == 0 && P.closed)
            pthread_cond_signal(&P.done);
    }
    return NULL;
}

/* Start workers up to `count` (P.mu held). Returns how many exist. */
static int grow(int count) {
    if (count > GK_MAX_WORKERS)
        count = GK_MAX_WORKERS;
    while (P.workers < count) {
        pthread_t t;
        pthread_attr_t attr;
        worker_arg *a = &ARGS[P.workers];
        a->id = P.workers;
        a->seen = P.gen;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        int rc = pthread_create(&t, &attr, worker_main, a);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        P.workers++;
    }
    return P.workers;
}

static void forget_workers(void) {
    /* In a forked child the workers are gone: start afresh on next use. */
    pthread_mutex_init(&P.mu, NULL);
    pthread_mutex_init(&P.call, NULL);
    pthread_cond_init(&P.wake, NULL);
    pthread_cond_init(&P.done, NULL);
    P.workers = 0;
    P.busy = 0;
    P.sleepers = 0;
}

static pthread_once_t ONCE = PTHREAD_ONCE_INIT;
static void install_atfork(void) { pthread_atfork(NULL, NULL, forget_workers); }

void gk_parallel(gk_task fn, void *ctx, int64_t n, int64_t chunk, int threads) {
    if (n <= 0)
        return;
    if (chunk < 1)
        chunk = 1;
    if (threads <= 1 || n <= chunk || pthread_mutex_trylock(&P.call) != 0) {
        fn(ctx, 0, n);
        return;
    }
    pthread_once(&ONCE, install_atfork);
    pthread_mutex_lock(&P.mu);
    int helpers = grow(threads - 1);
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    P.chunk = chunk;
    atomic_store_explicit(&P.next, 0, memory_order_relaxed);
    P.want = helpers < threads - 1 ? helpers : threads - 1;
    P.busy = 0;
    P.closed = 0;
    P.gen++;
    atomic_store_explicit(&P.agen, P.gen, memory_order_release);
    if (P.sleepers > 0)
        pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    drain(fn, ctx, n, chunk);
    pthread_mutex_lock(&P.mu);
    P.closed = 1;
    if (P.busy > 0) { /* the workers are finishing their last chunks: spin first */
        pthread_mutex_unlock(&P.mu);
        for (int i = 0; i < GK_SPIN && atomic_load_explicit(&P.busy, memory_order_acquire) > 0; i++)
            gk_pause();
        pthread_mutex_lock(&P.mu);
    }
    while (P.busy > 0)
        pthread_cond_wait(&P.done, &P.mu);
    pthread_mutex_unlock(&P.mu);
    pthread_mutex_unlock(&P.call);
}

/* How many workers exist (for tests). */
int gk_pool_workers(void) { return P.workers; }
