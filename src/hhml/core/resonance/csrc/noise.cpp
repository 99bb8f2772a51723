// Thermal-noise increment of HHmL on the CPU: out = psi + sigma * xi, xi a standard complex
// normal per element, from a counter-based generator (Philox4x32-10) and Box-Muller. OpenMP;
// each element's numbers are a function of (key, element index) only, so the result does not
// depend on the thread count or on the code path.
//
// Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC'11): a 128-bit counter (c0, c1, c2, c3) and a 64-bit key (k0, k1) of 32-bit words; ten
// rounds of
//     (hi0, lo0) = M0 * c0,   (hi1, lo1) = M1 * c2          (32 x 32 -> 64-bit products)
//     (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
// with M0 = 0xD2511F53, M1 = 0xCD9E8D57, the key bumped by the Weyl constants
// (W0, W1) = (0x9E3779B9, 0xBB67AE85) between rounds; the output is the final counter.
//
// Counter of an element: (c0, c1) = the 64-bit counter index j (low, high word), c2 = c3 = 0.
//   complex64:  one Philox output (4 words) makes two elements. Elements are grouped in
//               blocks of 16: element e = 16 q + 8 h + l (h in {0, 1}, l in 0..7) takes
//               counter j = 8 q + l, words (a, b) = (w0, w1) for h = 0, (w2, w3) for h = 1.
//   complex128: one Philox output per element, counter j = e; (w0, w1) make u, (w2, w3) the
//               angle.
// Box-Muller: xi = sqrt(-ln u) (cos theta + i sin theta), u uniform in (0, 1], theta uniform
// on [0, 2 pi): Re and Im independent N(0, 1/2), E|xi|^2 = 1. u is never 0:
//   complex64:  u = A 2^-31, A = float((a >> 1) | 1) (the midpoints of 2^30 equal cells,
//               rounded to float; near 1 they round to 1: -ln u = 0), u >= 2^-31,
//               |xi| <= 4.64;
//   complex128: u = w0 2^-32 + (w1 + 1/2) 2^-64 (one rounding), u >= 2^-65, |xi| <= 6.71.
// The angle is theta = (pi/2) (k + f) from a word B of 32 (complex64: b) or 64 bits
// (complex128: w2 2^32 + w3) read as a fixed-point number of quarter turns B / 2^(bits-2):
// k = the quadrant, the two top bits of B + 2^(bits-3); f = int(B << 2) / 2^bits in
// [-1/2, 1/2] the signed fraction.
//
// The functions are our own, for arguments bounded by construction (no range reduction, no
// special cases):
//   -ln u      u = 2^k m, m in [sqrt(1/2), sqrt(2)) from the exponent and mantissa bits;
//              ln m = 2 atanh z = 2z + 2z^3/3 + 2z^5/5 + ..., z = (m - 1) / (m + 1),
//              |z| <= 0.1716: float: 2z + z w q(w), w = z^2, q a degree-2 minimax fit of
//              the series' rest on [0, 0.0295]; double: the series to z^21 (truncation
//              < 2e-17); -ln u = -k ln 2 - ln m.
//   cos, sin   of phi = (pi/2) f, |phi| <= pi/4: float: minimax polynomials in f of degree 7
//              (sin, relative error 3.3e-9) and 8 (cos, 5.6e-11); double: Taylor
//              polynomials to phi^15 / phi^16 (truncation < 1e-16); then turned by k quarter
//              turns: cos, sin of k pi / 2 are 0 or +-1 (float: looked up and multiplied
//              into r, each result one rounded product; double: a swap and sign flips).
// Every operation is written once, generic over a lane-ops type (scalar; AVX2 8 x float /
// 4 x double; AVX-512 16 x float), with explicit fused multiply-adds (std::fma on the
// scalar path) and -ffp-contract=off keeping the compiler from fusing anything else, so every
// path gives the same bits: the scalar path (level 0: builds without AVX2/FMA),
// the AVX2 path (level 1) and, for complex64 where the build has AVX-512F/DQ, the AVX-512
// path (level 2). The vector paths run the Philox rounds of several groups of counters in
// lock-step, each word in the low half of a 64-bit lane (_mm256/_mm512_mul_epu32 gives the
// whole product; its low word stays in place, its high word is one shift away), and skip the
// work the zero counter words make constant in the first two rounds.
//
// The increment: out = psi + (sigma_g * xi) with sigma_g = T(scale[g] * factor) (T = float
// for complex64, double for complex128): one rounding for the product, one for the sum.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HHML_NOISE_AVX2 1
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define HHML_NOISE_AVX512 1
#endif
#endif

namespace {

constexpr uint32_t kM0 = 0xD2511F53u;
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;
constexpr uint32_t kW1 = 0xBB67AE85u;
constexpr int kRounds = 10;

// ------------------------------------------------------------------ Philox4x32-10, scalar
inline void philox_scalar(uint32_t c[4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < kRounds; ++r) {
    if (r > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k1;
    c[1] = static_cast<uint32_t>(p1);
    c[3] = static_cast<uint32_t>(p0);
    c[0] = n0;
    c[2] = n2;
  }
}

// The round keys (k0 + r W0, k1 + r W1), r = 0..9: k[2 r], k[2 r + 1]
struct RoundKeys {
  uint32_t k[2 * kRounds];
  RoundKeys(uint32_t k0, uint32_t k1) {
    for (int r = 0; r < kRounds; ++r) {
      k[2 * r] = k0;
      k[2 * r + 1] = k1;
      k0 += kW0;
      k1 += kW1;
    }
  }
};

// ------------------------------------------------------------------ lane operations
// F: the real lanes, I: integer lanes of the same width (uint32 for float, uint64 for double)
struct ScalarF {
  using F = float;
  using I = uint32_t;
  static F set(float x) { return x; }
  static I iset(uint32_t x) { return x; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }
  static F sqrt(F a) { return std::sqrt(a); }
  static I bits(F a) {
    I i;
    std::memcpy(&i, &a, sizeof i);
    return i;
  }
  static F from_bits(I i) {
    F a;
    std::memcpy(&a, &i, sizeof a);
    return a;
  }
  static F fms(F a, F b, F c) { return std::fma(a, b, -c); }
  static I iadd(I a, I b) { return a + b; }
  static I iand(I a, I b) { return a & b; }
  static I ior(I a, I b) { return a | b; }
  static I ixor(I a, I b) { return a ^ b; }
  template <int n>
  static I srl(I a) {
    return a >> n;
  }
  template <int n>
  static I sll(I a) {
    return a << n;
  }
  static F cvt_signed(I a) { return static_cast<F>(static_cast<int32_t>(a)); }
  static F lookup4(const float (&t)[4], I k) { return t[k & 3u]; }  // t[k mod 4]
};

struct ScalarD {
  using F = double;
  using I = uint64_t;
  static F set(double x) { return x; }
  static I iset(uint64_t x) { return x; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F fma(F a, F b, F c) { return std::fma(a, b, c); }
  static F sqrt(F a) { return std::sqrt(a); }
  static I bits(F a) {
    I i;
    std::memcpy(&i, &a, sizeof i);
    return i;
  }
  static F from_bits(I i) {
    F a;
    std::memcpy(&a, &i, sizeof a);
    return a;
  }
  static I iadd(I a, I b) { return a + b; }
  static I iand(I a, I b) { return a & b; }
  static I ior(I a, I b) { return a | b; }
  static I ixor(I a, I b) { return a ^ b; }
  template <int n>
  static I srl(I a) {
    return a >> n;
  }
  template <int n>
  static I sll(I a) {
    return a << n;
  }
  static F select_odd(I k, F a, F b) { return (k & 1u) ? a : b; }
};

#ifdef HHML_NOISE_AVX2
struct VecF {  // 8 x float
  using F = __m256;
  using I = __m256i;
  static F set(float x) { return _mm256_set1_ps(x); }
  static I iset(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fms(F a, F b, F c) { return _mm256_fmsub_ps(a, b, c); }
  static F sqrt(F a) { return _mm256_sqrt_ps(a); }
  static I bits(F a) { return _mm256_castps_si256(a); }
  static F from_bits(I i) { return _mm256_castsi256_ps(i); }
  static I iadd(I a, I b) { return _mm256_add_epi32(a, b); }
  static I iand(I a, I b) { return _mm256_and_si256(a, b); }
  static I ior(I a, I b) { return _mm256_or_si256(a, b); }
  static I ixor(I a, I b) { return _mm256_xor_si256(a, b); }
  template <int n>
  static I srl(I a) {
    return _mm256_srli_epi32(a, n);
  }
  template <int n>
  static I sll(I a) {
    return _mm256_slli_epi32(a, n);
  }
  static F cvt_signed(I a) { return _mm256_cvtepi32_ps(a); }
  static F lookup4(const float (&t)[4], I k) {  // t[k mod 4]: the low two bits index
    return _mm256_permutevar_ps(_mm256_setr_ps(t[0], t[1], t[2], t[3], t[0], t[1], t[2], t[3]),
                                k);
  }
};

// two vectors of O as one (twice the lanes): independent instruction chains side by side
template <class O>
struct Pair {
  struct F {
    typename O::F a, b;
  };
  struct I {
    typename O::I a, b;
  };
  static F set(float x) { return F{O::set(x), O::set(x)}; }
  static I iset(uint32_t x) { return I{O::iset(x), O::iset(x)}; }
  static F add(F x, F y) { return F{O::add(x.a, y.a), O::add(x.b, y.b)}; }
  static F sub(F x, F y) { return F{O::sub(x.a, y.a), O::sub(x.b, y.b)}; }
  static F mul(F x, F y) { return F{O::mul(x.a, y.a), O::mul(x.b, y.b)}; }
  static F div(F x, F y) { return F{O::div(x.a, y.a), O::div(x.b, y.b)}; }
  static F fma(F x, F y, F z) { return F{O::fma(x.a, y.a, z.a), O::fma(x.b, y.b, z.b)}; }
  static F fms(F x, F y, F z) { return F{O::fms(x.a, y.a, z.a), O::fms(x.b, y.b, z.b)}; }
  static F sqrt(F x) { return F{O::sqrt(x.a), O::sqrt(x.b)}; }
  static I bits(F x) { return I{O::bits(x.a), O::bits(x.b)}; }
  static F from_bits(I i) { return F{O::from_bits(i.a), O::from_bits(i.b)}; }
  static I iadd(I x, I y) { return I{O::iadd(x.a, y.a), O::iadd(x.b, y.b)}; }
  static I iand(I x, I y) { return I{O::iand(x.a, y.a), O::iand(x.b, y.b)}; }
  static I ior(I x, I y) { return I{O::ior(x.a, y.a), O::ior(x.b, y.b)}; }
  static I ixor(I x, I y) { return I{O::ixor(x.a, y.a), O::ixor(x.b, y.b)}; }
  template <int n>
  static I srl(I x) {
    return I{O::template srl<n>(x.a), O::template srl<n>(x.b)};
  }
  template <int n>
  static I sll(I x) {
    return I{O::template sll<n>(x.a), O::template sll<n>(x.b)};
  }
  static F cvt_signed(I x) { return F{O::cvt_signed(x.a), O::cvt_signed(x.b)}; }
  static F lookup4(const float (&t)[4], I k) { return F{O::lookup4(t, k.a), O::lookup4(t, k.b)}; }
};

struct VecD {  // 4 x double
  using F = __m256d;
  using I = __m256i;
  static F set(double x) { return _mm256_set1_pd(x); }
  static I iset(uint64_t x) { return _mm256_set1_epi64x(static_cast<long long>(x)); }
  static F add(F a, F b) { return _mm256_add_pd(a, b); }
  static F sub(F a, F b) { return _mm256_sub_pd(a, b); }
  static F mul(F a, F b) { return _mm256_mul_pd(a, b); }
  static F div(F a, F b) { return _mm256_div_pd(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_pd(a, b, c); }
  static F sqrt(F a) { return _mm256_sqrt_pd(a); }
  static I bits(F a) { return _mm256_castpd_si256(a); }
  static F from_bits(I i) { return _mm256_castsi256_pd(i); }
  static I iadd(I a, I b) { return _mm256_add_epi64(a, b); }
  static I iand(I a, I b) { return _mm256_and_si256(a, b); }
  static I ior(I a, I b) { return _mm256_or_si256(a, b); }
  static I ixor(I a, I b) { return _mm256_xor_si256(a, b); }
  template <int n>
  static I srl(I a) {
    return _mm256_srli_epi64(a, n);
  }
  template <int n>
  static I sll(I a) {
    return _mm256_slli_epi64(a, n);
  }
  static F select_odd(I k, F a, F b) {
    return _mm256_blendv_pd(b, a, _mm256_castsi256_pd(_mm256_slli_epi64(k, 63)));
  }
};
#endif

#ifdef HHML_NOISE_AVX512
struct Vec16F {  // 16 x float
  using F = __m512;
  using I = __m512i;
  static F set(float x) { return _mm512_set1_ps(x); }
  static I iset(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fms(F a, F b, F c) { return _mm512_fmsub_ps(a, b, c); }
  static F sqrt(F a) { return _mm512_sqrt_ps(a); }
  static I bits(F a) { return _mm512_castps_si512(a); }
  static F from_bits(I i) { return _mm512_castsi512_ps(i); }
  static I iadd(I a, I b) { return _mm512_add_epi32(a, b); }
  static I iand(I a, I b) { return _mm512_and_si512(a, b); }
  static I ior(I a, I b) { return _mm512_or_si512(a, b); }
  static I ixor(I a, I b) { return _mm512_xor_si512(a, b); }
  template <int n>
  static I srl(I a) {
    return _mm512_srli_epi32(a, n);
  }
  template <int n>
  static I sll(I a) {
    return _mm512_slli_epi32(a, n);
  }
  static F cvt_signed(I a) { return _mm512_cvtepi32_ps(a); }
  static F lookup4(const float (&t)[4], I k) {  // t[k mod 4]: the low two bits index
    const __m128 t4 = _mm_setr_ps(t[0], t[1], t[2], t[3]);
    return _mm512_permutevar_ps(_mm512_broadcast_f32x4(t4), k);
  }
};
#endif

// ------------------------------------------------------------------ Box-Muller, float
// -ln u, u = A 2^-31, A = float((a >> 1) | 1) in [1, 2^31] (the midpoints of 2^30 cells)
template <class O>
inline typename O::F neg_log_f(typename O::I a) {
  using F = typename O::F;
  using I = typename O::I;
  const F A = O::cvt_signed(O::ior(O::template srl<1>(a), O::iset(1u)));
  // A = 2^(E - 127) m, m in [sqrt(1/2), sqrt(2)): move the mantissa range by the bits of 1
  // minus those of sqrt(1/2), read E, put the mantissa back
  const I ix = O::iadd(O::bits(A), O::iset(0x3f800000u - 0x3f3504f3u));
  const F kn = O::sub(O::set(158.0f), O::cvt_signed(O::template srl<23>(ix)));  // -log2(u / m)
  const F m = O::from_bits(O::iadd(O::iand(ix, O::iset(0x007fffffu)), O::iset(0x3f3504f3u)));
  const F f = O::sub(m, O::set(1.0f));
  const F zn = O::div(f, O::sub(O::set(-2.0f), f));  // -z, z = (m - 1) / (m + 1)
  const F w = O::mul(zn, zn);
  // ln m = 2z + z w q(w): q the minimax fit of 2/3 + 2w/5 + 2w^2/7 + ... on [0, 0.0295]
  F q = O::fma(O::set(0x1.2ee590p-2f), w, O::set(0x1.997c32p-2f));
  q = O::fma(q, w, O::set(0x1.55555cp-1f));
  const F nlm = O::fma(O::mul(zn, w), q, O::add(zn, zn));  // -ln m
  return O::fma(kn, O::set(0x1.62e430p-1f), nlm);           // -ln u = -k ln 2 - ln m
}

// (re, im) = r (cos theta, sin theta), theta = 2 pi b / 2^32 = (pi / 2) (k + f)
template <class O>
inline void polar_f(typename O::F r, typename O::I b, typename O::F* re, typename O::F* im) {
  using F = typename O::F;
  using I = typename O::I;
  static constexpr float kCos[4] = {1.0f, 0.0f, -1.0f, 0.0f};  // cos(k pi / 2)
  static constexpr float kSin[4] = {0.0f, 1.0f, 0.0f, -1.0f};  // sin(k pi / 2)
  const I k = O::template srl<30>(O::iadd(b, O::iset(0x20000000u)));  // quadrant 0..3
  const F f = O::mul(O::cvt_signed(O::template sll<2>(b)), O::set(0x1p-32f));
  const F x2 = O::mul(f, f);
  // minimax fits on |f| <= 1/2 of sin(pi f / 2) / f (relative error 3.3e-9) and of
  // cos(pi f / 2) (5.6e-11)
  F ps = O::fma(O::set(-0x1.2d9364p-8f), x2, O::set(0x1.465e94p-4f));
  ps = O::fma(ps, x2, O::set(-0x1.4abbbap-1f));
  ps = O::fma(ps, x2, O::set(0x1.921fb6p+0f));
  ps = O::mul(ps, f);  // sin phi
  F pc = O::fma(O::set(0x1.d99f88p-11f), x2, O::set(-0x1.55c4eap-6f));
  pc = O::fma(pc, x2, O::set(0x1.03c1dap-2f));
  pc = O::fma(pc, x2, O::set(-0x1.3bd3ccp+0f));
  pc = O::fma(pc, x2, O::set(1.0f));  // cos phi
  // rotate by k quarter turns, r folded in: cos, sin of k pi / 2 are 0 or +-1, so each
  // result is one rounded product
  const F rc = O::mul(r, O::lookup4(kCos, k));
  const F rs = O::mul(r, O::lookup4(kSin, k));
  *re = O::fms(pc, rc, O::mul(ps, rs));
  *im = O::fma(pc, rs, O::mul(ps, rc));
}

// xi from the words a (-> u) and b (-> angle)
template <class O>
inline void box_muller_f(typename O::I a, typename O::I b, typename O::F* re,
                         typename O::F* im) {
  polar_f<O>(O::sqrt(neg_log_f<O>(a)), b, re, im);
}

// ------------------------------------------------------------------ Box-Muller, double
// x < 2^32 (integer lanes) -> double, exactly
template <class O>
inline typename O::F u32_to_d(typename O::I x) {
  return O::sub(O::from_bits(O::ior(x, O::iset(0x4330000000000000ull))), O::set(0x1p52));
}

// -ln u for u in [2^-65, 1]
template <class O>
inline typename O::F neg_log_d(typename O::F u) {
  using F = typename O::F;
  using I = typename O::I;
  const I ix = O::iadd(O::bits(u), O::iset(0x3ff0000000000000ull - 0x3fe6a09e667f3bcdull));
  const F k = O::sub(u32_to_d<O>(O::template srl<52>(ix)), O::set(1023.0));
  const F m = O::from_bits(
      O::iadd(O::iand(ix, O::iset(0x000fffffffffffffull)), O::iset(0x3fe6a09e667f3bcdull)));
  const F f = O::sub(m, O::set(1.0));
  const F z = O::div(f, O::add(f, O::set(2.0)));
  const F w = O::mul(z, z);
  F q = O::fma(O::set(0x1.8618618618618p-4), w, O::set(0x1.af286bca1af28p-4));  // 2/21, 2/19
  q = O::fma(q, w, O::set(0x1.e1e1e1e1e1e1ep-4));                               // 2/17
  q = O::fma(q, w, O::set(0x1.1111111111111p-3));                               // 2/15
  q = O::fma(q, w, O::set(0x1.3b13b13b13b14p-3));                               // 2/13
  q = O::fma(q, w, O::set(0x1.745d1745d1746p-3));                               // 2/11
  q = O::fma(q, w, O::set(0x1.c71c71c71c71cp-3));                               // 2/9
  q = O::fma(q, w, O::set(0x1.2492492492492p-2));                               // 2/7
  q = O::fma(q, w, O::set(0x1.999999999999ap-2));                               // 2/5
  q = O::fma(q, w, O::set(0x1.5555555555555p-1));                               // 2/3
  const F lnm = O::fma(O::mul(z, w), q, O::add(z, z));
  const F lnu = O::fma(k, O::set(0x1.62e42fefa39efp-1), lnm);
  return O::sub(O::set(0.0), lnu);
}

// cos, sin of 2 pi B / 2^64, B = hi * 2^32 + lo (hi, lo < 2^32 in 64-bit lanes)
template <class O>
inline void turn_d(typename O::I hi, typename O::I lo, typename O::F* c, typename O::F* s) {
  using F = typename O::F;
  using I = typename O::I;
  const I mask32 = O::iset(0xffffffffull);
  const I k = O::iand(O::template srl<30>(O::iadd(hi, O::iset(0x20000000ull))), O::iset(3));
  // B << 2 = (h2, l2) 32-bit halves; f = int32(h2) 2^-32 + l2 2^-64
  const I h2 = O::iand(O::ior(O::template sll<2>(hi), O::template srl<30>(lo)), mask32);
  const I l2 = O::iand(O::template sll<2>(lo), mask32);
  const F hs = O::sub(u32_to_d<O>(O::ixor(h2, O::iset(0x80000000ull))), O::set(0x1p31));
  const F f = O::add(O::mul(hs, O::set(0x1p-32)), O::mul(u32_to_d<O>(l2), O::set(0x1p-64)));
  const F x2 = O::mul(f, f);
  F ps = O::fma(O::set(-0x1.6fadb9f155744p-31), x2, O::set(0x1.e8f434d018d63p-25));
  ps = O::fma(ps, x2, O::set(-0x1.e3074fde8871fp-19));
  ps = O::fma(ps, x2, O::set(0x1.50783487ee782p-13));
  ps = O::fma(ps, x2, O::set(-0x1.32d2cce62bd86p-8));
  ps = O::fma(ps, x2, O::set(0x1.466bc6775aae2p-4));
  ps = O::fma(ps, x2, O::set(-0x1.4abbce625be53p-1));
  ps = O::fma(ps, x2, O::set(0x1.921fb54442d18p+0));
  ps = O::mul(ps, f);
  F pc = O::fma(O::set(0x1.20c62c2f2d7f5p-34), x2, O::set(-0x1.b6e24f44b128fp-28));
  pc = O::fma(pc, x2, O::set(0x1.f9d38a3763cc3p-22));
  pc = O::fma(pc, x2, O::set(-0x1.a6d1f2a204a8cp-16));
  pc = O::fma(pc, x2, O::set(0x1.e1f506891babbp-11));
  pc = O::fma(pc, x2, O::set(-0x1.55d3c7e3cbffap-6));
  pc = O::fma(pc, x2, O::set(0x1.03c1f081b5ac4p-2));
  pc = O::fma(pc, x2, O::set(-0x1.3bd3cc9be45dep+0));
  pc = O::fma(pc, x2, O::set(1.0));
  const I cos_sign = O::template sll<63>(O::ixor(k, O::template srl<1>(k)));
  const I sin_sign = O::template sll<63>(O::template srl<1>(k));
  *c = O::from_bits(O::ixor(O::bits(O::select_odd(k, ps, pc)), cos_sign));
  *s = O::from_bits(O::ixor(O::bits(O::select_odd(k, pc, ps)), sin_sign));
}

// xi from the words w0..w3 (values < 2^32 in 64-bit lanes)
template <class O>
inline void box_muller_d(typename O::I w0, typename O::I w1, typename O::I w2,
                         typename O::I w3, typename O::F* re, typename O::F* im) {
  using F = typename O::F;
  const F u = O::add(O::mul(u32_to_d<O>(w0), O::set(0x1p-32)),
                     O::mul(O::add(u32_to_d<O>(w1), O::set(0.5)), O::set(0x1p-64)));
  const F r = O::sqrt(neg_log_d<O>(u));
  F c, s;
  turn_d<O>(w2, w3, &c, &s);
  *re = O::mul(r, c);
  *im = O::mul(r, s);
}

// ------------------------------------------------------------------ blocks, scalar
// normals of complex64 block q (elements 16 q .. 16 q + 15): out[2 i], out[2 i + 1] = Re, Im
inline void block_scalar_f(uint64_t q, uint32_t k0, uint32_t k1, float out[32]) {
  for (int l = 0; l < 8; ++l) {
    const uint64_t j = 8 * q + static_cast<uint64_t>(l);
    uint32_t c[4] = {static_cast<uint32_t>(j), static_cast<uint32_t>(j >> 32), 0u, 0u};
    philox_scalar(c, k0, k1);
    box_muller_f<ScalarF>(c[0], c[1], &out[2 * l], &out[2 * l + 1]);
    box_muller_f<ScalarF>(c[2], c[3], &out[2 * (8 + l)], &out[2 * (8 + l) + 1]);
  }
}

// normals of complex128 block q (elements 8 q .. 8 q + 7)
inline void block_scalar_d(uint64_t q, uint32_t k0, uint32_t k1, double out[16]) {
  for (int l = 0; l < 8; ++l) {
    const uint64_t j = 8 * q + static_cast<uint64_t>(l);
    uint32_t c[4] = {static_cast<uint32_t>(j), static_cast<uint32_t>(j >> 32), 0u, 0u};
    philox_scalar(c, k0, k1);
    box_muller_d<ScalarD>(c[0], c[1], c[2], c[3], &out[2 * l], &out[2 * l + 1]);
  }
}

#ifdef HHML_NOISE_AVX2
// ------------------------------------------------------------------ Philox4x32-10, vectors
// Integer vectors of 2 L 32-bit lanes: the counters j0 .. j0 + 2L - 1 as two halves of L
// (even and odd counters), each word in the low 32 bits of a 64-bit lane. Per round and half:
// 2 multiplies, 2 shifts, 2 three-way xors.
struct IV256 {
  using I = __m256i;
  static I mul(I a, I m) { return _mm256_mul_epu32(a, m); }
  static I hi(I a) { return _mm256_srli_epi64(a, 32); }
  static I x3(I a, I b, I c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  static I x2(I a, I b) { return _mm256_xor_si256(a, b); }
  static I set32(uint32_t v) { return _mm256_set1_epi32(static_cast<int>(v)); }
  static I set64(uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }
  static I add64(I a, I b) { return _mm256_add_epi64(a, b); }
  static I steps(int odd) { return _mm256_setr_epi64x(odd, 2 + odd, 4 + odd, 6 + odd); }
  static I join(I even, I odd) {  // words back in 32-bit lanes: lane l = counter l
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  }
};
#ifdef HHML_NOISE_AVX512
struct IV512 {
  using I = __m512i;
  static I mul(I a, I m) { return _mm512_mul_epu32(a, m); }
  static I hi(I a) { return _mm512_srli_epi64(a, 32); }
  static I x3(I a, I b, I c) { return _mm512_xor_si512(_mm512_xor_si512(a, b), c); }
  static I x2(I a, I b) { return _mm512_xor_si512(a, b); }
  static I set32(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }
  static I set64(uint64_t v) { return _mm512_set1_epi64(static_cast<long long>(v)); }
  static I add64(I a, I b) { return _mm512_add_epi64(a, b); }
  static I steps(int odd) {
    return _mm512_setr_epi64(odd, 2 + odd, 4 + odd, 6 + odd, 8 + odd, 10 + odd, 12 + odd,
                             14 + odd);
  }
  static I join(I even, I odd) {
    return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  }
};
#endif

template <class V>
struct Words {  // the four words of 2L counters (lane l = counter l), or of one half
  typename V::I c0, c1, c2, c3;
};

// one round of one half; k0, k1 the round key in every 32-bit lane
template <class V>
inline void half_round(Words<V>& x, typename V::I m0, typename V::I m1, typename V::I k0,
                       typename V::I k1) {
  const typename V::I p0 = V::mul(x.c0, m0);
  const typename V::I p1 = V::mul(x.c2, m1);
  x.c0 = V::x3(V::hi(p1), x.c1, k0);
  x.c2 = V::x3(V::hi(p0), x.c3, k1);
  x.c1 = p1;  // the low word of the product in place; the high bits are ignored
  x.c3 = p0;
}

// rounds first .. 9 of every half given, in lock-step (independent chains overlap)
template <class V, int first, class... H>
inline void rounds(const RoundKeys& rk, H&... x) {
  const typename V::I m0 = V::set64(kM0);
  const typename V::I m1 = V::set64(kM1);
#pragma GCC unroll 10
  for (int r = first; r < kRounds; ++r) {
    const typename V::I k0 = V::set32(rk.k[2 * r]), k1 = V::set32(rk.k[2 * r + 1]);
    (half_round<V>(x, m0, m1, k0, k1), ...);
  }
}

template <class V>
inline Words<V> join(const Words<V>& even, const Words<V>& odd) {
  return Words<V>{V::join(even.c0, odd.c0), V::join(even.c1, odd.c1), V::join(even.c2, odd.c2),
                  V::join(even.c3, odd.c3)};
}

// Philox of arbitrary counters (lane l = counter l; for the known-answer tests)
template <class V>
inline Words<V> philox_words(const Words<V>& c, const RoundKeys& rk) {
  Words<V> even = c;
  Words<V> odd{V::hi(c.c0), V::hi(c.c1), V::hi(c.c2), V::hi(c.c3)};
  rounds<V, 0>(rk, even, odd);
  return join(even, odd);
}

// The noise's counters (j, hi, 0, 0), hi = j >> 32 the same in every lane: the zero words make
// two of the four products of the first two rounds constant, so (p = M0 j, p' = M1 c2';
// hi(), lo(): the words of a product; (k0, k1), (k0', k1') the keys of rounds 1 and 2)
//   after round 1: (hi ^ k0, 0, c2' = hi(p) ^ k1, lo(p))
//   after round 2: (hi(p') ^ k0', lo(p'), lo(p) ^ hi(U) ^ k1', lo(U)),  U = M0 (hi ^ k0)
// the half (odd = 0: even counters, 1: odd) of j0 .. j0 + 2L - 1 after round 2
template <class V>
inline Words<V> start_half(uint64_t j0, int odd, const RoundKeys& rk) {
  const uint64_t u = static_cast<uint64_t>(kM0) * (static_cast<uint32_t>(j0 >> 32) ^ rk.k[0]);
  const typename V::I j = V::add64(V::set64(static_cast<uint32_t>(j0)), V::steps(odd));
  const typename V::I p = V::mul(j, V::set64(kM0));
  const typename V::I c2 = V::x2(V::hi(p), V::set32(rk.k[1]));
  const typename V::I q = V::mul(c2, V::set64(kM1));
  return Words<V>{V::x2(V::hi(q), V::set32(rk.k[2])), q,
                  V::x2(p, V::set32(static_cast<uint32_t>(u >> 32) ^ rk.k[3])),
                  V::set32(static_cast<uint32_t>(u))};
}

// Philox words of the noise counters j0 .. j0 + 2L NB - 1 (NB = 1, 2 or 4), group b in
// c[b] (lane l = counter j0 + 2L b + l). j0 must be a multiple of 2L NB (the counters then
// share their high word).
template <class V, int NB>
inline void philox_noise(uint64_t j0, const RoundKeys& rk, Words<V>* c) {
  static_assert(NB == 1 || NB == 2 || NB == 4, "NB must be 1, 2 or 4");
  constexpr uint64_t L2 = sizeof(typename V::I) / 4;  // counters per group
  auto h = [&](int b, int odd) { return start_half<V>(j0 + L2 * b, odd, rk); };
  Words<V> a0 = h(0, 0), a1 = h(0, 1);
  if constexpr (NB == 1) {
    rounds<V, 2>(rk, a0, a1);
  } else {
    Words<V> b0 = h(1, 0), b1 = h(1, 1);
    if constexpr (NB == 2) {
      rounds<V, 2>(rk, a0, a1, b0, b1);
    } else {
      Words<V> d0 = h(2, 0), d1 = h(2, 1), e0 = h(3, 0), e1 = h(3, 1);
      rounds<V, 2>(rk, a0, a1, b0, b1, d0, d1, e0, e1);
      c[2] = join(d0, d1);
      c[3] = join(e0, e1);
    }
    c[1] = join(b0, b1);
  }
  c[0] = join(a0, a1);
}

// ------------------------------------------------------------------ normals, vectors
// (re0 .. re7), (im0 .. im7) -> interleaved (re0, im0, .., re3, im3), (re4, im4, .., re7, im7)
inline void interleave8(__m256 re, __m256 im, __m256* lo, __m256* hi) {
  const __m256 a = _mm256_unpacklo_ps(re, im);  // re0 im0 re1 im1 | re4 im4 re5 im5
  const __m256 b = _mm256_unpackhi_ps(re, im);  // re2 im2 re3 im3 | re6 im6 re7 im7
  *lo = _mm256_permute2f128_ps(a, b, 0x20);
  *hi = _mm256_permute2f128_ps(a, b, 0x31);
}

// complex64 block: the 16 interleaved normals of 8 counters' words in v[0..3] (elements
// 16 q + 4 v .. + 3)
inline void normals_f(const Words<IV256>& c, __m256 v[4]) {
  using P = Pair<VecF>;
  P::F re, im;
  box_muller_f<P>(P::I{c.c0, c.c2}, P::I{c.c1, c.c3}, &re, &im);
  interleave8(re.a, im.a, &v[0], &v[1]);
  interleave8(re.b, im.b, &v[2], &v[3]);
}

// normals_f of two blocks side by side (v[0..3], v[4..7])
inline void normals2_f(const Words<IV256>& c, const Words<IV256>& d, __m256 v[8]) {
  using P = Pair<Pair<VecF>>;
  P::F re, im;
  box_muller_f<P>(P::I{{c.c0, c.c2}, {d.c0, d.c2}}, P::I{{c.c1, c.c3}, {d.c1, d.c3}}, &re, &im);
  interleave8(re.a.a, im.a.a, &v[0], &v[1]);
  interleave8(re.a.b, im.a.b, &v[2], &v[3]);
  interleave8(re.b.a, im.b.a, &v[4], &v[5]);
  interleave8(re.b.b, im.b.b, &v[6], &v[7]);
}

#ifdef HHML_NOISE_AVX512
// two complex64 blocks from 16 counters' words (lanes 0-7: block q, 8-15: block q + 1):
// v[0..3] block q, v[4..7] block q + 1
inline void normals16_f(const Words<IV512>& c, __m256 v[8]) {
  using P = Pair<Vec16F>;
  P::F re, im;
  box_muller_f<P>(P::I{c.c0, c.c2}, P::I{c.c1, c.c3}, &re, &im);
  interleave8(_mm512_castps512_ps256(re.a), _mm512_castps512_ps256(im.a), &v[0], &v[1]);
  interleave8(_mm512_castps512_ps256(re.b), _mm512_castps512_ps256(im.b), &v[2], &v[3]);
  interleave8(_mm512_extractf32x8_ps(re.a, 1), _mm512_extractf32x8_ps(im.a, 1), &v[4], &v[5]);
  interleave8(_mm512_extractf32x8_ps(re.b, 1), _mm512_extractf32x8_ps(im.b, 1), &v[6], &v[7]);
}
#endif

inline void interleave4(__m256d re, __m256d im, __m256d* lo, __m256d* hi) {
  const __m256d a = _mm256_unpacklo_pd(re, im);  // re0 im0 | re2 im2
  const __m256d b = _mm256_unpackhi_pd(re, im);  // re1 im1 | re3 im3
  *lo = _mm256_permute2f128_pd(a, b, 0x20);
  *hi = _mm256_permute2f128_pd(a, b, 0x31);
}

// 32-bit lanes h*4 .. h*4 + 3 of x as 64-bit lanes
template <int h>
inline __m256i widen(__m256i x) {
  return _mm256_cvtepu32_epi64(h ? _mm256_extracti128_si256(x, 1) : _mm256_castsi256_si128(x));
}

// complex128 block: the 8 interleaved normals of 8 counters' words in v[0..3] (elements
// 8 q + 2 v, + 1)
inline void normals_d(const Words<IV256>& c, __m256d v[4]) {
  __m256d re, im;
  box_muller_d<VecD>(widen<0>(c.c0), widen<0>(c.c1), widen<0>(c.c2), widen<0>(c.c3), &re, &im);
  interleave4(re, im, &v[0], &v[1]);
  box_muller_d<VecD>(widen<1>(c.c0), widen<1>(c.c1), widen<1>(c.c2), widen<1>(c.c3), &re, &im);
  interleave4(re, im, &v[2], &v[3]);
}

// out = psi + s * v for nv vectors (8 floats or 4 doubles each)
inline void add_scaled(const float* psi, float* out, float s, const __m256* v, int nv) {
  const __m256 sv = _mm256_set1_ps(s);
  for (int k = 0; k < nv; ++k) {
    const __m256 x = _mm256_add_ps(_mm256_loadu_ps(psi + 8 * k), _mm256_mul_ps(sv, v[k]));
    _mm256_storeu_ps(out + 8 * k, x);
  }
}
inline void add_scaled(const double* psi, double* out, double s, const __m256d* v, int nv) {
  const __m256d sv = _mm256_set1_pd(s);
  for (int k = 0; k < nv; ++k) {
    const __m256d x = _mm256_add_pd(_mm256_loadu_pd(psi + 4 * k), _mm256_mul_pd(sv, v[k]));
    _mm256_storeu_pd(out + 4 * k, x);
  }
}

// One superblock (4 blocks: 64 complex64 / 32 complex128 elements from block q, q a
// multiple of 4, all in one group): psi + s xi into out, on vector level 1 or 2.
inline void superblock(uint64_t q, const RoundKeys& rk, float s, const float* psi, float* out,
                       int level) {
#ifdef HHML_NOISE_AVX512
  if (level >= 2) {
    Words<IV512> c[2];
    philox_noise<IV512, 2>(8 * q, rk, c);
    for (int b = 0; b < 2; ++b) {
      __m256 v[8];
      normals16_f(c[b], v);
      add_scaled(psi + 64 * b, out + 64 * b, s, v, 8);
    }
    return;
  }
#endif
  (void)level;
  Words<IV256> c[4];
  philox_noise<IV256, 4>(8 * q, rk, c);
  for (int b = 0; b < 4; b += 2) {
    __m256 v[8];
    normals2_f(c[b], c[b + 1], v);
    add_scaled(psi + 32 * b, out + 32 * b, s, v, 8);
  }
}

inline void superblock(uint64_t q, const RoundKeys& rk, double s, const double* psi,
                       double* out, int /*level*/) {
  Words<IV256> c[4];
  philox_noise<IV256, 4>(8 * q, rk, c);
  for (int b = 0; b < 4; ++b) {
    __m256d v[4];
    normals_d(c[b], v);
    add_scaled(psi + 16 * b, out + 16 * b, s, v, 4);
  }
}

// the normals of one block (q any) into buf, interleaved (re, im), on the AVX2 path
inline void block_vec(uint64_t q, const RoundKeys& rk, float* buf) {
  Words<IV256> c;
  philox_noise<IV256, 1>(8 * q, rk, &c);
  __m256 v[4];
  normals_f(c, v);
  for (int k = 0; k < 4; ++k) _mm256_storeu_ps(buf + 8 * k, v[k]);
}
inline void block_vec(uint64_t q, const RoundKeys& rk, double* buf) {
  Words<IV256> c;
  philox_noise<IV256, 1>(8 * q, rk, &c);
  __m256d v[4];
  normals_d(c, v);
  for (int k = 0; k < 4; ++k) _mm256_storeu_pd(buf + 4 * k, v[k]);
}
#endif  // HHML_NOISE_AVX2

// Elements per block (8 counters) and the scalar block normals.
template <typename T>
struct Block;
template <>
struct Block<float> {
  static constexpr int64_t E = 16;
  static void scalar(uint64_t q, uint32_t k0, uint32_t k1, float* out) {
    block_scalar_f(q, k0, k1, out);
  }
};
template <>
struct Block<double> {
  static constexpr int64_t E = 8;
  static void scalar(uint64_t q, uint32_t k0, uint32_t k1, double* out) {
    block_scalar_d(q, k0, k1, out);
  }
};

int max_level() {
#if defined(HHML_NOISE_AVX512)
  return 2;
#elif defined(HHML_NOISE_AVX2)
  return 1;
#else
  return 0;
#endif
}

// out[e] = psi[e] + s(e) * xi[e] for elements [0, n); s(e) = T(scale[e / m] * factor) (m =
// n / groups; scale == nullptr: T(factor)). psi and out interleaved (re, im); may alias.
// Superblocks of 4 blocks go through the vector path of `level` where they lie in one group
// (all but the group boundaries and the tail), other blocks one at a time through a buffer.
// Work items are chunks of kChunk blocks; within one the group is followed without
// divisions.
template <typename T>
void noise_impl(const T* psi, T* out, int64_t n, const double* scale, int64_t groups,
                double factor, uint64_t key, int level) {
  constexpr int64_t E = Block<T>::E;
  constexpr int64_t kSuper = 4;   // blocks per superblock
  constexpr int64_t kChunk = 64;  // blocks per work item (a multiple of kSuper)
  static_assert(kChunk % kSuper == 0, "a chunk holds whole superblocks");
#ifndef HHML_NOISE_AVX2
  (void)level;  // the scalar path only
#endif
  const uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  const int64_t m = scale == nullptr ? n : n / groups;  // elements per group
  const int64_t blocks = (n + E - 1) / E;
  auto sigma = [&](int64_t g) -> T {
    return static_cast<T>(scale == nullptr ? factor : scale[g] * factor);
  };
  // threads only from 2^15 elements
#pragma omp parallel for schedule(static) if (n >= (int64_t(1) << 15))
  for (int64_t chunk = 0; chunk < (blocks + kChunk - 1) / kChunk; ++chunk) {
    const int64_t q0 = chunk * kChunk, q1 = std::min(blocks, q0 + kChunk);
    const RoundKeys rk(k0, k1);
    T buf[2 * E];
    // the group g of the next element, its end, its sigma
    int64_t g = (q0 * E) / m, end = (g + 1) * m;
    T s = sigma(g);
    int64_t q = q0;
    while (q < q1) {
      const int64_t e0 = q * E;
      while (e0 >= end) {
        ++g;
        end += m;
        s = sigma(g);
      }
#ifdef HHML_NOISE_AVX2
      if (level >= 1 && q % kSuper == 0 && q + kSuper <= q1 && (q + kSuper) * E <= end &&
          (q + kSuper) * E <= n) {
        superblock(static_cast<uint64_t>(q), rk, s, psi + 2 * e0, out + 2 * e0, level);
        q += kSuper;
        continue;
      }
      if (level >= 1) {
        block_vec(static_cast<uint64_t>(q), rk, buf);
      } else {
        Block<T>::scalar(static_cast<uint64_t>(q), k0, k1, buf);
      }
#else
      Block<T>::scalar(static_cast<uint64_t>(q), k0, k1, buf);
#endif
      const int64_t e1 = std::min(n, e0 + E);
      for (int64_t e = e0; e < e1; ++e) {
        while (e >= end) {  // a group boundary inside the block
          ++g;
          end += m;
          s = sigma(g);
        }
        const int64_t i = e - e0;
        out[2 * e] = psi[2 * e] + s * buf[2 * i];
        out[2 * e + 1] = psi[2 * e + 1] + s * buf[2 * i + 1];
      }
      ++q;
    }
  }
}

void check(bool ok, const char* what) { TORCH_CHECK(ok, "noise kernel: ", what); }

int resolve_level(int64_t level) {
  check(level >= -1 && level <= 2, "level must be -1 (best), 0, 1 or 2");
  const int best = max_level();
  check(level <= best, "this build has no vector path of that level");
  return level < 0 ? best : static_cast<int>(level);
}

// psi + scale * factor * xi (see the header); scale: float32 / float64 [G] (G divides
// numel) or None; level: -1 the best the build has, 0 scalar, 1 AVX2, 2 AVX-512
torch::Tensor noise_add(const torch::Tensor& psi, const c10::optional<torch::Tensor>& scale,
                        double factor, const torch::Tensor& key, bool in_place, int64_t level) {
  check(psi.device().is_cpu() && psi.is_contiguous(), "psi must be a contiguous CPU tensor");
  check(psi.scalar_type() == torch::kComplexFloat || psi.scalar_type() == torch::kComplexDouble,
        "psi must be complex64 or complex128");
  check(key.device().is_cpu() && key.scalar_type() == torch::kInt64 && key.numel() == 1,
        "key must be a CPU int64 tensor of one element");
  const int lv = resolve_level(level);
  const int64_t n = psi.numel();
  const double* sp = nullptr;
  int64_t groups = 1;
  torch::Tensor scale64;
  if (scale.has_value()) {
    check(scale->device().is_cpu() && scale->dim() == 1 && scale->numel() >= 1 &&
              (scale->scalar_type() == torch::kFloat64 || scale->scalar_type() == torch::kFloat32),
          "scale must be a CPU float32 or float64 [G]");
    scale64 = scale->to(torch::kFloat64).contiguous();
    groups = scale64.numel();
    check(n % groups == 0, "the number of scale groups must divide psi.numel()");
    sp = scale64.data_ptr<double>();
  }
  const uint64_t k = static_cast<uint64_t>(key.contiguous().data_ptr<int64_t>()[0]);
  torch::Tensor out = in_place ? psi : torch::empty_like(psi);
  if (n == 0) return out;
  if (psi.scalar_type() == torch::kComplexFloat) {
    const float* src = reinterpret_cast<const float*>(psi.data_ptr<c10::complex<float>>());
    float* dst = reinterpret_cast<float*>(out.data_ptr<c10::complex<float>>());
    noise_impl<float>(src, dst, n, sp, groups, factor, k, lv);
  } else {
    const double* src = reinterpret_cast<const double*>(psi.data_ptr<c10::complex<double>>());
    double* dst = reinterpret_cast<double*>(out.data_ptr<c10::complex<double>>());
    noise_impl<double>(src, dst, n, sp, groups, factor, k, lv);
  }
  return out;
}

#ifdef HHML_NOISE_AVX2
// Philox of one counter under one key in every lane of V's vectors; every lane must agree
template <class V>
void philox_lanes(const uint32_t ctr[4], const RoundKeys& rk, uint32_t out[4]) {
  constexpr int L = sizeof(typename V::I) / 4;
  const Words<V> c{V::set32(ctr[0]), V::set32(ctr[1]), V::set32(ctr[2]), V::set32(ctr[3])};
  const Words<V> r = philox_words<V>(c, rk);
  const typename V::I* w[4] = {&r.c0, &r.c1, &r.c2, &r.c3};
  for (int k = 0; k < 4; ++k) {
    uint32_t lanes[L];
    std::memcpy(lanes, w[k], sizeof lanes);
    for (int l = 1; l < L; ++l) check(lanes[l] == lanes[0], "philox lanes disagree");
    out[k] = lanes[0];
  }
}
#endif

// Philox4x32-10 of counters [N, 4] under keys [N, 2] (int64 holding uint32 values): [N, 4],
// through the code of `level` (as noise_add); a row at a time, in every lane.
torch::Tensor philox(const torch::Tensor& counter, const torch::Tensor& key, int64_t level) {
  check(counter.dim() == 2 && counter.size(1) == 4 && counter.scalar_type() == torch::kInt64 &&
            counter.is_contiguous() && counter.device().is_cpu(),
        "counter must be a contiguous CPU int64 [N, 4]");
  const int64_t N = counter.size(0);
  check(key.dim() == 2 && key.size(0) == N && key.size(1) == 2 &&
            key.scalar_type() == torch::kInt64 && key.is_contiguous() && key.device().is_cpu(),
        "key must be a contiguous CPU int64 [N, 2]");
  const int lv = resolve_level(level);
  auto out = torch::empty({N, 4}, counter.options());
  const int64_t* cp = counter.data_ptr<int64_t>();
  const int64_t* kp = key.data_ptr<int64_t>();
  int64_t* op = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i) {
    uint32_t c[4], r[4];
    for (int k = 0; k < 4; ++k) c[k] = static_cast<uint32_t>(cp[4 * i + k]);
    const uint32_t k0 = static_cast<uint32_t>(kp[2 * i]), k1 = static_cast<uint32_t>(kp[2 * i + 1]);
    if (lv == 0) {
      std::memcpy(r, c, sizeof r);
      philox_scalar(r, k0, k1);
    }
#ifdef HHML_NOISE_AVX2
    if (lv == 1) philox_lanes<IV256>(c, RoundKeys(k0, k1), r);
#endif
#ifdef HHML_NOISE_AVX512
    if (lv == 2) philox_lanes<IV512>(c, RoundKeys(k0, k1), r);
#endif
    for (int k = 0; k < 4; ++k) op[4 * i + k] = static_cast<int64_t>(r[k]);
  }
  return out;
}

int64_t simd_level() { return max_level(); }

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // the GIL is released: the kernels touch no Python object
  m.def("noise_add", &noise_add, "psi + scale * factor * (Philox4x32-10 complex normals)",
        py::arg("psi"), py::arg("scale"), py::arg("factor"), py::arg("key"),
        py::arg("in_place"), py::arg("level"), py::call_guard<py::gil_scoped_release>());
  m.def("philox", &philox, "Philox4x32-10 of counters [N, 4] under keys [N, 2]",
        py::arg("counter"), py::arg("key"), py::arg("level"),
        py::call_guard<py::gil_scoped_release>());
  m.def("simd_level", &simd_level, "the best vector level of this build (0, 1 or 2)");
}
