//! Matrix products with GGUF `Q4_1` weights on the CPU.
//!
//! candle 0.11 has SIMD kernels for `Q4_0`, `Q8_0` and the k-quants (Lynx's `Q4_K_M`), but
//! multiplies `Q4_1` with scalar code: on SmolLM2's `Q4_1` file that loop was 88% of the
//! time and decode ran at a quarter of llama.cpp's speed. This is the same arithmetic as
//! ggml's `Q4_1 x Q8_1` dot product: the activations are quantized to 8 bits per block of
//! 32, the integer products are summed exactly, and each block is scaled back in f32, so
//! the results are bit-identical to candle's `QMatMul`. AVX2 where the CPU has it, plain
//! Rust elsewhere; other dtypes and GPUs stay with candle.

// SIMD intrinsics need `unsafe`; it is confined to the `avx2` module and `Kernel`.
#![allow(unsafe_code)]

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::utils::barrier_pool;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use half::f16;
use std::sync::Mutex;

const BLOCK: usize = 32;

/// Output columns one task computes: enough work to amortise scheduling, small enough that
/// a 576-wide projection still splits across threads.
const COLUMNS_PER_TASK: usize = 16;

/// One GGUF `Q4_1` block: weight `j` is `d * q[j] + m`, `q` in 0..16, with element `j` in
/// the low nibble of `qs[j]` and element `j + 16` in the high nibble. `d` and `m` are f16 bits.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct WeightBlock {
    d: u16,
    m: u16,
    qs: [u8; BLOCK / 2],
}

/// A block of 32 activations as `d * qs[j]`, plus `s = d * sum(qs)` for the `m` term.
/// `d` and `s` are rounded through f16 exactly as ggml's (and candle's) `Q8_1` stores them.
#[derive(Debug, Clone, Copy)]
struct ActivationBlock {
    d: f32,
    s: f32,
    qs: [i8; BLOCK],
}

/// A `[rows, cols]` `Q4_1` weight matrix; `forward` computes `x · Wᵀ` like `QMatMul`.
#[derive(Debug)]
pub struct Q4_1Matrix {
    rows: usize,
    cols: usize,
    blocks: Vec<WeightBlock>,
}

impl Q4_1Matrix {
    /// Takes the blocks out of a CPU `Q4_1` tensor; None for any other dtype or shape.
    pub fn from_qtensor(t: &QTensor) -> candle_core::Result<Option<Q4_1Matrix>> {
        let &[rows, cols] = t.shape().dims() else {
            return Ok(None);
        };
        if t.dtype() != GgmlDType::Q4_1
            || cols == 0
            || !cols.is_multiple_of(BLOCK)
            || !t.device().is_cpu()
        {
            return Ok(None);
        }
        let bytes = t.data()?;
        let blocks: Vec<WeightBlock> = bytes
            .chunks_exact(4 + BLOCK / 2)
            .map(|b| WeightBlock {
                d: u16::from_le_bytes([b[0], b[1]]),
                m: u16::from_le_bytes([b[2], b[3]]),
                qs: b[4..].try_into().expect("16 bytes"),
            })
            .collect();
        if blocks.len() != rows * cols / BLOCK {
            candle_core::bail!("Q4_1 tensor of {rows}x{cols} holds {} blocks", blocks.len());
        }
        Ok(Some(Q4_1Matrix { rows, cols, blocks }))
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        x.to_dtype(DType::F32)?
            .apply_op1_no_bwd(self)?
            .to_dtype(dtype)
    }

    fn row(&self, r: usize) -> &[WeightBlock] {
        let per_row = self.cols / BLOCK;
        &self.blocks[r * per_row..(r + 1) * per_row]
    }
}

impl CustomOp1 for Q4_1Matrix {
    fn name(&self) -> &'static str {
        "q4_1-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("q4_1-matmul expects f32 activations");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("q4_1-matmul expects contiguous activations");
        };
        let dims = layout.shape().dims();
        let k = dims.last().copied().unwrap_or(0);
        if k != self.cols {
            candle_core::bail!(
                "q4_1-matmul: activations of width {k} for a {}x{} matrix",
                self.rows,
                self.cols
            );
        }
        let mut shape = dims.to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.rows;
        }
        let x = &data[start..end];
        let m = x.len() / k;
        if m == 0 {
            return Ok((CpuStorage::F32(Vec::new()), Shape::from(shape)));
        }
        let activations: Vec<ActivationBlock> = x.chunks_exact(BLOCK).map(quantize).collect();
        let per_row = k / BLOCK;
        let kernel = Kernel::detect();

        // Computed column-major, [rows of W][m], so that each task owns one contiguous slice
        // and keeps its few weight rows in L1 while it walks every activation row. The pool
        // is candle's own: its workers are the ones that just ran the previous op.
        let mut transposed = vec![0f32; self.rows * m];
        let tasks: Vec<Mutex<&mut [f32]>> = transposed
            .chunks_mut(COLUMNS_PER_TASK * m)
            .map(Mutex::new)
            .collect();
        barrier_pool().execute_chunked(tasks.len(), |range| {
            for task in range {
                let mut out = tasks[task].lock().unwrap_or_else(|e| e.into_inner());
                let first = task * COLUMNS_PER_TASK;
                let weights: Vec<&[WeightBlock]> = (first..first + out.len() / m)
                    .map(|r| self.row(r))
                    .collect();
                for (i, acts) in activations.chunks_exact(per_row).enumerate() {
                    let mut c = 0;
                    while c + 4 <= weights.len() {
                        let four = [weights[c], weights[c + 1], weights[c + 2], weights[c + 3]];
                        for (j, v) in kernel.dot4(four, acts).into_iter().enumerate() {
                            out[(c + j) * m + i] = v;
                        }
                        c += 4;
                    }
                    for (c, w) in weights.iter().enumerate().skip(c) {
                        out[c * m + i] = kernel.dot(w, acts);
                    }
                }
            }
        });
        drop(tasks);
        let out = if m == 1 {
            transposed
        } else {
            let mut out = vec![0f32; m * self.rows];
            for (r, column) in transposed.chunks_exact(m).enumerate() {
                for (i, &v) in column.iter().enumerate() {
                    out[i * self.rows + r] = v;
                }
            }
            out
        };
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

/// ggml's `quantize_row_q8_1` for one block.
fn quantize(x: &[f32]) -> ActivationBlock {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; BLOCK];
    for (q, v) in qs.iter_mut().zip(x) {
        *q = (v * inverse).round() as i8;
    }
    let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
    let d = f16::from_f32(d);
    ActivationBlock {
        d: d.to_f32(),
        s: (f16::from_f32(sum as f32) * d).to_f32(),
        qs,
    }
}

fn dot_scalar(weights: &[WeightBlock], acts: &[ActivationBlock]) -> f32 {
    let mut total = 0f32;
    for (w, a) in weights.iter().zip(acts) {
        let mut sum = 0i32;
        for j in 0..BLOCK / 2 {
            let low = i32::from(w.qs[j] & 0x0F);
            let high = i32::from(w.qs[j] >> 4);
            sum += low * i32::from(a.qs[j]) + high * i32::from(a.qs[j + BLOCK / 2]);
        }
        let (d, m) = (f16::from_bits(w.d).to_f32(), f16::from_bits(w.m).to_f32());
        total += block_value(sum, d, m, a);
    }
    total
}

/// One block's contribution, in ggml's (and candle's) expression and order. Both kernels
/// add these up one block after another, so their results are bit-identical to candle's:
/// a tiny model's activations carry outliers that make the 8-bit rounding of the next layer
/// flip on a last-bit difference, and exact agreement keeps the comparison tests exact.
#[inline(always)]
fn block_value(sum: i32, d: f32, m: f32, a: &ActivationBlock) -> f32 {
    sum as f32 * d * a.d + m * a.s
}

/// Which dot-product code this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
        {
            return Kernel::Avx2;
        }
        Kernel::Scalar
    }

    fn dot(self, weights: &[WeightBlock], acts: &[ActivationBlock]) -> f32 {
        match self {
            Kernel::Scalar => dot_scalar(weights, acts),
            // SAFETY: `detect` found AVX2, FMA and F16C on this CPU.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { avx2::dot(weights, acts) },
        }
    }

    /// Four weight rows against one activation row: four independent chains of additions
    /// instead of one, and each activation block loaded once.
    fn dot4(self, weights: [&[WeightBlock]; 4], acts: &[ActivationBlock]) -> [f32; 4] {
        match self {
            Kernel::Scalar => weights.map(|w| dot_scalar(w, acts)),
            // SAFETY: as in `dot`.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { avx2::dot4(weights, acts) },
        }
    }
}

/// `dot_scalar` with the 32 integer multiply-adds of a block in three instructions: the 4-bit
/// weights are unsigned and the 8-bit activations signed, which is what `maddubs` multiplies.
/// The float part stays `block_value`'s expression, lane by lane, so nothing is fused.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ActivationBlock, WeightBlock, block_value};

    /// The 32 products of one block, in eight lanes that sum to ggml's integer sum.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn products(w: &WeightBlock, x: __m256i) -> __m256i {
        // Both halves get the 16 bytes; the upper half shifts its copy down to the high
        // nibbles, so lane j holds weight j (low nibbles) and lane j + 16 weight j + 16.
        // SAFETY: `qs` is 16 bytes; the load is an unaligned one.
        let packed = unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(w.qs.as_ptr().cast())) };
        let shifted = _mm256_srlv_epi32(packed, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
        let q = _mm256_and_si256(shifted, _mm256_set1_epi8(0x0F));
        _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn activations(a: &ActivationBlock) -> __m256i {
        // SAFETY: `qs` is 32 bytes; the load is an unaligned one.
        unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) }
    }

    /// `d` and `m` of a block as one 32-bit lane, for `_mm_cvtph_ps`.
    #[inline(always)]
    fn scales(w: &WeightBlock) -> i32 {
        i32::from(w.d) | (i32::from(w.m) << 16)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot(weights: &[WeightBlock], acts: &[ActivationBlock]) -> f32 {
        let mut total = 0f32;
        for (w, a) in weights.iter().zip(acts) {
            // SAFETY: `products` and `activations` need no more than this function's features.
            let eight = unsafe { products(w, activations(a)) };
            let four = _mm_add_epi32(
                _mm256_castsi256_si128(eight),
                _mm256_extracti128_si256(eight, 1),
            );
            let two = _mm_add_epi32(four, _mm_unpackhi_epi64(four, four));
            let sum = _mm_cvtsi128_si32(_mm_add_epi32(two, _mm_shuffle_epi32(two, 1)));
            let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(scales(w)));
            let d = _mm_cvtss_f32(dm);
            let m = _mm_cvtss_f32(_mm_shuffle_ps(dm, dm, 1));
            total += block_value(sum, d, m, a);
        }
        total
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot4(weights: [&[WeightBlock]; 4], acts: &[ActivationBlock]) -> [f32; 4] {
        let mut totals = _mm_setzero_ps();
        for (b, a) in acts.iter().enumerate() {
            // SAFETY: `activations` and `products` need no more than this function's target
            // features. Four calls, not a `map`: the closure was not inlined.
            let x = unsafe { activations(a) };
            let e0 = unsafe { products(&weights[0][b], x) };
            let e1 = unsafe { products(&weights[1][b], x) };
            let e2 = unsafe { products(&weights[2][b], x) };
            let e3 = unsafe { products(&weights[3][b], x) };
            // Lane c of the result is column c's integer sum.
            let pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(e0, e1), _mm256_hadd_epi32(e2, e3));
            let sums = _mm_add_epi32(
                _mm256_castsi256_si128(pairs),
                _mm256_extracti128_si256(pairs, 1),
            );
            let [w0, w1, w2, w3] = weights.map(|w| scales(&w[b]));
            // [d0, m0, d1, m1, ...] regrouped as [d0, d1, d2, d3, m0, m1, m2, m3].
            let dm = _mm256_permutevar8x32_ps(
                _mm256_cvtph_ps(_mm_setr_epi32(w0, w1, w2, w3)),
                _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7),
            );
            let (d, m) = (_mm256_castps256_ps128(dm), _mm256_extractf128_ps(dm, 1));
            // block_value, four lanes at once: (sum * d * a.d) + (m * a.s), unfused.
            let scaled = _mm_mul_ps(_mm_mul_ps(_mm_cvtepi32_ps(sums), d), _mm_set1_ps(a.d));
            let offset = _mm_mul_ps(m, _mm_set1_ps(a.s));
            totals = _mm_add_ps(totals, _mm_add_ps(scaled, offset));
        }
        let mut out = [0f32; 4];
        // SAFETY: `out` holds four f32; the store is an unaligned one.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), totals) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_blocks(n: usize, seed: u32) -> (Vec<WeightBlock>, Vec<ActivationBlock>) {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            state >> 8
        };
        let weights = (0..n)
            .map(|_| WeightBlock {
                d: f16::from_f32((next() % 1000) as f32 / 1e5).to_bits(),
                m: f16::from_f32(-((next() % 1000) as f32) / 1e4).to_bits(),
                qs: std::array::from_fn(|_| next() as u8),
            })
            .collect();
        let acts = (0..n)
            .map(|_| {
                let x: Vec<f32> = (0..BLOCK)
                    .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
                    .collect();
                quantize(&x)
            })
            .collect();
        (weights, acts)
    }

    #[test]
    fn simd_and_scalar_dot_products_agree() {
        let kernel = Kernel::detect();
        if kernel == Kernel::Scalar {
            eprintln!("no AVX2 here: only the scalar kernel runs on this CPU");
        }
        for (n, seed) in [(1, 1), (18, 2), (48, 3), (256, 4)] {
            let (w, a) = random_blocks(4 * n, seed);
            let rows: Vec<&[WeightBlock]> = w.chunks_exact(n).collect();
            let acts = &a[..n];
            let scalar: Vec<u32> = rows.iter().map(|r| dot_scalar(r, acts).to_bits()).collect();
            let one: Vec<u32> = rows.iter().map(|r| kernel.dot(r, acts).to_bits()).collect();
            let four = kernel
                .dot4([rows[0], rows[1], rows[2], rows[3]], acts)
                .map(f32::to_bits);
            assert_eq!(one, scalar, "{n} blocks, one row at a time");
            assert_eq!(four.to_vec(), scalar, "{n} blocks, four rows at once");
        }
    }

    #[test]
    fn matches_candles_qmatmul() {
        use candle_core::Device;
        use candle_core::Module;
        use candle_core::quantized::QMatMul;
        let device = Device::Cpu;
        let w = Tensor::randn(0f32, 0.05, (42, 128), &device).expect("weights");
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).expect("quantize");
        let ours = Q4_1Matrix::from_qtensor(&q)
            .expect("blocks")
            .expect("a Q4_1 matrix");
        let candle = QMatMul::from_qtensor(q).expect("qmatmul");
        for m in [1, 3, 37] {
            // 42 rows: three tasks, the last of ten rows (two groups of four and two single rows).
            let x = Tensor::randn(0f32, 1.0, (m, 128), &device).expect("x");
            let ours = ours
                .forward(&x)
                .and_then(|t| t.to_vec2::<f32>())
                .expect("ours");
            let candle = candle
                .forward(&x)
                .and_then(|t| t.to_vec2::<f32>())
                .expect("candle");
            assert_eq!(ours, candle, "{m} rows");
        }
    }

    #[test]
    fn no_rows_in_no_rows_out() {
        use candle_core::Device;
        let w = Tensor::randn(0f32, 0.05, (8, 64), &Device::Cpu).expect("weights");
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).expect("quantize");
        let ours = Q4_1Matrix::from_qtensor(&q)
            .expect("blocks")
            .expect("a Q4_1 matrix");
        let empty = Tensor::zeros((0, 64), DType::F32, &Device::Cpu).expect("empty");
        assert_eq!(ours.forward(&empty).expect("forward").dims(), &[0, 8]);
    }

    #[test]
    fn quantize_rounds_like_ggml() {
        let x: Vec<f32> = (0..BLOCK).map(|i| i as f32 - 10.0).collect();
        let b = quantize(&x);
        assert_eq!(b.qs[31], 127, "the largest magnitude maps to 127");
        assert_eq!(b.qs[10], 0);
        assert_eq!(b.qs[0], (-10.0f32 * 127.0 / 21.0).round() as i8);
        let sum: i32 = b.qs.iter().map(|&q| i32::from(q)).sum();
        assert!(
            (b.s - sum as f32 * b.d).abs() < 0.05,
            "{} vs {}",
            b.s,
            sum as f32 * b.d
        );
    }
}
