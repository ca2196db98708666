/*
 * The fused C reference for the step kernel (issue 15): one AdamW-SF step as AdamWUpdate computes it
 * with the defaults (weight decay at y, no inner momentum), plus y written out, in one loop over
 * float arrays. It times its own steps and prints one line that BenchMain (mode "vsc") parses.
 *
 * Build (BenchMain does this itself):
 *   gcc -O3 -march=native -fopenmp -fno-math-errno -ffp-contract=off -o adamw_sf_step adamw_sf_step.c -lm
 * -fno-math-errno lets gcc vectorize sqrtf (it changes no result); -ffp-contract=off keeps every
 * multiply and add as written, as Java does (only the explicit fmaf calls are fused).
 *
 * Usage: adamw_sf_step PARAMS THREADS [thp|nothp|default] [WARMUP STEPS] [CHUNK]
 *   thp:    2 MiB-aligned arrays with madvise(MADV_HUGEPAGE); nothp: MADV_NOHUGEPAGE;
 *   default: plain aligned allocations (in THP "madvise" mode that means 4 KiB pages).
 *   CHUNK:  0 (default) splits the array statically, one contiguous half per thread, like
 *           "omp for schedule(static)"; N > 0 hands out N-element chunks dynamically, as
 *           ChunkExecutor does.
 * Every array is first touched by the thread that later steps it (static split), the usual
 * first-touch placement; on a one-node machine that only decides which core faults the page in.
 */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define HUGE_PAGE (2u << 20)

static float *alloc_floats(size_t n, const char *thp) {
  size_t bytes = (n * sizeof(float) + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
  void *p = NULL;
  if (posix_memalign(&p, HUGE_PAGE, bytes) != 0) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  if (strcmp(thp, "thp") == 0) {
    madvise(p, bytes, MADV_HUGEPAGE);
  } else if (strcmp(thp, "nothp") == 0) {
    madvise(p, bytes, MADV_NOHUGEPAGE);
  }
  return (float *)p;
}

typedef struct {
  float ox, oz, cx, cz, nx, nz, neg_lr, neg_lr_wd, b2, ob2, bc2, eps;
  int decay;
} coeffs;

/* AdamWUpdate.AdamWKernel.apply for [from, to), defaults (no inner momentum), y written. Inlined
 * twice with a constant decay, so each copy is one branch-free vector loop (C2 unswitches the
 * Java loop the same way). */
static inline __attribute__((always_inline)) void kernel_body(
    const coeffs *k, const int decay, float *restrict z, float *restrict x, float *restrict v,
    const float *restrict g, float *restrict y, long from, long to) {
  const float ox = k->ox, oz = k->oz, cx = k->cx, cz = k->cz, nx = k->nx, nz = k->nz;
  const float neg_lr = k->neg_lr, neg_lr_wd = k->neg_lr_wd, b2 = k->b2, ob2 = k->ob2;
  const float bc2 = k->bc2, eps = k->eps;
  for (long i = from; i < to; i++) {
    float xi = x[i];
    float zi = z[i];
    float gi = g[i];
    if (decay) {
      zi = fmaf(neg_lr_wd, fmaf(oz, zi, xi * ox), zi);
    }
    float vi = fmaf(ob2 * gi, gi, v[i] * b2);
    v[i] = vi;
    float d = sqrtf(vi / bc2) + eps;
    zi = zi + (neg_lr * gi) / d;
    xi = fmaf(cz, zi, xi * cx);
    z[i] = zi;
    x[i] = xi;
    y[i] = fmaf(nz, zi, xi * nx);
  }
}

static void kernel(const coeffs *k, float *restrict z, float *restrict x, float *restrict v,
                   const float *restrict g, float *restrict y, long from, long to) {
  if (k->decay) {
    kernel_body(k, 1, z, x, v, g, y, from, to);
  } else {
    kernel_body(k, 0, z, x, v, g, y, from, to);
  }
}

/* The coefficients of step k (lr 0.001, weight decay wd, betas 0.9/0.999): what the schedule would
 * give without warm-up; the values only matter for keeping every number finite and realistic. */
static coeffs step_coeffs(long k, float wd) {
  coeffs c;
  double lr = 0.001, beta = 0.9, beta2 = 0.999, ck = 1.0 / (double)(k + 1);
  c.ox = k == 0 ? 1.0f : (float)beta;
  c.oz = k == 0 ? 0.0f : (float)(1 - beta);
  c.cx = (float)(1 - ck);
  c.cz = (float)ck;
  c.nx = (float)beta;
  c.nz = (float)(1 - beta);
  c.neg_lr = (float)-lr;
  c.neg_lr_wd = (float)-(lr * wd);
  c.b2 = (float)beta2;
  c.ob2 = (float)(1 - beta2);
  c.bc2 = (float)(1 - pow(beta2, (double)(k + 1)));
  c.eps = 1e-8f;
  c.decay = wd != 0;
  return c;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PARAMS THREADS [thp|nothp|default] [WARMUP STEPS] [CHUNK]\n", argv[0]);
    return 2;
  }
  long n = atol(argv[1]);
  int threads = atoi(argv[2]);
  const char *thp = argc > 3 ? argv[3] : "default";
  int warmup = argc > 4 ? atoi(argv[4]) : 10;
  int steps = argc > 5 ? atoi(argv[5]) : 40;
  long chunk = argc > 6 ? atol(argv[6]) : 0;
  float wd = 0.0f; /* the Java bench's Hyperparameters.defaults(ADAMW) */
  omp_set_num_threads(threads);
  float *z = alloc_floats(n, thp), *x = alloc_floats(n, thp), *v = alloc_floats(n, thp);
  float *g = alloc_floats(n, thp), *y = alloc_floats(n, thp);
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; i++) {
    /* first touch by the thread that owns the element in the static split */
    uint32_t h = (uint32_t)i * 2654435761u;
    float r = (float)(h >> 8) / 16777216.0f * 2.0f - 1.0f;
    z[i] = r;
    x[i] = r;
    v[i] = 0.0f;
    g[i] = -r * 0.5f + 0.25f;
    y[i] = 0.0f;
  }
  double *ms = malloc(sizeof(double) * (size_t)steps);
  for (int s = 0; s < warmup + steps; s++) {
    coeffs c = step_coeffs(s, wd);
    double t0 = now_ms();
    if (chunk <= 0) {
#pragma omp parallel
      {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        long from = n * t / nt, to = n * (t + 1) / nt;
        kernel(&c, z, x, v, g, y, from, to);
      }
    } else {
      long chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
      for (long ci = 0; ci < chunks; ci++) {
        long from = ci * chunk, to = from + chunk < n ? from + chunk : n;
        kernel(&c, z, x, v, g, y, from, to);
      }
    }
    double t1 = now_ms();
    if (s >= warmup) {
      ms[s - warmup] = t1 - t0;
    }
  }
  double check = 0;
  for (long i = 0; i < n; i += 4099) {
    check += y[i];
  }
  qsort(ms, (size_t)steps, sizeof(double), cmp_double);
  double median =
      steps % 2 ? ms[steps / 2] : (ms[steps / 2 - 1] + ms[steps / 2]) / 2;
  /* The line BenchMain parses; keep its shape. */
  printf("C-REF params=%ld threads=%d thp=%s chunk=%ld steps=%d median_ms=%.3f min_ms=%.3f "
         "max_ms=%.3f check=%g\n",
         n, threads, thp, chunk, steps, median, ms[0], ms[steps - 1], check);
  return 0;
}
