//! Attention scores of a prompt chunk scaled and causally masked in place, on the CPU.
//!
//! Through candle's ops this was two passes over the `[heads, t, total]` scores before the
//! softmax, each into a fresh tensor (times the scale; plus a mask tensor of zeros and
//! minus infinities, itself built for every chunk), with their allocations and page
//! clearing; doing without them gave 1-6% at 1,536 prompt tokens of Lynx-8B's shape
//! (reports/BENCHMARKS.md). Here both happen in one pass over the matrix product's own
//! output, rows split across candle's worker threads, with the same arithmetic, so the
//! softmax that follows (candle's) sees the very same values: the comparisons with
//! candle-transformers are bit for bit, and a 135M model quantizing its activations to 8
//! bits amplifies any last-bit difference (a faster `exp` than candle's, tried, moved
//! SmolLM2's logits by 0.5).
//!
//! Not here: the softmax itself, other devices and dtypes.

// The shared buffer needs `unsafe`; it stays in this module.
#![allow(unsafe_code)]

use candle_core::utils::barrier_pool;
use candle_core::{CpuStorage, InplaceOp1, Layout};

/// `x · scale` along the last dimension of `[.., t, total]` scores where new position `i`
/// (the last `t` of `total`) may see positions up to `total - t + i`, minus infinity where
/// it may not: exactly `scores * scale + mask`.
#[derive(Debug)]
pub struct ScaleAndMask {
    pub t: usize,
    pub scale: f32,
}

impl InplaceOp1 for ScaleAndMask {
    fn name(&self) -> &'static str {
        "scale-and-causal-mask"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("scale-and-mask expects f32 scores");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("scale-and-mask expects contiguous scores");
        };
        let dims = layout.shape().dims();
        let total = dims.last().copied().unwrap_or(0);
        let rows = dims.iter().rev().nth(1).copied().unwrap_or(1);
        if self.t == 0 || self.t > total || !rows.is_multiple_of(self.t) {
            candle_core::bail!(
                "scale-and-mask: {} new positions do not fit scores {:?}",
                self.t,
                layout.shape()
            );
        }
        let scores = &mut data[start..end];
        let past = total - self.t;
        let all_rows = scores.len() / total;
        // Each task writes only its own rows: disjoint, so the buffer's address is shared.
        let address = scores.as_mut_ptr() as usize;
        barrier_pool().execute_chunked(all_rows, |range| {
            for row in range {
                // SAFETY: row `row` lies inside the scores and belongs to this task alone.
                let values = unsafe {
                    std::slice::from_raw_parts_mut((address as *mut f32).add(row * total), total)
                };
                let (seen, unseen) = values.split_at_mut(past + row % self.t + 1);
                seen.iter_mut().for_each(|v| *v *= self.scale);
                unseen.fill(f32::NEG_INFINITY);
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Result, Tensor};

    use super::*;

    /// candle's ops, as the model used them: times the scale, plus the mask.
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
        (scores * scale)?
            .reshape((heads, rows / t, t, total))?
            .broadcast_add(&mask)?
            .reshape((heads, rows, total))
    }

    /// Two key/value heads with three query heads each, 37 new positions after 20 cached
    /// ones; one position alone; five with nothing cached. Compared bit for bit after
    /// candle's softmax (a zero's sign may differ before it, never after).
    #[test]
    fn matches_candles_scale_and_mask_bit_for_bit() -> Result<()> {
        for (t, past) in [(37, 20), (1, 0), (5, 0)] {
            let total = t + past;
            let scores = Tensor::randn(0f32, 4.0, (2, 3 * t, total), &Device::Cpu)?;
            let theirs = reference(&scores, t, 0.125)?;
            let ours = scores.copy()?;
            ours.inplace_op1(&ScaleAndMask { t, scale: 0.125 })?;
            let bits = |x: &Tensor| -> Result<Vec<u32>> {
                Ok(candle_nn::ops::softmax_last_dim(x)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|v| v.to_bits())
                    .collect())
            };
            assert_eq!(bits(&ours)?, bits(&theirs)?, "{t} new after {past}");
        }
        Ok(())
    }
}
