//! Sixteen `f32` lanes on AVX-512 (one register) or on AVX2 with FMA (two registers): the
//! direct and Winograd kernels are written once against [`Lanes`] and compiled for each
//! instruction set ([`Isa`]).
//!
//! The kernels' generic code is `#[inline(always)]` down to the intrinsics, and each entry
//! point is compiled with its instruction set's target features (`dispatch!`): a generic
//! layer that was not inlined would call every intrinsic out of line.

use std::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// An instruction set the direct and Winograd kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX2 with FMA (x86-64 CPUs since about 2013): 8 lanes a register, 16 registers.
    Avx2,
    /// AVX-512F (server CPUs, AMD since Zen 4): 16 lanes a register, 32 registers.
    Avx512,
}

impl Isa {
    /// Whether this CPU has the instruction set.
    pub fn available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
                Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Every instruction set this CPU has, slowest first.
    pub fn all() -> Vec<Isa> {
        [Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.available())
            .collect()
    }

    /// The fastest instruction set this CPU has, if any.
    pub fn best() -> Option<Isa> {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|isa| isa.available())
    }

    /// Makes the kernels use `isa` from now on in this process, where the CPU has it (`None`:
    /// the fastest, the default). For measuring what a CPU without AVX-512 gets.
    pub fn prefer(isa: Option<Isa>) {
        let code = PREFERENCES.iter().position(|&p| p == isa).unwrap_or(0);
        PREFERRED.store(code as u8, Ordering::Relaxed);
    }

    /// The instruction set the kernels use: the preferred one ([`Isa::prefer`]) where this CPU
    /// has it, else the fastest; `None` where the CPU has neither.
    pub fn chosen() -> Option<Isa> {
        match PREFERENCES[usize::from(PREFERRED.load(Ordering::Relaxed))] {
            Some(isa) if isa.available() => Some(isa),
            _ => Isa::best(),
        }
    }

    /// The instruction set of `gemm`'s matrix products (this crate's im2col, [`crate::product`]
    /// where gemm's kernels sum in its order, and burn-flex's matmuls, which share the build):
    /// AVX-512 where the CPU has it and the `gemm-avx512` feature is on (the default), else AVX2
    /// with FMA where the CPU has it. [`Isa::prefer`] does not reach them; gemm's AVX-512 and
    /// AVX2 kernels cut long sums in different places, which [`crate::product`] does not.
    pub fn of_products() -> Option<Isa> {
        if cfg!(feature = "gemm-avx512") && Isa::Avx512.available() {
            Some(Isa::Avx512)
        } else {
            Some(Isa::Avx2).filter(|isa| isa.available())
        }
    }

    /// Lower-case name: `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// [`Isa::prefer`]'s choice, as an index into [`PREFERENCES`].
static PREFERRED: AtomicU8 = AtomicU8::new(0);

/// What [`PREFERRED`] can hold.
const PREFERENCES: [Option<Isa>; 3] = [None, Some(Isa::Avx2), Some(Isa::Avx512)];

/// Sixteen `f32` lanes. Values exist only where the CPU has the type's instruction set: the
/// constructors and memory accesses are `unsafe`, arithmetic on existing values is not.
///
/// # Safety
///
/// The safe methods execute the type's instructions on the strength of a value existing, so
/// an implementation must create values only through its `unsafe` constructors (no safe
/// constructor, no `Default`, no public field).
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe trait Lanes: Copy {
    /// The instruction set.
    const ISA: Isa;
    /// Whether a register holds all sixteen lanes (AVX-512): the kernels pick wider register
    /// blocks then.
    const WIDE: bool;
    /// Output channels per register block of the kernels: 32 with AVX-512 (two vectors), 16
    /// with AVX2 (one).
    const BLOCK_CHANNELS: usize = if Self::WIDE { 32 } else { 16 };

    /// Sixteen zeros.
    ///
    /// # Safety
    ///
    /// The CPU must have the type's instruction set (as for every constructor here).
    unsafe fn zero() -> Self;
    /// `value` in every lane.
    ///
    /// # Safety
    ///
    /// As [`Lanes::zero`].
    unsafe fn splat(value: f32) -> Self;
    /// The sixteen values at `from`.
    ///
    /// # Safety
    ///
    /// As [`Lanes::zero`], and `from` must point to sixteen readable values.
    unsafe fn load(from: *const f32) -> Self;
    /// Stores the lanes at `to`.
    ///
    /// # Safety
    ///
    /// `to` must point to sixteen writable values.
    unsafe fn store(self, to: *mut f32);
    /// Stores lanes holding small whole numbers (0..=255) as sixteen bytes at `to`.
    ///
    /// # Safety
    ///
    /// `to` must point to sixteen writable bytes.
    unsafe fn store_bytes(self, to: *mut u8);
    /// `self + other`.
    fn add(self, other: Self) -> Self;
    /// `self - other`.
    fn sub(self, other: Self) -> Self;
    /// `self * other`.
    fn mul(self, other: Self) -> Self;
    /// The larger of `self` and `other` (lane by lane).
    fn max(self, other: Self) -> Self;
    /// `self * factor + addend`, rounded once.
    fn mul_add(self, factor: Self, addend: Self) -> Self;
    /// `addend - self * factor`, rounded once.
    fn neg_mul_add(self, factor: Self, addend: Self) -> Self;
    /// `if_greater` in the lanes where `self > other`, `otherwise` elsewhere.
    fn select_greater(self, other: Self, if_greater: Self, otherwise: Self) -> Self;
    /// The 16 x 16 block whose rows are `rows`, transposed.
    fn transpose(rows: [Self; 16]) -> [Self; 16];
}

/// One AVX-512 register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512);

#[cfg(target_arch = "x86_64")]
// SAFETY: `Avx512` values come only from the unsafe constructors below.
unsafe impl Lanes for Avx512 {
    const ISA: Isa = Isa::Avx512;
    const WIDE: bool = true;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        Avx512(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        // SAFETY: as in `zero`.
        Avx512(unsafe { _mm512_set1_ps(value) })
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        // SAFETY: as in `zero`; the caller passes sixteen readable values.
        Avx512(unsafe { _mm512_loadu_ps(from) })
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        // SAFETY: a value exists only where AVX-512F does; the caller passes sixteen values.
        unsafe { _mm512_storeu_ps(to, self.0) }
    }
    #[inline(always)]
    unsafe fn store_bytes(self, to: *mut u8) {
        // SAFETY: as in `store`.
        unsafe { _mm_storeu_si128(to.cast(), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(self.0))) }
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        // SAFETY: a value exists only where AVX-512F does (constructors are unsafe).
        Avx512(unsafe { _mm512_add_ps(self.0, other.0) })
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        // SAFETY: as in `add`.
        Avx512(unsafe { _mm512_sub_ps(self.0, other.0) })
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        // SAFETY: as in `add`.
        Avx512(unsafe { _mm512_mul_ps(self.0, other.0) })
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: as in `add`.
        Avx512(unsafe { _mm512_max_ps(self.0, other.0) })
    }
    #[inline(always)]
    fn mul_add(self, factor: Self, addend: Self) -> Self {
        // SAFETY: as in `add`.
        Avx512(unsafe { _mm512_fmadd_ps(self.0, factor.0, addend.0) })
    }
    #[inline(always)]
    fn neg_mul_add(self, factor: Self, addend: Self) -> Self {
        // SAFETY: as in `add`.
        Avx512(unsafe { _mm512_fnmadd_ps(self.0, factor.0, addend.0) })
    }
    #[inline(always)]
    fn select_greater(self, other: Self, if_greater: Self, otherwise: Self) -> Self {
        // SAFETY: as in `add`.
        Avx512(unsafe {
            let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, other.0);
            _mm512_mask_blend_ps(greater, otherwise.0, if_greater.0)
        })
    }
    #[inline(always)]
    fn transpose(rows: [Self; 16]) -> [Self; 16] {
        // SAFETY: a value exists only where AVX-512F does.
        unsafe { transpose16(rows) }
    }
}

/// Two AVX2 registers: lanes 0..8 and 8..16.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256, __m256);

#[cfg(target_arch = "x86_64")]
// SAFETY: `Avx2` values come only from the unsafe constructors below.
unsafe impl Lanes for Avx2 {
    const ISA: Isa = Isa::Avx2;
    const WIDE: bool = false;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller guarantees AVX2.
        unsafe { Avx2(_mm256_setzero_ps(), _mm256_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        // SAFETY: as in `zero`.
        unsafe {
            let v = _mm256_set1_ps(value);
            Avx2(v, v)
        }
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        // SAFETY: as in `zero`; the caller passes sixteen readable values.
        unsafe { Avx2(_mm256_loadu_ps(from), _mm256_loadu_ps(from.add(8))) }
    }
    #[inline(always)]
    unsafe fn store(self, to: *mut f32) {
        // SAFETY: a value exists only where AVX2 does; the caller passes sixteen values.
        unsafe {
            _mm256_storeu_ps(to, self.0);
            _mm256_storeu_ps(to.add(8), self.1);
        }
    }
    #[inline(always)]
    unsafe fn store_bytes(self, to: *mut u8) {
        // SAFETY: as in `store`.
        unsafe {
            // Sixteen 16-bit values in the order 0..4, 8..12, 4..8, 12..16 (packing works
            // within 128-bit lanes), put back in order, then narrowed to bytes.
            let words =
                _mm256_packs_epi32(_mm256_cvttps_epi32(self.0), _mm256_cvttps_epi32(self.1));
            let words = _mm256_permute4x64_epi64::<0b11_01_10_00>(words);
            let bytes = _mm_packus_epi16(
                _mm256_castsi256_si128(words),
                _mm256_extracti128_si256::<1>(words),
            );
            _mm_storeu_si128(to.cast(), bytes);
        }
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        // SAFETY: a value exists only where AVX2 does (constructors are unsafe).
        unsafe {
            Avx2(
                _mm256_add_ps(self.0, other.0),
                _mm256_add_ps(self.1, other.1),
            )
        }
    }
    #[inline(always)]
    fn sub(self, other: Self) -> Self {
        // SAFETY: as in `add`.
        unsafe {
            Avx2(
                _mm256_sub_ps(self.0, other.0),
                _mm256_sub_ps(self.1, other.1),
            )
        }
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        // SAFETY: as in `add`.
        unsafe {
            Avx2(
                _mm256_mul_ps(self.0, other.0),
                _mm256_mul_ps(self.1, other.1),
            )
        }
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // SAFETY: as in `add`.
        unsafe {
            Avx2(
                _mm256_max_ps(self.0, other.0),
                _mm256_max_ps(self.1, other.1),
            )
        }
    }
    #[inline(always)]
    fn mul_add(self, factor: Self, addend: Self) -> Self {
        // SAFETY: as in `add` (FMA comes with this type's instruction set).
        unsafe {
            Avx2(
                _mm256_fmadd_ps(self.0, factor.0, addend.0),
                _mm256_fmadd_ps(self.1, factor.1, addend.1),
            )
        }
    }
    #[inline(always)]
    fn neg_mul_add(self, factor: Self, addend: Self) -> Self {
        // SAFETY: as in `mul_add`.
        unsafe {
            Avx2(
                _mm256_fnmadd_ps(self.0, factor.0, addend.0),
                _mm256_fnmadd_ps(self.1, factor.1, addend.1),
            )
        }
    }
    #[inline(always)]
    fn select_greater(self, other: Self, if_greater: Self, otherwise: Self) -> Self {
        // SAFETY: as in `add`.
        unsafe {
            let low = _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, other.0);
            let high = _mm256_cmp_ps::<_CMP_GT_OQ>(self.1, other.1);
            Avx2(
                _mm256_blendv_ps(otherwise.0, if_greater.0, low),
                _mm256_blendv_ps(otherwise.1, if_greater.1, high),
            )
        }
    }
    #[inline(always)]
    fn transpose(rows: [Self; 16]) -> [Self; 16] {
        // Four 8 x 8 blocks: rows 0..8 and 8..16, by lanes 0..8 and 8..16; block (r, c) of
        // the input is block (c, r) of the output.
        let zero = rows[0].0;
        let (mut top_left, mut top_right) = ([zero; 8], [zero; 8]);
        let (mut bottom_left, mut bottom_right) = ([zero; 8], [zero; 8]);
        for i in 0..8 {
            (top_left[i], top_right[i]) = (rows[i].0, rows[i].1);
            (bottom_left[i], bottom_right[i]) = (rows[8 + i].0, rows[8 + i].1);
        }
        // SAFETY: a value exists only where AVX2 does.
        let (a, b, c, d) = unsafe {
            (
                transpose8(top_left),
                transpose8(bottom_left),
                transpose8(top_right),
                transpose8(bottom_right),
            )
        };
        let mut out = [Avx2(zero, zero); 16];
        for j in 0..8 {
            out[j] = Avx2(a[j], b[j]);
            out[8 + j] = Avx2(c[j], d[j]);
        }
        out
    }
}

/// The 16 x 16 block whose rows are `rows`, transposed: unpacking pairs of values, then
/// pairs of pairs, then exchanging 128-bit lanes twice.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn transpose16(rows: [Avx512; 16]) -> [Avx512; 16] {
    let zero = _mm512_setzero_ps();
    // Lane k of t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved, columns 4k..4k + 4.
    let mut t = [zero; 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(rows[2 * i].0, rows[2 * i + 1].0);
        t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i].0, rows[2 * i + 1].0);
    }
    // Lane k of u[4i + j]: column 4k + j of rows 4i..4i + 4.
    let mut u = [zero; 16];
    let pd = _mm512_castps_pd;
    for i in 0..4 {
        let b = 4 * i;
        u[b] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[b]), pd(t[b + 2])));
        u[b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[b]), pd(t[b + 2])));
        u[b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[b + 1]), pd(t[b + 3])));
        u[b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[b + 1]), pd(t[b + 3])));
    }
    // Column 4k + j gathers lane k of u[j], u[4 + j], u[8 + j], u[12 + j].
    let mut out = [Avx512(zero); 16];
    for j in 0..4 {
        let low = _mm512_shuffle_f32x4::<0x44>(u[j], u[4 + j]);
        let high = _mm512_shuffle_f32x4::<0xEE>(u[j], u[4 + j]);
        let low2 = _mm512_shuffle_f32x4::<0x44>(u[8 + j], u[12 + j]);
        let high2 = _mm512_shuffle_f32x4::<0xEE>(u[8 + j], u[12 + j]);
        out[j] = Avx512(_mm512_shuffle_f32x4::<0x88>(low, low2));
        out[4 + j] = Avx512(_mm512_shuffle_f32x4::<0xDD>(low, low2));
        out[8 + j] = Avx512(_mm512_shuffle_f32x4::<0x88>(high, high2));
        out[12 + j] = Avx512(_mm512_shuffle_f32x4::<0xDD>(high, high2));
    }
    out
}

/// The 8 x 8 block whose rows are `rows`, transposed: unpacking pairs of values, then pairs of
/// pairs, then exchanging 128-bit lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn transpose8(rows: [__m256; 8]) -> [__m256; 8] {
    let zero = _mm256_setzero_ps();
    // Lane k of t[2i], t[2i + 1]: rows 2i and 2i + 1 interleaved, columns 4k..4k + 4.
    let mut t = [zero; 8];
    for i in 0..4 {
        t[2 * i] = _mm256_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    // Lane k of u[4i + j]: column 4k + j of rows 4i..4i + 4.
    let mut u = [zero; 8];
    for i in 0..2 {
        let b = 4 * i;
        u[b] = _mm256_shuffle_ps::<0x44>(t[b], t[b + 2]);
        u[b + 1] = _mm256_shuffle_ps::<0xEE>(t[b], t[b + 2]);
        u[b + 2] = _mm256_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
        u[b + 3] = _mm256_shuffle_ps::<0xEE>(t[b + 1], t[b + 3]);
    }
    // Column j gathers the low lanes of u[j] and u[4 + j]; column 4 + j their high lanes.
    let mut out = [zero; 8];
    for j in 0..4 {
        out[j] = _mm256_permute2f128_ps::<0x20>(u[j], u[4 + j]);
        out[4 + j] = _mm256_permute2f128_ps::<0x31>(u[j], u[4 + j]);
    }
    out
}

/// The maximum of a 2x2 pooling window's four candidates after the bias and ReLU, and per
/// lane the winner's index (0..4, as a float; the first on ties).
///
/// # Safety
///
/// The CPU must have `V`'s instruction set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn pool_window<V: Lanes>(candidates: [V; 4], bias: V) -> (V, V) {
    // SAFETY: the caller guarantees the instruction set.
    let zero = unsafe { V::zero() };
    let mut best = candidates[0].add(bias).max(zero);
    let mut which = zero;
    for (n, &candidate) in candidates.iter().enumerate().skip(1) {
        let value = candidate.add(bias).max(zero);
        // SAFETY: as above.
        let index = unsafe { V::splat(n as f32) };
        which = value.select_greater(best, index, which);
        best = value.select_greater(best, value, best);
    }
    (best, which)
}

/// Adds `N` rows of `16 H` accumulated values to the rows at `out`, `stride` values apart.
///
/// # Safety
///
/// `out` must hold the `N` rows.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn add_rows<V: Lanes, const H: usize, const N: usize>(
    acc: &[[V; H]; N],
    out: *mut f32,
    stride: usize,
) {
    for (i, a) in acc.iter().enumerate() {
        for (h, &v) in a.iter().enumerate() {
            // SAFETY: the caller passes `N` rows of `16 H` values at `out`.
            unsafe {
                let at = out.add(i * stride + h * 16);
                V::load(at).add(v).store(at);
            }
        }
    }
}

/// Defines the generic `unsafe fn $generic<V: Lanes>(args...)`, made `#[inline(always)]`, and
/// `unsafe fn $name(isa: Isa, args...)`, which runs it compiled for `isa`'s target features
/// (`V` being [`Avx512`] or [`Avx2`]). The caller of `$name` must make sure the CPU has `isa`.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch {
    (
        $(#[$meta:meta])* $vis:vis fn $name:ident =>
        $(#[$generic_meta:meta])*
        unsafe fn $generic:ident<$lanes:ident: Lanes>($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        $(#[$generic_meta])*
        #[allow(clippy::too_many_arguments)]
        #[inline(always)]
        unsafe fn $generic<$lanes: $crate::simd::Lanes>($($arg: $ty),*) $body

        $(#[$meta])*
        ///
        /// # Safety
        ///
        /// The CPU must have `isa`, and the operands must be as the generic function needs.
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name(isa: $crate::simd::Isa, $($arg: $ty),*) {
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512($($arg: $ty),*) {
                // SAFETY: passed on from the caller.
                unsafe { $generic::<$crate::simd::Avx512>($($arg),*) }
            }
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2($($arg: $ty),*) {
                // SAFETY: passed on from the caller.
                unsafe { $generic::<$crate::simd::Avx2>($($arg),*) }
            }
            // SAFETY: the caller guarantees the instruction set.
            unsafe {
                match isa {
                    $crate::simd::Isa::Avx512 => avx512($($arg),*),
                    $crate::simd::Isa::Avx2 => avx2($($arg),*),
                }
            }
        }
    };
}
/// Elsewhere than on x86-64 no instruction set of these kernels exists ([`Isa::available`] is
/// false, so no fast method is ever chosen): the entry point keeps its signature for the
/// callers and is never called.
#[cfg(not(target_arch = "x86_64"))]
macro_rules! dispatch {
    (
        $(#[$meta:meta])* $vis:vis fn $name:ident =>
        $(#[$generic_meta:meta])*
        unsafe fn $generic:ident<$lanes:ident: Lanes>($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        $(#[$meta])*
        ///
        /// # Safety
        ///
        /// Never to be called: no instruction set of these kernels exists on this architecture.
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name(isa: $crate::simd::Isa, $($arg: $ty),*) {
            let _ = ($($arg),*);
            unreachable!("{isa:?} kernels exist only on x86-64")
        }
    };
}
pub(crate) use dispatch;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Both instruction sets' lanes give what scalar arithmetic gives, bit for bit.
    #[test]
    fn lanes_agree_with_scalar_arithmetic() {
        fn check<V: Lanes>() {
            let a: [f32; 16] = std::array::from_fn(|i| i as f32 - 7.5);
            let b: [f32; 16] = std::array::from_fn(|i| (i as f32 * 0.37).sin() * 4.0);
            let c: [f32; 16] = std::array::from_fn(|i| 1.0 / (i as f32 + 1.0));
            type Scalar = fn(f32, f32, f32) -> f32;
            let expected: [(&str, Scalar); 7] = [
                ("add", |a, b, _| a + b),
                ("sub", |a, b, _| a - b),
                ("mul", |a, b, _| a * b),
                ("max", |a, b, _| a.max(b)),
                ("mul_add", |a, b, c| a.mul_add(b, c)),
                ("neg_mul_add", |a, b, c| (-a).mul_add(b, c)),
                ("select_greater", |a, b, c| if a > b { c } else { 2.0 }),
            ];
            let mut out = [0.0f32; 16];
            let mut bytes = [0u8; 16];
            // SAFETY: the caller checked the instruction set; the arrays hold 16 values.
            unsafe {
                let (x, y, z) = (
                    V::load(a.as_ptr()),
                    V::load(b.as_ptr()),
                    V::load(c.as_ptr()),
                );
                let values = [
                    x.add(y),
                    x.sub(y),
                    x.mul(y),
                    x.max(y),
                    x.mul_add(y, z),
                    x.neg_mul_add(y, z),
                    x.select_greater(y, z, V::splat(2.0)),
                ];
                for (value, (name, f)) in values.into_iter().zip(expected) {
                    value.store(out.as_mut_ptr());
                    for (i, &v) in out.iter().enumerate() {
                        assert_eq!(v, f(a[i], b[i], c[i]), "{name}, lane {i}");
                    }
                }
                let indices: [f32; 16] = std::array::from_fn(|i| (i * 17 % 256) as f32);
                V::load(indices.as_ptr()).store_bytes(bytes.as_mut_ptr());
            }
            for (i, &byte) in bytes.iter().enumerate() {
                assert_eq!(usize::from(byte), i * 17 % 256, "byte {i}");
            }
        }
        if Isa::Avx2.available() {
            check::<Avx2>();
        }
        if Isa::Avx512.available() {
            check::<Avx512>();
        }
    }
}
