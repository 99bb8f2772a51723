// Fused CGL right-hand side on a flat band lattice (HHmL), OpenMP over rows.
//
//   out = (1 - gamma) psi + (D + i alpha) Lap psi - (g + i beta) |psi|^2 psi - V psi + S
//
// psi, out: contiguous complex [B, nu, nv] seen as interleaved (re, im) pairs.
// up_ghost / down_ghost: [B, nv] complex rows that replace the +u neighbour of row nu-1
// and the -u neighbour of row 0 (the seam flip and twist are applied by the caller).
// v edges: periodic (torus) or a cell-centred ghost ghost_sign * psi(edge cell).
// potential: real [nu, nv] or empty; source: complex [nu, nv] or empty.
#include <torch/extension.h>

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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("flat_cgl_rhs", &flat_cgl_rhs, "fused flat-lattice CGL right-hand side");
}
