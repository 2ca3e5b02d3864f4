// Fused additive (Bahdanau) score for one block of queries and keys, forward and backward.
//
//   s[n, i, j] = sum_h v[h] * tanh(a[n, i, h] + b[n, j, h])
//
// a = W q (N, I, H) and b = U k (+ bias) (N, J, H) are projected already; the (I, J, H) tensor
// of tanh values is never stored. With E = exp(2a) exp(2b) and r = 1 / (1 + E):
//
//   tanh(a + b) = 1 - 2r,    d tanh(a + b) / da = 1 - tanh^2 = 4 E r^2,
//
// so each (i, j, h) costs one product, one division and a few multiply-adds instead of a tanh:
// exp(2a) and exp(2b) are computed once per row (the vectorised exp of _vecmath.h). The
// product has no cancellation, so the error of tanh is at most a few units of 1e-7 absolute.
// It overflows only for |a| or |b| > 40, where a block falls back to calling tanh itself.
//
// Layouts (all contiguous): a (N, I, H); bt = b transposed (N, H, J), so that the innermost
// loop runs over keys j with unit stride and vectorises without horizontal sums;
// s, ds (N, I, J); da (N, I, H); dbt (N, H, J); dv (H,).
//
// Threads: the forward splits rows (n, i) across threads. The backward splits (n, j-chunk)
// tasks; each task owns dbt[n, :, chunk] and a private slice of da, summed at the end.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "_vecmath.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

constexpr double kLimit = 40.0;  // |a|, |b| above this: exp(2x) may overflow in float

template <typename T>
bool in_range(const T* x, int64_t count) {
  int out = 0;
#pragma omp simd reduction(| : out)
  for (int64_t t = 0; t < count; ++t) out |= !(std::abs(x[t]) <= T(kLimit));
  return !out;  // false for NaN too: then the direct path propagates it
}

// exp(2a) and exp(2b^T) for a block, or nothing (fast = false) where they could overflow.
template <typename T>
struct Exps {
  bool fast;
  std::vector<T> ea, ebt;
  Exps(const T* a, const T* bt, int64_t na, int64_t nb)
      : fast(in_range(a, na) && in_range(bt, nb)) {
    if (!fast) return;
    ea.resize(na);
    ebt.resize(nb);
    T* pa = ea.data();
    T* pb = ebt.data();
#pragma omp simd
    for (int64_t t = 0; t < na; ++t) pa[t] = attnkit::exp_approx(T(2) * a[t]);
#pragma omp simd
    for (int64_t t = 0; t < nb; ++t) pb[t] = attnkit::exp_approx(T(2) * bt[t]);
  }
};

template <typename T>
void forward(const T* a, const T* bt, const T* v, T* s, int64_t N, int64_t I, int64_t J,
             int64_t H, int threads) {
  const Exps<T> ex(a, bt, N * I * H, N * H * J);
  const bool fast = ex.fast;
  const std::vector<T>&ea = ex.ea, &ebt = ex.ebt;
  T vsum = 0;
  for (int64_t h = 0; h < H; ++h) vsum += v[h];
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t row = 0; row < N * I; ++row) {
    const int64_t n = row / I;
    T* srow = s + row * J;
    for (int64_t j = 0; j < J; ++j) srow[j] = 0;
    for (int64_t h = 0; h < H; ++h) {
      const T vh = v[h];
      if (fast) {
        const T c = ea[row * H + h];
        const T* e = ebt.data() + (n * H + h) * J;
#pragma omp simd
        for (int64_t j = 0; j < J; ++j) srow[j] += vh / (T(1) + c * e[j]);
      } else {
        const T c = a[row * H + h];
        const T* b = bt + (n * H + h) * J;
        for (int64_t j = 0; j < J; ++j) srow[j] += vh * std::tanh(c + b[j]);
      }
    }
    if (fast) {  // sum_h v (1 - 2r) = sum(v) - 2 sum_h v r
#pragma omp simd
      for (int64_t j = 0; j < J; ++j) srow[j] = vsum - T(2) * srow[j];
    }
  }
}

template <typename T>
void backward(const T* a, const T* bt, const T* v, const T* ds, T* da, T* dbt, T* dv, int64_t N,
              int64_t I, int64_t J, int64_t H, int threads) {
  const Exps<T> ex(a, bt, N * I * H, N * H * J);
  const bool fast = ex.fast;
  const std::vector<T>&ea = ex.ea, &ebt = ex.ebt;
  // Tasks: (n, chunk of keys). More chunks than batch entries only when threads would idle.
  int64_t chunks = 1;
  if (N < threads) chunks = std::min<int64_t>((threads + N - 1) / N, std::max<int64_t>(J / 16, 1));
  const int64_t width = (J + chunks - 1) / chunks;
  const int64_t tasks = N * chunks;
  std::vector<T> da_part(tasks * I * H, T(0));  // per task: its keys' share of da
  std::vector<T> dv_part(tasks * H, T(0));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / chunks;
    const int64_t j0 = (task % chunks) * width;
    const int64_t j1 = std::min(J, j0 + width);
    T* dap = da_part.data() + task * I * H;
    T* dvp = dv_part.data() + task * H;
    for (int64_t i = 0; i < I; ++i) {
      const T* g = ds + (n * I + i) * J;
      for (int64_t h = 0; h < H; ++h) {
        T* db = dbt + (n * H + h) * J;
        T acc_a = 0, acc_v = 0;
        if (fast) {
          const T c = ea[(n * I + i) * H + h];
          const T* e = ebt.data() + (n * H + h) * J;
          const T s4v = T(4) * v[h];
#pragma omp simd reduction(+ : acc_a, acc_v)
          for (int64_t j = j0; j < j1; ++j) {
            const T E = c * e[j];
            const T r = T(1) / (T(1) + E);
            const T w = g[j] * r;  // ds * r
            const T u = w * r * E;  // ds * E r^2 = ds * (1 - t^2) / 4
            acc_v += w;
            acc_a += u;
            db[j] += s4v * u;
          }
          dap[i * H + h] += T(4) * v[h] * acc_a;
          dvp[h] += T(-2) * acc_v;  // sum ds * t = sum ds - 2 sum ds r; sum ds added below
        } else {
          const T c = a[(n * I + i) * H + h];
          const T* b = bt + (n * H + h) * J;
          for (int64_t j = j0; j < j1; ++j) {
            const T t = std::tanh(c + b[j]);
            const T u = g[j] * (T(1) - t * t);
            acc_a += u;
            acc_v += g[j] * t;
            db[j] += v[h] * u;
          }
          dap[i * H + h] += v[h] * acc_a;
          dvp[h] += acc_v;
        }
      }
    }
    if (fast) {
      T gsum = 0;
      for (int64_t i = 0; i < I; ++i)
        for (int64_t j = j0; j < j1; ++j) gsum += ds[(n * I + i) * J + j];
      for (int64_t h = 0; h < H; ++h) dvp[h] += gsum;
    }
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < chunks; ++c) {
      const T* dap = da_part.data() + (n * chunks + c) * I * H;
      for (int64_t t = 0; t < I * H; ++t) da[n * I * H + t] += dap[t];
    }
  for (int64_t task = 0; task < tasks; ++task)
    for (int64_t h = 0; h < H; ++h) dv[h] += dv_part[task * H + h];
}

}  // namespace

extern "C" {

void attnkit_additive_fwd_f32(const float* a, const float* bt, const float* v, float* s, int64_t N,
                              int64_t I, int64_t J, int64_t H, int threads) {
  forward<float>(a, bt, v, s, N, I, J, H, threads);
}

void attnkit_additive_fwd_f64(const double* a, const double* bt, const double* v, double* s,
                              int64_t N, int64_t I, int64_t J, int64_t H, int threads) {
  forward<double>(a, bt, v, s, N, I, J, H, threads);
}

// da, dbt and dv are accumulated into (pass zeros for plain gradients).
void attnkit_additive_bwd_f32(const float* a, const float* bt, const float* v, const float* ds,
                              float* da, float* dbt, float* dv, int64_t N, int64_t I, int64_t J,
                              int64_t H, int threads) {
  backward<float>(a, bt, v, ds, da, dbt, dv, N, I, J, H, threads);
}

void attnkit_additive_bwd_f64(const double* a, const double* bt, const double* v,
                              const double* ds, double* da, double* dbt, double* dv, int64_t N,
                              int64_t I, int64_t J, int64_t H, int threads) {
  backward<double>(a, bt, v, ds, da, dbt, dv, N, I, J, H, threads);
}

}  // extern "C"
