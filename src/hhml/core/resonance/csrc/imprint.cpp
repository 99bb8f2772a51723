// Vortex phase imprints on one chart (HHmL), OpenMP, CPU: the batched forms of
// hhml.core.resonance.imprint._phase / _image_distance used by targeted annihilation and
// by pair seeding.
//
//   Phi(x; u0, v0)   unit-charge phase: Moebius arg(e^{ik(z-z0)} - 1) + the same at
//                    sigma(z) = (u + L, -v), k = pi / L; cylinder / torus one term, k = 2 pi / L;
//                    arg(e^{a+ib} - 1) as imprint._arg_exp_minus_one (no overflow for a > 0)
//   d(x; u0, v0)     chart distance to the nearest image: Moebius (0,+), (+-2L,+), (+-L,-);
//                    cylinder (0,+), (+-L,+); torus the cylinder images x v-shifts {0, +-2w}
//
// imprint_angles: out[g] = sum over targets t of group g, in increasing t, of
//                 w_t * Phi_t * exp(-(d_t^2) / (2 r_t r_t))   (real [G, nu, nv])
// pair_factors:   out[m] = prod over the two (seam-wrapped) cores of
//                 polar(1, q Phi) * tanh(d / xi)^|q|, times the torus gauge ramp (complex)
//
// Every formula is evaluated in T (the chart's real type) in the operation order of the torch
// code, so that float64 results agree to the last bits of the transcendental functions (libm
// here, SLEEF in torch). Compiled with -ffp-contract=off: no fused multiply-adds.
// Work items are (group or pair, block of rows); each precomputes the per-row (u) and
// per-column (v) factors of a target in thread-local buffers allocated once per thread.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace {

enum Topology : int64_t { kMobius = 0, kCylinder = 1, kTorus = 2 };

template <typename T>
struct Chart {
  int64_t nu, nv, topology;
  const T* u;  // [nu] cell-centre u
  const T* v;  // [nv] cell-centre v
  T L, k, w2;  // length, wave number, 2 * half_width (all rounded to T like torch scalars)
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

// Per-thread scratch for one centre: per-column (v) and per-row (u) factors.
template <typename T>
struct Scratch {
  std::vector<T> mem;
  std::vector<char> big;
  T *ea_d, *ea_i;    // [nv] e^{-|a|} of the direct and image terms
  T *c_d, *s_d;      // [nu] cos, sin of the direct term
  T *c_i, *s_i;      // [nu] cos, sin of the image term
  T *du2;            // [nimg * nu]   (u - (u0 + shift))^2
  T *dv2;            // [nimg * nvs * nv]  (v - (sign v0 + vshift))^2
  T *rc, *rs;        // [nv] torus gauge ramp cos, sin
  char *big_d, *big_i;
  explicit Scratch(const Chart<T>& c)
      : mem(static_cast<size_t>(4 * c.nv + 4 * c.nu + 5 * c.nu + 15 * c.nv + 2 * c.nv)),
        big(static_cast<size_t>(2 * c.nv)) {
    T* p = mem.data();
    ea_d = p, p += c.nv;
    ea_i = p, p += c.nv;
    c_d = p, p += c.nu;
    s_d = p, p += c.nu;
    c_i = p, p += c.nu;
    s_i = p, p += c.nu;
    du2 = p, p += 5 * c.nu;
    dv2 = p, p += 15 * c.nv;
    rc = p, p += c.nv;
    rs = p, p += c.nv;
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
    // direct: a = -k (v - v0); image (Moebius): a = k (v + v0)
    const T a = mk * (c.v[j] - v0);
    s.big_d[j] = a > T(0);
    s.ea_d[j] = std::exp(a > T(0) ? -a : a);
    if (mob) {
      const T b = k * (c.v[j] + v0);
      s.big_i[j] = b > T(0);
      s.ea_i[j] = std::exp(b > T(0) ? -b : b);
    }
  }
  for (int64_t i = i0; i < i1; ++i) {
    const T b = k * (c.u[i] - u0);
    s.c_d[i] = std::cos(b);
    s.s_d[i] = std::sin(b);
    if (mob) {
      const T bi = k * ((c.u[i] + c.L) - u0);
      s.c_i[i] = std::cos(bi);
      s.s_i[i] = std::sin(bi);
    }
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

// arg(e^{a+ib} - 1) from big = a > 0, ea = e^{-|a|}, cos b, sin b (imprint._arg_exp_minus_one)
template <typename T>
inline T arg_em1(bool big, T ea, T cb, T sb) {
  const T re = big ? cb - ea : ea * cb - T(1);
  const T im = big ? sb : ea * sb;
  return std::atan2(im, re);
}

template <typename T>
inline T phase_at(const Chart<T>& c, const Scratch<T>& s, int64_t i, int64_t j) {
  const T direct = arg_em1(s.big_d[j] != 0, s.ea_d[j], s.c_d[i], s.s_d[i]);
  if (c.topology != kMobius) return direct;
  return direct + arg_em1(s.big_i[j] != 0, s.ea_i[j], s.c_i[i], s.s_i[i]);
}

template <typename T>
inline T dist_at(const Chart<T>& c, const Scratch<T>& s, int64_t i, int64_t j) {
  T best = std::numeric_limits<T>::infinity();
  for (int q = 0; q < c.nimg; ++q) {
    const T x2 = s.du2[q * c.nu + i];
    for (int h = 0; h < c.nvs; ++h) best = std::min(best, x2 + s.dv2[(q * c.nvs + h) * c.nv + j]);
  }
  return std::sqrt(best);
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
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t g = item / it.blocks;
      const int64_t i0 = (item % it.blocks) * it.rows, i1 = std::min(nu, i0 + it.rows);
      T* acc = out + g * nu * nv;
      for (int64_t p = start[g]; p < start[g + 1]; ++p) {
        const int64_t t = order[p];
        const T w = wt[t];
        // exactly zero contributions leave the sum unchanged (bitwise): skip them
        if (w == T(0)) continue;
        const bool finite = std::isfinite(w);
        prepare(c, s, u0[t], v0[t], i0, i1);
        const T rr = (T(2) * r[t]) * r[t];
        for (int64_t i = i0; i < i1; ++i) {
          T* row = acc + i * nv;
          for (int64_t j = 0; j < nv; ++j) {
            const T d = dist_at(c, s, i, j);
            const T env = std::exp(-(d * d) / rr);
            if (env == T(0) && finite) continue;
            row[j] += (w * phase_at(c, s, i, j)) * env;
          }
        }
      }
    }
  }
}

template <typename T>
void pairs_impl(const Chart<T>& c, const T* u0, const T* v0, const T* sign, int64_t M,
                double separation, double core_radius, int64_t abs_charge, T* out) {
  const int64_t nu = c.nu, nv = c.nv;
  const Items it = split_rows(M, nu);
  const int64_t items = M * it.blocks;
  const bool amp = core_radius > 0 && abs_charge != 0;
  const T xi = T(core_radius);
  const T qpow = T(static_cast<double>(abs_charge));
#pragma omp parallel if (items > 1)
  {
    Scratch<T> s(c);
#pragma omp for schedule(dynamic, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t m = item / it.blocks;
      const int64_t i0 = (item % it.blocks) * it.rows, i1 = std::min(nu, i0 + it.rows);
      T* f = out + 2 * m * nu * nv;  // interleaved (re, im)
      T wrapped[2];
      for (int core = 0; core < 2; ++core) {
        // imprint._wrap_tensor of u0 -+ separation / 2
        const T uc = u0[m] + T(core == 0 ? -0.5 * separation : 0.5 * separation);
        const T n = std::floor(uc / c.L);
        const T uw = uc - n * c.L;
        const bool odd = c.topology == kMobius && std::fmod(n, T(2)) != T(0);
        const T vw = odd ? -v0[m] : v0[m];
        const T orient = odd ? T(-1) : T(1);
        const T q = (core == 0 ? sign[m] : -sign[m]) * orient;
        wrapped[core] = uw;
        prepare(c, s, uw, vw, i0, i1);
        for (int64_t i = i0; i < i1; ++i) {
          T* row = f + 2 * i * nv;
          for (int64_t j = 0; j < nv; ++j) {
            const T ph = q * phase_at(c, s, i, j);
            T re = std::cos(ph), im = std::sin(ph);
            if (amp) {
              const T x = std::tanh(dist_at(c, s, i, j) / xi);
              // torch.pow(x, n): n = 1 copies, 2 squares, 3 cubes, otherwise std::pow
              const T a = abs_charge == 1   ? x
                          : abs_charge == 2 ? x * x
                          : abs_charge == 3 ? x * x * x
                                            : std::pow(x, qpow);
              re = re * a;
              im = im * a;
            }
            if (core == 0) {
              row[2 * j] = re;
              row[2 * j + 1] = im;
            } else {
              const T fr = row[2 * j], fi = row[2 * j + 1];
              row[2 * j] = fr * re - fi * im;
              row[2 * j + 1] = fr * im + fi * re;
            }
          }
        }
      }
      if (c.topology == kTorus) {
        // the gauge ramp: gauge = 2 pi sign du / L, ramp = gauge (v + w) / (2w)
        const T du = wrapped[0] - wrapped[1];
        const T gauge = ((T(2.0 * M_PI) * sign[m]) * du) / c.L;
        const T w = c.w2 * T(0.5);
        for (int64_t j = 0; j < nv; ++j) {
          const T ramp = (gauge * (c.v[j] + w)) / c.w2;
          s.rc[j] = std::cos(-ramp);
          s.rs[j] = std::sin(-ramp);
        }
        for (int64_t i = i0; i < i1; ++i) {
          T* row = f + 2 * i * nv;
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

torch::Tensor imprint_angles(const torch::Tensor& u, const torch::Tensor& v,
                             const torch::Tensor& u0, const torch::Tensor& v0,
                             const torch::Tensor& weight, const torch::Tensor& radius,
                             const torch::Tensor& group, int64_t groups, int64_t topology,
                             double length, double half_width) {
  check_chart(u, v, topology);
  const int64_t T_ = u0.numel();
  for (const auto* x : {&u0, &v0, &weight, &radius})
    check_vec(*x, u, T_, "u0, v0, weight, radius must be contiguous [T] of the chart dtype");
  check(group.dim() == 1 && group.numel() == T_ && group.is_contiguous() &&
            group.scalar_type() == torch::kInt64,
        "group must be contiguous int64 [T]");
  check(groups >= 0, "groups must be >= 0");
  auto out = torch::zeros({groups, u.numel(), v.numel()}, u.options());
  // stable counting sort of the targets by group: increasing t inside each group
  const int64_t* gp = group.data_ptr<int64_t>();
  std::vector<int64_t> start(static_cast<size_t>(groups + 1), 0), order(static_cast<size_t>(T_));
  for (int64_t t = 0; t < T_; ++t) {
    check(gp[t] >= 0 && gp[t] < groups, "group values must lie in [0, groups)");
    ++start[gp[t] + 1];
  }
  for (int64_t g = 0; g < groups; ++g) start[g + 1] += start[g];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t t = 0; t < T_; ++t) order[fill[gp[t]]++] = t;
  if (T_ == 0 || groups == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "imprint_angles", [&] {
    const auto c = make_chart<scalar_t>(u, v, topology, length, half_width);
    angles_impl<scalar_t>(c, u0.data_ptr<scalar_t>(), v0.data_ptr<scalar_t>(),
                          weight.data_ptr<scalar_t>(), radius.data_ptr<scalar_t>(), start, order,
                          groups, out.data_ptr<scalar_t>());
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

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // the GIL is released: the kernels touch no Python object
  m.def("imprint_angles", &imprint_angles, "summed weighted vortex phase imprints per group",
        py::call_guard<py::gil_scoped_release>());
  m.def("pair_factors", &pair_factors, "multiplicative imprints of neutral vortex pairs",
        py::call_guard<py::gil_scoped_release>());
}
