// Per-strip vortex measurement of the Möbius vortex environments (HHmL), OpenMP over strips.
//
// For each of N strips (field psi [N, nu, nv] complex, contiguous; ghost [N, nv] = the +u
// neighbours of the last row with the seam flip and twist applied, as u_plus gives them):
//   1. plaquette winding numbers as hhml.core.resonance.vortices.winding_numbers: a fast
//      arctangent with the exact branch of atan2 decides every plaquette whose angle sum is
//      within 1e-3 turns of an integer (the torch sum is within ~1e-6 of the same integer);
//      any other plaquette (zero or underflowed corners, non-finite values) is recomputed
//      with std::atan2 in the order of the torch code;
//   2. statistics of all vortices (count, sum |q|, count |q| >= 2, sum of chart charges,
//      sum of core depths) and the first K vortices in plaquette order: sub-cell position
//      (the 8 Newton steps of _bilinear_zero), seam mapping, chart charge, depth;
//   3. hexatic order of those K (nearest neighbours from a window in u order, widened while
//      the u gap does not exclude the next point);
//   4. ages: links to the previous vortices (candidates from a window in u order), then
//      rounds of mutual nearest allowed neighbours.
// Positions, charges, distances and ages follow the torch code operation by operation
// (compile with -ffp-contract=off) and are bit-identical to it; |psi_6| uses
// (du + i dv)^6 / |d|^6 instead of atan2 / cos / sin and the strip rms is summed in double,
// which differ from the torch code by rounding only. See hhml/ml/env/measure.py.
// moment_sums: the per-strip sums of the field moments (area, |psi|^2, |psi|^4, gradient
// energy through the five-point Laplacian) in one pass, for observables.moment_tensors.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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
  // above stand for the neighbours through the seam)
  std::vector<int64_t> order, index;
  std::vector<double> u, v;
  void build(int64_t n, const double* pu, const double* pv) {
    sort_by_u(n, pu, order);
    u.resize(3 * n);
    v.resize(3 * n);
    index.resize(3 * n);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t a = order[r];
      u[r] = u[n + r] = u[2 * n + r] = pu[a];
      v[r] = v[n + r] = v[2 * n + r] = pv[a];
      index[r] = index[n + r] = index[2 * n + r] = a;
    }
  }
};

// Mean |psi_k| of the points (u, v) [n] (u in [0, L)); 0 below min_points. The k nearest
// neighbours of each point come from a window of its neighbours in u order, widened while
// the u gap of the next point (a lower bound of its distance) does not exclude it; among
// equal distances the lower index wins.
double hexatic(const Config& cfg, int64_t n, const double* u, const double* v, Lifted& lf,
               std::vector<double>& buf) {
  if (n < cfg.min_points) return 0.0;
  const int64_t k = cfg.neighbours;
  const double L = cfg.length;
  lf.build(n, u, v);
  const double* eu = lf.u.data();
  const double* ev = lf.v.data();
  const int64_t* ei = lf.index.data();
  buf.resize(3 * n);
  double* cd2 = buf.data();
  double* cdu = cd2 + n;
  double* cdv = cdu + n;
  std::vector<double> bd(k), bu(k), bv(k);
  std::vector<int64_t> bi(k);
  const double inf = std::numeric_limits<double>::infinity();
  // first window: about 1.5 times the area of k neighbours at the mean density
  const double reach = std::sqrt(1.5 * double(k) * 2.0 * cfg.half_width * L / (kPi * double(n)));
  const int64_t w0 = std::max<int64_t>(k, static_cast<int64_t>(std::ceil(double(n) * reach / L)));
  double total = 0.0;
  for (int64_t r0 = 0; r0 < n; ++r0) {
    const int64_t c = n + r0;
    const double ui = eu[c], vi = ev[c];
    int64_t b = std::min(w0, (n - 1) / 2);
    int64_t f = std::min(w0, n - 1 - b);
    displacements(cfg, ui, vi, eu + c - b, ev + c - b, b + f + 1, cd2, cdu, cdv);
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
    // nearest in u first, so that most later candidates are rejected at once
    for (int64_t s = 1; s <= std::max(b, f); ++s) {
      if (s <= b) offer(cd2[b - s], ei[c - s], cdu[b - s], cdv[b - s]);
      if (s <= f) offer(cd2[b + s], ei[c + s], cdu[b + s], cdv[b + s]);
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
    // psi_k = mean of e^{6 i theta} = (du + i dv)^6 / |d|^6, nearest first
    double re = 0.0, im = 0.0;
    for (int64_t a = 0; a < k; ++a) {
      const double d2 = bd[a], x = bu[a], y = bv[a];
      if (!(d2 > 0.0)) {  // coincident points: atan2(0, 0) = 0
        re += 1.0;
        continue;
      }
      const double x2 = x * x - y * y, y2 = 2.0 * x * y;
      const double x3 = x2 * x - y2 * y, y3 = x2 * y + y2 * x;
      const double scale = 1.0 / (d2 * d2 * d2);
      re += (x3 * x3 - y3 * y3) * scale;
      im += (2.0 * x3 * y3) * scale;
    }
    const double mr = re / double(k), mi = im / double(k);
    total += std::sqrt(mr * mr + mi * mi);
  }
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

struct Edge {
  int64_t o, n;
  double d;
};

struct Scratch {
  std::vector<float> rf, imf, absf;  // field rows 0..nu-1 and the ghost row nu (float)
  std::vector<double> rd, imd, absd;  // (double)
  std::vector<int32_t> code;  // fast winding numbers (kUndecided: recompute)
  std::vector<int64_t> vortex_i, vortex_j;  // plaquette of every vortex
  std::vector<int64_t> vortex_q;  // its winding number
  std::vector<int64_t> newton;    // vortices that need a refined position
  std::vector<float> nf;          // Newton work arrays (float): 8 coefficients + s, t
  std::vector<double> nd;
  std::vector<double> u, v, buf;  // hexatic input and work
  Lifted lifted, lifted_old;
  std::vector<double> ou, ov, key;  // matching work
  std::vector<int64_t> oslot, lq, lslot, new_order;
  std::vector<double> dist;
  std::vector<int64_t> ok;
  std::vector<Edge> edges;
  std::vector<int64_t> best_old, best_new, link;
  std::vector<double> best_old_d, best_new_d;
  std::vector<char> free_old, free_new;

  template <typename T> std::vector<T>& re();
  template <typename T> std::vector<T>& im();
  template <typename T> std::vector<T>& mag();
  template <typename T> std::vector<T>& work();
};
template <> std::vector<float>& Scratch::re<float>() { return rf; }
template <> std::vector<double>& Scratch::re<double>() { return rd; }
template <> std::vector<float>& Scratch::im<float>() { return imf; }
template <> std::vector<double>& Scratch::im<double>() { return imd; }
template <> std::vector<float>& Scratch::mag<float>() { return absf; }
template <> std::vector<double>& Scratch::mag<double>() { return absd; }
template <> std::vector<float>& Scratch::work<float>() { return nf; }
template <> std::vector<double>& Scratch::work<double>() { return nd; }

// Ages of the new points [nn] (positions pos [nn, 2], charges) from the old slots [K]:
// allowed links, then rounds of mutual nearest allowed neighbours (ties: lower index).
void match(const Config& cfg, int64_t nn, const double* pos, const int64_t* charge,
           const double* old_pos, const int64_t* old_q, const double* old_age,
           const bool* old_valid, double dt, double* age, Scratch& sc) {
  const int64_t K = cfg.K;
  const double L = cfg.length;
  for (int64_t n = 0; n < nn; ++n) age[n] = 0.0;
  sc.edges.clear();
  // valid old slots, sorted by u and lifted (see Lifted); a link is at most track_distance
  // long, so its |du| through the nearest u image is too: only old points whose lifted u is
  // within that (plus a margin for rounding) of the new u are candidates
  std::vector<double>& ou = sc.ou;
  std::vector<double>& ov = sc.ov;
  ou.clear();
  ov.clear();
  sc.oslot.clear();
  for (int64_t o = 0; o < K; ++o) {
    if (!old_valid[o]) continue;
    ou.push_back(old_pos[2 * o]);
    ov.push_back(old_pos[2 * o + 1]);
    sc.oslot.push_back(o);
  }
  const int64_t no = static_cast<int64_t>(ou.size());
  if (no == 0 || nn == 0) return;
  bool chart = true;  // all u in [0, L): the lifted windows apply
  for (int64_t a = 0; a < no; ++a) chart = chart && ou[a] >= 0.0 && ou[a] < L;
  for (int64_t n = 0; n < nn; ++n) chart = chart && pos[2 * n] >= 0.0 && pos[2 * n] < L;
  Lifted& lf = sc.lifted_old;
  lf.build(no, ou.data(), ov.data());
  sc.lq.resize(3 * no);
  sc.lslot.resize(3 * no);
  sc.key.resize(3 * no);
  for (int64_t c = 0; c < 3; ++c) {
    const double shift = double(c - 1) * L;
    for (int64_t r = 0; r < no; ++r) {
      const int64_t e = c * no + r;
      const int64_t o = sc.oslot[lf.index[e]];
      sc.lq[e] = old_q[o];
      sc.lslot[e] = o;
      sc.key[e] = lf.u[e] + shift;
    }
  }
  // new points in u order; their windows of old points by two monotone pointers
  const double reach = cfg.track_distance * (1.0 + 1e-9) + 1e-12 * L;
  const bool windows = chart && 2.0 * reach < L;
  sc.u.resize(nn);
  for (int64_t n = 0; n < nn; ++n) sc.u[n] = pos[2 * n];
  sort_by_u(nn, sc.u.data(), sc.new_order);
  sc.dist.resize(3 * no);
  sc.ok.resize(3 * no);
  const double period = 2.0 * cfg.half_width, td = cfg.track_distance;
  int64_t lo = 0, hi = 0;
  for (int64_t r = 0; r < nn; ++r) {
    const int64_t n = sc.new_order[r];
    const double qu = pos[2 * n], qv = pos[2 * n + 1];
    int64_t e0 = no, e1 = 2 * no;  // all, once
    if (windows) {
      while (lo < 3 * no && sc.key[lo] < qu - reach) ++lo;
      while (hi < 3 * no && sc.key[hi] <= qu + reach) ++hi;
      e0 = lo;
      e1 = std::max(lo, hi);
    }
    const int64_t cnt = e1 - e0;
    if (cnt == 0) continue;
    const double* pu = lf.u.data() + e0;
    const double* pv = lf.v.data() + e0;
    const int64_t* pq = sc.lq.data() + e0;
    auto run = [&](auto mobius, auto torus, auto chart_points) {
      link_window<decltype(mobius)::value, decltype(torus)::value, decltype(chart_points)::value>(
          L, period, td, cnt, pu, pv, pq, qu, qv, charge[n], sc.dist.data(), sc.ok.data());
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
    for (int64_t e = 0; e < cnt; ++e)
      if (sc.ok[e]) sc.edges.push_back(Edge{sc.lslot[e0 + e], n, sc.dist[e]});
  }
  if (sc.edges.empty()) return;
  sc.link.assign(nn, -1);
  sc.free_old.assign(K, 1);
  sc.free_new.assign(nn, 1);
  sc.best_old.resize(nn);
  sc.best_old_d.resize(nn);
  sc.best_new.resize(K);
  sc.best_new_d.resize(K);
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t round = 0; round < cfg.rounds; ++round) {
    for (const Edge& e : sc.edges) {
      sc.best_new[e.o] = -1;
      sc.best_new_d[e.o] = inf;
      sc.best_old[e.n] = -1;
      sc.best_old_d[e.n] = inf;
    }
    for (const Edge& e : sc.edges) {
      if (!sc.free_old[e.o] || !sc.free_new[e.n]) continue;
      if (sc.best_new[e.o] < 0 || before(e.d, e.n, sc.best_new_d[e.o], sc.best_new[e.o])) {
        sc.best_new[e.o] = e.n;
        sc.best_new_d[e.o] = e.d;
      }
      if (sc.best_old[e.n] < 0 || before(e.d, e.o, sc.best_old_d[e.n], sc.best_old[e.n])) {
        sc.best_old[e.n] = e.o;
        sc.best_old_d[e.n] = e.d;
      }
    }
    bool any = false;
    for (const Edge& e : sc.edges) {
      if (sc.free_new[e.n] && sc.best_old[e.n] == e.o && sc.best_new[e.o] == e.n) {
        sc.link[e.n] = e.o;
        sc.free_new[e.n] = 0;
        sc.free_old[e.o] = 0;
        any = true;
      }
    }
    if (!any) break;
  }
  for (int64_t n = 0; n < nn; ++n)
    if (sc.link[n] >= 0) age[n] = old_age[sc.link[n]] + dt;
}

struct Outputs {
  int64_t* stats;      // [N, 4]: count, sum |q|, count |q| >= 2, sum chart q
  double* depth_sum;   // [N]
  double* hex;         // [N]
  int64_t* oi;         // [N, K]
  int64_t* oj;
  int64_t* charge;
  double* position;    // [N, K, 2]
  double* depth;
  double* age;
  bool* valid;
};

constexpr int32_t kUndecided = std::numeric_limits<int32_t>::min();

// Winding numbers of the plaquettes with corners a[j], b[j], b[j + 1], a[j + 1], j < n, by the
// fast arctangent: the rounded angle sum / 2 pi where it is within 1e-3 of an integer and
// the four products are finite, kUndecided elsewhere. Vectorised.
template <typename T>
void fast_windings(const T* __restrict ar, const T* __restrict ai, const T* __restrict br,
                   const T* __restrict bi, int64_t n, int32_t* __restrict code) {
  const T two_pi = T(2.0 * kPi);
  for (int64_t j = 0; j < n; ++j) {
    const T a0 = ar[j], a1 = ai[j], b0 = br[j], b1 = bi[j];
    const T c0 = br[j + 1], c1 = bi[j + 1], d0 = ar[j + 1], d1 = ai[j + 1];
    const T p0 = b0 * a0 + b1 * a1, q0 = b1 * a0 - b0 * a1;  // b conj(a)
    const T p1 = c0 * b0 + c1 * b1, q1 = c1 * b0 - c0 * b1;  // c conj(b)
    const T p2 = d0 * c0 + d1 * c1, q2 = d1 * c0 - d0 * c1;  // d conj(c)
    const T p3 = a0 * d0 + a1 * d1, q3 = a1 * d0 - a0 * d1;  // a conj(d)
    const T turns = (((atan2_fast(q0, p0) + atan2_fast(q1, p1)) + atan2_fast(q2, p2)) +
                     atan2_fast(q3, p3)) /
                    two_pi;
    const T w = std::nearbyint(turns);
    const T m = std::fabs(p0) + std::fabs(q0) + std::fabs(p1) + std::fabs(q1) + std::fabs(p2) +
                std::fabs(q2) + std::fabs(p3) + std::fabs(q3);
    // m <= max is false for Inf and NaN; |w| <= 4 for finite products
    const bool ok = m <= std::numeric_limits<T>::max() && std::fabs(turns - w) <= T(1e-3);
    code[j] = ok ? static_cast<int32_t>(w) : kUndecided;
  }
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
  fast_windings(re.data(), im.data(), re.data() + nv, im.data() + nv, nodes, sc.code.data());
  sc.vortex_i.clear();
  sc.vortex_j.clear();
  sc.vortex_q.clear();
  for (int64_t i = 0; i < cfg.p1; ++i) {
    const T* ar = re.data() + i * nv;
    const T* ai = im.data() + i * nv;
    const T* br = ar + nv;
    const T* bi = ai + nv;
    const int32_t* code = sc.code.data() + i * nv;
    for (int64_t j = 0; j < P2; ++j) {
      if (code[j] == 0 && j + 1 < nv) continue;
      int64_t q = code[j];
      if (code[j] == kUndecided || j + 1 == nv) {  // or the torus wrap column
        const int64_t j1 = j + 1 == nv ? 0 : j + 1;
        const T a[2] = {ar[j], ai[j]}, b[2] = {br[j], bi[j]};
        const T c[2] = {br[j1], bi[j1]}, d[2] = {ar[j1], ai[j1]};
        q = winding(a, b, c, d);
      }
      if (q != 0) {
        sc.vortex_i.push_back(i);
        sc.vortex_j.push_back(j);
        sc.vortex_q.push_back(q);
      }
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
  for (int64_t a = kept; a < K; ++a) {
    const int64_t o = strip * K + a;
    out.oi[o] = 0;
    out.oj[o] = 0;
    out.charge[o] = 0;
    out.position[2 * o] = 0.0;
    out.position[2 * o + 1] = 0.0;
    out.depth[o] = 0.0;
    out.valid[o] = false;
  }
  out.stats[4 * strip + 0] = count;
  out.stats[4 * strip + 1] = sum_abs;
  out.stats[4 * strip + 2] = multi;
  out.stats[4 * strip + 3] = net;
  out.depth_sum[strip] = depth_sum;
  // hexatic order of the kept vortices
  sc.u.resize(kept);
  sc.v.resize(kept);
  for (int64_t a = 0; a < kept; ++a) {
    sc.u[a] = out.position[2 * (strip * K + a)];
    sc.v[a] = out.position[2 * (strip * K + a) + 1];
  }
  out.hex[strip] = hexatic(cfg, kept, sc.u.data(), sc.v.data(), sc.lifted, sc.buf);
  // ages
  double* age = out.age + strip * K;
  match(cfg, kept, out.position + 2 * strip * K, out.charge + strip * K, old_pos + 2 * strip * K,
        old_q + strip * K, old_age + strip * K, old_valid + strip * K, dt, age, sc);
  for (int64_t a = kept; a < K; ++a) age[a] = 0.0;
}

std::vector<torch::Tensor> measure_strips(const torch::Tensor& psi, const torch::Tensor& ghost,
                                          const torch::Tensor& old_pos,
                                          const torch::Tensor& old_charge,
                                          const torch::Tensor& old_age,
                                          const torch::Tensor& old_valid, const torch::Tensor& dt,
                                          int64_t K, int64_t topology, double length,
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
  torch::Tensor stats = torch::empty({N, 4}, i64);
  torch::Tensor depth_sum = torch::empty({N}, f64);
  torch::Tensor hex = torch::empty({N}, f64);
  torch::Tensor oi = torch::empty({N, K}, i64);
  torch::Tensor oj = torch::empty({N, K}, i64);
  torch::Tensor charge = torch::empty({N, K}, i64);
  torch::Tensor position = torch::empty({N, K, 2}, f64);
  torch::Tensor depth = torch::empty({N, K}, f64);
  torch::Tensor age = torch::empty({N, K}, f64);
  torch::Tensor valid = torch::empty({N, K}, torch::TensorOptions().dtype(torch::kBool));
  Outputs out{stats.data_ptr<int64_t>(), depth_sum.data_ptr<double>(), hex.data_ptr<double>(),
              oi.data_ptr<int64_t>(),    oj.data_ptr<int64_t>(),        charge.data_ptr<int64_t>(),
              position.data_ptr<double>(), depth.data_ptr<double>(),   age.data_ptr<double>(),
              valid.data_ptr<bool>()};
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
  return {stats, depth_sum, hex, oi, oj, charge, position, depth, age, valid};
}

// Per-strip sums of the field moments (hhml.ml.env.observables.moment_tensors): for each
// strip n, in double, sum of area, area * |psi|^2, area * |psi|^4 and area * Re(conj(psi) lap),
// lap the five-point Laplacian of lattice.band_laplacian: cup (up - psi) + cum (dn - psi) +
// cvp (rt - psi) + cvm (lt - psi), up / dn the u neighbours (ghost rows given: the seam rule
// applied by the caller), rt / lt the v neighbours (periodic, or ghost_sign * the edge
// value). Every per-node product is rounded in T as the torch code rounds it; only the sums
// differ (double accumulators instead of torch's float cascade).
template <typename T>
void moments_impl(int64_t N, int64_t nu, int64_t nv, const T* psi, const T* up, const T* dn,
                  const T* cup, const T* cum, const T* cvp, const T* cvm, const T* area,
                  bool periodic, T gsign, double* out) {
#pragma omp parallel if (N > 1)
  {
    // the row with its v ghosts at both ends (interleaved re, im), and per-node products
    std::vector<T> ext(static_cast<size_t>(2 * (nv + 2))), prod(static_cast<size_t>(3 * nv));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      const T* f = psi + 2 * n * nu * nv;
      double s_area = 0.0, s_norm = 0.0, s_quart = 0.0, s_grad = 0.0;
      T* pn = prod.data();
      T* pq = pn + nv;
      T* pg = pq + nv;
      for (int64_t i = 0; i < nu; ++i) {
        const T* row = f + 2 * i * nv;
        const T* urow = i + 1 < nu ? f + 2 * (i + 1) * nv : up + 2 * n * nv;
        const T* drow = i > 0 ? f + 2 * (i - 1) * nv : dn + 2 * n * nv;
        const int64_t o = (n * nu + i) * nv;
        T* e = ext.data();
        std::copy(row, row + 2 * nv, e + 2);
        if (periodic) {
          e[0] = row[2 * (nv - 1)], e[1] = row[2 * (nv - 1) + 1];
          e[2 * (nv + 1)] = row[0], e[2 * (nv + 1) + 1] = row[1];
        } else {
          e[0] = row[0] * gsign, e[1] = row[1] * gsign;
          e[2 * (nv + 1)] = row[2 * (nv - 1)] * gsign;
          e[2 * (nv + 1) + 1] = row[2 * (nv - 1) + 1] * gsign;
        }
        const T* c1 = cup + o;
        const T* c2 = cum + o;
        const T* c3 = cvp + o;
        const T* c4 = cvm + o;
        const T* w = area + o;
        for (int64_t j = 0; j < nv; ++j) {
          const T a = e[2 * j + 2], b = e[2 * j + 3];
          const T lr = e[2 * j], li = e[2 * j + 1], rr = e[2 * j + 4], ri = e[2 * j + 5];
          const T lap_r =
              ((c1[j] * (urow[2 * j] - a) + c2[j] * (drow[2 * j] - a)) + c3[j] * (rr - a)) +
              c4[j] * (lr - a);
          const T lap_i = ((c1[j] * (urow[2 * j + 1] - b) + c2[j] * (drow[2 * j + 1] - b)) +
                           c3[j] * (ri - b)) +
                          c4[j] * (li - b);
          const T dens = a * a + b * b;
          pn[j] = w[j] * dens;
          pq[j] = w[j] * (dens * dens);
          pg[j] = w[j] * (a * lap_r + b * lap_i);
        }
        for (int64_t j = 0; j < nv; ++j) {
          s_area += double(w[j]);
          s_norm += double(pn[j]);
          s_quart += double(pq[j]);
          s_grad += double(pg[j]);
        }
      }
      out[4 * n] = s_area;
      out[4 * n + 1] = s_norm;
      out[4 * n + 2] = s_quart;
      out[4 * n + 3] = s_grad;
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

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("measure_strips", &measure_strips, "per-strip vortex measurement (HHmL)");
  m.def("moment_sums", &moment_sums, "per-strip sums of the field moments (HHmL)",
        py::call_guard<py::gil_scoped_release>());
}
