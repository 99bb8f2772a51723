// One classical RK4 step for B stacks of S embedded Moebius strips (HHmL), OpenMP, CPU.
//
//   F(psi, t) = g_b psi + D_b Lap psi - f_b Lap(Lap psi) - c_b |psi|^2 psi - V_b psi
//               + S_b exp(-i w_b t) + k_b C(psi)
//
// Lap is the seam-aware five-point finite-volume operator of hhml.core.mobius.band_laplacian
// (per-node face coefficients cup, cum, cvp, cvm; seam phase e^{i theta_b}; flip for the
// Moebius chart; v edges periodic or ghost = ghost_sign * edge value); C is the inter-strip
// coupling of TokamakStack.coupling: C_s = W_s (psi_{s+1} - psi_s) - W_{s-1} (psi_s - psi_{s-1}).
//
// Structure: k1..k4 = F at y = psi + a k_prev (a = 0, dt/2, dt/2, dt). A stage on one strip
// (b, s) forms y = psi + a k_prev on the fly in a small thread-local buffer (planar re/im,
// with the two seam ghost rows), then Lap y and - only for envs with f_b != 0, decided here
// per env - Lap(Lap y) from the same buffers: the stencil never leaves the strip, so no
// global pre-pass is needed. The coupling forms y of strips s +- 1 on the fly. F is added
// into the RK4 sum and kept as k for the next stage; the last stage writes
// psi + dt/6 (k1 + 2k2 + 2k3 + k4) straight into the output. Stage n of env b needs only
// stage n - 1 of env b, so threads run all four stages of whole envs back to back in cache
// (env-major); with fewer envs than threads and large strips the stages are instead
// parallel passes over the strips (b, s) with a barrier between them (stage-major).
// Scratch (planar psi, two k buffers, the sum) is allocated once per call.
//
// Layout: complex tensors are contiguous, interleaved (re, im) pairs of T.
//   psi                   complex [B, S, nu, nv]
//   cup, cum, cvp, cvm    real    [Bc, S, nu, nv], Bc in {1, B} (the same for all four)
//   seam                  complex [B] (e^{i theta_b}) or empty (theta = 0)
//   growth, filt, freq, coup   real [B];   diff, cubic   complex [B]
//   weights               real    [Bw, S-1, nu, nv], Bw in {1, B}, or empty (no coupling)
//   potential             real    [Bp, nu, nv] or empty, Bp in {1, B}
//   source                complex [Bq, nu, nv] or empty, Bq in {1, B}
#include <torch/extension.h>

#include <cmath>
#include <vector>

namespace {

template <typename T>
struct Problem {
  int64_t B, S, nu, nv;
  const T* psi;  // interleaved
  const T *cup, *cum, *cvp, *cvm;
  int64_t coef_bs;  // batch stride in nodes: 0 (shared) or S * nu * nv
  const T* seam;
  const T *growth, *filt, *freq, *coup, *diff, *cubic;
  const T* w;
  int64_t w_bs;  // 0 (shared) or (S - 1) * nu * nv
  const T* pot;
  int64_t pot_bs;  // batch stride in nodes: 0 (shared) or nu * nv
  const T* src;
  int64_t src_bs;
  bool flip, periodic;
  T gs;
};

// Thread-local buffers for one strip; padded arrays hold nu + 2 rows of nv: row 0 is the
// -u neighbour of row 1 across the seam, row nu + 1 the +u neighbour of row nu.
template <typename T>
struct Buffers {
  std::vector<T> mem;
  T *yr, *yi, *lr, *li, *br, *bi, *fr, *fi;
  Buffers(int64_t nu, int64_t nv) : mem(static_cast<size_t>(8 * (nu + 2) * nv)) {
    const int64_t n = (nu + 2) * nv;
    T* p = mem.data();
    for (T** q : {&yr, &yi, &lr, &li, &br, &bi, &fr, &fi}) {
      *q = p;
      p += n;
    }
  }
};

// Seam ghost rows of a padded planar field x (interior rows 1..nu):
//   row 0      = conj(ph) * flip(row nu),   row nu + 1 = ph * flip(row 1).
template <typename T>
inline void seam_rows(T* xr, T* xi, int64_t nu, int64_t nv, bool flip, const T* ph) {
  const T pr = ph ? ph[0] : T(1), pi = ph ? ph[1] : T(0);
  T *dr = xr, *di = xi, *ur = xr + (nu + 1) * nv, *ui = xi + (nu + 1) * nv;
  const T *lr = xr + nu * nv, *li = xi + nu * nv, *fr = xr + nv, *fi = xi + nv;
  for (int64_t j = 0; j < nv; ++j) {
    const int64_t jj = flip ? nv - 1 - j : j;
    if (ph) {
      dr[j] = pr * lr[jj] + pi * li[jj];
      di[j] = pr * li[jj] - pi * lr[jj];
      ur[j] = pr * fr[jj] - pi * fi[jj];
      ui[j] = pr * fi[jj] + pi * fr[jj];
    } else {
      dr[j] = lr[jj];
      di[j] = li[jj];
      ur[j] = fr[jj];
      ui[j] = fi[jj];
    }
  }
}

// L = cup (up - x) + cum (dn - x) + cvp (right - x) + cvm (left - x) on the nu * nv interior
// nodes of the padded planar field x; L is unpadded [nu * nv]. One flat pass (the v
// neighbours of the edge columns are wrong there), then the two edge columns redone with
// their ghosts.
template <typename T>
inline void lap(T* __restrict__ Lr, T* __restrict__ Li, const T* __restrict__ xr,
                const T* __restrict__ xi, const T* __restrict__ cup, const T* __restrict__ cum,
                const T* __restrict__ cvp, const T* __restrict__ cvm, int64_t nu, int64_t nv,
                bool periodic, T gs) {
  const int64_t n = nu * nv;
  const T* cr = xr + nv;
  const T* ci = xi + nv;
#pragma omp simd
  for (int64_t q = 0; q < n; ++q) {
    const T x = cr[q], y = ci[q];
    Lr[q] = cup[q] * (cr[q + nv] - x) + cum[q] * (cr[q - nv] - x) + cvp[q] * (cr[q + 1] - x) +
            cvm[q] * (cr[q - 1] - x);
    Li[q] = cup[q] * (ci[q + nv] - y) + cum[q] * (ci[q - nv] - y) + cvp[q] * (ci[q + 1] - y) +
            cvm[q] * (ci[q - 1] - y);
  }
  for (int64_t i = 0; i < nu; ++i) {
    const int64_t a = i * nv, z = a + nv - 1;  // first and last node of row i
    for (const int64_t q : {a, z}) {
      const T x = cr[q], y = ci[q];
      // right and left neighbours: inside the row, else periodic or ghost
      T rr, ri, lr, li;
      if (q == z) {
        rr = periodic ? cr[a] : gs * cr[z];
        ri = periodic ? ci[a] : gs * ci[z];
      } else {
        rr = cr[q + 1];
        ri = ci[q + 1];
      }
      if (q == a) {
        lr = periodic ? cr[z] : gs * cr[a];
        li = periodic ? ci[z] : gs * ci[a];
      } else {
        lr = cr[q - 1];
        li = ci[q - 1];
      }
      Lr[q] = cup[q] * (cr[q + nv] - x) + cum[q] * (cr[q - nv] - x) + cvp[q] * (rr - x) +
              cvm[q] * (lr - x);
      Li[q] = cup[q] * (ci[q + nv] - y) + cum[q] * (ci[q - nv] - y) + cvp[q] * (ri - y) +
              cvm[q] * (li - y);
    }
  }
}

struct Stage {
  int kp, kn;  // slot of k_prev / k_new (-1: none)
  int mode;    // 0: sum = F; 1: sum += 2F; 2: out = psi + dt/6 (sum + F)
  int time;    // 0: t, 1: t + dt/2, 2: t + dt
};
constexpr Stage kStages[4] = {{-1, 0, 0, 0}, {0, 1, 1, 1}, {1, 0, 1, 1}, {0, -1, 2, 2}};
// below this many nodes in all, the stage-major schedule (4 barriers) does not pay
constexpr int64_t kStageMajorNodes = 1 << 16;

// Planar [S, 2, nu, nv] blocks of one env: psi, k_prev (or null), k_new (or null), RK4 sum.
template <typename T>
struct EnvView {
  const T* x;
  const T* kp;
  T* kn;
  T* sum;
};

// Stage constants shared by all strips.
template <typename T>
struct StageConst {
  T a, sixth;
  const T* rot;  // e^{-i w_b t_stage}, interleaved [B]
};

// One stage on strip (b, s): F at y = psi + a k_prev, accumulated into the RK4 sum.
template <typename T>
void strip_stage(const Problem<T>& P, int64_t b, int64_t s, const EnvView<T>& v,
                 const Stage& st, const StageConst<T>& c, Buffers<T>& w, T* out) {
  const int64_t S = P.S, nu = P.nu, nv = P.nv, n = nu * nv, node = (b * S + s) * n;
  const int64_t off = 2 * s * n;  // the strip's block inside the env view
  const T a = c.a;
  const T* __restrict__ xr = v.x + off;
  const T* __restrict__ xi = xr + n;
  T* __restrict__ yr = w.yr;
  T* __restrict__ yi = w.yi;
  // y = psi + a k_prev on rows 1..nu of the padded buffer, then the seam rows
  if (v.kp) {
    const T* __restrict__ kr = v.kp + off;
    const T* __restrict__ ki = kr + n;
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      yr[q + nv] = xr[q] + a * kr[q];
      yi[q + nv] = xi[q] + a * ki[q];
    }
  } else {
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      yr[q + nv] = xr[q];
      yi[q + nv] = xi[q];
    }
  }
  const T* ph = P.seam ? P.seam + 2 * b : nullptr;
  seam_rows<T>(yr, yi, nu, nv, P.flip, ph);
  const int64_t cn = b * P.coef_bs + s * n;  // coefficients may be shared by all envs
  const T *cup = P.cup + cn, *cum = P.cum + cn, *cvp = P.cvp + cn, *cvm = P.cvm + cn;
  T* __restrict__ lr = w.lr + nv;
  T* __restrict__ li = w.li + nv;
  lap<T>(lr, li, yr, yi, cup, cum, cvp, cvm, nu, nv, P.periodic, P.gs);
  // Lap(Lap y) only for envs with a filter: the decision is per env, here
  const T filt = P.filt[b];
  if (filt != T(0)) {
    seam_rows<T>(w.lr, w.li, nu, nv, P.flip, ph);
    lap<T>(w.br, w.bi, w.lr, w.li, cup, cum, cvp, cvm, nu, nv, P.periodic, P.gs);
  }
  // F at y: the local terms, then the optional ones
  const T* __restrict__ cyr = yr + nv;
  const T* __restrict__ cyi = yi + nv;
  T* __restrict__ fr = w.fr;
  T* __restrict__ fi = w.fi;
  const T g = P.growth[b], dr = P.diff[2 * b], di = P.diff[2 * b + 1];
  const T cr = P.cubic[2 * b], ci = P.cubic[2 * b + 1];
#pragma omp simd
  for (int64_t q = 0; q < n; ++q) {
    const T ur = cyr[q], ui = cyi[q], vr = lr[q], vi = li[q];
    const T d = ur * ur + ui * ui;
    const T nr = cr * d, ni = ci * d;
    fr[q] = g * ur + (dr * vr - di * vi) - (nr * ur - ni * ui);
    fi[q] = g * ui + (dr * vi + di * vr) - (nr * ui + ni * ur);
  }
  if (filt != T(0)) {
    const T* __restrict__ br = w.br;
    const T* __restrict__ bi = w.bi;
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      fr[q] -= filt * br[q];
      fi[q] -= filt * bi[q];
    }
  }
  if (P.pot) {
    const T* __restrict__ pv = P.pot + b * P.pot_bs;
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      fr[q] -= pv[q] * cyr[q];
      fi[q] -= pv[q] * cyi[q];
    }
  }
  if (P.src) {
    const T* __restrict__ sc = P.src + 2 * b * P.src_bs;
    const T rr = c.rot[2 * b], ri = c.rot[2 * b + 1];
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      fr[q] += sc[2 * q] * rr - sc[2 * q + 1] * ri;
      fi[q] += sc[2 * q] * ri + sc[2 * q + 1] * rr;
    }
  }
  const T kap = (P.w != nullptr && S > 1) ? P.coup[b] : T(0);
  if (kap != T(0)) {
    // W_s at [b, s] and W_{s-1} at [b, s-1] of [B or 1, S-1, nu, nv]; y of the neighbours
    // strips formed on the fly (with a = 0 and k_prev = psi in the first stage)
    const T* wp = P.w + b * P.w_bs + s * n;
    const T aa = v.kp ? a : T(0);
    if (s + 1 < S) {  // + W_s (y_{s+1} - y_s)
      const T* __restrict__ w_s = wp;
      const T* __restrict__ orr = xr + 2 * n;
      const T* __restrict__ oi = orr + n;
      const T* __restrict__ kr = v.kp ? v.kp + off + 2 * n : orr;
      const T* __restrict__ ki = kr + n;
#pragma omp simd
      for (int64_t q = 0; q < n; ++q) {
        fr[q] += kap * (w_s[q] * ((orr[q] + aa * kr[q]) - cyr[q]));
        fi[q] += kap * (w_s[q] * ((oi[q] + aa * ki[q]) - cyi[q]));
      }
    }
    if (s > 0) {  // - W_{s-1} (y_s - y_{s-1})
      const T* __restrict__ w_m = wp - n;
      const T* __restrict__ orr = xr - 2 * n;
      const T* __restrict__ oi = orr + n;
      const T* __restrict__ kr = v.kp ? v.kp + off - 2 * n : orr;
      const T* __restrict__ ki = kr + n;
#pragma omp simd
      for (int64_t q = 0; q < n; ++q) {
        fr[q] -= kap * (w_m[q] * (cyr[q] - (orr[q] + aa * kr[q])));
        fi[q] -= kap * (w_m[q] * (cyi[q] - (oi[q] + aa * ki[q])));
      }
    }
  }
  // accumulate: k for the next stage, and the RK4 sum
  T* __restrict__ sr = v.sum + off;
  T* __restrict__ si = sr + n;
  if (v.kn) {
    T* __restrict__ kr = v.kn + off;
    T* __restrict__ ki = kr + n;
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      kr[q] = fr[q];
      ki[q] = fi[q];
    }
  }
  if (st.mode == 0) {
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      sr[q] = fr[q];
      si[q] = fi[q];
    }
  } else if (st.mode == 1) {
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      sr[q] += T(2) * fr[q];
      si[q] += T(2) * fi[q];
    }
  } else {
    T* __restrict__ o = out + 2 * node;
    const T sixth = c.sixth;
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      o[2 * q] = xr[q] + sixth * (sr[q] + fr[q]);
      o[2 * q + 1] = xi[q] + sixth * (si[q] + fi[q]);
    }
  }
}

// psi of strips [first, first + count) (interleaved) -> planar blocks [count, 2, n]
template <typename T>
inline void to_planar(T* __restrict__ dst, const T* __restrict__ psi, int64_t count,
                      int64_t n) {
  for (int64_t k = 0; k < count; ++k) {
    const T* x = psi + 2 * k * n;
    T* pr = dst + 2 * k * n;
    T* pi = pr + n;
#pragma omp simd
    for (int64_t q = 0; q < n; ++q) {
      pr[q] = x[2 * q];
      pi[q] = x[2 * q + 1];
    }
  }
}

// Two schedules, same arithmetic:
//  - env-major: each thread takes whole envs and runs the four stages of an env back to
//    back on a thread-local [4, S, 2, nu, nv] block, which stays in cache;
//  - stage-major (fewer envs than threads, large strips): each stage is a parallel pass
//    over the strips (b, s) with a barrier between stages, on a shared scratch.
template <typename T>
void step(const Problem<T>& P, T* out, double t, double dt) {
  const int64_t B = P.B, S = P.S, nu = P.nu, nv = P.nv, n = nu * nv;
  const int64_t env = 2 * S * n;  // one env's planar block
  // e^{-i w_b t_stage} for the three distinct stage times (only read with a source)
  std::vector<T> rot(static_cast<size_t>(6 * B), T(0));
  if (P.src) {
    const double times[3] = {t, t + 0.5 * dt, t + dt};
    for (int64_t m = 0; m < 3; ++m)
      for (int64_t b = 0; b < B; ++b) {
        const T ang = P.freq[b] * T(times[m]);
        rot[2 * (m * B + b)] = std::cos(ang);
        rot[2 * (m * B + b) + 1] = -std::sin(ang);
      }
  }
  const T coef_a[3] = {T(0), T(0.5 * dt), T(dt)};
  StageConst<T> consts[4];
  for (int k = 0; k < 4; ++k)
    consts[k] = {coef_a[kStages[k].time], T(dt / 6.0), rot.data() + 2 * kStages[k].time * B};
  // env-major unless there are fewer envs than threads and enough nodes to pay for the
  // barriers between stages; tiny single-env problems run on the calling thread
  const int64_t threads = at::get_num_threads();
  if (B >= threads || B * S * n < kStageMajorNodes) {
#pragma omp parallel if (B > 1)
    {
      Buffers<T> w(nu, nv);
      std::vector<T> local(static_cast<size_t>(4 * env));
      T* slot[4] = {local.data(), local.data() + env, local.data() + 2 * env,
                    local.data() + 3 * env};  // psi, k (two slots), sum
      // dynamic: a thread that is descheduled (shared cores) does not hold up the others
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < B; ++b) {
        to_planar<T>(slot[0], P.psi + b * env, S, n);
        for (int k = 0; k < 4; ++k) {
          const Stage& st = kStages[k];
          const EnvView<T> v{slot[0], st.kp >= 0 ? slot[1 + st.kp] : nullptr,
                             st.kn >= 0 ? slot[1 + st.kn] : nullptr, slot[3]};
          for (int64_t s = 0; s < S; ++s) strip_stage<T>(P, b, s, v, st, consts[k], w, out);
        }
      }
    }
    return;
  }
  std::vector<T> shared(static_cast<size_t>(4 * B * env));
  T* base = shared.data();
  const int64_t field = B * env;
#pragma omp parallel
  {
    Buffers<T> w(nu, nv);
#pragma omp for schedule(static)
    for (int64_t bs = 0; bs < B * S; ++bs)
      to_planar<T>(base + 2 * bs * n, P.psi + 2 * bs * n, 1, n);
    for (int k = 0; k < 4; ++k) {
      const Stage& st = kStages[k];
#pragma omp for schedule(static)
      for (int64_t bs = 0; bs < B * S; ++bs) {
        const int64_t b = bs / S, s = bs % S, e = b * env;
        const EnvView<T> v{base + e, st.kp >= 0 ? base + (1 + st.kp) * field + e : nullptr,
                           st.kn >= 0 ? base + (1 + st.kn) * field + e : nullptr,
                           base + 3 * field + e};
        strip_stage<T>(P, b, s, v, st, consts[k], w, out);
      }
    }
  }
}

template <typename T>
const T* ptr_or_null(const torch::Tensor& x) {
  if (x.numel() == 0) return nullptr;
  if (x.is_complex()) return torch::view_as_real(x).data_ptr<T>();
  return x.data_ptr<T>();
}

void check(bool ok, const char* what) { TORCH_CHECK(ok, "stack_rk4_step: ", what); }

}  // namespace

torch::Tensor stack_rk4_step(torch::Tensor psi, torch::Tensor cup, torch::Tensor cum,
                             torch::Tensor cvp, torch::Tensor cvm, torch::Tensor seam,
                             torch::Tensor growth, torch::Tensor diffusion, torch::Tensor cubic,
                             torch::Tensor filter, torch::Tensor frequency,
                             torch::Tensor coupling, torch::Tensor weights,
                             torch::Tensor potential, torch::Tensor source, double t, double dt,
                             bool flip, bool periodic_v, double ghost_sign) {
  check(psi.dim() == 4 && psi.is_complex() && psi.is_contiguous() && psi.device().is_cpu(),
        "psi must be a contiguous complex CPU tensor [B,S,nu,nv]");
  const int64_t B = psi.size(0), S = psi.size(1), nu = psi.size(2), nv = psi.size(3);
  check(nu >= 2 && nv >= 2, "nu, nv >= 2");
  const auto real = torch::view_as_real(psi).scalar_type();
  const auto cplx = psi.scalar_type();
  const int64_t strip_nodes = S * nu * nv;
  for (const auto* c : {&cup, &cum, &cvp, &cvm})
    check((c->numel() == B * strip_nodes || c->numel() == strip_nodes) &&
              c->numel() == cup.numel() && c->scalar_type() == real && c->is_contiguous() &&
              c->device().is_cpu(),
          "coefficients must be real CPU [B or 1,S,nu,nv] of psi's precision");
  for (const auto* c : {&growth, &filter, &frequency, &coupling})
    check(c->numel() == B && c->scalar_type() == real && c->is_contiguous() &&
              c->device().is_cpu(),
          "growth, filter, frequency, coupling must be real CPU [B]");
  for (const auto* c : {&diffusion, &cubic})
    check(c->numel() == B && c->scalar_type() == cplx && c->is_contiguous() &&
              c->device().is_cpu(),
          "diffusion, cubic must be complex CPU [B]");
  check(seam.numel() == 0 || (seam.numel() == B && seam.scalar_type() == cplx &&
                              seam.is_contiguous() && seam.device().is_cpu()),
        "seam phase complex [B] or empty");
  check(weights.numel() == 0 ||
            ((weights.numel() == B * (S - 1) * nu * nv || weights.numel() == (S - 1) * nu * nv) &&
             weights.scalar_type() == real &&
             weights.is_contiguous() && weights.device().is_cpu()),
        "weights real [B or 1,S-1,nu,nv] or empty");
  check(potential.numel() == 0 ||
            ((potential.numel() == nu * nv || potential.numel() == B * nu * nv) &&
             potential.scalar_type() == real && potential.is_contiguous() &&
             potential.device().is_cpu()),
        "potential real [1 or B,nu,nv] or empty");
  check(source.numel() == 0 ||
            ((source.numel() == nu * nv || source.numel() == B * nu * nv) &&
             source.scalar_type() == cplx && source.is_contiguous() && source.device().is_cpu()),
        "source complex [1 or B,nu,nv] or empty");
  check(ghost_sign == 1.0 || ghost_sign == -1.0, "ghost_sign must be +1 or -1");
  auto out = torch::empty_like(psi);
  AT_DISPATCH_FLOATING_TYPES(real, "stack_rk4_step", [&] {
    using T = scalar_t;
    Problem<T> P;
    P.B = B;
    P.S = S;
    P.nu = nu;
    P.nv = nv;
    P.psi = ptr_or_null<T>(psi);
    P.cup = cup.data_ptr<T>();
    P.cum = cum.data_ptr<T>();
    P.cvp = cvp.data_ptr<T>();
    P.cvm = cvm.data_ptr<T>();
    P.coef_bs = cup.numel() == B * strip_nodes ? strip_nodes : 0;
    P.seam = ptr_or_null<T>(seam);
    P.growth = growth.data_ptr<T>();
    P.filt = filter.data_ptr<T>();
    P.freq = frequency.data_ptr<T>();
    P.coup = coupling.data_ptr<T>();
    P.diff = ptr_or_null<T>(diffusion);
    P.cubic = ptr_or_null<T>(cubic);
    P.w = S > 1 ? ptr_or_null<T>(weights) : nullptr;
    P.w_bs = weights.numel() == B * (S - 1) * nu * nv ? (S - 1) * nu * nv : 0;
    P.pot = ptr_or_null<T>(potential);
    P.pot_bs = potential.numel() == B * nu * nv ? nu * nv : 0;
    P.src = ptr_or_null<T>(source);
    P.src_bs = source.numel() == B * nu * nv ? nu * nv : 0;
    P.flip = flip;
    P.periodic = periodic_v;
    P.gs = T(ghost_sign);
    T* o = torch::view_as_real(out).data_ptr<T>();
    step<T>(P, o, t, dt);
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // the GIL is released: the kernel touches no Python object
  m.def("stack_rk4_step", &stack_rk4_step,
        "one fused RK4 step for batched Moebius strip stacks with per-env parameters",
        py::call_guard<py::gil_scoped_release>());
}
