/*
 * One pass over each attention matrix: validation, locality, both symmetries, the distance profile and the
 * log-binned distance profile.
 *
 * The pure-PyTorch path in metrics.py needs a dozen passes over the input (row sums, minima, two gathers of
 * mirrored entries, differences, min, max, rescaling, masked sums); here each row is read once while it sits
 * in the L1 cache. The definitions live in metrics.py's docstring; this file only computes raw float64
 * totals per matrix, which metrics.py turns into scores exactly as it does for the PyTorch path.
 *
 * Built by hf_posenc/analysis/kernel.py with the system C compiler and called through ctypes, so it needs no
 * PyTorch headers. Callers pass contiguous [count, size, size] matrices; the matrices are split among threads.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    WANT_LOCALITY = 1,
    WANT_REFERENCE = 2,
    WANT_SCALE_AWARE = 4,
    WANT_DISTANCES = 8,
    WANT_LOG_BINS = 16,
};

/* Per matrix, results hold RESULT_FIXED totals, 2 * max_distance + 1 diagonal sums, then (with WANT_LOG_BINS)
 * 2 * bins_per_side + 1 bin sums: keys at signed distance d = j - i with |d| in [2^(b-1), 2^b - 1] go to bin b
 * (b = 1..bins_per_side, bin 0 is d = 0), left bins (d < 0) before the centre, right bins after it. */
enum { LOCALITY_TOTAL, REFERENCE_TOTAL, ASYMMETRIC_TOTAL, MIRRORED_MASS, RESULT_FIXED };

typedef struct {
    int64_t size;
    int flags;
    int64_t max_distance;
    double row_sum_tolerance;
    double symmetry_tolerance;
    double constant_range;
    int64_t bins_per_side;          /* bins b = 1..bins_per_side reach distance size - 1 */
    const double *locality_weights; /* [2 * size - 1], weight of column j for row i at j - i + size - 1 */
    double *differences;            /* [size] scratch for one row's mirrored differences */
} Settings;

/* AVX2 where the CPU has it (GCC picks the clone at load time), plain x86-64 or the compiler's default
 * elsewhere: one library file stays valid on every machine that shares the cache. AVX2 measured 1.4x faster
 * than SSE2 on a Xeon; 32-byte vectors are where memory bandwidth, not arithmetic, becomes the limit. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WIDEST_VECTORS __attribute__((target_clones("avx2", "default")))
#else
#define WIDEST_VECTORS
#endif
/* Inlined into each clone of run_job, so its loops are compiled for that clone's vector width. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Adds the symmetry totals of row i's `pairs` mirrored pairs (i - t, i + t), t = 1..pairs. */
ALWAYS_INLINE static void mirrored_pairs(const double *row, int64_t i, int64_t pairs, const Settings *s,
                                         int reference, int scale_aware, double *totals) {
    double *differences = s->differences;
    double low = INFINITY, high = -INFINITY, asymmetric = 0.0, mass = 0.0;
    const double tolerance = s->symmetry_tolerance;
#pragma omp simd reduction(min : low) reduction(max : high) reduction(+ : asymmetric, mass)
    for (int64_t t = 1; t <= pairs; t++) {
        const double left = row[i - t], right = row[i + t];
        const double difference = fabs(left - right);
        if (reference) {
            differences[t - 1] = difference;
            low = difference < low ? difference : low;
            high = difference > high ? difference : high;
        }
        if (scale_aware) {
            mass += left + right;
            /* Differences within float noise of the pair's larger entry count as symmetric. */
            asymmetric += difference > tolerance * (left > right ? left : right) ? difference : 0.0;
        }
    }
    totals[ASYMMETRIC_TOTAL] += asymmetric;
    totals[MIRRORED_MASS] += mass;
    const double spread = high - low;
    if (reference && spread >= s->constant_range) {
        /* Same arithmetic as the PyTorch path: (d - low) * (1 / spread), summed. */
        const double inverse_spread = 1.0 / spread;
        double rescaled = 0.0;
#pragma omp simd reduction(+ : rescaled)
        for (int64_t t = 0; t < pairs; t++) rescaled += (differences[t] - low) * inverse_spread;
        totals[REFERENCE_TOTAL] += rescaled;
    }
}

/* Adds row i of a matrix with `length` real tokens to `totals`; returns 0 when the row is not valid
 * attention (non-finite, negative, not summing to 1, or mass on padded keys). */
ALWAYS_INLINE static int measure_row(const double *row, int64_t i, int64_t length, const Settings *s, double *totals) {
    const int64_t size = s->size;
    double row_sum = 0.0, real_mass = 0.0, lowest = 0.0;
    /* A NaN or inf anywhere makes the sum non-finite, so the loop needs no per-entry finiteness test. */
#pragma omp simd reduction(+ : row_sum) reduction(min : lowest)
    for (int64_t j = 0; j < size; j++) {
        row_sum += row[j];
        lowest = row[j] < lowest ? row[j] : lowest;
    }
    if (!isfinite(row_sum) || lowest < 0.0 || fabs(row_sum - 1.0) > s->row_sum_tolerance) return 0;
    if (length < size) {
#pragma omp simd reduction(+ : real_mass)
        for (int64_t j = 0; j < length; j++) real_mass += row[j];
        if (row_sum - real_mass > s->row_sum_tolerance) return 0;
    }

    if (s->flags & WANT_LOCALITY) {
        const double *weights = s->locality_weights + (size - 1 - i);
        double local = 0.0;
#pragma omp simd reduction(+ : local)
        for (int64_t j = 0; j < length; j++) local += row[j] * weights[j];
        totals[LOCALITY_TOTAL] += local;
    }

    const int64_t pairs = i < length - 1 - i ? i : length - 1 - i;
    if (pairs >= 1) {
        /* Constant arguments let the compiler build a loop for each combination without dead work. */
        const int reference = (s->flags & WANT_REFERENCE) != 0, scale_aware = (s->flags & WANT_SCALE_AWARE) != 0;
        if (reference && scale_aware) mirrored_pairs(row, i, pairs, s, 1, 1, totals);
        else if (reference) mirrored_pairs(row, i, pairs, s, 1, 0, totals);
        else if (scale_aware) mirrored_pairs(row, i, pairs, s, 0, 1, totals);
    }

    if (s->flags & WANT_DISTANCES) {
        double *diagonals = totals + RESULT_FIXED + s->max_distance; /* diagonals[d], d = -k..k */
        const int64_t first = -i > -s->max_distance ? -i : -s->max_distance;
        const int64_t last = length - 1 - i < s->max_distance ? length - 1 - i : s->max_distance;
        for (int64_t d = first; d <= last; d++) diagonals[d] += row[i + d];
    }

    if (s->flags & WANT_LOG_BINS) {
        /* bins[b], b = -bins_per_side..bins_per_side. Each bin is a contiguous run of keys on either side, so
         * the row is summed in about 2 log2(T) vectorised stretches with no per-key bin lookup. */
        double *bins = totals + RESULT_FIXED + 2 * s->max_distance + 1 + s->bins_per_side;
        bins[0] += row[i];
        int64_t b = 1;
        for (int64_t low = 1; low < length; low *= 2, b++) {
            const int64_t high = 2 * low - 1;
            const int64_t right_stop = i + high < length - 1 ? i + high : length - 1;
            double right = 0.0, left = 0.0;
#pragma omp simd reduction(+ : right)
            for (int64_t j = i + low; j <= right_stop; j++) right += row[j];
            const int64_t left_start = i - high > 0 ? i - high : 0;
#pragma omp simd reduction(+ : left)
            for (int64_t j = left_start; j <= i - low; j++) left += row[j];
            bins[b] += right;
            bins[-b] += left;
        }
    }
    return 1;
}

typedef struct {
    const void *matrices; /* [count, size, size] float64, or float32 when is_float32 */
    int is_float32;
    int64_t first, stop;  /* the matrices this job measures */
    const int64_t *lengths;
    double *results;
    Settings settings;    /* its `differences` scratch is filled in by run_job */
    int64_t status;       /* -1 all valid, -2 out of memory, else the first invalid matrix */
} Job;

WIDEST_VECTORS static void *run_job(void *argument) {
    Job *job = argument;
    const int64_t size = job->settings.size;
    const int64_t stride = RESULT_FIXED + 2 * job->settings.max_distance + 1 +
                           (job->settings.flags & WANT_LOG_BINS ? 2 * job->settings.bins_per_side + 1 : 0);
    double *buffer = malloc(sizeof(double) * (size_t)(2 * size));
    if (buffer == NULL) {
        job->status = -2;
        return NULL;
    }
    Settings settings = job->settings;
    settings.differences = buffer;
    double *widened = buffer + size;
    const int64_t item_size = job->is_float32 ? sizeof(float) : sizeof(double);
    job->status = -1;
    for (int64_t m = job->first; m < job->stop && job->status == -1; m++) {
        const int64_t length = job->lengths == NULL ? size : job->lengths[m];
        double *totals = job->results + m * stride;
        memset(totals, 0, sizeof(double) * (size_t)stride);
        for (int64_t i = 0; i < length; i++) {
            const int64_t offset = (m * size + i) * size;
            /* Ask for the next row now, so that memory works while this row is measured (about 10% faster;
             * a prefetch past the end of the buffer is harmless). */
            const char *next_row = (const char *)job->matrices + (offset + size) * item_size;
            for (int64_t byte = 0; byte < size * item_size; byte += 64) __builtin_prefetch(next_row + byte);
            const double *row;
            if (job->is_float32) {
                const float *source = (const float *)job->matrices + offset;
                for (int64_t j = 0; j < size; j++) widened[j] = source[j];
                row = widened;
            } else {
                row = (const double *)job->matrices + offset;
            }
            if (!measure_row(row, i, length, &settings, totals)) {
                job->status = m;
                break;
            }
        }
    }
    free(buffer);
    return NULL;
}

/* A pool of worker threads that outlives each call, as PyTorch's own OpenMP pool does. Starting a thread, or
 * waking one that sleeps, costs 50-100 us on a virtual machine, as much as measuring a dozen 128 x 128
 * matrices; so after a call the workers spin for about SPIN_ROUNDS pauses (~0.1 ms) before they sleep, and
 * back-to-back calls (one per layer in summarize, repeated calls in a training loop) find them awake. */
enum { MAX_THREADS = 256, SPIN_ROUNDS = 2000 };

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER; /* one call at a time uses the pool */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static atomic_long generation;  /* bumped once per call: the signal that new jobs are posted */
static atomic_int unfinished;   /* workers that have not yet finished this generation's jobs */
static int workers;             /* worker threads started, numbered 1..workers (0 is the caller) */
static long start_generation[MAX_THREADS];
static Job *posted_jobs;
static int posted_count;
static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

/* A forked child (a DataLoader worker, say) inherits the state but none of the threads: start afresh. */
static void forget_workers_after_fork(void) {
    workers = 0;
    pthread_mutex_init(&call_lock, NULL);
    pthread_mutex_init(&wake_lock, NULL);
    pthread_cond_init(&wake, NULL);
}

static void install_fork_handler(void) { pthread_atfork(NULL, NULL, forget_workers_after_fork); }

static void *worker_loop(void *argument) {
    const int index = (int)(intptr_t)argument;
    long seen = start_generation[index];
    for (;;) {
        long now;
        int rounds = 0;
        while ((now = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
            if (++rounds < SPIN_ROUNDS) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&wake_lock);
            while (atomic_load(&generation) == seen) pthread_cond_wait(&wake, &wake_lock);
            pthread_mutex_unlock(&wake_lock);
        }
        seen = now;
        if (index < posted_count) run_job(&posted_jobs[index]);
        atomic_fetch_sub_explicit(&unfinished, 1, memory_order_release);
    }
    return NULL;
}

/* Runs jobs[0..count-1]: job 0 on the calling thread, the others on pool workers (or here, for any worker
 * that could not be started). */
static void run_jobs(Job *jobs, int count) {
    pthread_once(&fork_handler_once, install_fork_handler);
    pthread_mutex_lock(&call_lock);
    while (workers < count - 1) {
        pthread_t handle;
        start_generation[workers + 1] = atomic_load(&generation);
        if (pthread_create(&handle, NULL, worker_loop, (void *)(intptr_t)(workers + 1)) != 0) break;
        pthread_detach(handle);
        workers++;
    }
    posted_jobs = jobs;
    posted_count = count;
    atomic_store(&unfinished, workers);
    pthread_mutex_lock(&wake_lock);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&wake_lock);
    run_job(&jobs[0]);
    for (int t = workers + 1; t < count; t++) run_job(&jobs[t]);
    while (atomic_load_explicit(&unfinished, memory_order_acquire) > 0) CPU_RELAX();
    pthread_mutex_unlock(&call_lock);
}

/* Measures `count` matrices on up to `threads` threads (the calling one included).
 * results: [count, RESULT_FIXED + 2 * max_distance + 1 (+ 2 * bins_per_side + 1 with WANT_LOG_BINS)] float64
 * totals, where bins_per_side is the number of bits of size - 1.
 * Returns -1 when every matrix is valid, the index of the first invalid matrix otherwise, -2 when out of
 * memory. */
int64_t posenc_attention_stats(const void *matrices, int is_float32, int64_t count, int64_t size,
                               const int64_t *lengths, int flags, int64_t max_distance,
                               double row_sum_tolerance, double symmetry_tolerance, double constant_range,
                               double *results, int threads) {
    double *weights = malloc(sizeof(double) * (size_t)(2 * size - 1));
    if (weights == NULL) return -2;
    for (int64_t c = 0; c < 2 * size - 1; c++) weights[c] = exp2(-fabs((double)(c - (size - 1))));
    int64_t bins_per_side = 0;
    for (int64_t reach = size - 1; reach > 0; reach >>= 1) bins_per_side++;
    const Settings settings = {size, flags, max_distance, row_sum_tolerance, symmetry_tolerance,
                               constant_range, bins_per_side, weights, NULL};
    if (threads > count) threads = (int)count;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads < 1) threads = 1;
    Job jobs[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (Job){matrices, is_float32, count * t / threads, count * (t + 1) / threads,
                        lengths,  results,    settings,           -1};
    }
    if (threads == 1) run_job(&jobs[0]);
    else run_jobs(jobs, threads);
    free(weights);
    int64_t status = -1;
    for (int t = 0; t < threads; t++) {
        if (jobs[t].status == -2) status = -2;
        /* Jobs hold increasing matrix ranges, so the first failing job has the first invalid matrix. */
        if (status == -1 && jobs[t].status >= 0) status = jobs[t].status;
    }
    return status;
}
