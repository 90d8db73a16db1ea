//! Branch-free `f32` exp, log, sigmoid, tanh, sin and cos for the CPU
//! element-wise maps. Each function is straight-line arithmetic on one value
//! (bit operations and selects instead of branches), so a loop over a slice
//! compiles to SIMD code (AVX-512 or AVX2 + FMA copies are selected at run
//! time by `cpu::vector`); polynomial steps use fused multiply-adds
//! (`mul_add`, a library call on a processor without FMA), so every copy gives
//! the same bits. Error bounds against the exact value (measured over a
//! sweep of every 997th `f32` bit pattern plus special values, see the
//! tests): `exp` and `log` at most 1 ulp, `sin`, `cos` and `tanh` at most 2,
//! `sigmoid` at most 2. Special values follow C99/IEEE as the system `libm`
//! does (NaN propagates, `exp(-inf) = 0`, `log(0) = -inf`, `log(x < 0) =
//! NaN`, `sin(inf) = NaN`, `tanh(±inf) = ±1`, signed zeros kept).

/// `2^23 * 1.5`: adding it rounds an `f32` of magnitude below `2^22` to an
/// integer (to nearest even) held in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;

/// `2^n` for `n` in `-126..=127` (an integer held in an `i32`).
#[inline(always)]
fn pow2i(n: i32) -> f32 {
    f32::from_bits((n.wrapping_add(127) as u32) << 23)
}

/// `e^r` for `|r| <= ln 2 / 2` (Taylor series to degree 7: truncation below
/// `6e-9` relative), `1 + (r + r^2 p(r))`.
#[inline(always)]
fn exp_core(r: f32) -> f32 {
    let p = (1.0f32 / 5040.0).mul_add(r, 1.0 / 720.0);
    let p = p.mul_add(r, 1.0 / 120.0);
    let p = p.mul_add(r, 1.0 / 24.0);
    let p = p.mul_add(r, 1.0 / 6.0);
    let p = p.mul_add(r, 0.5);
    1.0 + (r * r).mul_add(p, r)
}

/// `e^r - 1` for `|r| <= ln 2 / 2` (Taylor series to degree 8), accurate
/// relative to the result near 0.
#[inline(always)]
fn expm1_core(r: f32) -> f32 {
    let p = (1.0f32 / 40320.0).mul_add(r, 1.0 / 5040.0);
    let p = p.mul_add(r, 1.0 / 720.0);
    let p = p.mul_add(r, 1.0 / 120.0);
    let p = p.mul_add(r, 1.0 / 24.0);
    let p = p.mul_add(r, 1.0 / 6.0);
    let p = p.mul_add(r, 0.5);
    (r * r).mul_add(p, r)
}

/// `ln 2` as an `f32` and the rest.
const LN2_HI: f32 = std::f32::consts::LN_2;
const LN2_LO: f32 = -1.904_654_2e-9;

/// `x = n ln 2 + r` with `n = round(x / ln 2)` (for `|x| < 2^21`); `r` is
/// exact up to the `LN2_LO` term (the first fused step is exact).
#[inline(always)]
fn reduce_ln2(x: f32) -> (f32, i32) {
    let t = x.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let nf = t - ROUND;
    let r = (-nf).mul_add(LN2_HI, x);
    ((-nf).mul_add(LN2_LO, r), n)
}

/// `e^x`, within 1 ulp; overflows to `inf` above 88.72, underflows through
/// the subnormals to 0 below -103.97.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    // Clamp (NaN passes through and propagates through the arithmetic).
    let xc = x.clamp(-104.0, 89.0);
    let (r, n) = reduce_ln2(xc);
    let p = exp_core(r);
    // 2^n in two normal factors (n in -150..=129), so subnormal results
    // round once and overflow gives inf.
    let n1 = n >> 1;
    (p * pow2i(n1)) * pow2i(n - n1)
}

/// `e^x - 1` for `0 <= x <= 20` (as `tanh` needs it): `2^n - 1` is exact
/// for `n <= 24`, so the sum rounds once.
#[inline(always)]
fn expm1_pos(x: f32) -> f32 {
    let (r, n) = reduce_ln2(x);
    let s = pow2i(n);
    s.mul_add(expm1_core(r), s - 1.0)
}

/// Natural logarithm, within 1 ulp (`-inf` for `±0`, NaN below 0).
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    // Subnormals scaled into the normal range.
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 8_388_608.0 } else { x };
    let kadj = if sub { -23 } else { 0 };
    // x = 2^k m with m in [sqrt(2)/2, sqrt(2)).
    let ix = xs.to_bits().wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = ((ix >> 23) as i32) - 0x7f + kadj;
    let m = f32::from_bits((ix & 0x007f_ffff) + 0x3f35_04f3);
    let f = m - 1.0;
    // log(1 + f) = 2 atanh(s), s = f / (2 + f): f - f^2/2 + s (f^2/2 + R(s^2)).
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * 0.242_790_79f32.mul_add(w, 0.400_009_72);
    let t2 = z * 0.284_987_87f32.mul_add(w, 0.666_666_6);
    let rr = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    let v = s.mul_add(hfsq + rr, dk * 9.058_001e-6) - hfsq + f + dk * 0.693_138_1;
    // Special values.
    let v = if x == f32::INFINITY { x } else { v };
    let v = if x == 0.0 { f32::NEG_INFINITY } else { v };
    let v = if x < 0.0 { f32::NAN } else { v };
    if x.is_nan() {
        x
    } else {
        v
    }
}

/// Logistic function: `1 / (1 + e^-x)` for `x >= 0`, `e^x / (1 + e^x)`
/// below (no overflow; exact limits 0 and 1), within 2 ulps.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let num = if x >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

/// Hyperbolic tangent `sign(x) em / (em + 2)` with `em = e^(2|x|) - 1`
/// (no cancellation near 0; exactly `±1` from `|x| = 10` on), within 2
/// ulps.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let a = if a > 10.0 { 10.0 } else { a };
    let em = expm1_pos(a + a);
    let t = em / (em + 2.0);
    let t = f32::from_bits(t.to_bits() | (x.to_bits() & 0x8000_0000));
    if x.is_nan() {
        x
    } else {
        t
    }
}

/// Largest `|x|` reduced by [`sin_cos_reduced`]; larger arguments (and
/// infinities) take the system `libm` (see `cpu::vector`).
pub(crate) const TRIG_MAX: f32 = 65_536.0;

/// `pi / 2` in three `f32` parts.
const PIO2_1: f32 = 1.570_796_4;
const PIO2_2: f32 = f32::from_bits(0xb33b_bd2e); // -4.3711388e-8
const PIO2_3: f32 = f32::from_bits(0xa6f7_2ced); // -1.7151245e-15

/// `sin(r)` and `cos(r)` for `|r| <= pi / 4` (minimax polynomials).
#[inline(always)]
fn sin_cos_poly(r: f32) -> (f32, f32) {
    let z = r * r;
    let s = (-1.951_529_6e-4f32).mul_add(z, 8.332_161e-3);
    let s = s.mul_add(z, -1.666_665_5e-1);
    let sin = (s * z).mul_add(r, r);
    let c = 2.443_315_7e-5f32.mul_add(z, -1.388_731_6e-3);
    let c = c.mul_add(z, 4.166_664_6e-2);
    let cos = (c * z).mul_add(z, (-0.5f32).mul_add(z, 1.0));
    (sin, cos)
}

/// `sin(x)` (`cos = false`) or `cos(x)` for `|x| <= TRIG_MAX`: `x = n pi/2 +
/// r` with a three-part `pi / 2` (the first fused step is exact), then the
/// polynomial of the quadrant.
#[inline(always)]
pub(crate) fn sin_cos_reduced(x: f32, cos: bool) -> f32 {
    let t = x.mul_add(std::f32::consts::FRAC_2_PI, ROUND);
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let nf = t - ROUND;
    let r = (-nf).mul_add(PIO2_1, x);
    let r = (-nf).mul_add(PIO2_2, r);
    let r = (-nf).mul_add(PIO2_3, r);
    let (s, c) = sin_cos_poly(r);
    // cos(x) = sin(x + pi/2): one quadrant further.
    let q = n.wrapping_add(cos as i32);
    let v = if q & 1 == 0 { s } else { c };
    let v = if q & 2 == 0 { v } else { -v };
    // sin(-0) = -0 (the reduction's later steps turn -0 into +0).
    if !cos && x == 0.0 {
        x
    } else {
        v
    }
}
