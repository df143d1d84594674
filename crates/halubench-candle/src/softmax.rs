//! The scaled, causally masked softmax of a prompt chunk's attention scores, on the CPU, in
//! one pass.
//!
//! Through candle's ops this was three passes over the `[heads, t, total]` scores, each
//! into a fresh tensor (times the scale, plus a mask tensor of zeros and minus infinities,
//! then softmax with a scalar `exp`): at 1,536 prompt tokens of Lynx-8B's shape those passes,
//! their allocations and `expf` were about a fifth of the prefill. Here each row is scaled,
//! masked by position (the mask is never built), exponentiated 16 lanes at a time with
//! AVX-512 where the CPU has it, and normalized, rows split across candle's worker threads.
//!
//! Not here: other devices and dtypes, which keep candle's ops.

// SIMD intrinsics and the shared output buffer need `unsafe`; it stays in this module.
#![allow(unsafe_code)]

use candle_core::utils::barrier_pool;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};

/// `softmax(scale · x)` along the last dimension of `[.., t, total]` scores, where the last
/// `t` of the `total` positions are new and new position `i` may see positions up to
/// `total - t + i`; what it may not see gets probability 0.
#[derive(Debug)]
pub struct CausalSoftmax {
    pub t: usize,
    pub scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("causal softmax expects f32 scores");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("causal softmax expects contiguous scores");
        };
        let dims = layout.shape().dims();
        let total = dims.last().copied().unwrap_or(0);
        let rows = dims.iter().rev().nth(1).copied().unwrap_or(1);
        if self.t == 0 || self.t > total || rows % self.t != 0 {
            candle_core::bail!(
                "causal softmax: {} new positions do not fit scores {:?}",
                self.t,
                layout.shape()
            );
        }
        let x = &data[start..end];
        let mut out = vec![0f32; x.len()];
        let kernel = Kernel::detect();
        let past = total - self.t;
        // Each task writes only its own rows: disjoint, so the buffer's address is shared.
        let out_address = out.as_mut_ptr() as usize;
        let all_rows = x.len() / total;
        barrier_pool().execute_chunked(all_rows, |range| {
            for row in range {
                let visible = past + row % self.t + 1;
                let input = &x[row * total..][..visible];
                // SAFETY: row `row` of `out` lies inside it and belongs to this task alone;
                // the positions after `visible` stay zero.
                let output = unsafe {
                    std::slice::from_raw_parts_mut(
                        (out_address as *mut f32).add(row * total),
                        visible,
                    )
                };
                kernel.softmax(input, self.scale, output);
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[derive(Debug, Clone, Copy)]
enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            return Kernel::Avx512;
        }
        Kernel::Scalar
    }

    /// `out = softmax(scale · x)`, `out` as long as `x`.
    fn softmax(self, x: &[f32], scale: f32, out: &mut [f32]) {
        match self {
            Kernel::Scalar => {
                let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(scale * v));
                let mut sum = 0f32;
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = (scale * v - max).exp();
                    sum += *o;
                }
                out.iter_mut().for_each(|o| *o /= sum);
            }
            // SAFETY: detect() chose this only where the CPU has AVX-512F.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::softmax(x, scale, out) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// The lanes of `x[i..]` that exist: a full 16, or the rest under a mask.
    fn lanes(len: usize, i: usize) -> __mmask16 {
        if len - i >= 16 {
            0xFFFF
        } else {
            (1u16 << (len - i)) - 1
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn softmax(x: &[f32], scale: f32, out: &mut [f32]) {
        assert_eq!(x.len(), out.len());
        let n = x.len();
        let scale = _mm512_set1_ps(scale);
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for i in (0..n).step_by(16) {
            // SAFETY: masked to the lanes inside `x`.
            let v = unsafe { _mm512_maskz_loadu_ps(lanes(n, i), x.as_ptr().add(i)) };
            max = _mm512_mask_max_ps(max, lanes(n, i), max, _mm512_mul_ps(v, scale));
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
        let mut sum = _mm512_setzero_ps();
        for i in (0..n).step_by(16) {
            let mask = lanes(n, i);
            // SAFETY: masked to the lanes inside `x` and `out`.
            unsafe {
                let v = _mm512_maskz_loadu_ps(mask, x.as_ptr().add(i));
                let e = exp(_mm512_sub_ps(_mm512_mul_ps(v, scale), max));
                sum = _mm512_mask_add_ps(sum, mask, sum, e);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(i), mask, e);
            }
        }
        let inverse = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        for i in (0..n).step_by(16) {
            let mask = lanes(n, i);
            // SAFETY: as above.
            unsafe {
                let p = out.as_mut_ptr().add(i);
                _mm512_mask_storeu_ps(
                    p,
                    mask,
                    _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, p), inverse),
                );
            }
        }
    }

    /// `e^x` for x ≤ 0 to about 1 ulp: x = n·ln 2 + r with |r| ≤ ln 2 / 2, a degree-6
    /// polynomial for e^r (Cephes' `expf` coefficients), then scaled by 2^n. Below -87.3 the
    /// result is 0, as the true value is under f32's normal range.
    #[target_feature(enable = "avx512f")]
    pub(super) fn exp(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-87.3));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
        );
        // ln 2 in two parts, so that n · ln2_high is exact.
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm512_set1_ps(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            0.166_666_65,
            0.5,
        ] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let e = _mm512_fmadd_ps(
            _mm512_mul_ps(p, r),
            r,
            _mm512_add_ps(r, _mm512_set1_ps(1.0)),
        );
        _mm512_scalef_ps(e, n)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Result, Tensor};

    use super::*;

    /// candle's ops, as the model used them: scale, add the mask, softmax.
    fn reference(scores: &Tensor, t: usize, scale: f64) -> Result<Tensor> {
        let total = scores.dim(D::Minus1)?;
        let past = total - t;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| {
                (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (t, total), scores.device())?;
        let (heads, rows, _) = scores.dims3()?;
        let masked = (scores * scale)?
            .reshape((heads, rows / t, t, total))?
            .broadcast_add(&mask)?
            .reshape((heads, rows, total))?;
        candle_nn::ops::softmax_last_dim(&masked)
    }

    /// Two key/value heads, a group of three query heads each, 37 new positions after 20
    /// cached ones (rows end mid-vector and every length from 21 to 57 occurs), and one new
    /// position with nothing cached.
    #[test]
    fn matches_candles_masked_softmax() -> Result<()> {
        for (t, past) in [(37, 20), (1, 0), (5, 0)] {
            let total = t + past;
            let scores = Tensor::randn(0f32, 4.0, (2, 3 * t, total), &Device::Cpu)?;
            let ours = scores.apply_op1_no_bwd(&CausalSoftmax { t, scale: 0.125 })?;
            let theirs = reference(&scores, t, 0.125)?;
            let (ours, theirs) = (
                ours.flatten_all()?.to_vec1::<f32>()?,
                theirs.flatten_all()?.to_vec1::<f32>()?,
            );
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                    "{t} new after {past}: [{i}] {a} vs {b}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn exp_is_within_two_ulps_of_std() {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            let xs: Vec<f32> = (0..=8730).map(|i| -(i as f32) * 0.01).collect();
            for chunk in xs.chunks(16) {
                let mut out = [0f32; 16];
                // SAFETY: AVX-512F checked; 16 lanes in and out.
                unsafe {
                    let mut lanes = [0f32; 16];
                    lanes[..chunk.len()].copy_from_slice(chunk);
                    let v = std::arch::x86_64::_mm512_loadu_ps(lanes.as_ptr());
                    std::arch::x86_64::_mm512_storeu_ps(out.as_mut_ptr(), avx512_exp(v));
                }
                for (x, e) in chunk.iter().zip(out) {
                    let expected = x.exp();
                    let ulps = (e.to_bits() as i64 - expected.to_bits() as i64).abs();
                    assert!(
                        ulps <= 2 || expected < f32::MIN_POSITIVE,
                        "exp({x}) = {e}, std {expected}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn avx512_exp(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
        avx512::exp(x)
    }
}
