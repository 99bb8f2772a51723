// Per-strip vortex measurement of the Möbius vortex environments (HHmL), OpenMP over strips.
//
// For each of N strips (field psi [N, nu, nv] complex, contiguous; ghost [N, nv] = the +u
// neighbours of the last row with the seam flip and twist applied, as u_plus gives them):
//   1. plaquette winding numbers as hhml.core.resonance.vortices.winding_numbers: a fast
//      arctangent with the exact branch of atan2, computed once per lattice edge and shared
//      by the two plaquettes beside it, decides every plaquette whose angle sum is within
//      1e-3 turns of an integer (the torch sum is within ~1e-6 of the same integer); any
//      other plaquette (zero or underflowed corners, non-finite values, an edge angle of
//      exactly +-pi) is recomputed with std::atan2 in the order of the torch code;
//   2. statistics of all vortices (count, sum |q|, count |q| >= 2, sum of chart charges,
//      sum of core depths) and the first K vortices in plaquette order: sub-cell position
//      (the 8 Newton steps of _bilinear_zero), seam mapping, chart charge, depth;
//   3. hexatic order of those K (nearest neighbours from a window in u order: ranked
//      without branches where no tie touches the nearest ones, else by an insertion list;
//      widened while the u gap does not exclude the next point);
//   4. ages: links to the previous vortices (candidates from a window in u order), then
//      rounds of mutual nearest allowed neighbours, each round over the links between
//      still unlinked points only;
//   5. the per-environment features from the per-strip sums (strips of one environment
//      are consecutive).
// Positions, charges, distances and ages follow the torch code operation by operation
// (compile with -ffp-contract=off) and are bit-identical to it; |psi_6| uses
// (du + i dv)^6 / |d|^6 instead of atan2 / cos / sin, the strip rms is summed in double and
// the ages of an environment with compensated summation, which differ from the torch code
// by rounding only. See hhml/ml/env/measure.py.
// The kernel works strip by strip, each strip's sums in a fixed order: its results do not
// depend on the thread count or the schedule.
// moment_sums: the per-strip sums of the field moments (area, |psi|^2, |psi|^4, gradient
// energy through the five-point Laplacian) in one pass, for observables.moment_tensors.
// hexatic_points: step 3 for given points (tests).
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Config {
  int64_t nu, nv, p1, p2, K;
  bool flip, periodic_v, mobius;
  double length, half_width, du, dv, tiny, track_distance;
  int64_t min_points, neighbours, rounds;
};

// |x| of a complex number, as torch computes it (hypot, correctly rounded in float)
inline float cabs_t(float re, float im) {
  return static_cast<float>(std::sqrt(static_cast<double>(re) * re + static_cast<double>(im) * im));
}
inline double cabs_t(double re, double im) { return std::hypot(re, im); }

// arctangent with the exact branch of atan2 (signed zeros included): an odd polynomial of
// degree 15 on [0, 1] (error 3.8e-8 rad in double), then the octant; only used where the
// sum of four of them is rounded to an integer
template <typename T>
inline T atan2_fast(T y, T x) {
  const T ax = std::fabs(x), ay = std::fabs(y);
  const bool swap = ay > ax;
  const T num = swap ? ax : ay, den = swap ? ay : ax;
  const T t = den > T(0) ? num / den : T(0);
  const T t2 = t * t;
  T r = T(-0.0040540580);
  r = r * t2 + T(0.0218612288);
  r = r * t2 + T(-0.0559098861);
  r = r * t2 + T(0.0964200441);
  r = r * t2 + T(-0.1390853351);
  r = r * t2 + T(0.1994653599);
  r = r * t2 + T(-0.3332985605);
  r = r * t2 + T(0.9999993329);
  r = r * t;
  r = swap ? T(kPi / 2) - r : r;
  r = std::signbit(x) ? T(kPi) - r : r;
  return std::copysign(r, y);
}

// x * conj(y), as torch's complex multiply
template <typename T>
inline void mul_conj(const T* x, const T* y, T& re, T& im) {
  re = x[0] * y[0] + x[1] * y[1];
  im = x[1] * y[0] - x[0] * y[1];
}

template <typename T>
inline int64_t to_int(T w) {
  // torch's float -> int64 conversion of a non-finite value on x86
  return std::isfinite(w) ? static_cast<int64_t>(w) : std::numeric_limits<int64_t>::min();
}

// winding number of the plaquette a -> b -> c -> d, exactly as torch.round(sum angle / 2pi)
template <typename T>
inline int64_t winding(const T* a, const T* b, const T* c, const T* d) {
  T pr[4], pi[4];
  mul_conj(b, a, pr[0], pi[0]);
  mul_conj(c, b, pr[1], pi[1]);
  mul_conj(d, c, pr[2], pi[2]);
  mul_conj(a, d, pr[3], pi[3]);
  const T two_pi = T(2.0 * kPi);
  bool finite = true;
  T total = T(0);
  for (int k = 0; k < 4; ++k) {
    finite = finite && std::isfinite(pr[k]) && std::isfinite(pi[k]);
    total += atan2_fast(pi[k], pr[k]);
  }
  const T w = std::nearbyint(total / two_pi);
  if (finite && std::fabs(total / two_pi - w) <= T(1e-3)) return static_cast<int64_t>(w);
  // far from an integer (zero or underflowed corners) or non-finite: the torch sequence
  T exact = ((std::atan2(pi[0], pr[0]) + std::atan2(pi[1], pr[1])) + std::atan2(pi[2], pr[2])) +
            std::atan2(pi[3], pr[3]);
  return to_int(std::nearbyint(exact / two_pi));
}

template <typename T>
inline T clamp01(T x) {
  x = x < T(0) ? T(0) : x;  // NaN stays NaN, as torch.clamp
  return x > T(1) ? T(1) : x;
}

// the 8 Newton steps of hhml.core.resonance.vortices._bilinear_zero, operation by operation,
// for M plaquettes with coefficients a, b, c, d (f = a + b s + c t + d s t), vectorised
template <typename T>
void newton_steps(int64_t M, const T* __restrict Ar, const T* __restrict Ai,
                  const T* __restrict Br, const T* __restrict Bi, const T* __restrict Cr,
                  const T* __restrict Ci, const T* __restrict Dr, const T* __restrict Di,
                  T* __restrict Sv, T* __restrict Tv) {
  for (int it = 0; it < 8; ++it) {
    for (int64_t m = 0; m < M; ++m) {
      const T s = Sv[m], t = Tv[m];
      const T fr = ((Ar[m] + Br[m] * s) + Cr[m] * t) + (Dr[m] * s) * t;
      const T fi = ((Ai[m] + Bi[m] * s) + Ci[m] * t) + (Di[m] * s) * t;
      const T fsr = Br[m] + Dr[m] * t, fsi = Bi[m] + Di[m] * t;
      const T ftr = Cr[m] + Dr[m] * s, fti = Ci[m] + Di[m] * s;
      T det = fsr * fti - ftr * fsi;
      det = std::fabs(det) > T(1e-30) ? det : T(1e-30);
      const T ds = (fr * fti - ftr * fi) / det;
      const T dt = (fsr * fi - fr * fsi) / det;
      Sv[m] = clamp01(s - ds);
      Tv[m] = clamp01(t - dt);
    }
  }
}

inline bool before(double d2a, int64_t ia, double d2b, int64_t ib) {
  return d2a < d2b || (d2a == d2b && ia < ib);
}

// Shortest chart displacements (du, dv) and d2 = du^2 + dv^2 from (ui, vi) to the points
// (u[e], v[e]), e < cnt: hexatic_order's image rule (images in the order shift 0, +L, -L,
// times the v shifts 0, +2w, -2w on the torus; a later image replaces only a strictly
// shorter one). Vectorised over e.
inline void displacements(const Config& cfg, double ui, double vi, const double* u,
                          const double* v, int64_t cnt, double* d2o, double* duo, double* dvo) {
  const double L = cfg.length, w = cfg.half_width;
  const double flip = cfg.mobius ? -1.0 : 1.0;
  const double inf = std::numeric_limits<double>::infinity();
  if (!cfg.periodic_v) {
    for (int64_t e = 0; e < cnt; ++e) {
      const double uj = u[e], vj = v[e];
      double du = (uj + 0.0) - ui, dv = (1.0 * vj + 0.0) - vi;
      double d2 = du * du + dv * dv;
      bool t = d2 < inf;
      double bd = t ? d2 : inf, bu = t ? du : 0.0, bv = t ? dv : 0.0;
      du = (uj + L) - ui;
      dv = (flip * vj + 0.0) - vi;
      d2 = du * du + dv * dv;
      t = d2 < bd;
      bd = t ? d2 : bd;
      bu = t ? du : bu;
      bv = t ? dv : bv;
      du = (uj + -L) - ui;
      d2 = du * du + dv * dv;
      t = d2 < bd;
      d2o[e] = t ? d2 : bd;
      duo[e] = t ? du : bu;
      dvo[e] = t ? dv : bv;
    }
    return;
  }
  const double shifts[3] = {0.0, L, -L};
  const double signs[3] = {1.0, flip, flip};
  const double vshift[3] = {0.0, 2 * w, -2 * w};
  for (int64_t e = 0; e < cnt; ++e) {
    double bd = inf, bu = 0.0, bv = 0.0;
    for (int a = 0; a < 3; ++a) {
      for (int m = 0; m < 3; ++m) {
        const double du = (u[e] + shifts[a]) - ui;
        const double dv = (signs[a] * v[e] + vshift[m]) - vi;
        const double d2 = du * du + dv * dv;
        const bool t = d2 < bd;
        bd = t ? d2 : bd;
        bu = t ? du : bu;
        bv = t ? dv : bv;
      }
    }
    d2o[e] = bd;
    duo[e] = bu;
    dvo[e] = bv;
  }
}

// order [n]: indices sorted by (u, index); plaquette order is almost u order, so an
// insertion sort is cheap
inline void sort_by_u(int64_t n, const double* u, std::vector<int64_t>& order) {
  order.resize(n);
  for (int64_t a = 0; a < n; ++a) {
    int64_t b = a;
    while (b > 0 && (u[order[b - 1]] > u[a] || (u[order[b - 1]] == u[a] && order[b - 1] > a))) {
      order[b] = order[b - 1];
      --b;
    }
    order[b] = a;
  }
}

struct Lifted {
  // points sorted by u, three times: rank r at r, n + r and 2n + r (the copies below and
  // above stand for the neighbours through the seam), then kPad entries of padding (0)
  static constexpr int64_t kPad = 8;
  std::vector<int64_t> order, index;
  std::vector<double> u, v;
  void build(int64_t n, const double* pu, const double* pv) {
    sort_by_u(n, pu, order);
    u.resize(3 * n + kPad);
    v.resize(3 * n + kPad);
    index.resize(3 * n + kPad);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t a = order[r];
      u[r] = u[n + r] = u[2 * n + r] = pu[a];
      v[r] = v[n + r] = v[2 * n + r] = pv[a];
      index[r] = index[n + r] = index[2 * n + r] = a;
    }
    std::fill_n(u.data() + 3 * n, kPad, 0.0);
    std::fill_n(v.data() + 3 * n, kPad, 0.0);
    std::fill_n(index.data() + 3 * n, kPad, 0);
  }
};

// Work arrays of hexatic (kept across strips: no allocation per call)
struct HexScratch {
  std::vector<double> d2, du, dv;  // window candidates (padded to a multiple of 8)
  std::vector<int64_t> rank;
  std::vector<double> bd, bu, bv;  // the k nearest, nearest first (slot k: discarded)
  std::vector<int64_t> bi;
  std::vector<double> nd2, ndu, ndv, re, im;  // those of every point, and psi_k
};

// Mean |psi_k| of the n points of lf (built from their u, v; u in [0, L)); 0 below
// min_points. The k nearest neighbours of each point come from a window of its neighbours
// in u order, widened while the u gap of the next point (a lower bound of its distance)
// does not exclude it; among equal distances the lower index wins.
// The window's k nearest are found without branches: the rank of a candidate is the number
// of candidates strictly nearer. Where the ranks below k are exactly 0 .. k - 1, once each,
// those k candidates are the k nearest in order and no tie touches them (tied candidates
// share a rank; a NaN distance has rank 0 beside the nearest one). Otherwise (ties, NaN)
// the window is offered candidate by candidate to the insertion list, nearest in u first.
double hexatic(const Config& cfg, int64_t n, const Lifted& lf, HexScratch& hs) {
  if (n < cfg.min_points) return 0.0;
  const int64_t k = cfg.neighbours;
  const double L = cfg.length;
  const double* eu = lf.u.data();
  const double* ev = lf.v.data();
  const int64_t* ei = lf.index.data();
  const double inf = std::numeric_limits<double>::infinity();
  // first window: about 1.5 times the area of k neighbours at the mean density
  const double reach = std::sqrt(1.5 * double(k) * 2.0 * cfg.half_width * L / (kPi * double(n)));
  const int64_t w0 = std::max<int64_t>(k, static_cast<int64_t>(std::ceil(double(n) * reach / L)));
  const int64_t b0 = std::min(w0, (n - 1) / 2);
  const int64_t f0 = std::min(w0, n - 1 - b0);
  const int64_t width = b0 + f0 + 1;  // at least k + 1: n >= min_points > k
  const int64_t padded = (width + 7) / 8 * 8;
  const bool ranks = k < 64;  // (the check below uses a 64-bit set of ranks)
  const uint64_t all_ranks = ranks ? (uint64_t(1) << k) - 1 : 0;
  hs.d2.resize(padded);
  hs.du.resize(padded);
  hs.dv.resize(padded);
  hs.rank.resize(padded);
  hs.bd.resize(k + 1);
  hs.bu.resize(k + 1);
  hs.bv.resize(k + 1);
  hs.bi.resize(k + 1);
  double* __restrict cd2 = hs.d2.data();
  double* __restrict cdu = hs.du.data();
  double* __restrict cdv = hs.dv.data();
  int64_t* __restrict rank = hs.rank.data();
  double* bd = hs.bd.data();
  double* bu = hs.bu.data();
  double* bv = hs.bv.data();
  int64_t* bi = hs.bi.data();
  hs.nd2.resize(k * n);
  hs.ndu.resize(k * n);
  hs.ndv.resize(k * n);
  hs.re.resize(n);
  hs.im.resize(n);
  double* nd2 = hs.nd2.data();  // the k nearest of every point [k, n]
  double* ndu = hs.ndu.data();
  double* ndv = hs.ndv.data();
  for (int64_t r0 = 0; r0 < n; ++r0) {
    const int64_t c = n + r0;
    const double ui = eu[c], vi = ev[c];
    int64_t b = b0, f = f0;
    const int64_t* cix = ei + c - b;  // the candidates' indices
    // (over whole blocks of 8: the lifted arrays are padded; the entries past the window
    // and the point itself are then never nearer than anything)
    displacements(cfg, ui, vi, eu + c - b, ev + c - b, padded, cd2, cdu, cdv);
    for (int64_t e = width; e < padded; ++e) cd2[e] = inf;
    cd2[b] = inf;
    int64_t m = 0;
    double worst = inf;
    int64_t worst_i = -1;
    auto offer = [&](double d2, int64_t j, double du, double dv) {
      if (m == k && !before(d2, j, worst, worst_i)) return;
      int64_t pos = m < k ? m++ : k - 1;
      while (pos > 0 && before(d2, j, bd[pos - 1], bi[pos - 1])) {
        bd[pos] = bd[pos - 1];
        bi[pos] = bi[pos - 1];
        bu[pos] = bu[pos - 1];
        bv[pos] = bv[pos - 1];
        --pos;
      }
      bd[pos] = d2;
      bi[pos] = j;
      bu[pos] = du;
      bv[pos] = dv;
      if (m == k) {
        worst = bd[k - 1];
        worst_i = bi[k - 1];
      }
    };
    bool ordered = false;
    if (ranks) {
      // (counted in doubles, exact below 2^53: compare, mask and add in every SIMD set)
      for (int64_t e0 = 0; e0 < padded; e0 += 8) {
        double de[8], acc[8];
        for (int l = 0; l < 8; ++l) {
          de[l] = cd2[e0 + l];
          acc[l] = 0.0;
        }
        for (int64_t x = 0; x < width; ++x) {
          const double dx = cd2[x];
#pragma omp simd
          for (int l = 0; l < 8; ++l) acc[l] += dx < de[l] ? 1.0 : 0.0;
        }
        for (int l = 0; l < 8; ++l) rank[e0 + l] = static_cast<int64_t>(acc[l]);
      }
      uint64_t seen = 0;
      int64_t below = 0;
      for (int64_t e = 0; e < width; ++e) {
        const bool in = rank[e] < k;
        seen |= uint64_t(in) << (in ? rank[e] : 0);
        below += in;
      }
      ordered = below == k && seen == all_ranks;
    }
    if (ordered) {
      for (int64_t e = 0; e < width; ++e) {
        const int64_t r = rank[e] < k ? rank[e] : k;
        bd[r] = cd2[e];
        bi[r] = cix[e];
        bu[r] = cdu[e];
        bv[r] = cdv[e];
      }
      m = k;
      worst = bd[k - 1];
      worst_i = bi[k - 1];
    } else {
      for (int64_t s = 1; s <= std::max(b, f); ++s) {
        if (s <= b) offer(cd2[b - s], cix[b - s], cdu[b - s], cdv[b - s]);
        if (s <= f) offer(cd2[b + s], cix[b + s], cdu[b + s], cdv[b + s]);
      }
    }
    // widen: the |du| of the image crossed is a lower bound of the distance
    int64_t fe = c + f + 1, be = c - b - 1;
    while (f + b < n - 1) {
      const double gap = fe >= 2 * n ? (eu[fe] + L) - ui : (eu[fe] + 0.0) - ui;
      if (gap * gap > worst) break;
      double d2, du, dv;
      displacements(cfg, ui, vi, eu + fe, ev + fe, 1, &d2, &du, &dv);
      offer(d2, ei[fe], du, dv);
      ++fe;
      ++f;
    }
    while (f + b < n - 1) {
      const double gap = be < n ? -((eu[be] + -L) - ui) : -((eu[be] + 0.0) - ui);
      if (gap * gap > worst) break;
      double d2, du, dv;
      displacements(cfg, ui, vi, eu + be, ev + be, 1, &d2, &du, &dv);
      offer(d2, ei[be], du, dv);
      --be;
      ++b;
    }
    for (int64_t a = 0; a < k; ++a) {
      nd2[a * n + r0] = bd[a];
      ndu[a * n + r0] = bu[a];
      ndv[a * n + r0] = bv[a];
    }
  }
  // psi_k = mean of e^{6 i theta} = (du + i dv)^6 / |d|^6, nearest first, vectorised over
  // the points (each point's terms are added in the same order)
  double* __restrict re = hs.re.data();
  double* __restrict im = hs.im.data();
  std::fill_n(re, n, 0.0);
  std::fill_n(im, n, 0.0);
  for (int64_t a = 0; a < k; ++a) {
    const double* __restrict pd = nd2 + a * n;
    const double* __restrict px = ndu + a * n;
    const double* __restrict py = ndv + a * n;
    for (int64_t r = 0; r < n; ++r) {
      const double d2 = pd[r], x = px[r], y = py[r];
      const bool apart = d2 > 0.0;  // coincident points: atan2(0, 0) = 0
      const double x2 = x * x - y * y, y2 = 2.0 * x * y;
      const double x3 = x2 * x - y2 * y, y3 = x2 * y + y2 * x;
      const double scale = 1.0 / (d2 * d2 * d2);
      re[r] += apart ? (x3 * x3 - y3 * y3) * scale : 1.0;
      im[r] += apart ? (2.0 * x3 * y3) * scale : 0.0;
    }
  }
  for (int64_t r = 0; r < n; ++r) {
    const double mr = re[r] / double(k), mi = im[r] / double(k);
    re[r] = std::sqrt(mr * mr + mi * mi);
  }
  double total = 0.0;
  for (int64_t r = 0; r < n; ++r) total += re[r];
  return total / double(n);
}

// Band distance and seam crossing from old points (pu, pv)[e] to the new point (qu, qv), as
// band_displacement (even and odd u images), and whether the link is allowed (distance at
// most td, transported charge equal to q). Vectorised over e.
template <bool Mobius, bool Torus, bool Chart>
void link_window(double L, double period, double td, int64_t cnt, const double* __restrict pu,
                 const double* __restrict pv, const int64_t* __restrict pq, double qu, double qv,
                 int64_t q, double* __restrict dist, int64_t* __restrict ok) {
  for (int64_t e = 0; e < cnt; ++e) {
    const double du0 = qu - pu[e];
    const double y = -du0 / L;
    double du_even, du_odd;
    if (Chart) {
      // |du0| < L: round(y / 2) = 0 and floor(y / 2) = -1 or 0 (for y = -0 too)
      du_even = du0 + 0.0 * L;
      du_odd = du0 + (y < 0.0 ? -1.0 : 1.0) * L;
    } else {
      du_even = du0 + 2.0 * std::nearbyint(0.5 * y) * L;
      du_odd = du0 + (2.0 * std::floor(0.5 * y) + 1.0) * L;
    }
    double dv_even = qv - pv[e];
    double dv_odd = Mobius ? -qv - pv[e] : dv_even;
    if (Torus) {
      dv_even = dv_even - period * std::nearbyint(dv_even / period);
      dv_odd = dv_odd - period * std::nearbyint(dv_odd / period);
    }
    const double de = std::sqrt(du_even * du_even + dv_even * dv_even);
    const double dd = std::sqrt(du_odd * du_odd + dv_odd * dv_odd);
    const bool crosses = dd < de;
    const double d = crosses ? dd : de;
    const int64_t moved = (Mobius && crosses) ? -pq[e] : pq[e];
    dist[e] = d;
    ok[e] = (d <= td) && (moved == q);
  }
}

// Allowed links of a strip (old id, new index, distance) and the work arrays of the rounds
struct Links {
  std::vector<int64_t> o, n;
  std::vector<double> d;
  std::vector<int64_t> best_old, best_new, link;  // [nn], [no], [nn]
  std::vector<double> best_old_d, best_new_d;
  std::vector<char> free_old, free_new;
};

struct Scratch {
  std::vector<float> rf, imf, absf;  // field rows 0..nu-1 and the ghost row nu (float)
  std::vector<double> rd, imd, absd;  // (double)
  std::vector<int32_t> code;  // fast winding numbers (kUndecided: recompute)
  std::vector<int64_t> cand;  // plaquettes that may hold a vortex
  std::vector<int64_t> vortex_i, vortex_j;  // plaquette of every vortex
  std::vector<int64_t> vortex_q;  // its winding number
  std::vector<int64_t> newton;    // vortices that need a refined position
  std::vector<float> nf;          // Newton work arrays (float): 8 coefficients + s, t
  std::vector<double> nd;
  std::vector<float> ef;          // edge angles of the winding numbers (float)
  std::vector<double> ed;
  std::vector<double> u, v;  // hexatic input
  HexScratch hex;
  Lifted lifted, lifted_old;
  std::vector<double> ou, ov, key;  // matching work
  std::vector<int64_t> oslot, lq;
  std::vector<double> dist;
  std::vector<int64_t> ok;
  Links links;

  template <typename T> std::vector<T>& re();
  template <typename T> std::vector<T>& im();
  template <typename T> std::vector<T>& mag();
  template <typename T> std::vector<T>& work();
  template <typename T> std::vector<T>& edges();
};
template <> std::vector<float>& Scratch::re<float>() { return rf; }
template <> std::vector<double>& Scratch::re<double>() { return rd; }
template <> std::vector<float>& Scratch::im<float>() { return imf; }
template <> std::vector<double>& Scratch::im<double>() { return imd; }
template <> std::vector<float>& Scratch::mag<float>() { return absf; }
template <> std::vector<double>& Scratch::mag<double>() { return absd; }
template <> std::vector<float>& Scratch::work<float>() { return nf; }
template <> std::vector<double>& Scratch::work<double>() { return nd; }
template <> std::vector<float>& Scratch::edges<float>() { return ef; }
template <> std::vector<double>& Scratch::edges<double>() { return ed; }

// Ages of the new points [nn] (positions pos [nn, 2], charges; new_order: their indices
// sorted by (u, index)) from the old slots [K]: allowed links, then rounds of mutual nearest
// allowed neighbours (ties: lower index). Each round gives every free new point its nearest
// free old partner and every free old point its nearest free new partner, links the mutual
// pairs and drops the links of linked points, so that later rounds see only the rest.
void match(const Config& cfg, int64_t nn, const double* pos, const int64_t* charge,
           const int64_t* new_order, const double* old_pos, const int64_t* old_q,
           const double* old_age, const bool* old_valid, double dt, double* age, Scratch& sc) {
  const int64_t K = cfg.K;
  const double L = cfg.length;
  const double inf = std::numeric_limits<double>::infinity();
  std::fill_n(age, nn, 0.0);
  // valid old slots (old id c = rank among the valid slots, increasing with the slot),
  // sorted by u and lifted (see Lifted); a link is at most track_distance long, so its |du|
  // through the nearest u image is too: only old points whose lifted u is within that (plus
  // a margin for rounding) of the new u are candidates
  std::vector<double>& ou = sc.ou;
  std::vector<double>& ov = sc.ov;
  ou.resize(K);
  ov.resize(K);
  sc.oslot.resize(K);
  int64_t no = 0;
  for (int64_t o0 = 0; o0 < K; o0 += 8) {
    const int64_t o1 = std::min(o0 + 8, K);
    uint64_t word = 0;  // (the slots are usually a valid prefix: skip empty blocks)
    std::memcpy(&word, old_valid + o0, static_cast<size_t>(o1 - o0));
    if (word == 0) continue;
    for (int64_t o = o0; o < o1; ++o) {
      ou[no] = old_pos[2 * o];
      ov[no] = old_pos[2 * o + 1];
      sc.oslot[no] = o;
      no += old_valid[o];
    }
  }
  if (no == 0 || nn == 0) return;
  bool chart = true;  // all u in [0, L): the lifted windows apply
  for (int64_t a = 0; a < no; ++a) chart &= ou[a] >= 0.0 && ou[a] < L;
  for (int64_t n = 0; n < nn; ++n) chart &= pos[2 * n] >= 0.0 && pos[2 * n] < L;
  Lifted& lf = sc.lifted_old;
  lf.build(no, ou.data(), ov.data());
  // charges and keys (u − L, u, u + L) of the lifted points; keys padded with +inf
  sc.lq.resize(3 * no + Lifted::kPad);
  sc.key.resize(3 * no + Lifted::kPad);
  int64_t* lq = sc.lq.data();
  double* key = sc.key.data();
  for (int64_t r = 0; r < no; ++r) lq[r] = old_q[sc.oslot[lf.index[r]]];
  std::copy_n(lq, no, lq + no);
  std::copy_n(lq, no, lq + 2 * no);
  std::fill_n(lq + 3 * no, Lifted::kPad, 0);
  for (int64_t c = 0; c < 3; ++c) {
    const double shift = double(c - 1) * L;
    for (int64_t r = 0; r < no; ++r) key[c * no + r] = lf.u[c * no + r] + shift;
  }
  std::fill_n(key + 3 * no, Lifted::kPad, inf);
  // new points in u order; their windows of old points by two monotone pointers, evaluated
  // in blocks of 8 (the lifted arrays are padded)
  const double reach = cfg.track_distance * (1.0 + 1e-9) + 1e-12 * L;
  const bool windows = chart && 2.0 * reach < L;
  sc.dist.resize(3 * no + Lifted::kPad);
  sc.ok.resize(3 * no + Lifted::kPad);
  Links& lk = sc.links;
  lk.best_old.assign(nn, -1);
  lk.best_old_d.assign(nn, inf);
  const double period = 2.0 * cfg.half_width, td = cfg.track_distance;
  int64_t lo = 0, hi = 0, ne = 0;
  for (int64_t r = 0; r < nn; ++r) {
    const int64_t n = new_order[r];
    const double qu = pos[2 * n], qv = pos[2 * n + 1];
    int64_t e0 = no, e1 = 2 * no;  // all, once
    if (windows) {
      // (about one step each per new point: two steps without branches, then the rest;
      // the +inf padding stops both at 3 no)
      const double below = qu - reach, above = qu + reach;
      lo += key[lo] < below;
      lo += key[lo] < below;
      hi += key[hi] <= above;
      hi += key[hi] <= above;
      while (key[lo] < below) ++lo;
      while (key[hi] <= above) ++hi;
      e0 = lo;
      e1 = std::max(lo, hi);
    }
    const int64_t cnt = e1 - e0;
    if (cnt == 0) continue;
    const int64_t block = std::min<int64_t>((cnt + 7) / 8 * 8, 3 * no + Lifted::kPad - e0);
    const double* pu = lf.u.data() + e0;
    const double* pv = lf.v.data() + e0;
    const int64_t* pq = sc.lq.data() + e0;
    auto run = [&](auto mobius, auto torus, auto chart_points) {
      link_window<decltype(mobius)::value, decltype(torus)::value, decltype(chart_points)::value>(
          L, period, td, block, pu, pv, pq, qu, qv, charge[n], sc.dist.data(), sc.ok.data());
    };
    using T_ = std::true_type;
    using F_ = std::false_type;
    if (chart) {
      if (cfg.mobius) run(T_{}, F_{}, T_{});
      else if (cfg.periodic_v) run(F_{}, T_{}, T_{});
      else run(F_{}, F_{}, T_{});
    } else {
      if (cfg.mobius) run(T_{}, F_{}, F_{});
      else if (cfg.periodic_v) run(F_{}, T_{}, F_{});
      else run(F_{}, F_{}, F_{});
    }
    // the allowed ones, without branches (each old point appears once in a window)
    if (static_cast<int64_t>(lk.o.size()) < ne + block) {
      lk.o.resize(2 * (ne + block));
      lk.n.resize(2 * (ne + block));
      lk.d.resize(2 * (ne + block));
    }
    int64_t* eo = lk.o.data();
    int64_t* en = lk.n.data();
    double* ed = lk.d.data();
    const int64_t* id = lf.index.data() + e0;
    const int64_t start = ne;
    for (int64_t e = 0; e < cnt; ++e) {
      eo[ne] = id[e];
      en[ne] = n;
      ed[ne] = sc.dist[e];
      ne += sc.ok[e];
    }
    // the first round's nearest old partner (all are free)
    int64_t bo = -1;
    double bd = inf;
    for (int64_t e = start; e < ne; ++e) {
      const bool t = before(ed[e], eo[e], bd, bo);
      bd = t ? ed[e] : bd;
      bo = t ? eo[e] : bo;
    }
    lk.best_old[n] = bo;
    lk.best_old_d[n] = bd;
  }
  if (ne == 0 || cfg.rounds < 1) return;
  // rounds over the links whose ends are both free
  lk.free_old.assign(no + 1, 1);  // (slot no: written for no link)
  lk.free_new.assign(nn, 1);
  lk.best_new.assign(no, -1);
  lk.best_new_d.assign(no, inf);
  lk.link.resize(nn);
  int64_t* eo = lk.o.data();
  int64_t* en = lk.n.data();
  double* ed = lk.d.data();
  int64_t* best_old = lk.best_old.data();
  int64_t* best_new = lk.best_new.data();
  double* best_old_d = lk.best_old_d.data();
  double* best_new_d = lk.best_new_d.data();
  char* free_old = lk.free_old.data();
  char* free_new = lk.free_new.data();
  int64_t* link = lk.link.data();
  {
    // first round, without branches: best_old is known, best_new by a pass over the links
    for (int64_t e = 0; e < ne; ++e) {
      const int64_t o = eo[e], n = en[e];
      const double d = ed[e];
      const bool to_new = before(d, n, best_new_d[o], best_new[o]);
      best_new_d[o] = to_new ? d : best_new_d[o];
      best_new[o] = to_new ? n : best_new[o];
    }
    int64_t linked = 0;
    for (int64_t n = 0; n < nn; ++n) {
      const int64_t o = best_old[n];
      const bool mutual = o >= 0 && best_new[o >= 0 ? o : 0] == n;
      link[n] = mutual ? o : -1;
      free_new[n] = !mutual;
      free_old[mutual ? o : no] = 0;
      linked += mutual;
    }
    if (linked == 0) ne = 0;
    int64_t kept = 0;
    for (int64_t e = 0; e < ne; ++e) {
      const int64_t o = eo[e], n = en[e];
      eo[kept] = o;
      en[kept] = n;
      ed[kept] = ed[e];
      kept += free_old[o] & free_new[n];
    }
    ne = kept;
    std::fill_n(best_old, nn, -1);
    std::fill_n(best_old_d, nn, inf);
    std::fill_n(best_new, no, -1);
    std::fill_n(best_new_d, no, inf);
  }
  for (int64_t round = 1; round < cfg.rounds && ne > 0; ++round) {
    // nearest free partners (distances are finite: at most track_distance)
    for (int64_t e = 0; e < ne; ++e) {
      const int64_t o = eo[e], n = en[e];
      const double d = ed[e];
      const bool to_new = before(d, n, best_new_d[o], best_new[o]);
      best_new_d[o] = to_new ? d : best_new_d[o];
      best_new[o] = to_new ? n : best_new[o];
      const bool to_old = before(d, o, best_old_d[n], best_old[n]);
      best_old_d[n] = to_old ? d : best_old_d[n];
      best_old[n] = to_old ? o : best_old[n];
    }
    bool any = false;
    for (int64_t e = 0; e < ne; ++e) {
      const int64_t o = eo[e], n = en[e];
      if (best_old[n] == o && best_new[o] == n) {
        link[n] = o;
        free_new[n] = 0;
        free_old[o] = 0;
        any = true;
      }
    }
    if (!any) break;
    // reset the bests; keep the links between free points
    int64_t kept = 0;
    for (int64_t e = 0; e < ne; ++e) {
      const int64_t o = eo[e], n = en[e];
      best_new[o] = -1;
      best_new_d[o] = inf;
      best_old[n] = -1;
      best_old_d[n] = inf;
      eo[kept] = o;
      en[kept] = n;
      ed[kept] = ed[e];
      kept += free_old[o] & free_new[n];
    }
    ne = kept;
  }
  for (int64_t n = 0; n < nn; ++n) {
    const int64_t c = link[n];
    const double a = old_age[sc.oslot[c >= 0 ? c : 0]] + dt;
    age[n] = c >= 0 ? a : 0.0;
  }
}

struct Outputs {
  int64_t* stats;      // [N, 4]: count, sum |q|, count |q| >= 2, sum chart q
  double* depth_sum;   // [N]
  double* hex;         // [N]
  double* age_sum;     // [N, 2]: sum of the kept vortices' ages and its compensation
  int64_t* oi;         // [N, K]
  int64_t* oj;
  int64_t* charge;
  double* position;    // [N, K, 2]
  double* depth;
  double* age;
  bool* valid;
};

constexpr int32_t kUndecided = std::numeric_limits<int32_t>::min();

// Angle of the edge product b conj(a) by the fast arctangent, or NaN where the sums with it
// must be recomputed: a non-finite product, or an angle of exactly +-pi (imaginary part +-0,
// real part negative or -0), whose sign the reversed edge of the neighbouring plaquette (its
// product has the negated imaginary part, +0 for +0) need not reproduce
template <typename T>
inline T edge_angle(T a0, T a1, T b0, T b1) {
  const T p = b0 * a0 + b1 * a1, q = b1 * a0 - b0 * a1;
  // (|p| + |q| <= max is false for Inf and NaN)
  const bool bad = !(std::fabs(p) + std::fabs(q) <= std::numeric_limits<T>::max()) ||
                   (q == T(0) && std::signbit(p));
  return bad ? std::numeric_limits<T>::quiet_NaN() : atan2_fast(q, p);
}

// Winding numbers of the plaquettes (i, j) at flat node index k = i * nv + j of the field
// planes re / im (rows 0..nu, row nu the ghost row, then one padding value), by the fast
// arctangent: the rounded angle sum / 2 pi where it is within 1e-3 of an integer (and no
// edge angle is NaN), kUndecided elsewhere. Each edge angle is computed once and shared by
// the two plaquettes beside it (the reversed edge: the same product conjugated, whose
// arctangent is exactly the negated one, see edge_angle); the entries j = nv - 1 straddle
// two rows and are not used. eu, ev: work arrays of nodes + 1 and nodes + nv values.
// Vectorised.
template <typename T>
void fast_windings(const T* __restrict re, const T* __restrict im, int64_t nu, int64_t nv,
                   T* __restrict eu, T* __restrict ev, int32_t* __restrict code) {
  const T two_pi = T(2.0 * kPi);
  const int64_t nodes = nu * nv;
  // u edges (i, j) -> (i + 1, j), i < nu; v edges (i, j) -> (i, j + 1), rows 0..nu
  for (int64_t k = 0; k < nodes; ++k) eu[k] = edge_angle(re[k], im[k], re[k + nv], im[k + nv]);
  eu[nodes] = T(0);
  for (int64_t k = 0; k < nodes + nv; ++k)
    ev[k] = edge_angle(re[k], im[k], re[k + 1], im[k + 1]);
  for (int64_t k = 0; k < nodes; ++k) {
    // a -> b -> c -> d: the u edge, the v edge of row i + 1, the u edge at j + 1 and the v
    // edge of row i reversed, summed in the order of the torch code
    const T turns = (((eu[k] + ev[k + nv]) + -eu[k + 1]) + -ev[k]) / two_pi;
    const T w = std::nearbyint(turns);
    // (false for NaN; |w| <= 4 otherwise)
    const bool ok = std::fabs(turns - w) <= T(1e-3);
    code[k] = ok ? static_cast<int32_t>(w) : kUndecided;
  }
}

// Neumaier's compensated summation: sum + comp is the running total
inline void neumaier_add(double& sum, double& comp, double x) {
  const double t = sum + x;
  comp += std::fabs(sum) >= std::fabs(x) ? (sum - t) + x : (x - t) + sum;
  sum = t;
}

// sum of |psi|^2 over n values, in double, eight interleaved partial sums
template <typename T>
double sum_squares(const T* __restrict mag, int64_t n) {
  double part[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int l = 0; l < 8; ++l) part[l] += static_cast<double>(mag[k + l] * mag[k + l]);
  for (; k < n; ++k) part[0] += static_cast<double>(mag[k] * mag[k]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

template <typename T>
void measure_strip(const Config& cfg, int64_t strip, const T* psi, const T* ghost,
                   const double* old_pos, const int64_t* old_q, const double* old_age,
                   const bool* old_valid, double dt, const Outputs& out, Scratch& sc) {
  const int64_t nu = cfg.nu, nv = cfg.nv, P2 = cfg.p2, K = cfg.K;
  const T* p = psi + strip * nu * nv * 2;
  const T* g = ghost + strip * nv * 2;
  // split re / im (rows 0..nu-1 of the field, row nu = ghost) and |psi|
  std::vector<T>& re = sc.re<T>();
  std::vector<T>& im = sc.im<T>();
  std::vector<T>& mag = sc.mag<T>();
  const int64_t nodes = nu * nv;
  re.resize(nodes + nv + 1);
  im.resize(nodes + nv + 1);
  mag.resize(nodes + nv);
  for (int64_t k = 0; k < nodes; ++k) {
    re[k] = p[2 * k];
    im[k] = p[2 * k + 1];
  }
  for (int64_t k = 0; k < nv; ++k) {
    re[nodes + k] = g[2 * k];
    im[nodes + k] = g[2 * k + 1];
  }
  re[nodes + nv] = T(0);
  im[nodes + nv] = T(0);
  for (int64_t k = 0; k < nodes + nv; ++k) mag[k] = cabs_t(re[k], im[k]);
  const double acc = sum_squares(mag.data(), nodes);
  T rms = std::sqrt(static_cast<T>(acc / double(nodes)));
  rms = rms < T(cfg.tiny) ? T(cfg.tiny) : rms;

  // winding numbers of the plaquettes (i, j) at flat node index i * nv + j, all rows in
  // one vectorised pass (the entries j = nv - 1 straddle two rows and are not used), then
  // the vortex list in plaquette order
  sc.code.resize(nodes);
  std::vector<T>& edges = sc.edges<T>();
  edges.resize(2 * (nodes + nv) + 1);
  fast_windings(re.data(), im.data(), nu, nv, edges.data(), edges.data() + nodes + 1,
                sc.code.data());
  // candidates (flat index i * nv + j) without branches: a nonzero or undecided code, and
  // on the torus every wrap column j = nv - 1 (recomputed); then the decided windings
  sc.cand.resize(cfg.p1 * nv);
  int64_t* cand = sc.cand.data();
  const int32_t* code = sc.code.data();
  int64_t nc = 0;
  for (int64_t i = 0; i < cfg.p1; ++i) {
    const int64_t row = i * nv;
    for (int64_t j = 0; j + 1 < nv; ++j) {
      cand[nc] = row + j;
      nc += code[row + j] != 0;
    }
    if (P2 == nv) cand[nc++] = row + nv - 1;
  }
  sc.vortex_i.clear();
  sc.vortex_j.clear();
  sc.vortex_q.clear();
  for (int64_t a = 0; a < nc; ++a) {
    const int64_t flat = cand[a];
    const int64_t i = flat / nv, j = flat - i * nv;
    int64_t q = code[flat];
    if (q == kUndecided || j + 1 == nv) {
      const T* ar = re.data() + i * nv;
      const T* ai = im.data() + i * nv;
      const T* br = ar + nv;
      const T* bi = ai + nv;
      const int64_t j1 = j + 1 == nv ? 0 : j + 1;
      const T pa[2] = {ar[j], ai[j]}, pb[2] = {br[j], bi[j]};
      const T pc[2] = {br[j1], bi[j1]}, pd[2] = {ar[j1], ai[j1]};
      q = winding(pa, pb, pc, pd);
    }
    if (q != 0) {
      sc.vortex_i.push_back(i);
      sc.vortex_j.push_back(j);
      sc.vortex_q.push_back(q);
    }
  }

  // statistics and depth of every vortex; the first K (and, on the Möbius band, the
  // seam row, where the chart charge can flip) also get their refined position
  const int64_t nvort = static_cast<int64_t>(sc.vortex_q.size());
  const int64_t kept = std::min(nvort, K);
  int64_t count = nvort, sum_abs = 0, multi = 0, net = 0;
  double depth_sum = 0.0;
  sc.newton.clear();
  for (int64_t a = 0; a < nvort; ++a) {
    const int64_t i = sc.vortex_i[a], j = sc.vortex_j[a];
    const int64_t j1 = j + 1 == nv ? 0 : j + 1;
    const int64_t q = sc.vortex_q[a];
    const T* m0 = mag.data() + i * nv;
    const T* m1 = m0 + nv;
    const T mean_corner = (((m0[j] + m1[j]) + m1[j1]) + m0[j1]) / T(4);
    const T depth = clamp01(T(1) - mean_corner / rms);
    sum_abs += q < 0 ? -q : q;
    multi += (q >= 2 || q <= -2) ? 1 : 0;
    depth_sum += static_cast<double>(depth);
    if (a < kept) {
      const int64_t o = strip * K + a;
      out.oi[o] = i;
      out.oj[o] = j;
      out.depth[o] = static_cast<double>(depth);
      out.valid[o] = true;
    }
    if (a < kept || (cfg.flip && i == nu - 1)) {
      sc.newton.push_back(a);
    } else {
      net += q;
    }
  }
  // Newton steps of _bilinear_zero for the listed vortices, vectorised over vortices
  const int64_t M = static_cast<int64_t>(sc.newton.size());
  std::vector<T>& wk = sc.work<T>();
  wk.resize(10 * M);
  T *Ar = wk.data(), *Ai = Ar + M, *Br = Ai + M, *Bi = Br + M, *Cr = Bi + M, *Ci = Cr + M,
    *Dr = Ci + M, *Di = Dr + M, *Sv = Di + M, *Tv = Sv + M;
  for (int64_t m = 0; m < M; ++m) {
    const int64_t i = sc.vortex_i[sc.newton[m]], j = sc.vortex_j[sc.newton[m]];
    const int64_t j1 = j + 1 == nv ? 0 : j + 1;
    const int64_t r0 = i * nv, r1 = r0 + nv;
    const T f00r = re[r0 + j], f00i = im[r0 + j], f10r = re[r1 + j], f10i = im[r1 + j];
    const T f11r = re[r1 + j1], f11i = im[r1 + j1], f01r = re[r0 + j1], f01i = im[r0 + j1];
    Ar[m] = f00r;
    Ai[m] = f00i;
    Br[m] = f10r - f00r;
    Bi[m] = f10i - f00i;
    Cr[m] = f01r - f00r;
    Ci[m] = f01i - f00i;
    Dr[m] = ((f00r - f10r) - f01r) + f11r;
    Di[m] = ((f00i - f10i) - f01i) + f11i;
    Sv[m] = T(0.5);
    Tv[m] = T(0.5);
  }
  newton_steps(M, Ar, Ai, Br, Bi, Cr, Ci, Dr, Di, Sv, Tv);
  for (int64_t m = 0; m < M; ++m) {
    const int64_t a = sc.newton[m];
    const int64_t i = sc.vortex_i[a], j = sc.vortex_j[a];
    int64_t q = sc.vortex_q[a];
    T u = ((static_cast<T>(i) + T(0.5)) + Sv[m]) * T(cfg.du);
    T v = ((static_cast<T>(j) + T(0.5)) + Tv[m]) * T(cfg.dv) + T(-cfg.half_width);
    const bool past_seam = u >= T(cfg.length);
    u = past_seam ? u - T(cfg.length) : u;
    if (cfg.flip && past_seam) {
      v = -v;
      q = -q;
    }
    if (cfg.periodic_v) {
      const T period = T(2 * cfg.half_width);
      T mod = std::fmod(v + T(cfg.half_width), period);
      if (mod != T(0) && ((period < T(0)) != (mod < T(0)))) mod += period;
      v = mod - T(cfg.half_width);
    }
    net += q;
    if (a < kept) {
      const int64_t o = strip * K + a;
      out.charge[o] = q;
      out.position[2 * o] = static_cast<double>(u);
      out.position[2 * o + 1] = static_cast<double>(v);
    }
  }
  {  // empty slots
    const int64_t o = strip * K + kept, rest = K - kept;
    std::fill_n(out.oi + o, rest, 0);
    std::fill_n(out.oj + o, rest, 0);
    std::fill_n(out.charge + o, rest, 0);
    std::fill_n(out.position + 2 * o, 2 * rest, 0.0);
    std::fill_n(out.depth + o, rest, 0.0);
    std::fill_n(out.valid + o, rest, false);
  }
  out.stats[4 * strip + 0] = count;
  out.stats[4 * strip + 1] = sum_abs;
  out.stats[4 * strip + 2] = multi;
  out.stats[4 * strip + 3] = net;
  out.depth_sum[strip] = depth_sum;
  // the kept vortices sorted by u (and lifted) once for the hexatic order and the ages
  sc.u.resize(kept);
  sc.v.resize(kept);
  for (int64_t a = 0; a < kept; ++a) {
    sc.u[a] = out.position[2 * (strip * K + a)];
    sc.v[a] = out.position[2 * (strip * K + a) + 1];
  }
  sc.lifted.build(kept, sc.u.data(), sc.v.data());
  out.hex[strip] = hexatic(cfg, kept, sc.lifted, sc.hex);
  double* age = out.age + strip * K;
  match(cfg, kept, out.position + 2 * strip * K, out.charge + strip * K, sc.lifted.order.data(),
        old_pos + 2 * strip * K, old_q + strip * K, old_age + strip * K, old_valid + strip * K, dt,
        age, sc);
  std::fill_n(age + kept, K - kept, 0.0);
  // (compensated, so that the mean age is about correctly rounded, as torch's sum nearly is)
  double sum = 0.0, comp = 0.0;
  for (int64_t a = 0; a < kept; ++a) neumaier_add(sum, comp, age[a]);
  out.age_sum[2 * strip] = sum;
  out.age_sum[2 * strip + 1] = comp;
}

// Per-environment features [8, B] from the per-strip sums of S strips each, as the torch
// code reduces them (see hhml/ml/env/measure.py): count, vortex density, mean |q|, fraction
// |q| >= 2, net charge density, core depth, hexatic order (mean over strips), mean age
void env_features(int64_t B, int64_t S, double plaquettes, const int64_t* stats,
                  const double* depth_sum, const double* hex, const double* age_sum,
                  const int64_t* kept, double* feat) {
  for (int64_t b = 0; b < B; ++b) {
    int64_t c = 0, sum_abs = 0, multi = 0, net = 0, n_valid = 0;
    double depth = 0.0, order = 0.0, age = 0.0, age_comp = 0.0;
    for (int64_t s = b * S; s < (b + 1) * S; ++s) {
      c += stats[4 * s];
      sum_abs += stats[4 * s + 1];
      multi += stats[4 * s + 2];
      net += stats[4 * s + 3];
      depth += depth_sum[s];
      order += hex[s];
      neumaier_add(age, age_comp, age_sum[2 * s]);
      age_comp += age_sum[2 * s + 1];
      n_valid += kept[s];
    }
    age += age_comp;
    const double count = static_cast<double>(c);
    const bool has = count > 0.0;
    const double denom = has ? count : 1.0;
    double* f = feat + b;
    f[0] = count;
    f[B] = count / plaquettes;
    f[2 * B] = has ? static_cast<double>(sum_abs) / denom : 0.0;
    f[3 * B] = has ? static_cast<double>(multi) / denom : 0.0;
    f[4 * B] = has ? static_cast<double>(net) / plaquettes : 0.0;
    f[5 * B] = has ? depth / denom : 0.0;
    f[6 * B] = order / static_cast<double>(S);
    f[7 * B] = n_valid > 0 ? age / static_cast<double>(n_valid) : 0.0;
  }
}

std::vector<torch::Tensor> measure_strips(const torch::Tensor& psi, const torch::Tensor& ghost,
                                          const torch::Tensor& old_pos,
                                          const torch::Tensor& old_charge,
                                          const torch::Tensor& old_age,
                                          const torch::Tensor& old_valid, const torch::Tensor& dt,
                                          int64_t K, int64_t strips, int64_t topology,
                                          double length,
                                          double half_width, double du, double dv, double tiny,
                                          double track_distance, int64_t min_points,
                                          int64_t neighbours, int64_t rounds) {
  TORCH_CHECK(psi.dim() == 3 && psi.is_contiguous() && psi.device().is_cpu(),
              "psi must be a contiguous CPU tensor [N, nu, nv]");
  TORCH_CHECK(psi.scalar_type() == torch::kComplexFloat ||
                  psi.scalar_type() == torch::kComplexDouble,
              "psi must be complex64 or complex128");
  const int64_t N = psi.size(0), nu = psi.size(1), nv = psi.size(2);
  TORCH_CHECK(ghost.sizes() == torch::IntArrayRef({N, nv}) && ghost.is_contiguous() &&
                  ghost.scalar_type() == psi.scalar_type(),
              "ghost must be a contiguous [N, nv] tensor of psi's dtype");
  TORCH_CHECK(old_pos.sizes() == torch::IntArrayRef({N, K, 2}) &&
                  old_pos.scalar_type() == torch::kDouble && old_pos.is_contiguous(),
              "old positions must be contiguous float64 [N, K, 2]");
  TORCH_CHECK(old_charge.sizes() == torch::IntArrayRef({N, K}) &&
                  old_charge.scalar_type() == torch::kLong && old_charge.is_contiguous(),
              "old charges must be contiguous int64 [N, K]");
  TORCH_CHECK(old_age.sizes() == torch::IntArrayRef({N, K}) &&
                  old_age.scalar_type() == torch::kDouble && old_age.is_contiguous(),
              "old ages must be contiguous float64 [N, K]");
  TORCH_CHECK(old_valid.sizes() == torch::IntArrayRef({N, K}) &&
                  old_valid.scalar_type() == torch::kBool && old_valid.is_contiguous(),
              "old valid must be contiguous bool [N, K]");
  TORCH_CHECK(dt.sizes() == torch::IntArrayRef({N}) && dt.scalar_type() == torch::kDouble &&
                  dt.is_contiguous(),
              "dt must be contiguous float64 [N]");
  TORCH_CHECK(topology >= 0 && topology <= 2, "topology must be 0 (mobius), 1 or 2");
  TORCH_CHECK(K >= 1 && neighbours >= 1 && min_points > neighbours, "bad sizes");
  TORCH_CHECK(strips >= 1 && N % strips == 0, "the strips per environment must divide N");
  Config cfg{};
  cfg.nu = nu;
  cfg.nv = nv;
  cfg.mobius = topology == 0;
  cfg.flip = cfg.mobius;
  cfg.periodic_v = topology == 2;
  cfg.p1 = nu;
  cfg.p2 = cfg.periodic_v ? nv : nv - 1;
  cfg.K = K;
  cfg.length = length;
  cfg.half_width = half_width;
  cfg.du = du;
  cfg.dv = dv;
  cfg.tiny = tiny;
  cfg.track_distance = track_distance;
  cfg.min_points = min_points;
  cfg.neighbours = neighbours;
  cfg.rounds = rounds;

  auto i64 = torch::TensorOptions().dtype(torch::kLong);
  auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  const int64_t B = N / strips;
  std::vector<int64_t> stats(4 * N), kept(N);
  std::vector<double> depth_sum(N), hex(N), age_sum(2 * N);
  torch::Tensor features = torch::empty({8, B}, f64);
  torch::Tensor overflow = torch::empty({N}, torch::TensorOptions().dtype(torch::kBool));
  torch::Tensor oi = torch::empty({N, K}, i64);
  torch::Tensor oj = torch::empty({N, K}, i64);
  torch::Tensor charge = torch::empty({N, K}, i64);
  torch::Tensor position = torch::empty({N, K, 2}, f64);
  torch::Tensor depth = torch::empty({N, K}, f64);
  torch::Tensor age = torch::empty({N, K}, f64);
  torch::Tensor valid = torch::empty({N, K}, torch::TensorOptions().dtype(torch::kBool));
  Outputs out{stats.data(),           depth_sum.data(),          hex.data(),
              age_sum.data(),         oi.data_ptr<int64_t>(),    oj.data_ptr<int64_t>(),
              charge.data_ptr<int64_t>(), position.data_ptr<double>(), depth.data_ptr<double>(),
              age.data_ptr<double>(), valid.data_ptr<bool>()};
  const double* op = old_pos.data_ptr<double>();
  const int64_t* oq = old_charge.data_ptr<int64_t>();
  const double* oa = old_age.data_ptr<double>();
  const bool* ov = old_valid.data_ptr<bool>();
  const double* pdt = dt.data_ptr<double>();
  const bool single = psi.scalar_type() == torch::kComplexFloat;
  const float* pf = single ? reinterpret_cast<const float*>(psi.data_ptr()) : nullptr;
  const float* gf = single ? reinterpret_cast<const float*>(ghost.data_ptr()) : nullptr;
  const double* pd = single ? nullptr : reinterpret_cast<const double*>(psi.data_ptr());
  const double* gd = single ? nullptr : reinterpret_cast<const double*>(ghost.data_ptr());
  {
    pybind11::gil_scoped_release no_gil;
#pragma omp parallel
    {
      Scratch sc;
#pragma omp for schedule(dynamic, 4)
      for (int64_t s = 0; s < N; ++s) {
        if (single)
          measure_strip<float>(cfg, s, pf, gf, op, oq, oa, ov, pdt[s], out, sc);
        else
          measure_strip<double>(cfg, s, pd, gd, op, oq, oa, ov, pdt[s], out, sc);
      }
    }
  }
  bool* over = overflow.data_ptr<bool>();
  for (int64_t s = 0; s < N; ++s) {
    kept[s] = std::min(stats[4 * s], K);
    over[s] = stats[4 * s] > K;
  }
  env_features(B, strips, static_cast<double>(strips * cfg.p1 * cfg.p2), stats.data(),
               depth_sum.data(), hex.data(), age_sum.data(), kept.data(),
               features.data_ptr<double>());
  return {features, overflow, oi, oj, charge, position, depth, age, valid};
}

// Per-strip sums of the field moments (hhml.ml.env.observables.moment_tensors): for each
// strip n, in double, sum of area, area * |psi|^2, area * |psi|^4 and area * Re(conj(psi) lap),
// lap the five-point Laplacian of lattice.band_laplacian: cup (up - psi) + cum (dn - psi) +
// cvp (rt - psi) + cvm (lt - psi), up / dn the u neighbours (ghost rows given: the seam rule
// applied by the caller), rt / lt the v neighbours (periodic, or ghost_sign * the edge
// value). Every per-node product is rounded in T as the torch code rounds it; only the sums
// differ (double accumulators instead of torch's float cascade: 16 interleaved partial sums
// over the strip's nodes, then added pairwise). The strip is split into re / im planes
// with the ghost rows before and after, and the node loop runs over the whole strip at once
// (vectorised; the v neighbours of the edge columns are selected by a column mask).
template <typename T>
void moments_impl(int64_t N, int64_t nu, int64_t nv, const T* psi, const T* up, const T* dn,
                  const T* cup, const T* cum, const T* cvp, const T* cvm, const T* area,
                  bool periodic, T gsign, double* out) {
  constexpr int64_t kLanes = 16;
  const int64_t nodes = nu * nv;
  const int64_t padded = (nodes + kLanes - 1) / kLanes * kLanes;
  // column masks (the same for every strip): first / last column of a row
  std::vector<char> first(static_cast<size_t>(nodes)), last(static_cast<size_t>(nodes));
  for (int64_t k = 0; k < nodes; ++k) {
    first[k] = k % nv == 0;
    last[k] = k % nv == nv - 1;
  }
#pragma omp parallel if (N > 1)
  {
    // planes: ghost row dn, the nu rows, ghost row up, and one value of slack on each side
    const int64_t size = (nu + 2) * nv + 2;
    std::vector<T> plane(static_cast<size_t>(2 * size));
    std::vector<T> prod(static_cast<size_t>(3 * padded), T(0));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      T* R = plane.data() + 1;
      T* I = R + size;
      const T* f = psi + 2 * n * nodes;
      const T* g_dn = dn + 2 * n * nv;
      const T* g_up = up + 2 * n * nv;
      for (int64_t j = 0; j < nv; ++j) {
        R[j] = g_dn[2 * j];
        I[j] = g_dn[2 * j + 1];
        R[(nu + 1) * nv + j] = g_up[2 * j];
        I[(nu + 1) * nv + j] = g_up[2 * j + 1];
      }
      T* __restrict rr = R + nv;
      T* __restrict ri = I + nv;
      for (int64_t k = 0; k < nodes; ++k) {
        rr[k] = f[2 * k];
        ri[k] = f[2 * k + 1];
      }
      const int64_t o = n * nodes;
      const T* __restrict c1 = cup + o;
      const T* __restrict c2 = cum + o;
      const T* __restrict c3 = cvp + o;
      const T* __restrict c4 = cvm + o;
      const T* __restrict w = area + o;
      const char* __restrict fc = first.data();
      const char* __restrict lc = last.data();
      T* __restrict pn = prod.data();
      T* __restrict pq = pn + padded;
      T* __restrict pg = pq + padded;
      // (every value is loaded unconditionally, then selected: vectorised)
      auto nodes_loop = [&](auto periodic_v) {
        constexpr bool kPeriodic = decltype(periodic_v)::value;
        for (int64_t k = 0; k < nodes; ++k) {
          const T a = rr[k], b = ri[k];
          const T next_r = rr[k + 1], next_i = ri[k + 1], prev_r = rr[k - 1], prev_i = ri[k - 1];
          // v neighbours of the edge columns: periodic, or ghost_sign * the edge value
          const T edge_r = kPeriodic ? rr[k + 1 - nv] : a * gsign;
          const T edge_i = kPeriodic ? ri[k + 1 - nv] : b * gsign;
          const T wrap_r = kPeriodic ? rr[k + nv - 1] : a * gsign;
          const T wrap_i = kPeriodic ? ri[k + nv - 1] : b * gsign;
          const bool at_last = lc[k] != 0, at_first = fc[k] != 0;
          const T rt_r = at_last ? edge_r : next_r, rt_i = at_last ? edge_i : next_i;
          const T lt_r = at_first ? wrap_r : prev_r, lt_i = at_first ? wrap_i : prev_i;
          const T lap_r =
              ((c1[k] * (rr[k + nv] - a) + c2[k] * (rr[k - nv] - a)) + c3[k] * (rt_r - a)) +
              c4[k] * (lt_r - a);
          const T lap_i =
              ((c1[k] * (ri[k + nv] - b) + c2[k] * (ri[k - nv] - b)) + c3[k] * (rt_i - b)) +
              c4[k] * (lt_i - b);
          const T dens = a * a + b * b;
          pn[k] = w[k] * dens;
          pq[k] = w[k] * (dens * dens);
          pg[k] = w[k] * (a * lap_r + b * lap_i);
        }
      };
      if (periodic)
        nodes_loop(std::true_type{});
      else
        nodes_loop(std::false_type{});
      const T* sums[4] = {w, pn, pq, pg};
      for (int q = 0; q < 4; ++q) {
        const T* __restrict x = sums[q];
        double part[kLanes] = {};
        int64_t k = 0;
        for (; k + kLanes <= nodes; k += kLanes)
          for (int64_t l = 0; l < kLanes; ++l) part[l] += double(x[k + l]);
        for (int64_t l = 0; k + l < nodes; ++l) part[l] += double(x[k + l]);
        for (int64_t h = kLanes / 2; h >= 1; h /= 2)
          for (int64_t l = 0; l < h; ++l) part[l] += part[l + h];
        out[4 * n + q] = part[0];
      }
    }
  }
}

torch::Tensor moment_sums(const torch::Tensor& psi, const torch::Tensor& up,
                          const torch::Tensor& dn, const torch::Tensor& cup,
                          const torch::Tensor& cum, const torch::Tensor& cvp,
                          const torch::Tensor& cvm, const torch::Tensor& area, bool periodic_v,
                          double ghost_sign) {
  TORCH_CHECK(psi.dim() == 3 && psi.is_complex() && psi.is_contiguous(),
              "moment_sums: psi must be a contiguous complex [N, nu, nv]");
  const int64_t N = psi.size(0), nu = psi.size(1), nv = psi.size(2);
  const auto real = c10::toRealValueType(psi.scalar_type());
  for (const auto* g : {&up, &dn})
    TORCH_CHECK(g->dim() == 2 && g->size(0) == N && g->size(1) == nv && g->is_contiguous() &&
                    g->scalar_type() == psi.scalar_type(),
                "moment_sums: ghost rows must be contiguous [N, nv] of psi's dtype");
  for (const auto* c : {&cup, &cum, &cvp, &cvm, &area})
    TORCH_CHECK(c->sizes() == psi.sizes() && c->is_contiguous() && c->scalar_type() == real,
                "moment_sums: coefficients and areas must be contiguous real [N, nu, nv]");
  auto out = torch::empty({N, 4}, psi.options().dtype(torch::kFloat64));
  if (N == 0) return out;
  const auto pr = torch::view_as_real(psi), ur = torch::view_as_real(up),
             dr = torch::view_as_real(dn);
  AT_DISPATCH_FLOATING_TYPES(real, "moment_sums", [&] {
    moments_impl<scalar_t>(N, nu, nv, pr.data_ptr<scalar_t>(), ur.data_ptr<scalar_t>(),
                           dr.data_ptr<scalar_t>(), cup.data_ptr<scalar_t>(),
                           cum.data_ptr<scalar_t>(), cvp.data_ptr<scalar_t>(),
                           cvm.data_ptr<scalar_t>(), area.data_ptr<scalar_t>(), periodic_v,
                           scalar_t(ghost_sign), out.data_ptr<double>());
  });
  return out;
}

// Hexatic order of one strip's points (u, v) [n] (float64, u in [0, length)) by the kernel's
// neighbour search, as measure_strips computes it for the kept vortices (for the tests)
double hexatic_points(const torch::Tensor& u, const torch::Tensor& v, int64_t topology,
                      double length, double half_width, int64_t min_points, int64_t neighbours) {
  TORCH_CHECK(u.dim() == 1 && u.scalar_type() == torch::kDouble && u.is_contiguous() &&
                  v.sizes() == u.sizes() && v.scalar_type() == torch::kDouble &&
                  v.is_contiguous(),
              "hexatic_points: u and v must be contiguous float64 [n]");
  TORCH_CHECK(topology >= 0 && topology <= 2, "topology must be 0 (mobius), 1 or 2");
  TORCH_CHECK(neighbours >= 1 && min_points > neighbours, "bad sizes");
  Config cfg{};
  cfg.mobius = cfg.flip = topology == 0;
  cfg.periodic_v = topology == 2;
  cfg.length = length;
  cfg.half_width = half_width;
  cfg.min_points = min_points;
  cfg.neighbours = neighbours;
  const int64_t n = u.size(0);
  Lifted lf;
  HexScratch hs;
  lf.build(n, u.data_ptr<double>(), v.data_ptr<double>());
  return hexatic(cfg, n, lf, hs);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("measure_strips", &measure_strips, "per-strip vortex measurement (HHmL)");
  m.def("moment_sums", &moment_sums, "per-strip sums of the field moments (HHmL)",
        py::call_guard<py::gil_scoped_release>());
  m.def("hexatic_points", &hexatic_points, "hexatic order of one strip's points (HHmL, tests)");
}
