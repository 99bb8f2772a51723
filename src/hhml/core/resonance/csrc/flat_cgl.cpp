// Fused CGL right-hand side on a flat band lattice (HHmL), OpenMP over rows.
//
//   out = (1 - gamma) psi + (D + i alpha) Lap psi - (g + i beta) |psi|^2 psi - V psi + S
//
// psi, out: contiguous complex [B, nu, nv] seen as interleaved (re, im) pairs.
// up_ghost / down_ghost: [B, nv] complex rows that replace the +u neighbour of row nu-1
// and the -u neighbour of row 0 (the seam flip and twist are applied by the caller).
// v edges: periodic (torus) or a cell-centred ghost ghost_sign * psi(edge cell).
// potential: real [nu, nv] or empty; source: complex [nu, nv] or empty.
//
// flat_rk4_step: one classical RK4 step of the same right-hand side (source rotated by
// e^{-i omega t} at t, t + dt/2, t + dt), each stage one pass that forms its input
// psi + a k_prev row by row (seam ghost rows with flip and twist built in the kernel) and
// fuses the stage combination; the last stage writes psi + dt/6 (k1 + 2 k2 + 2 k3 + k4).
#include <torch/extension.h>

#include <utility>
#include <vector>

namespace {

template <typename T>
struct Coef {
  T iu2, iv2, centre, growth, dre, dim, gre, gim;
};

template <typename T>
inline void node(const T* c, const T* up, const T* dn, const T* lt, const T* rt, const T* pot,
                 const T* src, const Coef<T>& k, T* o) {
  const T xr = c[0], xi = c[1];
  const T lr = (up[0] + dn[0]) * k.iu2 + (lt[0] + rt[0]) * k.iv2 + k.centre * xr;
  const T li = (up[1] + dn[1]) * k.iu2 + (lt[1] + rt[1]) * k.iv2 + k.centre * xi;
  const T d = xr * xr + xi * xi;
  const T nr = k.gre * d + (pot ? pot[0] : T(0));
  const T ni = k.gim * d;
  T orr = k.growth * xr + k.dre * lr - k.dim * li - (nr * xr - ni * xi);
  T oii = k.growth * xi + k.dre * li + k.dim * lr - (nr * xi + ni * xr);
  if (src) {
    orr += src[0];
    oii += src[1];
  }
  o[0] = orr;
  o[1] = oii;
}

template <typename T, bool HasPot, bool HasSrc>
void run(const T* p, const T* ghost_up, const T* ghost_dn, const T* pot, const T* src, T* out,
         int64_t batch, int64_t nu, int64_t nv, bool periodic_v, T ghost_sign, const Coef<T>& k) {
  const int64_t row = 2 * nv;
  // local copies: the compiler cannot prove that writes to `out` leave `k` unchanged
  const T iu2 = k.iu2, iv2 = k.iv2, centre = k.centre, growth = k.growth, dre = k.dre,
          dim = k.dim, gre = k.gre, gim = k.gim;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < nu; ++i) {
      const T* base = p + b * nu * row;
      const T* r = base + i * row;
      const T* ru = (i + 1 == nu) ? ghost_up + b * row : r + row;
      const T* rd = (i == 0) ? ghost_dn + b * row : r - row;
      const T* pr = pot ? pot + i * nv : nullptr;
      const T* sr = src ? src + i * row : nullptr;
      T* o = out + b * nu * row + i * row;
      T lt_edge[2], rt_edge[2];
      // j = 0 and j = nv - 1 with their ghosts / periodic neighbours
      if (periodic_v) {
        lt_edge[0] = r[row - 2]; lt_edge[1] = r[row - 1];
        rt_edge[0] = r[0]; rt_edge[1] = r[1];
      } else {
        lt_edge[0] = ghost_sign * r[0]; lt_edge[1] = ghost_sign * r[1];
        rt_edge[0] = ghost_sign * r[row - 2]; rt_edge[1] = ghost_sign * r[row - 1];
      }
      if (nv == 1) continue;
      node<T>(r, ru, rd, lt_edge, r + 2, pr, sr, k, o);
      const T* __restrict__ rr = r;
      const T* __restrict__ uu = ru;
      const T* __restrict__ dd = rd;
      T* __restrict__ oo = o;
#pragma omp simd
      for (int64_t j = 1; j < nv - 1; ++j) {
        const int64_t q = 2 * j;
        const T xr = rr[q], xi = rr[q + 1];
        const T lr = (uu[q] + dd[q]) * iu2 + (rr[q - 2] + rr[q + 2]) * iv2 + centre * xr;
        const T li = (uu[q + 1] + dd[q + 1]) * iu2 + (rr[q - 1] + rr[q + 3]) * iv2 + centre * xi;
        const T d = xr * xr + xi * xi;
        T nr = gre * d;
        if constexpr (HasPot) nr += pr[j];
        const T ni = gim * d;
        T orr = growth * xr + dre * lr - dim * li - (nr * xr - ni * xi);
        T oii = growth * xi + dre * li + dim * lr - (nr * xi + ni * xr);
        if constexpr (HasSrc) {
          orr += sr[q];
          oii += sr[q + 1];
        }
        oo[q] = orr;
        oo[q + 1] = oii;
      }
      const int64_t q = row - 2;
      node<T>(r + q, ru + q, rd + q, r + q - 2, rt_edge, pr ? pr + nv - 1 : nullptr,
              sr ? sr + q : nullptr, k, o + q);
    }
  }
}

// One RK4 stage on a [B, nu, nv] field: k = f(y) with y = psi + a * kin formed row by row
// in thread-local buffers (ghost rows for the seam included), then the stage combination.
//   stage 0: k -> kout, acc = k          stage 1, 2: k -> kout, acc += 2 k
//   stage 3: acc = psi + (dt / 6) (acc + k)  (acc then holds the new field)
template <typename T>
struct StageArgs {
  const T* psi;
  const T* kin;  // nullptr in stage 0 (y = psi)
  T* kout;       // nullptr in stage 3
  T* acc;
  const T* pot;
  const T* src;  // source profile, rotated by (rot_re, rot_im) on the fly
  T a, rot_re, rot_im, ph_re, ph_im, dt6, ghost_sign;
  bool flip, periodic_v;
  int64_t batch, nu, nv;
};

// y row r of strip b into buf (r = -1: ghost below row 0, r = nu: ghost above row nu-1);
// returns a pointer to the row (psi itself where no arithmetic is needed).
template <typename T>
inline const T* y_row(const StageArgs<T>& s, int64_t b, int64_t r, T* buf) {
  const int64_t row = 2 * s.nv;
  const bool ghost = r < 0 || r >= s.nu;
  const int64_t src_r = r < 0 ? s.nu - 1 : (r >= s.nu ? 0 : r);
  const T* p = s.psi + (b * s.nu + src_r) * row;
  const T* k = s.kin ? s.kin + (b * s.nu + src_r) * row : nullptr;
  if (!ghost && !k) return p;
  const T a = s.a;
  if (k) {
    for (int64_t q = 0; q < row; ++q) buf[q] = p[q] + a * k[q];
  } else {
    for (int64_t q = 0; q < row; ++q) buf[q] = p[q];
  }
  if (!ghost) return buf;
  if (s.flip) {
    for (int64_t j = 0; j < s.nv / 2; ++j) {
      const int64_t q = 2 * j, w = row - 2 - q;
      std::swap(buf[q], buf[w]);
      std::swap(buf[q + 1], buf[w + 1]);
    }
  }
  if (s.ph_re != T(1) || s.ph_im != T(0)) {
    // above the last row: phase; below the first row: its conjugate
    const T pr = s.ph_re, pi = r < 0 ? -s.ph_im : s.ph_im;
    for (int64_t q = 0; q < row; q += 2) {
      const T xr = buf[q], xi = buf[q + 1];
      buf[q] = xr * pr - xi * pi;
      buf[q + 1] = xr * pi + xi * pr;
    }
  }
  return buf;
}

template <typename T, bool HasPot, bool HasSrc, int Stage>
void rk4_stage(const StageArgs<T>& s, const Coef<T>& k) {
  const int64_t nu = s.nu, nv = s.nv, row = 2 * nv, total = s.batch * nu;
  const T iu2 = k.iu2, iv2 = k.iv2, centre = k.centre, growth = k.growth, dre = k.dre,
          dim = k.dim, gre = k.gre, gim = k.gim, rot_re = s.rot_re, rot_im = s.rot_im,
          dt6 = s.dt6;
#pragma omp parallel
  {
    // three y rows (slot = (r + 1) mod 3, tagged by strip and row) and one k row
    std::vector<T> store(4 * row);
    T* slots[3] = {store.data(), store.data() + row, store.data() + 2 * row};
    T* kr = store.data() + 3 * row;
    int64_t tag_b[3] = {-1, -1, -1}, tag_r[3] = {0, 0, 0};
    const T* slot_ptr[3] = {nullptr, nullptr, nullptr};
    auto get = [&](int64_t b, int64_t r) -> const T* {
      const int64_t slot = (r + 1) % 3;
      if (tag_b[slot] != b || tag_r[slot] != r) {
        slot_ptr[slot] = y_row<T>(s, b, r, slots[slot]);
        tag_b[slot] = b;
        tag_r[slot] = r;
      }
      return slot_ptr[slot];
    };
#pragma omp for schedule(static)
    for (int64_t g = 0; g < total; ++g) {
      const int64_t b = g / nu, i = g % nu;
      const T* r = get(b, i);
      const T* ru = get(b, i + 1);
      const T* rd = get(b, i - 1);
      const T* pr = HasPot ? s.pot + i * nv : nullptr;
      const T* sr = HasSrc ? s.src + i * row : nullptr;
      T lt_edge[2], rt_edge[2];
      if (s.periodic_v) {
        lt_edge[0] = r[row - 2]; lt_edge[1] = r[row - 1];
        rt_edge[0] = r[0]; rt_edge[1] = r[1];
      } else {
        const T gs = s.ghost_sign;
        lt_edge[0] = gs * r[0]; lt_edge[1] = gs * r[1];
        rt_edge[0] = gs * r[row - 2]; rt_edge[1] = gs * r[row - 1];
      }
      T src_edge[4];
      if (HasSrc) {
        src_edge[0] = sr[0] * rot_re - sr[1] * rot_im;
        src_edge[1] = sr[0] * rot_im + sr[1] * rot_re;
        src_edge[2] = sr[row - 2] * rot_re - sr[row - 1] * rot_im;
        src_edge[3] = sr[row - 2] * rot_im + sr[row - 1] * rot_re;
      }
      node<T>(r, ru, rd, lt_edge, r + 2, pr, HasSrc ? src_edge : nullptr, k, kr);
      node<T>(r + row - 2, ru + row - 2, rd + row - 2, r + row - 4, rt_edge,
              HasPot ? pr + nv - 1 : nullptr, HasSrc ? src_edge + 2 : nullptr, k,
              kr + row - 2);
      {
        const T* __restrict__ rr = r;
        const T* __restrict__ uu = ru;
        const T* __restrict__ dd = rd;
        T* __restrict__ oo = kr;
#pragma omp simd
        for (int64_t j = 1; j < nv - 1; ++j) {
          const int64_t q = 2 * j;
          const T xr = rr[q], xi = rr[q + 1];
          const T lr = (uu[q] + dd[q]) * iu2 + (rr[q - 2] + rr[q + 2]) * iv2 + centre * xr;
          const T li =
              (uu[q + 1] + dd[q + 1]) * iu2 + (rr[q - 1] + rr[q + 3]) * iv2 + centre * xi;
          const T d = xr * xr + xi * xi;
          T nr = gre * d;
          if constexpr (HasPot) nr += pr[j];
          const T ni = gim * d;
          T orr = growth * xr + dre * lr - dim * li - (nr * xr - ni * xi);
          T oii = growth * xi + dre * li + dim * lr - (nr * xi + ni * xr);
          if constexpr (HasSrc) {
            orr += sr[q] * rot_re - sr[q + 1] * rot_im;
            oii += sr[q] * rot_im + sr[q + 1] * rot_re;
          }
          oo[q] = orr;
          oo[q + 1] = oii;
        }
      }
      // the stage combination, on the k row still in cache
      T* __restrict__ ac = s.acc + g * row;
      const T* __restrict__ kk = kr;
      if constexpr (Stage == 3) {
        const T* __restrict__ ps = s.psi + g * row;
#pragma omp simd
        for (int64_t q = 0; q < row; ++q) ac[q] = ps[q] + dt6 * (ac[q] + kk[q]);
      } else {
        T* __restrict__ ko = s.kout + g * row;
        if constexpr (Stage == 0) {
#pragma omp simd
          for (int64_t q = 0; q < row; ++q) {
            ko[q] = kk[q];
            ac[q] = kk[q];
          }
        } else {
#pragma omp simd
          for (int64_t q = 0; q < row; ++q) {
            ko[q] = kk[q];
            ac[q] += T(2) * kk[q];
          }
        }
      }
    }
  }
}

template <typename T, bool HasPot, bool HasSrc>
void rk4_all(StageArgs<T> s, const Coef<T>& k, T* k1, T* k2, const T* rot, T dt) {
  // stage 0: y = psi; 1: psi + dt/2 k1; 2: psi + dt/2 k2; 3: psi + dt k3 (k3 in k1)
  s.kin = nullptr; s.kout = k1; s.a = T(0); s.rot_re = rot[0]; s.rot_im = rot[1];
  rk4_stage<T, HasPot, HasSrc, 0>(s, k);
  s.kin = k1; s.kout = k2; s.a = T(0.5) * dt; s.rot_re = rot[2]; s.rot_im = rot[3];
  rk4_stage<T, HasPot, HasSrc, 1>(s, k);
  s.kin = k2; s.kout = k1;
  rk4_stage<T, HasPot, HasSrc, 2>(s, k);
  s.kin = k1; s.kout = nullptr; s.a = dt; s.rot_re = rot[4]; s.rot_im = rot[5];
  rk4_stage<T, HasPot, HasSrc, 3>(s, k);
}

}  // namespace

torch::Tensor flat_cgl_rhs(torch::Tensor psi, torch::Tensor ghost_up, torch::Tensor ghost_dn,
                           torch::Tensor potential, torch::Tensor source, bool periodic_v,
                           double ghost_sign, double iu2, double iv2, double growth, double dre,
                           double dim, double gre, double gim) {
  auto out = torch::empty_like(psi);
  const int64_t nu = psi.size(-2), nv = psi.size(-1);
  const int64_t batch = psi.numel() / (nu * nv);
  AT_DISPATCH_FLOATING_TYPES(torch::view_as_real(psi).scalar_type(), "flat_cgl_rhs", [&] {
    using T = scalar_t;
    Coef<T> k{T(iu2), T(iv2), T(-2.0 * (iu2 + iv2)), T(growth), T(dre), T(dim), T(gre), T(gim)};
    const T* pot = potential.numel() ? potential.data_ptr<T>() : nullptr;
    const T* src =
        source.numel() ? reinterpret_cast<const T*>(torch::view_as_real(source).data_ptr<T>())
                       : nullptr;
    const T* p = torch::view_as_real(psi).data_ptr<T>();
    const T* gu = torch::view_as_real(ghost_up).data_ptr<T>();
    const T* gd = torch::view_as_real(ghost_dn).data_ptr<T>();
    T* o = torch::view_as_real(out).data_ptr<T>();
    const T gs = T(ghost_sign);
    // branch-free inner loops: one instantiation per combination of optional terms
    if (pot && src) run<T, true, true>(p, gu, gd, pot, src, o, batch, nu, nv, periodic_v, gs, k);
    else if (pot) run<T, true, false>(p, gu, gd, pot, src, o, batch, nu, nv, periodic_v, gs, k);
    else if (src) run<T, false, true>(p, gu, gd, pot, src, o, batch, nu, nv, periodic_v, gs, k);
    else run<T, false, false>(p, gu, gd, pot, src, o, batch, nu, nv, periodic_v, gs, k);
  });
  return out;
}

torch::Tensor flat_rk4_step(torch::Tensor psi, torch::Tensor potential, torch::Tensor source,
                            std::vector<double> rot, bool flip, double ph_re, double ph_im,
                            bool periodic_v, double ghost_sign, double iu2, double iv2,
                            double growth, double dre, double dim, double gre, double gim,
                            double dt) {
  TORCH_CHECK(rot.size() == 6, "rot: need (re, im) at t, t + dt/2, t + dt");
  TORCH_CHECK(psi.is_contiguous() && psi.dim() >= 2, "psi: contiguous [..., nu, nv]");
  auto out = torch::empty_like(psi);
  auto k1 = torch::empty_like(psi);
  auto k2 = torch::empty_like(psi);
  const int64_t nu = psi.size(-2), nv = psi.size(-1);
  const int64_t batch = psi.numel() / (nu * nv);
  AT_DISPATCH_FLOATING_TYPES(torch::view_as_real(psi).scalar_type(), "flat_rk4_step", [&] {
    using T = scalar_t;
    Coef<T> k{T(iu2), T(iv2), T(-2.0 * (iu2 + iv2)), T(growth), T(dre), T(dim), T(gre), T(gim)};
    StageArgs<T> s{};
    s.psi = torch::view_as_real(psi).data_ptr<T>();
    s.acc = torch::view_as_real(out).data_ptr<T>();
    s.pot = potential.numel() ? potential.data_ptr<T>() : nullptr;
    s.src = source.numel() ? torch::view_as_real(source).data_ptr<T>() : nullptr;
    s.ph_re = T(ph_re); s.ph_im = T(ph_im); s.dt6 = T(dt / 6.0); s.ghost_sign = T(ghost_sign);
    s.flip = flip; s.periodic_v = periodic_v;
    s.batch = batch; s.nu = nu; s.nv = nv;
    T* a = torch::view_as_real(k1).data_ptr<T>();
    T* c = torch::view_as_real(k2).data_ptr<T>();
    const T r[6] = {T(rot[0]), T(rot[1]), T(rot[2]), T(rot[3]), T(rot[4]), T(rot[5])};
    if (s.pot && s.src) rk4_all<T, true, true>(s, k, a, c, r, T(dt));
    else if (s.pot) rk4_all<T, true, false>(s, k, a, c, r, T(dt));
    else if (s.src) rk4_all<T, false, true>(s, k, a, c, r, T(dt));
    else rk4_all<T, false, false>(s, k, a, c, r, T(dt));
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("flat_cgl_rhs", &flat_cgl_rhs, "fused flat-lattice CGL right-hand side");
  m.def("flat_rk4_step", &flat_rk4_step, "one RK4 step, stage combinations fused");
}
