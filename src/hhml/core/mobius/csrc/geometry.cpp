// Geometry update of a batched Miller band ensemble (HHmL), one pass per element, CPU.
//
// The fused form of hhml.core.mobius.ensemble_geometry.MillerBandGeometry.coefficients and
// .distances plus the ensemble's coupling weights, for B elements of S strips on an
// nu x nv cell-centred chart. Per element b (one work item, OpenMP through at::parallel_for):
//
//   1. the closed-form Miller frame of every strip s at the P = 2 nu angles phi_p (cell
//      centres, then u-faces): R, R', R'', Z, Z', q, s = |C'|, alpha, beta, tau, n1, n2,
//      as miller_frame, in its operation order (cos psi, sin psi shared by the strips);
//   2. the metric features [F, P] (|X_phi|^2 as a quadratic form in c(v)) and, at the
//      centres, the cross-section directions f_k, as _metric_features and _sections;
//   3. on the grid, g = features . basis (the bases of MillerBandGeometry, cell factors
//      folded in), then
//        c_u+ = 1/sqrt(g_u g_c), c_u- = 1/sqrt(g_u(-u neighbour) g_c)  (seam-aware),
//        c_v+ = sqrt(g_v(j+1) / g_c), c_v- = sqrt(g_v(-v face) / g_c), area = sqrt(g_c) dA;
//   4. between strips s and s + 1: d^2 = dfeatures . basis_distance, d = sqrt(max(d^2, 0)),
//      weight = exp(d * (-(1/l_b))).
//
// Everything is evaluated in double (-ffp-contract=off: no fused multiply-adds) and written
// as double and/or float (each float value is the double one rounded). sin, cos, asin and
// exp are SLEEF's 1-ulp vector functions (those torch's vectorised CPU kernels call; linked
// from libtorch_cpu) when the build has AVX2 and FMA, libm otherwise; the grid products are
// summed in feature order without FMA (torch's matrix product may round the last bit
// differently, and its float64 sqrt, through MKL, is not always correctly rounded: the
// results agree to a few ulp, not bit for bit).
//
// Speed: the loops over angles and nodes carry no branches and are vectorised (omp simd;
// IEEE division and square root per lane, the same results as scalar code). Per node the
// grid stage costs 5 square roots and 4 divisions, which bound it (about 5 ns a node on a
// 2-core AMD EPYC VM); float64 coefficients are written only when asked for.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <sleef.h>
#define HHML_GEOMETRY_SIMD 1
#endif

namespace {

enum Topology : int64_t { kMobius = 0, kCylinder = 1, kTorus = 2 };

// ------------------------------------------------------------------ array math
#ifdef HHML_GEOMETRY_SIMD
using VecFn = __m256d (*)(__m256d);

// y[i] = f(x[i]) for i < n, 4 lanes at a time; the tail through a zero-padded vector (as
// torch's vec::map), so every value comes from the same vector function
template <VecFn F>
inline void map(const double* x, double* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, F(_mm256_loadu_pd(x + i)));
  if (i < n) {
    alignas(32) double buf[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t k = 0; k < n - i; ++k) buf[k] = x[i + k];
    _mm256_store_pd(buf, F(_mm256_load_pd(buf)));
    for (int64_t k = 0; k < n - i; ++k) y[i + k] = buf[k];
  }
}
inline void array_cos(const double* x, double* y, int64_t n) { map<Sleef_cosd4_u10avx2>(x, y, n); }
inline void array_sin(const double* x, double* y, int64_t n) { map<Sleef_sind4_u10avx2>(x, y, n); }
inline void array_asin(const double* x, double* y, int64_t n) {
  map<Sleef_asind4_u10avx2>(x, y, n);
}
inline void array_exp(const double* x, double* y, int64_t n) { map<Sleef_expd4_u10avx2>(x, y, n); }
#else
inline void array_cos(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::cos(x[i]);
}
inline void array_sin(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::sin(x[i]);
}
inline void array_asin(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::asin(x[i]);
}
inline void array_exp(const double* x, double* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}
#endif

// ------------------------------------------------------------------ the chart
struct Chart {
  int64_t S, nu, nv, P, F, topology;
  double half_width, cell_area;
  const double *phi, *cos_p, *sin_p, *cos_half, *sin_half, *minor;
  const double *b_centre, *b_u, *b_v, *b_dist;  // [F, nv], [F, nv], [F, nv + 1], [F, nv]
};

// What one element writes: pointers to the element's block (nullptr: not requested).
struct Outputs {
  double* c64[4];
  float* c32[4];
  double* area64;
  float* area32;
  double* w64;
  float* w32;
};

// Per-thread buffers for one element.
struct Scratch {
  std::vector<double> psi, cos_s, sin_s, dpsi;  // [P]
  std::vector<double> big_r, d_r, q, speed;     // [P] of the current strip
  std::vector<double> feat;                     // [S, F, P] metric features
  std::vector<double> point;                    // [S, 2, nu]: R, Z at the centres
  std::vector<double> sec;                      // [S, K, 3, nu] cross-section directions
  std::vector<double> gc, gu, gv;               // [nu, nv], [nu + 1, nv], [2, nu, nv]
  std::vector<double> out;                      // [5, nu, nv]: outputs not requested
  std::vector<double> dfeat;                    // [F, nu]
  std::vector<double> diff;                     // [1 + K, 3, nu]
  explicit Scratch(const Chart& c) {
    const auto P = static_cast<size_t>(c.P), nu = static_cast<size_t>(c.nu),
               nv = static_cast<size_t>(c.nv), S = static_cast<size_t>(c.S),
               F = static_cast<size_t>(c.F);
    const size_t K = c.topology == kTorus ? 2 : 1;
    psi.resize(P);
    cos_s.resize(P);
    sin_s.resize(P);
    dpsi.resize(P);
    big_r.resize(P);
    d_r.resize(P);
    q.resize(P);
    speed.resize(P);
    feat.resize(S * F * P);
    point.resize(S * 2 * nu);
    sec.resize(S * K * 3 * nu);
    gc.resize(nu * nv);
    gu.resize((nu + 1) * nv);
    gv.resize(2 * nu * nv);
    out.resize(5 * nu * nv);
    dfeat.resize(F * nu);
    diff.resize((1 + K) * 3 * nu);
  }
};

// Frames of the S strips of one element, as miller_frame (same operation order; Python
// precedence: -r * x * y is ((-r) * x) * y), then the metric features (_metric_features)
// and, if asked, the centre points and cross-section directions (_sections). The loops
// over the angles have no branches, so that they vectorise (divisions and square roots,
// 4 lanes, exactly rounded as the scalar ones).
template <int64_t Topo>
void frames(const Chart& c, Scratch& s, double r0, double kap, double a, bool sections) {
  const int64_t P = c.P, nu = c.nu, F = c.F;
  double *psi = s.psi.data(), *cos_s = s.cos_s.data(), *sin_s = s.sin_s.data();
  double* dpsi = s.dpsi.data();
  const double *cp = c.cos_p, *sp = c.sin_p, *ch = c.cos_half, *sh = c.sin_half;
  for (int64_t p = 0; p < P; ++p) psi[p] = c.phi[p] + a * sp[p];
  array_cos(psi, cos_s, P);
  array_sin(psi, sin_s, P);
  for (int64_t p = 0; p < P; ++p) dpsi[p] = 1.0 + a * cp[p];
  constexpr int64_t K = Topo == kTorus ? 2 : 1;
  double *big_r_ = s.big_r.data(), *d_r_ = s.d_r.data(), *q_ = s.q.data();
  double* speed_ = s.speed.data();
  for (int64_t st = 0; st < c.S; ++st) {
    const double r = c.minor[st];
    const double kr = kap * r;
    double* __restrict feat = s.feat.data() + st * F * P;
#pragma omp simd
    for (int64_t p = 0; p < P; ++p) {
      const double big_r = r0 + r * cos_s[p];
      const double d_r = ((-r) * sin_s[p]) * dpsi[p];
      const double dd_r = r * (((a * sin_s[p]) * sp[p]) - ((cos_s[p] * dpsi[p]) * dpsi[p]));
      const double z = kr * sp[p];
      const double d_z = kr * cp[p];
      const double q = std::sqrt(big_r * big_r + d_z * d_z);
      const double speed = std::sqrt(d_r * d_r + q * q);
      const double acc_n2 = (big_r * (-z) - (2.0 * d_r) * d_z) / q;
      const double acc_n1 =
          (((dd_r - big_r) * q) * q - d_r * ((2.0 * d_r) * big_r - z * d_z)) / (speed * q);
      const double alpha = (-acc_n1) / speed;
      const double beta = (-acc_n2) / speed;
      const double tau = (-((d_z * speed) * speed + (d_r * q) * acc_n2)) / ((speed * q) * q);
      big_r_[p] = big_r;
      d_r_[p] = d_r;
      q_[p] = q;
      speed_[p] = speed;
      if constexpr (Topo == kMobius) {
        const double gamma = alpha * ch[p] + beta * sh[p];
        const double t = 0.5 + tau;
        feat[p] = speed * speed;
        feat[P + p] = speed * gamma;
        feat[2 * P + p] = gamma * gamma + t * t;
      } else if constexpr (Topo == kCylinder) {
        feat[p] = speed * speed;
        feat[P + p] = speed * beta;
        feat[2 * P + p] = beta * beta + tau * tau;
      } else {
        const double tau2 = tau * tau;
        feat[p] = speed * speed;
        feat[P + p] = speed * alpha;
        feat[2 * P + p] = speed * beta;
        feat[3 * P + p] = alpha * alpha + tau2;
        feat[4 * P + p] = alpha * beta;
        feat[5 * P + p] = beta * beta + tau2;
      }
    }
    if (!sections) continue;
    double* __restrict pt = s.point.data() + st * 2 * nu;
    double* __restrict sec = s.sec.data() + st * K * 3 * nu;
#pragma omp simd
    for (int64_t p = 0; p < nu; ++p) {
      const double big_r = big_r_[p], d_r = d_r_[p], q = q_[p], speed = speed_[p];
      const double d_z = kr * cp[p];
      const double sq = speed * q;
      const double n1x = q / speed, n1y = ((-d_r) * big_r) / sq, n1z = ((-d_r) * d_z) / sq;
      const double n2x = 0.0, n2y = (-d_z) / q, n2z = big_r / q;
      pt[p] = big_r;
      pt[nu + p] = kr * sp[p];
      if constexpr (Topo == kMobius) {
        sec[p] = ch[p] * n1x + sh[p] * n2x;
        sec[nu + p] = ch[p] * n1y + sh[p] * n2y;
        sec[2 * nu + p] = ch[p] * n1z + sh[p] * n2z;
      } else if constexpr (Topo == kCylinder) {
        sec[p] = n2x;
        sec[nu + p] = n2y;
        sec[2 * nu + p] = n2z;
      } else {
        sec[p] = n1x;
        sec[nu + p] = n1y;
        sec[2 * nu + p] = n1z;
        sec[3 * nu + p] = n2x;
        sec[4 * nu + p] = n2y;
        sec[5 * nu + p] = n2z;
      }
    }
  }
}

void frames(const Chart& c, Scratch& s, double r0, double kap, double a, bool sections) {
  if (c.topology == kMobius)
    frames<kMobius>(c, s, r0, kap, a, sections);
  else if (c.topology == kCylinder)
    frames<kCylinder>(c, s, r0, kap, a, sections);
  else
    frames<kTorus>(c, s, r0, kap, a, sections);
}

// out[i, j] = sum_k feat[k, p0 + i] basis[k, j] for i < nu, j < n, k in feature order
// (no FMA); basis rows are `stride` apart (a column window of a wider basis).
template <int64_t F>
inline void on_grid(const double* feat, int64_t P, int64_t p0, const double* basis,
                    int64_t stride, int64_t nu, int64_t n, double* __restrict out) {
  for (int64_t i = 0; i < nu; ++i) {
    double f[F];
    for (int64_t k = 0; k < F; ++k) f[k] = feat[k * P + p0 + i];
    double* __restrict row = out + i * n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      double acc = f[0] * basis[j];
      for (int64_t k = 1; k < F; ++k) acc = acc + f[k] * basis[k * stride + j];
      row[j] = acc;
    }
  }
}

inline void on_grid(int64_t F, const double* feat, int64_t P, int64_t p0, const double* basis,
                    int64_t stride, int64_t nu, int64_t n, double* out) {
  if (F == 3)
    on_grid<3>(feat, P, p0, basis, stride, nu, n, out);
  else
    on_grid<6>(feat, P, p0, basis, stride, nu, n, out);
}

template <typename T>
inline void store(const double* __restrict x, T* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(x[i]);
}

// The per-node formulas of MillerBandGeometry.coefficients over n nodes, written as TC
// (coefficients) and TA (areas): c_u+ = 1/sqrt(g_u g_c), c_u- = 1/sqrt(g_u- g_c),
// c_v+ = sqrt(g_v+ / g_c), c_v- = sqrt(g_v- / g_c), area = sqrt(g_c) dA.
template <typename TC, typename TA>
void nodes(int64_t n, const double* __restrict gc, const double* __restrict gu,
           const double* __restrict gum, const double* __restrict gvp,
           const double* __restrict gvm, double cell_area, TC* __restrict cup,
           TC* __restrict cum, TC* __restrict cvp, TC* __restrict cvm, TA* __restrict area) {
#pragma omp simd
  for (int64_t m = 0; m < n; ++m) {
    const double g = gc[m];
    cup[m] = static_cast<TC>(1.0 / std::sqrt(gu[m] * g));
    cum[m] = static_cast<TC>(1.0 / std::sqrt(gum[m] * g));
    cvp[m] = static_cast<TC>(std::sqrt(gvp[m] / g));
    cvm[m] = static_cast<TC>(std::sqrt(gvm[m] / g));
    area[m] = static_cast<TA>(std::sqrt(g) * cell_area);
  }
}

template <typename TC>
void nodes(int64_t n, const double* gc, const double* gu, const double* gum, const double* gvp,
           const double* gvm, double cell_area, TC* const* coef, double* area64,
           float* area32, double* scratch) {
  if (area32 != nullptr)
    nodes<TC, float>(n, gc, gu, gum, gvp, gvm, cell_area, coef[0], coef[1], coef[2], coef[3],
                     area32);
  else
    nodes<TC, double>(n, gc, gu, gum, gvp, gvm, cell_area, coef[0], coef[1], coef[2], coef[3],
                      area64 != nullptr ? area64 : scratch);
}

// Coefficients and areas of strip st of the element (frames() done), into the outputs at
// offset st * nu * nv of the element's block (outputs not requested go to scratch).
void coefficients(const Chart& c, Scratch& s, int64_t st, const Outputs& o) {
  const int64_t nu = c.nu, nv = c.nv, P = c.P, F = c.F, n = nu * nv;
  const double* feat = s.feat.data() + st * F * P;
  double *gc = s.gc.data(), *gum = s.gu.data(), *gvp = s.gv.data(), *gvm = gvp + n;
  double* gu = gum + nv;  // u-faces [nu, nv] after one row for the seam face
  on_grid(F, feat, P, 0, c.b_centre, nv, nu, nv, gc);
  on_grid(F, feat, P, nu, c.b_u, nv, nu, nv, gu);
  // v-faces j + 1 and j of cell j: two windows of the [F, nv + 1] basis
  on_grid(F, feat, P, 0, c.b_v + 1, nv + 1, nu, nv, gvp);
  on_grid(F, feat, P, 0, c.b_v, nv + 1, nu, nv, gvm);
  // the -u face of row 0 is the seam face (v flipped on the Moebius band) ...
  const double* seam = gu + (nu - 1) * nv;
  for (int64_t j = 0; j < nv; ++j) gum[j] = seam[c.topology == kMobius ? nv - 1 - j : j];
  // ... and the torus's -v face of cell 0 is the +v face of cell nv - 1
  if (c.topology == kTorus)
    for (int64_t i = 0; i < nu; ++i) gvm[i * nv] = gvp[i * nv + nv - 1];
  const int64_t off = st * n;
  double* scratch = s.out.data();
  double* area64 = o.area64 != nullptr ? o.area64 + off : nullptr;
  float* area32 = o.area32 != nullptr ? o.area32 + off : nullptr;
  if (o.c32[0] != nullptr && o.c64[0] == nullptr) {
    float* coef[4] = {o.c32[0] + off, o.c32[1] + off, o.c32[2] + off, o.c32[3] + off};
    nodes<float>(n, gc, gu, gum, gvp, gvm, c.cell_area, coef, area64, area32, scratch);
    return;
  }
  double* coef[4];
  for (int k = 0; k < 4; ++k)
    coef[k] = o.c64[k] != nullptr ? o.c64[k] + off : scratch + (k + 1) * n;
  nodes<double>(n, gc, gu, gum, gvp, gvm, c.cell_area, coef, area64, area32, scratch);
  if (o.c32[0] != nullptr)
    for (int k = 0; k < 4; ++k) store(coef[k], o.c32[k] + off, n);
}

inline double dot3(const double* a, const double* b, int64_t stride, int64_t i) {
  return (a[i] * b[i] + a[stride + i] * b[stride + i]) + a[2 * stride + i] * b[2 * stride + i];
}

// Coupling weights between strips st and st + 1 (frames() with sections done).
void weights(const Chart& c, Scratch& s, int64_t st, double rate, const Outputs& o) {
  const int64_t nu = c.nu, nv = c.nv, n = nu * nv;
  const int64_t K = c.topology == kTorus ? 2 : 1;
  const double* p0 = s.point.data() + st * 2 * nu;
  const double* p1 = p0 + 2 * nu;
  const double* f0 = s.sec.data() + st * K * 3 * nu;
  const double* f1 = f0 + K * 3 * nu;
  double* df = s.dfeat.data();
  // differences (component first, [1 + K, 3, nu]) and their quadratic features, as
  // _quadratic_features: [a0.a0, a0.f_k, f_k.f_l (k <= l)]
  double* diff = s.diff.data();
  for (int64_t i = 0; i < nu; ++i) {
    diff[i] = p1[i] - p0[i];
    diff[nu + i] = 0.0 - 0.0;
    diff[2 * nu + i] = p1[nu + i] - p0[nu + i];
  }
  for (int64_t m = 0; m < K * 3 * nu; ++m) diff[3 * nu + m] = f1[m] - f0[m];
  const double* a0 = diff;
  for (int64_t i = 0; i < nu; ++i) {
    int64_t k = 0;
    df[k++ * nu + i] = dot3(a0, a0, nu, i);
    for (int64_t l = 0; l < K; ++l) df[k++ * nu + i] = dot3(a0, a0 + (1 + l) * 3 * nu, nu, i);
    for (int64_t l = 0; l < K; ++l)
      for (int64_t m = l; m < K; ++m)
        df[k++ * nu + i] = dot3(a0 + (1 + l) * 3 * nu, a0 + (1 + m) * 3 * nu, nu, i);
  }
  double* __restrict d = s.gc.data();
  on_grid(c.F, df, nu, 0, c.b_dist, nv, nu, nv, d);
#pragma omp simd
  for (int64_t m = 0; m < n; ++m) {
    const double d2 = d[m] < 0.0 ? 0.0 : d[m];  // clamp_min(0): NaN stays NaN
    d[m] = std::sqrt(d2) * rate;
  }
  const int64_t off = st * n;
  if (o.w64 != nullptr) {
    array_exp(d, o.w64 + off, n);
  } else {
    double* w = s.out.data();
    array_exp(d, w, n);
    store(w, o.w32 + off, n);
  }
}

void check(bool ok, const char* what) { TORCH_CHECK(ok, "geometry kernel: ", what); }

void check_f64(const torch::Tensor& x, int64_t n, const char* what) {
  check(x.device().is_cpu() && x.scalar_type() == torch::kFloat64 && x.dim() == 1 &&
            x.numel() == n && x.is_contiguous(),
        what);
}

void check_basis(const torch::Tensor& x, int64_t F, int64_t n, const char* what) {
  check(x.device().is_cpu() && x.scalar_type() == torch::kFloat64 && x.dim() == 2 &&
            x.size(0) == F && x.size(1) == n && x.is_contiguous(),
        what);
}

torch::Tensor empty(int64_t bits, std::vector<int64_t> shape) {
  if (bits == 0) return torch::Tensor();
  return torch::empty(shape, torch::dtype(bits == 64 ? torch::kFloat64 : torch::kFloat32));
}

template <typename T>
T* ptr(const torch::Tensor& x, int64_t offset) {
  return x.defined() ? x.data_ptr<T>() + offset : nullptr;
}

// Returns [c64 (4), c32 (4), area, weights]; an output not requested is undefined (None).
std::vector<torch::Tensor> band_update(
    const torch::Tensor& aspect, const torch::Tensor& kappa, const torch::Tensor& delta,
    const torch::Tensor& coupling_range, const torch::Tensor& phi, const torch::Tensor& cos_p,
    const torch::Tensor& sin_p, const torch::Tensor& cos_half, const torch::Tensor& sin_half,
    const torch::Tensor& minor, const torch::Tensor& basis_centre, const torch::Tensor& basis_u,
    const torch::Tensor& basis_v, const torch::Tensor& basis_distance, int64_t nu, int64_t nv,
    int64_t topology, double half_width, double cell_area, bool coef64, bool coef32,
    int64_t area_bits, int64_t weight_bits) {
  check(topology >= kMobius && topology <= kTorus, "topology must be 0, 1 or 2");
  check(nu >= 1 && nv >= 1, "nu, nv must be >= 1");
  for (int64_t bits : {area_bits, weight_bits})
    check(bits == 0 || bits == 32 || bits == 64, "area_bits, weight_bits must be 0, 32 or 64");
  const int64_t B = aspect.numel(), S = minor.numel(), P = 2 * nu;
  const int64_t F = topology == kTorus ? 6 : 3;
  check(B >= 1 && S >= 1, "need at least one element and one strip");
  check_f64(aspect, B, "aspect must be a contiguous float64 CPU [B]");
  check_f64(kappa, B, "kappa must be a contiguous float64 CPU [B]");
  check_f64(delta, B, "delta must be a contiguous float64 CPU [B]");
  if (weight_bits != 0) check_f64(coupling_range, B, "coupling_range must be float64 CPU [B]");
  for (const auto* x : {&phi, &cos_p, &sin_p, &cos_half, &sin_half})
    check_f64(*x, P, "phi, cos_p, sin_p, cos_half, sin_half must be float64 CPU [2 nu]");
  check_f64(minor, S, "minor must be a contiguous float64 CPU [S]");
  check_basis(basis_centre, F, nv, "basis_centre must be float64 [F, nv]");
  check_basis(basis_u, F, nv, "basis_u must be float64 [F, nv]");
  check_basis(basis_v, F, nv + 1, "basis_v must be float64 [F, nv + 1]");
  check_basis(basis_distance, F, nv, "basis_distance must be float64 [F, nv]");

  const Chart c{S,
                nu,
                nv,
                P,
                F,
                topology,
                half_width,
                cell_area,
                phi.data_ptr<double>(),
                cos_p.data_ptr<double>(),
                sin_p.data_ptr<double>(),
                cos_half.data_ptr<double>(),
                sin_half.data_ptr<double>(),
                minor.data_ptr<double>(),
                basis_centre.data_ptr<double>(),
                basis_u.data_ptr<double>(),
                basis_v.data_ptr<double>(),
                basis_distance.data_ptr<double>()};
  std::vector<torch::Tensor> out(10);
  const std::vector<int64_t> shape{B, S, nu, nv};
  for (int k = 0; k < 4; ++k) {
    out[k] = empty(coef64 ? 64 : 0, shape);
    out[4 + k] = empty(coef32 ? 32 : 0, shape);
  }
  out[8] = empty(area_bits, shape);
  out[9] = empty(weight_bits, {B, S - 1, nu, nv});
  const bool want_coef = coef64 || coef32 || area_bits != 0;
  const bool want_weights = weight_bits != 0 && S > 1;
  if (!want_coef && !want_weights) return out;

  std::vector<double> asin_delta(static_cast<size_t>(B));
  array_asin(delta.data_ptr<double>(), asin_delta.data(), B);
  const double* asp = aspect.data_ptr<double>();
  const double* kap = kappa.data_ptr<double>();
  const double* ell = weight_bits != 0 ? coupling_range.data_ptr<double>() : nullptr;
  const int64_t block = S * nu * nv, wblock = (S - 1) * nu * nv;
  const int64_t grain = std::max<int64_t>(1, 16384 / block);
  at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
    Scratch s(c);
    for (int64_t b = b0; b < b1; ++b) {
      // r0 = aspect * w; the weights' rate is -1/l as torch computes it: (1/l) * (-1)
      frames(c, s, asp[b] * half_width, kap[b], asin_delta[b], want_weights);
      Outputs o{};
      for (int k = 0; k < 4; ++k) {
        o.c64[k] = ptr<double>(out[k], b * block);
        o.c32[k] = ptr<float>(out[4 + k], b * block);
      }
      o.area64 = area_bits == 64 ? ptr<double>(out[8], b * block) : nullptr;
      o.area32 = area_bits == 32 ? ptr<float>(out[8], b * block) : nullptr;
      o.w64 = weight_bits == 64 ? ptr<double>(out[9], b * wblock) : nullptr;
      o.w32 = weight_bits == 32 ? ptr<float>(out[9], b * wblock) : nullptr;
      if (want_coef)
        for (int64_t st = 0; st < S; ++st) coefficients(c, s, st, o);
      if (want_weights) {
        const double rate = (1.0 / ell[b]) * -1.0;
        for (int64_t st = 0; st + 1 < S; ++st) weights(c, s, st, rate, o);
      }
    }
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // the GIL is released: the kernel touches no Python object
  m.def("band_update", &band_update,
        "coefficients, areas and coupling weights of a batched Miller band ensemble",
        py::call_guard<py::gil_scoped_release>());
}
