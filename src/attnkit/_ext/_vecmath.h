// Branch-free exp, sigmoid and tanh that g++ vectorises inside `#pragma omp simd` loops
// (with -fno-trapping-math, which lets the clamps below become vector min/max).
//
// float: range reduction x = n ln2 + r, |r| <= ln2 / 2, then a degree-7 Taylor polynomial
// (truncation error below 6e-9 relative, under one float ulp) times 2^n built in the exponent
// bits; the input is clamped to [-87, 88], so the result is always a normal float. double:
// std::exp (the double paths exist for tests and gradcheck, not for speed).

#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace attnkit {

inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;  // branch-free with -fno-trapping-math; NaN passes through
  x = x > 88.0f ? 88.0f : x;
  const float shift = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to integer
  const float n = (x * 1.44269504088896341f + shift) - shift;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // x - n ln2, two-part ln2
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline double exp_approx(double x) { return std::exp(x); }

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + exp_approx(-x));
}

template <typename T>
inline T tanh_(T x) {
  return T(2) / (T(1) + exp_approx(T(-2) * x)) - T(1);
}

}  // namespace attnkit
