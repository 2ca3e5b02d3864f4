// GRU recurrences over padded batches, forward and backward, one thread per (row, direction).
//
// The cell is torch.nn.GRU's (gate order r, z, n; the reset gate multiplies W_hn h + b_hn):
//
//   r = sigma(gi_r + gh_r),  z = sigma(gi_z + gh_z),  n = tanh(gi_n + r * gh_n),
//   h' = n + z * (h - n),    gh = W_hh h + b_hh,      gi = W_ih x + b_ih (computed by the caller).
//
// Every (row, direction) is an independent recurrence, so threads share nothing but the
// weights and never wait for each other within a sequence. Tasks go to threads in a fixed
// order and each thread's weight-gradient partial sums are added in thread order, so results
// repeat bit for bit (for a given thread count), which seeded training relies on. A row stops
// at its own length (the padding after it is never computed). A direction marked "reverse"
// reads its row from the last real position back to the first: the backward half of a
// bidirectional encoder.
//
// Layouts (contiguous): gi, d_gi (B, T, D, 3H); out, grad_out (B, T, D, H); saved (B, T, D, 4H)
// holds r, z, n and gh_n of every computed step; w_hh and dw_hh (D, 3H, H); wt_hh = w_hh
// transposed per direction (D, H, 3H); b_hh, db_hh (D, 3H). out and d_gi are written whole:
// zeros at and past a row's length.
//
// sigma and tanh go through the vectorisable exp of _vecmath.h.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "_vecmath.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using attnkit::sigmoid;
using attnkit::tanh_;

// y[0:m] += sum_j w[j * ld + (0:m)] * x[j] for j < n, in register-sized column chunks so that
// the accumulators stay in registers while the weights stream past.
template <typename T, int C>
inline void gemv_cols(const T* w, int64_t ld, const T* x, int64_t n, T* y) {
  T acc[C];
  for (int c = 0; c < C; ++c) acc[c] = y[c];
  for (int64_t j = 0; j < n; ++j) {
    const T xj = x[j];
    const T* wj = w + j * ld;
#pragma omp simd
    for (int c = 0; c < C; ++c) acc[c] += wj[c] * xj;
  }
  for (int c = 0; c < C; ++c) y[c] = acc[c];
}

template <typename T>
inline void gemv(const T* w, int64_t ld, const T* x, int64_t n, T* y, int64_t m) {
  int64_t i = 0;
  for (; i + 32 <= m; i += 32) gemv_cols<T, 32>(w + i, ld, x, n, y + i);
  for (; i + 8 <= m; i += 8) gemv_cols<T, 8>(w + i, ld, x, n, y + i);
  for (; i < m; ++i) gemv_cols<T, 1>(w + i, ld, x, n, y + i);
}

struct Shape {
  int64_t B, T, D, H;
  int64_t step(int64_t b, int64_t t) const { return (b * T + t) * D; }  // (b, t, d=0) index
};

template <typename T>
void forward(const T* gi, const T* wt_hh, const T* b_hh, const int64_t* len, const int32_t* rev,
             T* out, T* saved, Shape s, int threads) {
  const int64_t H = s.H, G = 3 * H;
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> gh(G), zero(H, T(0));
#pragma omp for schedule(static, 1)
    for (int64_t task = 0; task < s.B * s.D; ++task) {
      const int64_t b = task / s.D, d = task % s.D;
      const int64_t L = std::min(len[b], s.T);
      const T* w = wt_hh + d * H * G;
      const T* hp = zero.data();
      for (int64_t t = L; t < s.T; ++t) std::fill_n(out + (s.step(b, t) + d) * H, H, T(0));
      for (int64_t k = 0; k < L; ++k) {
        const int64_t t = rev[d] ? L - 1 - k : k;
        const int64_t at = s.step(b, t) + d;
        const T* g = gi + at * G;
        T* h = out + at * H;
        T* sv = saved + at * 4 * H;
        std::copy(b_hh + d * G, b_hh + (d + 1) * G, gh.begin());
        gemv(w, G, hp, H, gh.data(), G);  // gh = b_hh + W_hh h
        const T* q = gh.data();
#pragma omp simd
        for (int64_t i = 0; i < H; ++i) {
          const T r = sigmoid(g[i] + q[i]);
          const T z = sigmoid(g[H + i] + q[H + i]);
          const T n = tanh_(g[2 * H + i] + r * q[2 * H + i]);
          h[i] = n + z * (hp[i] - n);
          sv[i] = r;
          sv[H + i] = z;
          sv[2 * H + i] = n;
          sv[3 * H + i] = q[2 * H + i];
        }
        hp = h;
      }
    }
  }
}

template <typename T>
void backward(const T* grad_out, const T* out, const T* saved, const T* w_hh, const int64_t* len,
              const int32_t* rev, T* d_gi, T* dw_hh, T* db_hh, Shape s, int threads) {
  const int64_t H = s.H, G = 3 * H, D = s.D;
  int used = 1;
#ifdef _OPENMP
  used = std::max(1, threads);
#endif
  std::vector<T> dw_part(used * D * G * H, T(0)), db_part(used * D * G, T(0));
#pragma omp parallel num_threads(used)
  {
    int me = 0;
#ifdef _OPENMP
    me = omp_get_thread_num();
#endif
    std::vector<T> dgh(G), grec(H), zero(H, T(0));
#pragma omp for schedule(static, 1)
    for (int64_t task = 0; task < s.B * D; ++task) {
      const int64_t b = task / D, d = task % D;
      const int64_t L = std::min(len[b], s.T);
      const T* w = w_hh + d * G * H;
      T* dw = dw_part.data() + (me * D + d) * G * H;
      T* db = db_part.data() + (me * D + d) * G;
      std::fill(grec.begin(), grec.end(), T(0));
      for (int64_t t = L; t < s.T; ++t) std::fill_n(d_gi + (s.step(b, t) + d) * G, G, T(0));
      for (int64_t k = L - 1; k >= 0; --k) {  // k-th step of the recurrence, last first
        const int64_t t = rev[d] ? L - 1 - k : k;
        const int64_t at = s.step(b, t) + d;
        const int64_t prev_t = rev[d] ? t + 1 : t - 1;
        const T* hp = k > 0 ? out + (s.step(b, prev_t) + d) * H : zero.data();
        const T* go = grad_out + at * H;
        const T* sv = saved + at * 4 * H;
        T* dg = d_gi + at * G;
        T* q = dgh.data();
        T* gr = grec.data();
#pragma omp simd
        for (int64_t i = 0; i < H; ++i) {
          const T g = go[i] + gr[i];
          const T r = sv[i], z = sv[H + i], n = sv[2 * H + i], ghn = sv[3 * H + i];
          const T an = g * (T(1) - z) * (T(1) - n * n);
          const T az = g * (hp[i] - n) * z * (T(1) - z);
          const T ar = an * ghn * r * (T(1) - r);
          dg[i] = ar;
          dg[H + i] = az;
          dg[2 * H + i] = an;
          q[i] = ar;
          q[H + i] = az;
          q[2 * H + i] = an * r;
          gr[i] = g * z;  // the direct path h' -> h; the W_hh path is added below
        }
        gemv(w, H, q, G, gr, H);  // + W_hh^T dgh
        for (int64_t i = 0; i < G; ++i) {
          const T qi = q[i];
          T* dwi = dw + i * H;
          db[i] += qi;
#pragma omp simd
          for (int64_t j = 0; j < H; ++j) dwi[j] += qi * hp[j];
        }
      }
    }
  }
  for (int p = 0; p < used; ++p) {
    const T* dw = dw_part.data() + p * D * G * H;
    const T* db = db_part.data() + p * D * G;
    for (int64_t i = 0; i < D * G * H; ++i) dw_hh[i] += dw[i];
    for (int64_t i = 0; i < D * G; ++i) db_hh[i] += db[i];
  }
}

}  // namespace

extern "C" {

void attnkit_gru_fwd_f32(const float* gi, const float* wt_hh, const float* b_hh,
                         const int64_t* len, const int32_t* rev, float* out, float* saved,
                         int64_t B, int64_t T, int64_t D, int64_t H, int threads) {
  forward<float>(gi, wt_hh, b_hh, len, rev, out, saved, Shape{B, T, D, H}, threads);
}

void attnkit_gru_fwd_f64(const double* gi, const double* wt_hh, const double* b_hh,
                         const int64_t* len, const int32_t* rev, double* out, double* saved,
                         int64_t B, int64_t T, int64_t D, int64_t H, int threads) {
  forward<double>(gi, wt_hh, b_hh, len, rev, out, saved, Shape{B, T, D, H}, threads);
}

// dw_hh and db_hh are accumulated into (pass zeros).
void attnkit_gru_bwd_f32(const float* grad_out, const float* out, const float* saved,
                         const float* w_hh, const int64_t* len, const int32_t* rev, float* d_gi,
                         float* dw_hh, float* db_hh, int64_t B, int64_t T, int64_t D, int64_t H,
                         int threads) {
  backward<float>(grad_out, out, saved, w_hh, len, rev, d_gi, dw_hh, db_hh, Shape{B, T, D, H},
                  threads);
}

void attnkit_gru_bwd_f64(const double* grad_out, const double* out, const double* saved,
                         const double* w_hh, const int64_t* len, const int32_t* rev, double* d_gi,
                         double* dw_hh, double* db_hh, int64_t B, int64_t T, int64_t D, int64_t H,
                         int threads) {
  backward<double>(grad_out, out, saved, w_hh, len, rev, d_gi, dw_hh, db_hh, Shape{B, T, D, H},
                   threads);
}

}  // extern "C"
