//! Matrix products whose every element is summed in one order on every CPU with AVX2 or
//! AVX-512: the order of `gemm`'s AVX-512 kernels ([`sum_run`]), whatever the instruction set
//! and the cache sizes. (gemm's own blocking follows the instruction set and the level-1
//! cache: its AVX2 kernels cut the sum elsewhere on a CPU with a 48 KiB 12-way cache, so
//! the same product gave other bits there.)
//!
//! Each output tile is a register block of 6 rows by 16 columns (AVX2) or 64 (AVX-512), fed by
//! one broadcast of the left operand per row and one vector load of the right operand per 16
//! columns at each term of the sum; rows are spread over the rayon pool, which changes no sum.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::simd::{Isa, dispatch};
#[cfg(target_arch = "x86_64")]
use crate::simd::{Lanes, add_rows};

/// A matrix view of a slice: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    /// The values.
    pub data: &'a [f32],
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with rows of `width` values.
    pub fn rows(data: &'a [f32], width: usize) -> Self {
        Mat {
            data,
            row_stride: width,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix whose rows have `height` values.
    pub fn cols(data: &'a [f32], height: usize) -> Self {
        Mat {
            data,
            row_stride: 1,
            col_stride: height,
        }
    }

    /// Whether every element of a `rows x cols` matrix lies inside the slice.
    pub fn fits(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1)
            .checked_mul(self.row_stride)
            .zip((cols - 1).checked_mul(self.col_stride))
            .and_then(|(down, across)| down.checked_add(across));
        last.is_some_and(|last| last < self.data.len())
    }

    /// Element `(i, j)`.
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// The longest run of terms [`product`] sums at a time for an `[m, k] x [k, n]` product.
///
/// The sum over `k` is cut into runs: each run is summed by fused multiply-adds in order,
/// starting from zero, and the runs' sums are added in order. Products larger than 64 x 64
/// cut it into `k.div_ceil(512)` runs of one length (the last shorter); smaller ones into runs
/// of 512. These are the runs of gemm's AVX-512 kernels (gemm 0.19), so products gemm
/// computed with AVX-512 keep their bits (all but those of at most 256 values with a
/// column-major right operand, which gemm sums as dot products).
pub fn sum_run(m: usize, k: usize, n: usize) -> usize {
    const RUN: usize = 512;
    if m <= 64 && n <= 64 {
        k.clamp(1, RUN)
    } else {
        k.div_ceil(k.div_ceil(RUN).max(1)).max(1)
    }
}

/// Whether [`product`] computes an `[m, k] x [k, n]` product with its own kernels, in the
/// order [`sum_run`] gives, on this CPU: where it has AVX2 with FMA or AVX-512 and the
/// product is no vector product (`m` and `n` at least 2, `k` at least 3). Elsewhere
/// `gemm` computes it (its vector paths: the same bits with AVX2 and AVX-512 where `m` is 1
/// or `k` at most 2).
pub fn fixed_order(m: usize, k: usize, n: usize) -> bool {
    own_shape(m, k, n) && Isa::chosen().is_some()
}

/// Whether the own kernels take a product of these shapes (no vector product).
fn own_shape(m: usize, k: usize, n: usize) -> bool {
    m >= 2 && n >= 2 && k >= 3
}

/// `lhs [m, k] x rhs [k, n]`, row-major `[m, n]`; each element summed in the order of
/// [`sum_run`] where [`fixed_order`] holds, by `gemm` elsewhere. On a CPU where gemm runs its
/// AVX-512 kernels, which sum in that order (tested) and faster, gemm computes it. Rows are
/// spread over the rayon pool; the result does not depend on the thread count.
///
/// # Panics
///
/// If a view is smaller than its shape, or `m * n` overflows.
pub fn product(lhs: Mat<'_>, rhs: Mat<'_>, m: usize, k: usize, n: usize) -> Vec<f32> {
    product_with(Isa::chosen(), lhs, rhs, m, k, n)
}

/// [`product`] with the instruction set `isa` where this CPU has it, or by `gemm` (`None`):
/// for comparisons.
pub fn product_with(
    isa: Option<Isa>,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    assert!(
        lhs.fits(m, k) && rhs.fits(k, n),
        "product operands smaller than [{m}, {k}] x [{k}, {n}]"
    );
    assert!(
        m.checked_mul(n).is_some(),
        "a product of [{m}, {k}] x [{k}, {n}] has more values than memory"
    );
    // gemm's AVX-512 kernels sum in this order already, and faster than this module's.
    let gemm_sums_so = isa == Some(Isa::Avx512) && Isa::of_products() == Some(Isa::Avx512);
    match isa.filter(|isa| isa.available() && own_shape(m, k, n) && !gemm_sums_so) {
        Some(isa) => {
            let mut out = Vec::with_capacity(m * n);
            fixed_product(
                isa,
                lhs,
                rhs,
                m,
                k,
                n,
                &mut out.spare_capacity_mut()[..m * n],
            );
            // SAFETY: `fixed_product` stores every one of the `m * n` values (its first run
            // stores each tile and column it adds to afterwards).
            unsafe { out.set_len(m * n) };
            out
        }
        None => {
            let mut out = vec![0.0; m * n];
            // Over the rayon pool where it pays, as burn-flex asks of gemm (its threads split
            // rows and columns, never a sum).
            let threads = if m * n * k >= 192 * 192 * 192 {
                gemm::Parallelism::Rayon(0)
            } else {
                gemm::Parallelism::None
            };
            gemm_product(&mut out, [m, n, k], lhs, rhs, false, threads);
            out
        }
    }
}

/// The plain definition of [`product`]'s order: one scalar fused multiply-add at a time. For
/// tests, here and in crates that check their own products against it.
pub fn product_reference(lhs: Mat<'_>, rhs: Mat<'_>, m: usize, k: usize, n: usize) -> Vec<f32> {
    let run = sum_run(m, k, n);
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut total = 0.0f32;
            for (index, start) in (0..k).step_by(run).enumerate() {
                let mut sum = 0.0f32;
                for p in start..(start + run).min(k) {
                    sum = lhs.at(i, p).mul_add(rhs.at(p, j), sum);
                }
                total = if index == 0 { sum } else { total + sum };
            }
            out[i * n + j] = total;
        }
    }
    out
}

/// `dst [m, n] (row-major) = (dst if accumulate) + lhs [m, k] x rhs [k, n]` by `gemm`, on
/// `threads`.
pub(crate) fn gemm_product(
    dst: &mut [f32],
    [m, n, k]: [usize; 3],
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    accumulate: bool,
    threads: gemm::Parallelism,
) {
    assert!(
        dst.len() >= m * n && lhs.fits(m, k) && rhs.fits(k, n),
        "matmul operands smaller than their shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertion above keeps every index gemm forms, `i * rs + j * cs` over the
    // given shapes, inside the three slices; `dst` does not alias the inputs (it is a
    // mutable borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            threads,
        );
    }
}

/// [`product`]'s own kernels: the right operand as it is where its rows are contiguous, else
/// copied into panels of 16 columns; then row tiles over the rayon pool.
fn fixed_product(
    isa: Isa,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    m: usize,
    k: usize,
    n: usize,
    out: &mut [MaybeUninit<f32>],
) {
    let packed: Vec<f32>;
    let right = if rhs.col_stride == 1 {
        Right {
            data: rhs.data,
            row_stride: rhs.row_stride,
            panel_len: 0,
        }
    } else {
        packed = panels(isa, rhs, k, n);
        Right {
            data: &packed,
            row_stride: PANEL,
            panel_len: k * PANEL,
        }
    };
    let run = sum_run(m, k, n);
    // Whole register tiles (6 rows) per task.
    let tasks = rayon::current_num_threads().clamp(1, m.div_ceil(6));
    let rows_per_task = m.div_ceil(tasks).next_multiple_of(6);
    out.par_chunks_mut(rows_per_task * n)
        .enumerate()
        .for_each(|(task, out)| {
            let first_row = task * rows_per_task;
            let rows = out.len() / n;
            let lhs = Mat {
                data: &lhs.data[first_row * lhs.row_stride..],
                ..lhs
            };
            rows_product(isa, lhs, right, rows, k, n, run, out);
        });
}

/// Columns of a packed right operand's panel.
const PANEL: usize = 16;

/// The right operand as the kernels read it: element `(p, j)` at
/// `data[p * row_stride + j]` (`panel_len` 0), or in panels of [`PANEL`] columns, each
/// `panel_len` values of rows of `row_stride` ([`PANEL`]) values:
/// `data[(j / PANEL) * panel_len + p * row_stride + j % PANEL]`.
#[derive(Clone, Copy)]
struct Right<'a> {
    data: &'a [f32],
    row_stride: usize,
    panel_len: usize,
}

/// A `rows x cols` view copied into panels of [`PANEL`] columns (the last one padded with
/// zeros), so that a tile reads its right operand from one contiguous stretch. A transposed
/// row-major matrix (the usual case) goes by 16 x 16 register transposes with `isa`.
fn panels(isa: Isa, view: Mat<'_>, rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; cols.div_ceil(PANEL) * rows * PANEL];
    let whole_panels = cols / PANEL;
    let whole_rows = if view.row_stride == 1 {
        rows / PANEL * PANEL
    } else {
        0
    };
    #[cfg(target_arch = "x86_64")]
    if whole_rows > 0 && whole_panels > 0 {
        // SAFETY: `isa` is one this CPU has (the caller's); the view fits `rows x cols` with a
        // unit row stride, so column `j < cols` holds rows `0..rows` at `j * col_stride..`;
        // `out` holds `whole_panels` panels of `rows * PANEL` values.
        unsafe {
            transpose_panels(
                isa,
                view.data.as_ptr(),
                view.col_stride,
                [rows, whole_rows, whole_panels],
                out.as_mut_ptr(),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa;
    for (panel, chunk) in out.chunks_exact_mut(rows * PANEL).enumerate() {
        let done = if panel < whole_panels { whole_rows } else { 0 };
        for jj in 0..PANEL.min(cols - panel * PANEL) {
            for p in done..rows {
                chunk[p * PANEL + jj] = view.at(p, panel * PANEL + jj);
            }
        }
    }
    out
}

dispatch! {
    /// [`panels`]' whole blocks: rows `0..whole_rows` of the first `whole_panels` panels of a
    /// transposed row-major matrix (column `j` at `data[j * col_stride..]`), 16 x 16 at a time.
    fn transpose_panels =>
    unsafe fn transpose_panels_with<V: Lanes>(
        data: *const f32,
        col_stride: usize,
        sizes: [usize; 3],
        out: *mut f32,
    ) {
        let [rows, whole_rows, whole_panels] = sizes;
        // SAFETY: the caller keeps columns `0..whole_panels * 16`, rows `0..whole_rows` and
        // the panels written inside the slices, on a CPU with `V`'s instruction set.
        unsafe {
            for panel in 0..whole_panels {
                let chunk = out.add(panel * rows * PANEL);
                for p0 in (0..whole_rows).step_by(PANEL) {
                    let mut block = [V::zero(); PANEL];
                    for (r, lanes) in block.iter_mut().enumerate() {
                        *lanes = V::load(data.add((panel * PANEL + r) * col_stride + p0));
                    }
                    for (q, lanes) in V::transpose(block).into_iter().enumerate() {
                        lanes.store(chunk.add((p0 + q) * PANEL));
                    }
                }
            }
        }
    }
}

/// One task's rows of [`fixed_product`]: `lhs [m, k]` times the right operand `[k, n]`.
#[allow(clippy::too_many_arguments)]
fn rows_product(
    isa: Isa,
    lhs: Mat<'_>,
    rhs: Right<'_>,
    m: usize,
    k: usize,
    n: usize,
    run: usize,
    out: &mut [MaybeUninit<f32>],
) {
    debug_assert!(lhs.fits(m, k));
    debug_assert_eq!(out.len(), m * n);
    #[cfg(target_arch = "x86_64")]
    {
        let operands = Operands {
            lhs: lhs.data.as_ptr(),
            lhs_rs: lhs.row_stride,
            lhs_cs: lhs.col_stride,
            rhs: rhs.data.as_ptr(),
            rhs_rs: rhs.row_stride,
            rhs_panel: rhs.panel_len,
            out: out.as_mut_ptr().cast(),
            out_rs: n,
        };
        // SAFETY: `isa` is one this CPU has (`Isa::chosen`); the views fit their shapes
        // (checked by `product`, narrowed to this task's rows by `fixed_product`; packed
        // panels hold every column), and `out` holds `m * n` values, so every pointer the
        // kernels form stays inside its slice. `out` may be uninitialised: the first run
        // stores every value before any later run reads one.
        unsafe { runs_product(isa, operands, m, k, n, run) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, lhs, rhs, m, k, n, run, out);
        unreachable!("fixed_order holds only on x86-64")
    }
}

/// Raw views of one task's operands; element `(i, j)` of the left one is
/// `lhs[i * lhs_rs + j * lhs_cs]`, of the right one as in [`Right`], of the output
/// `out[i * out_rs + j]`.
#[derive(Clone, Copy)]
struct Operands {
    lhs: *const f32,
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: *const f32,
    rhs_rs: usize,
    rhs_panel: usize,
    out: *mut f32,
    out_rs: usize,
}

impl Operands {
    /// The operands of the output block from row `i` and column `j`, over the terms from `p`.
    ///
    /// # Safety
    ///
    /// The offsets must stay inside the slices.
    #[inline(always)]
    unsafe fn at(self, i: usize, j: usize, p: usize) -> Operands {
        // SAFETY: the caller keeps the offsets inside the slices.
        unsafe {
            Operands {
                lhs: self.lhs.add(i * self.lhs_rs + p * self.lhs_cs),
                rhs: if self.rhs_panel == 0 {
                    self.rhs.add(p * self.rhs_rs + j)
                } else {
                    self.rhs
                        .add((j / PANEL) * self.rhs_panel + p * self.rhs_rs + j % PANEL)
                },
                out: self.out.add(i * self.out_rs + j),
                ..self
            }
        }
    }
}

dispatch! {
    /// The sum cut into runs of `run` terms; for each run, blocks of rows, and in each block
    /// every column panel and row tile (the order of the tiles changes no sum).
    fn runs_product =>
    unsafe fn runs_product_with<V: Lanes>(
        ops: Operands,
        m: usize,
        k: usize,
        n: usize,
        run: usize,
    ) {
        // Rows whose left operand a block keeps in cache while every panel passes.
        const BLOCK_ROWS: usize = 96;
        // A column-major left operand (a transposed matrix with long rows) is copied, block
        // by block, into rows of the block's width: read in place, every term's values sit a
        // long power-of-two-ish stride apart and evict each other from the cache.
        let copy_left = ops.lhs_rs == 1 && ops.lhs_cs > BLOCK_ROWS;
        let mut left = vec![0.0f32; if copy_left { BLOCK_ROWS * run.min(k) } else { 0 }];
        let mut start = 0;
        while start < k {
            let depth = run.min(k - start);
            let first = start == 0;
            for block in (0..m).step_by(BLOCK_ROWS) {
                let rows = BLOCK_ROWS.min(m - block);
                // SAFETY: the block's rows `block..block + rows`, the run's terms
                // `start..start + depth` and every column lie in the operands; `left` holds
                // `rows * depth` values.
                unsafe {
                    let at = ops.at(block, 0, start);
                    let ops = if copy_left {
                        for t in 0..depth {
                            let from = at.lhs.add(t * ops.lhs_cs);
                            let to = left.as_mut_ptr().add(t * rows);
                            std::ptr::copy_nonoverlapping(from, to, rows);
                        }
                        Operands {
                            lhs: left.as_ptr(),
                            lhs_rs: 1,
                            lhs_cs: rows,
                            ..at
                        }
                    } else {
                        at
                    };
                    let mut j = 0;
                    if V::WIDE && ops.rhs_panel == 0 {
                        while j + 64 <= n {
                            panel::<V, 6, 4>(ops.at(0, j, 0), rows, depth, first);
                            j += 64;
                        }
                    }
                    while j + 16 <= n {
                        panel::<V, 6, 1>(ops.at(0, j, 0), rows, depth, first);
                        j += 16;
                    }
                    if j < n {
                        scalar_columns(ops.at(0, j, 0), rows, depth, n - j, first);
                    }
                }
            }
            start += depth;
        }
    }
}

/// Every row of one panel of `16 * WIDTH` columns: tiles of `ROWS` rows, then the rows left.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set, and `m` rows, `16 * WIDTH` columns and `depth`
/// terms from `ops` must lie inside the operands.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn panel<V: Lanes, const ROWS: usize, const WIDTH: usize>(
    ops: Operands,
    m: usize,
    depth: usize,
    first: bool,
) {
    let mut i = 0;
    // SAFETY: every call covers rows `i..i + rows` with `rows <= m - i`, inside the operands.
    unsafe {
        while i + ROWS <= m {
            tile::<V, ROWS, WIDTH>(ops.at(i, 0, 0), depth, first);
            i += ROWS;
        }
        let ops = ops.at(i, 0, 0);
        match m - i {
            0 => {}
            1 => tile::<V, 1, WIDTH>(ops, depth, first),
            2 => tile::<V, 2, WIDTH>(ops, depth, first),
            3 => tile::<V, 3, WIDTH>(ops, depth, first),
            4 => tile::<V, 4, WIDTH>(ops, depth, first),
            _ => tile::<V, 5, WIDTH>(ops, depth, first),
        }
    }
}

/// One register block: `ROWS` rows by `16 * WIDTH` columns summed over `depth` terms from
/// zero, then stored (`first`) or added to the output.
///
/// # Safety
///
/// As [`panel`], for `ROWS` rows.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile<V: Lanes, const ROWS: usize, const WIDTH: usize>(
    ops: Operands,
    depth: usize,
    first: bool,
) {
    // SAFETY: the caller guarantees `V`'s instruction set and that every offset formed here
    // (rows `0..ROWS`, columns `0..16 * WIDTH`, terms `0..depth`) lies inside the operands.
    unsafe {
        let mut acc = [[V::zero(); WIDTH]; ROWS];
        let (mut lhs, mut rhs) = (ops.lhs, ops.rhs);
        for _ in 0..depth {
            let mut right = [V::zero(); WIDTH];
            for (w, r) in right.iter_mut().enumerate() {
                *r = V::load(rhs.add(16 * w));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let left = V::splat(*lhs.add(i * ops.lhs_rs));
                for (a, &r) in row.iter_mut().zip(&right) {
                    *a = left.mul_add(r, *a);
                }
            }
            lhs = lhs.add(ops.lhs_cs);
            rhs = rhs.add(ops.rhs_rs);
        }
        if !first {
            add_rows(&acc, ops.out, ops.out_rs);
            return;
        }
        for (i, row) in acc.iter().enumerate() {
            for (w, &a) in row.iter().enumerate() {
                a.store(ops.out.add(i * ops.out_rs + 16 * w));
            }
        }
    }
}

/// The last `cols` (fewer than 16) columns, one value at a time, in the same order.
///
/// # Safety
///
/// `m` rows, `cols` columns and `depth` terms from `ops` must lie inside the operands.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn scalar_columns(ops: Operands, m: usize, depth: usize, cols: usize, first: bool) {
    for i in 0..m {
        for j in 0..cols {
            // SAFETY: the caller keeps rows `0..m`, columns `0..cols`, terms `0..depth` inside.
            unsafe {
                let mut sum = 0.0f32;
                for p in 0..depth {
                    let left = *ops.lhs.add(i * ops.lhs_rs + p * ops.lhs_cs);
                    sum = left.mul_add(*ops.rhs.add(p * ops.rhs_rs + j), sum);
                }
                let at = ops.out.add(i * ops.out_rs + j);
                *at = if first { sum } else { *at + sum };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{test_values, with_each_isa};

    /// Shapes of the study's fc1 (forward, input and weight gradients) and around every
    /// boundary of the kernels and of `sum_run`.
    const SHAPES: [(usize, usize, usize); 16] = [
        (100, 6272, 128),
        (100, 128, 6272),
        (6272, 100, 128),
        (69, 6272, 128),
        (100, 128, 4),
        (4, 100, 128),
        (2, 3, 2),
        (13, 513, 37),
        (64, 1000, 64),
        (65, 1000, 64),
        (25, 1568, 130),
        (12, 512, 32),
        (11, 700, 47),
        (30, 25088, 20),
        (1, 6272, 128),
        (100, 2, 128),
    ];

    #[test]
    fn every_instruction_set_sums_in_the_reference_order() {
        for (isa, (m, k, n)) in with_each_isa(&SHAPES) {
            let lhs = test_values(m * k, 1);
            let rhs = test_values(k * n, 2);
            for (left, right) in [
                (Mat::rows(&lhs, k), Mat::rows(&rhs, n)),
                (Mat::cols(&lhs, m), Mat::cols(&rhs, k)),
            ] {
                let got = product_with(Some(isa), left, right, m, k, n);
                if !fixed_order(m, k, n) {
                    continue;
                }
                let want = product_reference(left, right, m, k, n);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{isa:?} [{m}, {k}] x [{k}, {n}]");
            }
        }
    }

    /// The order is gemm's AVX-512 order: where this build's gemm uses its AVX-512 kernels,
    /// every product gives gemm's bits, in the layouts of a linear layer's three products
    /// (forward, weight gradient, input gradient), so numbers computed by gemm before are kept.
    /// (gemm sums products of at most 256 values with a column-major right operand as dot
    /// products, in another order on each instruction set: [`product`] does not.)
    #[test]
    fn products_keep_the_bits_of_gemms_avx512_kernels() {
        if Isa::of_products() != Some(Isa::Avx512) {
            return;
        }
        for (m, k, n) in SHAPES {
            let lhs = test_values(m * k, 3);
            let rhs = test_values(k * n, 4);
            let mut layouts = vec![
                (Mat::rows(&lhs, k), Mat::rows(&rhs, n)),
                (Mat::cols(&lhs, m), Mat::rows(&rhs, n)),
            ];
            if m * n > 256 {
                layouts.push((Mat::rows(&lhs, k), Mat::cols(&rhs, k)));
            }
            for (left, right) in layouts {
                let got = product(left, right, m, k, n);
                let mut want = vec![0.0; m * n];
                gemm_product(
                    &mut want,
                    [m, n, k],
                    left,
                    right,
                    false,
                    gemm::Parallelism::None,
                );
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "[{m}, {k}] x [{k}, {n}], strides {:?}",
                    (left.row_stride, right.row_stride)
                );
            }
        }
    }

    #[test]
    fn thread_counts_change_no_bit() {
        let (m, k, n) = (100, 6272, 128);
        let lhs = test_values(m * k, 5);
        let rhs = test_values(k * n, 6);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| product(Mat::rows(&lhs, k), Mat::rows(&rhs, n), m, k, n))
        };
        let one = run(1);
        for threads in [2, 3, 8] {
            assert!(
                one.iter()
                    .zip(run(threads))
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }

    #[test]
    fn runs_are_gemms_avx512_blocks() {
        assert_eq!(sum_run(100, 6272, 128), 483);
        assert_eq!(sum_run(100, 512, 128), 512);
        assert_eq!(sum_run(100, 513, 128), 257);
        assert_eq!(sum_run(64, 6272, 64), 512);
        assert_eq!(sum_run(6272, 100, 128), 100);
        assert_eq!(sum_run(3, 0, 3), 1);
    }

    #[test]
    fn strides_that_overflow_do_not_fit() {
        let values = vec![0.0; 4];
        let view = Mat {
            data: &values,
            row_stride: usize::MAX / 2,
            col_stride: 1,
        };
        assert!(view.fits(1, 4) && !view.fits(3, 4));
    }

    #[test]
    #[should_panic(expected = "product operands smaller than [3, 4] x [4, 5]")]
    fn views_smaller_than_their_shapes_are_refused() {
        let values = vec![0.0; 12];
        product(Mat::rows(&values, 4), Mat::rows(&values, 5), 3, 4, 5);
    }
}
