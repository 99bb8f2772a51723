// Vortex phase imprints on one chart (HHmL), OpenMP, CPU: the batched forms of
// hhml.core.resonance.imprint._phase / _image_distance used by targeted annihilation and
// by pair seeding.
//
//   Phi(x; u0, v0)   unit-charge phase: Moebius arg(A_d) + arg(A_i), A_d = e^{ik(z-z0)} - 1,
//                    A_i the same at sigma(z) = (u + L, -v), k = pi / L; cylinder / torus one
//                    term, k = 2 pi / L; A = e^{a+ib} - 1 as imprint._arg_exp_minus_one (no
//                    overflow for a > 0)
//   d(x; u0, v0)     chart distance to the nearest image: Moebius (0,+), (+-2L,+), (+-L,-);
//                    cylinder (0,+), (+-L,+); torus the cylinder images x v-shifts {0, +-2w}
//
// imprint_angles: out[g] = sum over targets t of group g, in increasing t, of
//                 w_t * Phi_t * exp(-(d_t^2) / (2 r_t r_t))   (real [G, nu, nv])
// imprint_apply:  psi[g] * e^{i out[g]} (complex [G, nu, nv]) without materialising out
// select_targets: the targets of annihilate() (selection by core depth), packed per slot
// pair_factors:   out[m] = prod over the two (seam-wrapped) cores of
//                 e^{i q Phi} * tanh(d / xi)^|q|, times the torus gauge ramp (complex)
//
// Speed (v2): the transcendental functions of the per-node work run on arrays, 8 (float) or
// 4 (double) lanes at a time, through SLEEF's 1-ulp AVX2 functions (the ones torch's
// vectorised CPU kernels call; linked from libtorch_cpu) when the build has AVX2 and FMA,
// and through libm otherwise. Per target only the rows that can receive a non-negligible
// contribution are visited: a node whose envelope bounds the contribution below
// kNegligible(T) radians (|w| * max|Phi| * exp(-d^2 / 2r^2) < eps(T) / 256, see
// negligible_d2) is left out, which changes the sum by far less than its last bit. For an
// integer q, e^{i q Phi} is the q-th power of the unit complex numbers A_d/|A_d| * A_i/|A_i|
// (exact algebraically; no atan2, cos or sin); a node with A = 0 takes the unit 1 (phase 0,
// as atan2(0, 0)). The Moebius angle sum takes one atan2 per node, of the product A_d A_i,
// plus the multiple of 2 pi that the two arguments' half-planes fix (sum_of_args).
//
// Every formula is evaluated in T (the chart's real type), compiled with -ffp-contract=off:
// no fused multiply-adds outside SLEEF. Results agree with the torch code to the last bits
// of the transcendental functions. Work items are (group or pair, block of rows); each
// precomputes the per-row (u) and per-column (v) factors of a target in thread-local
// buffers allocated once per thread.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <sleef.h>
#define HHML_IMPRINT_SIMD 1
#endif

namespace {

enum Topology : int64_t { kMobius = 0, kCylinder = 1, kTorus = 2 };

// ------------------------------------------------------------------ array math
#ifdef HHML_IMPRINT_SIMD
template <typename T>
struct Simd;

template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int W = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V atan2(V y, V x) { return Sleef_atan2f8_u10avx2(y, x); }
  static V exp(V x) { return Sleef_expf8_u10avx2(x); }
  static V tanh(V x) { return Sleef_tanhf8_u10avx2(x); }
  static void sincos(V x, V* s, V* c) {
    const Sleef___m256_2 r = Sleef_sincosf8_u10avx2(x);
    *s = r.x;
    *c = r.y;
  }
};

template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static V atan2(V y, V x) { return Sleef_atan2d4_u10avx2(y, x); }
  static V exp(V x) { return Sleef_expd4_u10avx2(x); }
  static V tanh(V x) { return Sleef_tanhd4_u10avx2(x); }
  static void sincos(V x, V* s, V* c) {
    const Sleef___m256d_2 r = Sleef_sincosd4_u10avx2(x);
    *s = r.x;
    *c = r.y;
  }
};

// out[k] = f(x[k]) for k < n: full vectors, then the tail through a padded buffer
template <typename T, typename F>
inline void map1(const T* x, T* out, int64_t n, F f) {
  using S = Simd<T>;
  constexpr int W = S::W;
  int64_t k = 0;
  for (; k + W <= n; k += W) S::store(out + k, f(S::load(x + k)));
  if (k < n) {
    T xb[W], ob[W];
    for (int l = 0; l < W; ++l) xb[l] = k + l < n ? x[k + l] : T(0);
    S::store(ob, f(S::load(xb)));
    for (int64_t l = 0; k + l < n; ++l) out[k + l] = ob[l];
  }
}
#endif

template <typename T>
void v_exp(const T* x, T* out, int64_t n) {
#ifdef HHML_IMPRINT_SIMD
  map1(x, out, n, [](typename Simd<T>::V v) { return Simd<T>::exp(v); });
#else
  for (int64_t k = 0; k < n; ++k) out[k] = std::exp(x[k]);
#endif
}

template <typename T>
void v_tanh(const T* x, T* out, int64_t n) {
#ifdef HHML_IMPRINT_SIMD
  map1(x, out, n, [](typename Simd<T>::V v) { return Simd<T>::tanh(v); });
#else
  for (int64_t k = 0; k < n; ++k) out[k] = std::tanh(x[k]);
#endif
}

// out[k] = atan2(y[k], x[k])
template <typename T>
void v_atan2(const T* y, const T* x, T* out, int64_t n) {
#ifdef HHML_IMPRINT_SIMD
  using S = Simd<T>;
  constexpr int W = S::W;
  int64_t k = 0;
  for (; k + W <= n; k += W) S::store(out + k, S::atan2(S::load(y + k), S::load(x + k)));
  if (k < n) {
    T yb[W], xb[W], ob[W];
    for (int l = 0; l < W; ++l) {
      yb[l] = k + l < n ? y[k + l] : T(0);
      xb[l] = k + l < n ? x[k + l] : T(1);
    }
    S::store(ob, S::atan2(S::load(yb), S::load(xb)));
    for (int64_t l = 0; k + l < n; ++l) out[k + l] = ob[l];
  }
#else
  for (int64_t k = 0; k < n; ++k) out[k] = std::atan2(y[k], x[k]);
#endif
}

// s[k] = sin(x[k]), c[k] = cos(x[k])
template <typename T>
void v_sincos(const T* x, T* s, T* c, int64_t n) {
#ifdef HHML_IMPRINT_SIMD
  using S = Simd<T>;
  constexpr int W = S::W;
  int64_t k = 0;
  typename S::V vs, vc;
  for (; k + W <= n; k += W) {
    S::sincos(S::load(x + k), &vs, &vc);
    S::store(s + k, vs);
    S::store(c + k, vc);
  }
  if (k < n) {
    T xb[W], sb[W], cb[W];
    for (int l = 0; l < W; ++l) xb[l] = k + l < n ? x[k + l] : T(0);
    S::sincos(S::load(xb), &vs, &vc);
    S::store(sb, vs);
    S::store(cb, vc);
    for (int64_t l = 0; k + l < n; ++l) {
      s[k + l] = sb[l];
      c[k + l] = cb[l];
    }
  }
#else
  for (int64_t k = 0; k < n; ++k) {
    s[k] = std::sin(x[k]);
    c[k] = std::cos(x[k]);
  }
#endif
}

// ------------------------------------------------------------------ the chart
template <typename T>
struct Chart {
  int64_t nu, nv, topology;
  const T* u;  // [nu] cell-centre u
  const T* v;  // [nv] cell-centre v
  T L, k, w2;  // length, wave number, 2 * half_width (all rounded to T like torch scalars)
  T phi_max;   // bound on |Phi|: 2 pi (Moebius, two terms) or pi
  int nimg;    // number of (u shift, v sign) images
  T ushift[5];
  T vsign[5];
  int nvs;  // number of v shifts (torus: 3)
  T vshift[3];
};

template <typename T>
Chart<T> make_chart(const torch::Tensor& u, const torch::Tensor& v, int64_t topology, double L,
                    double half_width) {
  Chart<T> c{};
  c.nu = u.numel();
  c.nv = v.numel();
  c.topology = topology;
  c.u = u.data_ptr<T>();
  c.v = v.data_ptr<T>();
  c.L = T(L);
  c.k = topology == kMobius ? T(M_PI / L) : T(2.0 * M_PI / L);
  c.w2 = T(2.0 * half_width);
  c.phi_max = topology == kMobius ? T(2.0 * M_PI) : T(M_PI);
  if (topology == kMobius) {
    const double s[5] = {0.0, 2 * L, -2 * L, L, -L};
    const double g[5] = {1.0, 1.0, 1.0, -1.0, -1.0};
    c.nimg = 5;
    for (int q = 0; q < 5; ++q) {
      c.ushift[q] = T(s[q]);
      c.vsign[q] = T(g[q]);
    }
  } else {
    const double s[3] = {0.0, L, -L};
    c.nimg = 3;
    for (int q = 0; q < 3; ++q) {
      c.ushift[q] = T(s[q]);
      c.vsign[q] = T(1.0);
    }
  }
  c.nvs = topology == kTorus ? 3 : 1;
  const double vs[3] = {0.0, 2 * half_width, -2 * half_width};
  for (int q = 0; q < 3; ++q) c.vshift[q] = T(vs[q]);
  return c;
}

// A contribution |w Phi env| below this many radians is left out of an angle sum.
template <typename T>
constexpr T kNegligible() {
  return std::numeric_limits<T>::epsilon() / T(256);
}

// Squared distance beyond which w * Phi * exp(-d^2 / rr) is negligible: rr log(|w| phi_max /
// kNegligible); -1 when the whole target is negligible, +inf when no bound applies (w or rr
// not finite and positive: every node is visited, NaN/Inf propagate as in the torch code).
template <typename T>
T negligible_d2(const Chart<T>& c, T w, T rr) {
  if (!std::isfinite(w) || !std::isfinite(rr) || !(rr > T(0)))
    return std::numeric_limits<T>::infinity();
  const double ratio = std::fabs(double(w)) * double(c.phi_max) / double(kNegligible<T>());
  if (!(ratio > 1.0)) return T(-1);
  return T(double(rr) * std::log(ratio));
}

// Per-thread scratch for one centre: per-column (v) and per-row (u) factors, and flat
// [nu * nv] buffers for the nodes of a block of rows.
template <typename T>
struct Scratch {
  std::vector<T> mem;
  std::vector<char> big;
  T *ea_d, *ea_i;  // [nv] e^{-|a|} of the direct and image terms
  // [nv] re = m1 cos b - m0, im = ms sin b: (1, e^{-a}, 1) for a > 0, else (e^{a}, 1, e^{a})
  T *m1_d, *m0_d, *m1_i, *m0_i;
  T *c_d, *s_d;    // [nu] cos, sin of the direct term
  T *c_i, *s_i;    // [nu] cos, sin of the image term
  T* arg;          // [nu + nv] scratch for the per-row (per-column) arguments
  T *du2;          // [nimg * nu]   (u - (u0 + shift))^2
  T *dv2;          // [nimg * nvs * nv]  (v - (sign v0 + vshift))^2
  T *rc, *rs;      // [nv] torus gauge ramp cos, sin
  T *xa, *ya, *xb, *yb, *d, *e;  // [nu * nv] per-node buffers
  T *fr, *fi, *acc;               // [nu * nv] per-node factor / angle sums
  char *big_d, *big_i;
  explicit Scratch(const Chart<T>& c)
      : mem(static_cast<size_t>(8 * c.nv + 5 * c.nu + 5 * c.nu + 15 * c.nv + 2 * c.nv +
                                9 * c.nu * c.nv)),
        big(static_cast<size_t>(2 * c.nv)) {
    const int64_t n = c.nu * c.nv;
    T* p = mem.data();
    ea_d = p, p += c.nv;
    ea_i = p, p += c.nv;
    m1_d = p, p += c.nv;
    m0_d = p, p += c.nv;
    m1_i = p, p += c.nv;
    m0_i = p, p += c.nv;
    c_d = p, p += c.nu;
    s_d = p, p += c.nu;
    c_i = p, p += c.nu;
    s_i = p, p += c.nu;
    arg = p, p += c.nu + c.nv;
    du2 = p, p += 5 * c.nu;
    dv2 = p, p += 15 * c.nv;
    rc = p, p += c.nv;
    rs = p, p += c.nv;
    xa = p, p += n;
    ya = p, p += n;
    xb = p, p += n;
    yb = p, p += n;
    d = p, p += n;
    e = p, p += n;
    fr = p, p += n;
    fi = p, p += n;
    acc = p, p += n;
    big_d = big.data();
    big_i = big.data() + c.nv;
  }
};

// Fill the scratch for centre (u0, v0), rows [i0, i1) and all columns.
template <typename T>
inline void prepare(const Chart<T>& c, Scratch<T>& s, T u0, T v0, int64_t i0, int64_t i1) {
  const T k = c.k, mk = -c.k;
  const bool mob = c.topology == kMobius;
  for (int64_t j = 0; j < c.nv; ++j) {
    // direct: a = -k (v - v0); image (Moebius): a = k (v + v0); ea = e^{-|a|}
    const T a = mk * (c.v[j] - v0);
    s.big_d[j] = a > T(0);
    s.ea_d[j] = a > T(0) ? -a : a;
    if (mob) {
      const T b = k * (c.v[j] + v0);
      s.big_i[j] = b > T(0);
      s.ea_i[j] = b > T(0) ? -b : b;
    }
  }
  v_exp(s.ea_d, s.ea_d, c.nv);
  if (mob) v_exp(s.ea_i, s.ea_i, c.nv);
  // arg(e^{a+ib} - 1) = arg(re + i im) (imprint._arg_exp_minus_one): for a > 0
  // re = cos b - e^{-a}, im = sin b; else re = e^{a} cos b - 1, im = e^{a} sin b. As
  // re = m1 cos b - m0, im = m1 sin b (multiplying by 1 is exact): no branch per node
  for (int64_t j = 0; j < c.nv; ++j) {
    const bool bd = s.big_d[j] != 0;
    s.m1_d[j] = bd ? T(1) : s.ea_d[j];
    s.m0_d[j] = bd ? s.ea_d[j] : T(1);
    if (mob) {
      const bool bi = s.big_i[j] != 0;
      s.m1_i[j] = bi ? T(1) : s.ea_i[j];
      s.m0_i[j] = bi ? s.ea_i[j] : T(1);
    }
  }
  const int64_t rows = i1 - i0;
  for (int64_t i = i0; i < i1; ++i) s.arg[i] = k * (c.u[i] - u0);
  v_sincos(s.arg + i0, s.s_d + i0, s.c_d + i0, rows);
  if (mob) {
    for (int64_t i = i0; i < i1; ++i) s.arg[i] = k * ((c.u[i] + c.L) - u0);
    v_sincos(s.arg + i0, s.s_i + i0, s.c_i + i0, rows);
  }
  for (int q = 0; q < c.nimg; ++q) {
    const T uc = u0 + c.ushift[q];
    for (int64_t i = i0; i < i1; ++i) {
      const T x = c.u[i] - uc;
      s.du2[q * c.nu + i] = x * x;
    }
    for (int h = 0; h < c.nvs; ++h) {
      const T vc = c.vsign[q] * v0 + c.vshift[h];
      T* dst = s.dv2 + (q * c.nvs + h) * c.nv;
      for (int64_t j = 0; j < c.nv; ++j) {
        const T y = c.v[j] - vc;
        dst[j] = y * y;
      }
    }
  }
}

// Smallest (u - image)^2 of row i over the images: a lower bound of d^2 on the row.
template <typename T>
inline T row_min_d2(const Chart<T>& c, const Scratch<T>& s, int64_t i) {
  T best = std::numeric_limits<T>::infinity();
  for (int q = 0; q < c.nimg; ++q) best = std::min(best, s.du2[q * c.nu + i]);
  return best;
}

// For the nodes of rows [ra, rb) (flat index k from 0): the real and imaginary parts of
// A_d (xa, ya) and, Moebius, A_i (xb, yb), and the squared image distance d2 (in s.d).
template <typename T>
inline void fill_nodes(const Chart<T>& c, Scratch<T>& s, int64_t ra, int64_t rb, bool dist) {
  const int64_t nv = c.nv;
  const bool mob = c.topology == kMobius;
  for (int64_t i = ra; i < rb; ++i) {
    const int64_t o = (i - ra) * nv;
    const T cd = s.c_d[i], sd = s.s_d[i];
    for (int64_t j = 0; j < nv; ++j) {
      s.xa[o + j] = s.m1_d[j] * cd - s.m0_d[j];
      s.ya[o + j] = s.m1_d[j] * sd;
    }
    if (mob) {
      const T ci = s.c_i[i], si = s.s_i[i];
      for (int64_t j = 0; j < nv; ++j) {
        s.xb[o + j] = s.m1_i[j] * ci - s.m0_i[j];
        s.yb[o + j] = s.m1_i[j] * si;
      }
    }
    if (dist) {
      T* dst = s.d + o;
      for (int64_t j = 0; j < nv; ++j) dst[j] = std::numeric_limits<T>::infinity();
      for (int q = 0; q < c.nimg; ++q) {
        const T x2 = s.du2[q * c.nu + i];
        for (int h = 0; h < c.nvs; ++h) {
          const T* dv = s.dv2 + (q * c.nvs + h) * nv;
          for (int64_t j = 0; j < nv; ++j) dst[j] = std::min(dst[j], x2 + dv[j]);
        }
      }
    }
  }
}

// arg(A) + arg(B) (each atan2, in [-pi, pi]) = atan2(A B) + 2 pi n: replaces (xa, ya) by the
// product A B and xb by n, so that one atan2 gives the Moebius phase. n = +1 when both
// arguments lie in [+0, pi] (sign bit of the imaginary part clear) and the product's
// imaginary part has its sign bit set, -1 in the mirrored case, else 0: signed zeros give
// the atan2 values of the two-term sum (e.g. pi + pi = 2 pi for A, B = (-x, +0)).
template <typename T>
inline void sum_of_args(Scratch<T>& s, int64_t n) {
  for (int64_t q = 0; q < n; ++q) {
    const T xa = s.xa[q], ya = s.ya[q], xb = s.xb[q], yb = s.yb[q];
    const T re = xa * xb - ya * yb, im = xa * yb + ya * xb;
    const T half = (std::copysign(T(1), ya) + std::copysign(T(1), yb)) * T(0.5);
    s.xa[q] = re;
    s.ya[q] = im;
    s.xb[q] = std::copysign(T(1), im) != half ? half : T(0);
  }
}

// Work items: (slab, row block); enough of them for the threads even with one slab.
struct Items {
  int64_t blocks, rows;
};
inline Items split_rows(int64_t slabs, int64_t nu) {
  const int64_t want = 4 * static_cast<int64_t>(at::get_num_threads());
  int64_t blocks = slabs >= want ? 1 : std::min<int64_t>(nu, (want + slabs - 1) / slabs);
  const int64_t rows = (nu + blocks - 1) / blocks;
  blocks = (nu + rows - 1) / rows;
  return {blocks, rows};
}

// acc[(i - i0) * nv + j] += w_t Phi_t exp(-d_t^2 / 2 r_t^2) for the targets of one group,
// rows [i0, i1), in increasing t; touched[i - i0] is set for every row visited.
template <typename T>
void add_group_angles(const Chart<T>& c, Scratch<T>& s, const T* u0, const T* v0, const T* wt,
                      const T* r, const int64_t* order, int64_t p0, int64_t p1, int64_t i0,
                      int64_t i1, T* acc, char* touched) {
  const int64_t nv = c.nv;
  const bool mob = c.topology == kMobius;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t t = order[p];
    const T w = wt[t];
    // exactly zero contributions leave the sum unchanged (bitwise): skip them
    if (w == T(0)) continue;
    const T rr = (T(2) * r[t]) * r[t];
    T cut = negligible_d2(c, w, rr);
    if (cut < T(0)) continue;
    // a non-finite centre: every node, so that NaN/Inf propagate as in the torch code
    if (!std::isfinite(u0[t]) || !std::isfinite(v0[t])) cut = std::numeric_limits<T>::infinity();
    const bool every = !(cut < std::numeric_limits<T>::infinity());
    prepare(c, s, u0[t], v0[t], i0, i1);
    int64_t i = i0;
    while (i < i1) {
      if (!every && !(row_min_d2(c, s, i) <= cut)) {
        ++i;
        continue;
      }
      int64_t rb = i + 1;
      while (rb < i1 && (every || row_min_d2(c, s, rb) <= cut)) ++rb;
      const int64_t n = (rb - i) * nv;
      fill_nodes(c, s, i, rb, true);
      if (mob) sum_of_args(s, n);
      v_atan2(s.ya, s.xa, s.ya, n);
      for (int64_t q = 0; q < n; ++q) {
        const T d = std::sqrt(s.d[q]);
        s.e[q] = -(d * d) / rr;
      }
      v_exp(s.e, s.e, n);
      T* a = acc + (i - i0) * nv;
      if (mob) {
        const T turn = T(2.0 * M_PI);
        for (int64_t q = 0; q < n; ++q) a[q] += (w * (s.ya[q] + turn * s.xb[q])) * s.e[q];
      } else {
        for (int64_t q = 0; q < n; ++q) a[q] += (w * s.ya[q]) * s.e[q];
      }
      for (int64_t k = i; k < rb; ++k) touched[k - i0] = 1;
      i = rb;
    }
  }
}

template <typename T>
void angles_impl(const Chart<T>& c, const T* u0, const T* v0, const T* wt, const T* r,
                 const std::vector<int64_t>& start, const std::vector<int64_t>& order,
                 int64_t groups, T* out) {
  const int64_t nu = c.nu, nv = c.nv;
  const Items it = split_rows(groups, nu);
  const int64_t items = groups * it.blocks;
#pragma omp parallel if (items > 1)
  {
    Scratch<T> s(c);
    std::vector<char> touched(static_cast<size_t>(nu));
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t g = item / it.blocks;
      if (start[g] == start[g + 1]) continue;
      const int64_t i0 = (item % it.blocks) * it.rows, i1 = std::min(nu, i0 + it.rows);
      add_group_angles(c, s, u0, v0, wt, r, order.data(), start[g], start[g + 1], i0, i1,
                       out + (g * nu + i0) * nv, touched.data());
    }
  }
}

// out[g] = psi[g] * e^{i angles[g]}: rows no target reached are copied (e^{i 0} = 1)
template <typename T>
void apply_impl(const Chart<T>& c, const T* psi, const T* u0, const T* v0, const T* wt,
                const T* r, const std::vector<int64_t>& start, const std::vector<int64_t>& order,
                int64_t groups, T* out) {
  const int64_t nu = c.nu, nv = c.nv;
  const Items it = split_rows(groups, nu);
  const int64_t items = groups * it.blocks;
#pragma omp parallel if (items > 1)
  {
    Scratch<T> s(c);
    std::vector<char> touched(static_cast<size_t>(nu));
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t g = item / it.blocks;
      const int64_t i0 = (item % it.blocks) * it.rows, i1 = std::min(nu, i0 + it.rows);
      const int64_t rows = i1 - i0;
      const T* src = psi + 2 * (g * nu + i0) * nv;  // interleaved (re, im)
      T* dst = out + 2 * (g * nu + i0) * nv;
      std::fill(touched.begin(), touched.begin() + rows, char(0));
      if (start[g] != start[g + 1]) {
        std::fill(s.acc, s.acc + rows * nv, T(0));
        add_group_angles(c, s, u0, v0, wt, r, order.data(), start[g], start[g + 1], i0, i1,
                         s.acc, touched.data());
      }
      int64_t i = 0;
      while (i < rows) {
        int64_t rb = i + 1;
        while (rb < rows && touched[rb] == touched[i]) ++rb;
        const int64_t n = (rb - i) * nv, o = i * nv;
        if (!touched[i]) {
          std::memcpy(dst + 2 * o, src + 2 * o, static_cast<size_t>(2 * n) * sizeof(T));
        } else {
          v_sincos(s.acc + o, s.fi, s.fr, n);  // polar(1, angle) = (cos, sin)
          for (int64_t q = 0; q < n; ++q) {
            // psi * f, as torch's complex product: (ac - bd) + i (ad + bc)
            const T a = src[2 * (o + q)], b = src[2 * (o + q) + 1];
            dst[2 * (o + q)] = a * s.fr[q] - b * s.fi[q];
            dst[2 * (o + q) + 1] = a * s.fi[q] + b * s.fr[q];
          }
        }
        i = rb;
      }
    }
  }
}

// z = (xa + i ya) / |.| (1 where it is 0), times the same of (xb + i yb) (Moebius): e^{i Phi}
template <typename T>
inline void unit_phase(Scratch<T>& s, int64_t n, bool mob, T* zr, T* zi) {
  for (int64_t q = 0; q < n; ++q) {
    const T x = s.xa[q], y = s.ya[q];
    const T h = std::sqrt(x * x + y * y);
    const bool zero = h == T(0);
    zr[q] = zero ? T(1) : x / h;
    zi[q] = zero ? T(0) : y / h;
  }
  if (!mob) return;
  for (int64_t q = 0; q < n; ++q) {
    const T x = s.xb[q], y = s.yb[q];
    const T h = std::sqrt(x * x + y * y);
    const bool zero = h == T(0);
    const T br = zero ? T(1) : x / h, bi = zero ? T(0) : y / h;
    const T ar = zr[q], ai = zi[q];
    zr[q] = ar * br - ai * bi;
    zi[q] = ar * bi + ai * br;
  }
}

template <typename T>
void pairs_impl(const Chart<T>& c, const T* u0, const T* v0, const T* sign, int64_t M,
                double separation, double core_radius, int64_t abs_charge, T* out) {
  const int64_t nu = c.nu, nv = c.nv;
  const Items it = split_rows(M, nu);
  const int64_t items = M * it.blocks;
  const bool amp = core_radius > 0 && abs_charge != 0;
  const bool mob = c.topology == kMobius;
  const T xi = T(core_radius);
  const T qpow = T(static_cast<double>(abs_charge));
#pragma omp parallel if (items > 1)
  {
    Scratch<T> s(c);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t m = item / it.blocks;
      const int64_t i0 = (item % it.blocks) * it.rows, i1 = std::min(nu, i0 + it.rows);
      const int64_t n = (i1 - i0) * nv;
      T* f = out + 2 * (m * nu + i0) * nv;  // interleaved (re, im)
      T wrapped[2];
      for (int core = 0; core < 2; ++core) {
        // imprint._wrap_tensor of u0 -+ separation / 2
        const T uc = u0[m] + T(core == 0 ? -0.5 * separation : 0.5 * separation);
        const T nw = std::floor(uc / c.L);
        const T uw = uc - nw * c.L;
        const bool odd = mob && std::fmod(nw, T(2)) != T(0);
        const T vw = odd ? -v0[m] : v0[m];
        const T orient = odd ? T(-1) : T(1);
        const T q = (core == 0 ? sign[m] : -sign[m]) * orient;
        wrapped[core] = uw;
        prepare(c, s, uw, vw, i0, i1);
        fill_nodes(c, s, i0, i1, amp);
        // z = e^{i q Phi}: the q-th power of the unit phase for an integer q
        T* zr = s.e;
        T* zi = s.acc;
        const bool integer = std::nearbyint(q) == q && std::fabs(q) <= T(64);
        if (integer) {
          unit_phase(s, n, mob, zr, zi);
          const int64_t iq = static_cast<int64_t>(q);
          const int64_t reps = iq < 0 ? -iq : iq;
          if (iq < 0)
            for (int64_t k = 0; k < n; ++k) zi[k] = -zi[k];
          if (reps == 0) {
            std::fill(zr, zr + n, T(1));
            std::fill(zi, zi + n, T(0));
          } else if (reps > 1) {
            for (int64_t k = 0; k < n; ++k) {
              const T br = zr[k], bi = zi[k];
              T ar = br, ai = bi;
              for (int64_t e = 1; e < reps; ++e) {
                const T pr = ar * br - ai * bi, pi = ar * bi + ai * br;
                ar = pr;
                ai = pi;
              }
              zr[k] = ar;
              zi[k] = ai;
            }
          }
        } else {
          // a non-integer q (outside the contract of +-|q|): e^{i q Phi} through atan2
          v_atan2(s.ya, s.xa, s.ya, n);
          if (mob) v_atan2(s.yb, s.xb, s.yb, n);
          for (int64_t k = 0; k < n; ++k) s.fr[k] = q * (mob ? s.ya[k] + s.yb[k] : s.ya[k]);
          v_sincos(s.fr, zi, zr, n);
        }
        if (amp) {
          for (int64_t k = 0; k < n; ++k) s.d[k] = std::sqrt(s.d[k]) / xi;
          v_tanh(s.d, s.d, n);
          for (int64_t k = 0; k < n; ++k) {
            const T x = s.d[k];
            // torch.pow(x, n): n = 1 copies, 2 squares, 3 cubes, otherwise std::pow
            const T a = abs_charge == 1   ? x
                        : abs_charge == 2 ? x * x
                        : abs_charge == 3 ? x * x * x
                                          : std::pow(x, qpow);
            zr[k] = zr[k] * a;
            zi[k] = zi[k] * a;
          }
        }
        if (core == 0) {
          for (int64_t k = 0; k < n; ++k) {
            f[2 * k] = zr[k];
            f[2 * k + 1] = zi[k];
          }
        } else {
          for (int64_t k = 0; k < n; ++k) {
            const T fr = f[2 * k], fi = f[2 * k + 1];
            f[2 * k] = fr * zr[k] - fi * zi[k];
            f[2 * k + 1] = fr * zi[k] + fi * zr[k];
          }
        }
      }
      if (c.topology == kTorus) {
        // the gauge ramp: gauge = 2 pi sign du / L, ramp = gauge (v + w) / (2w)
        const T du = wrapped[0] - wrapped[1];
        const T gauge = ((T(2.0 * M_PI) * sign[m]) * du) / c.L;
        const T w = c.w2 * T(0.5);
        for (int64_t j = 0; j < nv; ++j) s.arg[j] = -((gauge * (c.v[j] + w)) / c.w2);
        v_sincos(s.arg, s.rs, s.rc, nv);
        for (int64_t i = i0; i < i1; ++i) {
          T* row = f + 2 * (i - i0) * nv;
          for (int64_t j = 0; j < nv; ++j) {
            const T fr = row[2 * j], fi = row[2 * j + 1];
            row[2 * j] = fr * s.rc[j] - fi * s.rs[j];
            row[2 * j + 1] = fr * s.rs[j] + fi * s.rc[j];
          }
        }
      }
    }
  }
}

void check(bool ok, const char* what) { TORCH_CHECK(ok, "imprint kernel: ", what); }

void check_chart(const torch::Tensor& u, const torch::Tensor& v, int64_t topology) {
  check(u.dim() == 1 && v.dim() == 1 && u.numel() >= 1 && v.numel() >= 1, "u, v must be 1-D");
  check(u.is_contiguous() && v.is_contiguous(), "u, v must be contiguous");
  check(u.scalar_type() == v.scalar_type(), "u, v dtypes differ");
  check(topology >= kMobius && topology <= kTorus, "topology must be 0, 1 or 2");
}

void check_vec(const torch::Tensor& x, const torch::Tensor& like, int64_t n, const char* what) {
  check(x.dim() == 1 && x.numel() == n && x.is_contiguous() &&
            x.scalar_type() == like.scalar_type(),
        what);
}

// Checks the targets and sorts them by group (stable counting sort: increasing t inside
// each group); start[g] .. start[g + 1] index order[] for group g.
struct Targets {
  std::vector<int64_t> start, order;
};
Targets sort_targets(const torch::Tensor& u, const torch::Tensor& u0, const torch::Tensor& v0,
                     const torch::Tensor& weight, const torch::Tensor& radius,
                     const torch::Tensor& group, int64_t groups) {
  const int64_t T_ = u0.numel();
  for (const auto* x : {&u0, &v0, &weight, &radius})
    check_vec(*x, u, T_, "u0, v0, weight, radius must be contiguous [T] of the chart dtype");
  check(group.dim() == 1 && group.numel() == T_ && group.is_contiguous() &&
            group.scalar_type() == torch::kInt64,
        "group must be contiguous int64 [T]");
  check(groups >= 0, "groups must be >= 0");
  const int64_t* gp = group.data_ptr<int64_t>();
  Targets tg{std::vector<int64_t>(static_cast<size_t>(groups + 1), 0),
             std::vector<int64_t>(static_cast<size_t>(T_))};
  for (int64_t t = 0; t < T_; ++t) {
    check(gp[t] >= 0 && gp[t] < groups, "group values must lie in [0, groups)");
    ++tg.start[gp[t] + 1];
  }
  for (int64_t g = 0; g < groups; ++g) tg.start[g + 1] += tg.start[g];
  std::vector<int64_t> fill(tg.start.begin(), tg.start.end() - 1);
  for (int64_t t = 0; t < T_; ++t) tg.order[fill[gp[t]]++] = t;
  return tg;
}

torch::Tensor imprint_angles(const torch::Tensor& u, const torch::Tensor& v,
                             const torch::Tensor& u0, const torch::Tensor& v0,
                             const torch::Tensor& weight, const torch::Tensor& radius,
                             const torch::Tensor& group, int64_t groups, int64_t topology,
                             double length, double half_width) {
  check_chart(u, v, topology);
  const Targets tg = sort_targets(u, u0, v0, weight, radius, group, groups);
  auto out = torch::zeros({groups, u.numel(), v.numel()}, u.options());
  if (u0.numel() == 0 || groups == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "imprint_angles", [&] {
    const auto c = make_chart<scalar_t>(u, v, topology, length, half_width);
    angles_impl<scalar_t>(c, u0.data_ptr<scalar_t>(), v0.data_ptr<scalar_t>(),
                          weight.data_ptr<scalar_t>(), radius.data_ptr<scalar_t>(), tg.start,
                          tg.order, groups, out.data_ptr<scalar_t>());
  });
  return out;
}

torch::Tensor imprint_apply(const torch::Tensor& psi, const torch::Tensor& u,
                            const torch::Tensor& v, const torch::Tensor& u0,
                            const torch::Tensor& v0, const torch::Tensor& weight,
                            const torch::Tensor& radius, const torch::Tensor& group,
                            int64_t topology, double length, double half_width) {
  check_chart(u, v, topology);
  check(psi.dim() == 3 && psi.size(1) == u.numel() && psi.size(2) == v.numel() &&
            psi.is_contiguous() && psi.is_complex() &&
            psi.scalar_type() == c10::toComplexType(u.scalar_type()),
        "psi must be a contiguous complex [G, nu, nv] of the chart's dtype");
  const int64_t groups = psi.size(0);
  const Targets tg = sort_targets(u, u0, v0, weight, radius, group, groups);
  auto out = torch::empty_like(psi);
  if (groups == 0) return out;
  const auto re = torch::view_as_real(psi);
  auto out_re = torch::view_as_real(out);
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "imprint_apply", [&] {
    const auto c = make_chart<scalar_t>(u, v, topology, length, half_width);
    apply_impl<scalar_t>(c, re.data_ptr<scalar_t>(), u0.data_ptr<scalar_t>(),
                         v0.data_ptr<scalar_t>(), weight.data_ptr<scalar_t>(),
                         radius.data_ptr<scalar_t>(), tg.start, tg.order, groups,
                         out_re.data_ptr<scalar_t>());
  });
  return out;
}

torch::Tensor pair_factors(const torch::Tensor& u, const torch::Tensor& v, const torch::Tensor& u0,
                           const torch::Tensor& v0, const torch::Tensor& sign, double separation,
                           double core_radius, int64_t abs_charge, int64_t topology,
                           double length, double half_width) {
  check_chart(u, v, topology);
  const int64_t M = u0.numel();
  for (const auto* x : {&u0, &v0, &sign})
    check_vec(*x, u, M, "u0, v0, sign must be contiguous [M] of the chart dtype");
  check(abs_charge >= 0, "abs_charge must be >= 0");
  auto out = torch::empty({M, u.numel(), v.numel(), 2}, u.options());
  if (M > 0) {
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "pair_factors", [&] {
      const auto c = make_chart<scalar_t>(u, v, topology, length, half_width);
      pairs_impl<scalar_t>(c, u0.data_ptr<scalar_t>(), v0.data_ptr<scalar_t>(),
                           sign.data_ptr<scalar_t>(), M, separation, core_radius, abs_charge,
                           out.data_ptr<scalar_t>());
    });
  }
  return torch::view_as_complex(out);
}

// select_targets: the vortices that hhml.ml.env.annihilation.annihilate targets, in its
// slot order (env-major, then rank). Per env b over the S*K columns c: key_c = -depth_c for
// a candidate (valid_c and depth_c >= quality_b), +inf otherwise; the M smallest (key, c)
// pairs in that order (= a stable sort's first M); rank r is chosen when its column is a
// candidate and r < n_b = min(floor((1 - preserve_b) * count_b + 1e-9), M), n_b = 0 unless
// strength_b > 0 (a NaN n_b chooses nothing, as the comparison r < NaN is false). Returns
// u0, v0, weight = (-strength_b) * charge, radius_b (the dtype of `like`) and group
// b * S + c / K for each chosen slot, and the count per env (int64 [B]).
std::vector<torch::Tensor> select_targets(const torch::Tensor& depth, const torch::Tensor& valid,
                                          const torch::Tensor& count,
                                          const torch::Tensor& position,
                                          const torch::Tensor& charge,
                                          const torch::Tensor& strength,
                                          const torch::Tensor& radius,
                                          const torch::Tensor& quality,
                                          const torch::Tensor& preserve, int64_t M, int64_t K,
                                          const torch::Tensor& like) {
  check(depth.dim() == 2 && depth.is_contiguous() && depth.scalar_type() == torch::kFloat64,
        "depth must be contiguous float64 [B, S*K]");
  const int64_t B = depth.size(0), SK = depth.size(1);
  check(K >= 1 && SK % K == 0, "K must be >= 1 and divide the columns of depth");
  check(M >= 1 && M <= SK, "M must lie in [1, S*K]");
  check(valid.sizes() == depth.sizes() && valid.is_contiguous() &&
            valid.scalar_type() == torch::kBool,
        "valid must be contiguous bool [B, S*K]");
  check(charge.sizes() == depth.sizes() && charge.is_contiguous() &&
            charge.scalar_type() == torch::kInt64,
        "charge must be contiguous int64 [B, S*K]");
  check(position.dim() == 3 && position.size(0) == B && position.size(1) == SK &&
            position.size(2) == 2 && position.is_contiguous() &&
            position.scalar_type() == torch::kFloat64,
        "position must be contiguous float64 [B, S*K, 2]");
  for (const auto* x : {&count, &strength, &radius, &quality, &preserve})
    check(x->dim() == 1 && x->numel() == B && x->is_contiguous() &&
              x->scalar_type() == torch::kFloat64,
          "count, strength, radius, quality, preserve must be contiguous float64 [B]");
  const int64_t S = SK / K;
  const double* dp = depth.data_ptr<double>();
  const bool* vp = valid.data_ptr<bool>();
  const double* qp = quality.data_ptr<double>();
  const double* np_ = count.data_ptr<double>();
  const double* pp = preserve.data_ptr<double>();
  const double* sp = strength.data_ptr<double>();
  // per env: the columns of the chosen ranks, in rank order
  std::vector<int64_t> chosen(static_cast<size_t>(B * M));
  auto targeted = torch::zeros({B}, depth.options().dtype(torch::kInt64));
  int64_t* tp = targeted.data_ptr<int64_t>();
  std::vector<double> keys(static_cast<size_t>(M));
  std::vector<int64_t> cols(static_cast<size_t>(M));
  std::vector<char> cand(static_cast<size_t>(M));
  const double inf = std::numeric_limits<double>::infinity();
  int64_t total = 0;
  for (int64_t b = 0; b < B; ++b) {
    double n = std::floor((1.0 - pp[b]) * np_[b] + 1e-9);
    n = std::isnan(n) ? n : std::min(n, static_cast<double>(M));
    if (!(sp[b] > 0.0)) n = 0.0;
    int64_t filled = 0;
    for (int64_t c = 0; c < SK; ++c) {
      const double d = dp[b * SK + c];
      const bool is_cand = vp[b * SK + c] && d >= qp[b];
      const double key = is_cand ? -d : inf;
      // (key, c) with c increasing: an equal key goes after the kept ones (stable)
      if (filled == M && !(key < keys[M - 1])) continue;
      int64_t at = filled < M ? filled : M - 1;
      while (at > 0 && key < keys[at - 1]) {
        keys[at] = keys[at - 1];
        cols[at] = cols[at - 1];
        cand[at] = cand[at - 1];
        --at;
      }
      keys[at] = key;
      cols[at] = c;
      cand[at] = is_cand ? 1 : 0;
      if (filled < M) ++filled;
    }
    int64_t k = 0;
    for (int64_t r = 0; r < filled; ++r)
      if (cand[r] && static_cast<double>(r) < n) chosen[b * M + k++] = cols[r];
    tp[b] = k;
    total += k;
  }
  auto real = like.options();
  auto u0 = torch::empty({total}, real), v0 = torch::empty({total}, real);
  auto weight = torch::empty({total}, real), rad = torch::empty({total}, real);
  auto group = torch::empty({total}, depth.options().dtype(torch::kInt64));
  const double* pos = position.data_ptr<double>();
  const int64_t* qc = charge.data_ptr<int64_t>();
  const double* rp = radius.data_ptr<double>();
  int64_t* gp = group.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "select_targets", [&] {
    scalar_t* up = u0.data_ptr<scalar_t>();
    scalar_t* vq = v0.data_ptr<scalar_t>();
    scalar_t* wp = weight.data_ptr<scalar_t>();
    scalar_t* ro = rad.data_ptr<scalar_t>();
    int64_t t = 0;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t k = 0; k < tp[b]; ++k, ++t) {
        const int64_t c = chosen[b * M + k], node = b * SK + c;
        up[t] = static_cast<scalar_t>(pos[2 * node]);
        vq[t] = static_cast<scalar_t>(pos[2 * node + 1]);
        wp[t] = -static_cast<scalar_t>(sp[b]) * static_cast<scalar_t>(qc[node]);
        ro[t] = static_cast<scalar_t>(rp[b]);
        gp[t] = b * S + c / K;
      }
    }
  });
  return {u0, v0, weight, rad, group, targeted};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // the GIL is released: the kernels touch no Python object
  m.def("imprint_angles", &imprint_angles, "summed weighted vortex phase imprints per group",
        py::call_guard<py::gil_scoped_release>());
  m.def("imprint_apply", &imprint_apply, "psi times e^{i * the summed phase imprints}",
        py::call_guard<py::gil_scoped_release>());
  m.def("select_targets", &select_targets, "the annihilation targets of each env, packed",
        py::call_guard<py::gil_scoped_release>());
  m.def("pair_factors", &pair_factors, "multiplicative imprints of neutral vortex pairs",
        py::call_guard<py::gil_scoped_release>());
}
