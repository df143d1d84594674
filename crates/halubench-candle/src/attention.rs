//! Attention of one new position over an F16 KV cache, on the CPU: the decode step when the
//! cache is kept in half precision.
//!
//! Why a kernel of our own: candle's matmul would need the cached keys and values converted
//! to F32 on every step (the whole cache, every layer, every token), which costs more than the
//! attention itself, and candle runs these small products on one thread. Here each key and
//! value row is widened as it is read, products accumulate in F32 (as llama.cpp's F16 cache
//! does), and the key/value heads are split across candle's worker threads.
//!
//! Not here: prefill (many new positions read the cache once per chunk, so converting it is
//! cheap and candle's matmul is the better kernel) and other devices.

// SIMD intrinsics and the shared output buffer need `unsafe`; it stays in this module.
#![allow(unsafe_code)]

use candle_core::utils::barrier_pool;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape};
use half::f16;

/// `softmax(scale · q·Kᵀ) · V` for one position, every query head, over the first `len`
/// positions of a `[1, kv_heads, capacity, head_dim]` F16 cache. The query is
/// `[1, heads, 1, head_dim]` F32; the result `[1, heads · head_dim]` F32. Query heads
/// `g · group .. (g + 1) · group` share key/value head `g`, as Llama's grouped attention does.
pub struct DecodeAttention {
    pub len: usize,
    pub scale: f32,
}

impl CustomOp3 for DecodeAttention {
    fn name(&self) -> &'static str {
        "decode-attention-f16"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        q_layout: &Layout,
        keys: &CpuStorage,
        keys_layout: &Layout,
        values: &CpuStorage,
        values_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, heads, one, head_dim) = q_layout.shape().dims4()?;
        let (_, kv_heads, capacity, cache_dim) = keys_layout.shape().dims4()?;
        if one != 1
            || cache_dim != head_dim
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || self.len == 0
            || self.len > capacity
            || values_layout.shape() != keys_layout.shape()
        {
            candle_core::bail!(
                "decode attention: query {:?} does not fit cache {:?} at {} positions",
                q_layout.shape(),
                keys_layout.shape(),
                self.len
            );
        }
        let q = contiguous::<f32>(q, q_layout, "query")?;
        let keys = contiguous::<f16>(keys, keys_layout, "keys")?;
        let values = contiguous::<f16>(values, values_layout, "values")?;
        let group = heads / kv_heads;
        let kernel = Kernel::detect(head_dim);
        let mut out = vec![0f32; heads * head_dim];
        let out_address = out.as_mut_ptr() as usize;
        barrier_pool().execute_chunked(kv_heads, |range| {
            let mut scores = vec![0f32; group * self.len];
            for g in range {
                let rows = g * capacity * head_dim..(g * capacity + self.len) * head_dim;
                let heads_of_g = g * group * head_dim..(g + 1) * group * head_dim;
                // SAFETY: key/value head g is one task's alone, and so are the output rows of
                // its query heads; `out` outlives the pool's run, which returns when all are done.
                let out = unsafe {
                    std::slice::from_raw_parts_mut(
                        (out_address as *mut f32).add(heads_of_g.start),
                        heads_of_g.len(),
                    )
                };
                self.one_group(
                    kernel,
                    head_dim,
                    &q[heads_of_g],
                    &keys[rows.clone()],
                    &values[rows],
                    &mut scores,
                    out,
                );
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((1, heads * head_dim))))
    }
}

impl DecodeAttention {
    /// The query heads `q` (`group` rows) that share one key/value head.
    #[allow(clippy::too_many_arguments)]
    fn one_group(
        &self,
        kernel: Kernel,
        head_dim: usize,
        q: &[f32],
        keys: &[f16],
        values: &[f16],
        scores: &mut [f32],
        out: &mut [f32],
    ) {
        let len = self.len;
        let group = q.len() / head_dim;
        // Each key row is read once for all the query heads of the group.
        for (j, key) in keys.chunks_exact(head_dim).enumerate() {
            for (i, query) in q.chunks_exact(head_dim).enumerate() {
                scores[i * len + j] = kernel.dot(query, key) * self.scale;
            }
        }
        for row in scores.chunks_exact_mut(len).take(group) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for s in row.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            for s in row.iter_mut() {
                *s /= sum;
            }
        }
        out.fill(0.0);
        for (j, value) in values.chunks_exact(head_dim).enumerate() {
            for (i, out) in out.chunks_exact_mut(head_dim).enumerate() {
                kernel.add_scaled(out, scores[i * len + j], value);
            }
        }
    }
}

fn contiguous<'a, T: candle_core::WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<T>()?[start..end]),
        None => candle_core::bail!("decode attention: the {what} are not contiguous"),
    }
}

/// The widest code this CPU runs: AVX2 with FMA and F16C conversions where there are, for
/// head dimensions in multiples of 16; plain Rust otherwise.
#[derive(Debug, Clone, Copy)]
enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    fn detect(head_dim: usize) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if head_dim.is_multiple_of(16)
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            return Kernel::Avx2;
        }
        let _ = head_dim;
        Kernel::Scalar
    }

    fn dot(self, q: &[f32], k: &[f16]) -> f32 {
        match self {
            Kernel::Scalar => q.iter().zip(k).map(|(a, b)| a * b.to_f32()).sum(),
            // SAFETY: detect() chose Avx2 only where the CPU has these features and the
            // rows are a multiple of 16 long.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { avx2::dot(q, k) },
        }
    }

    /// `out += p · v`
    fn add_scaled(self, out: &mut [f32], p: f32, v: &[f16]) {
        match self {
            Kernel::Scalar => {
                for (o, v) in out.iter_mut().zip(v) {
                    *o += p * v.to_f32();
                }
            }
            // SAFETY: as in dot().
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { avx2::add_scaled(out, p, v) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use half::f16;

    /// Eight F16 values from `v[i..i + 8]`, widened.
    #[target_feature(enable = "avx2,f16c")]
    unsafe fn widen(v: &[f16], i: usize) -> __m256 {
        debug_assert!(i + 8 <= v.len());
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().add(i).cast())) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot(q: &[f32], k: &[f16]) -> f32 {
        assert!(q.len() == k.len() && q.len().is_multiple_of(16));
        let mut a = _mm256_setzero_ps();
        let mut b = _mm256_setzero_ps();
        for i in (0..q.len()).step_by(16) {
            unsafe {
                a = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(i)), widen(k, i), a);
                b = _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(i + 8)), widen(k, i + 8), b);
            }
        }
        let sum = _mm256_add_ps(a, b);
        let half = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
        let pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn add_scaled(out: &mut [f32], p: f32, v: &[f16]) {
        assert!(out.len() == v.len() && out.len().is_multiple_of(8));
        let p = _mm256_set1_ps(p);
        for i in (0..out.len()).step_by(8) {
            unsafe {
                let o = out.as_mut_ptr().add(i);
                _mm256_storeu_ps(o, _mm256_fmadd_ps(p, widen(v, i), _mm256_loadu_ps(o)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Result, Tensor};

    use super::*;

    /// The same attention through candle's ops on the widened cache.
    fn reference(q: &Tensor, keys: &Tensor, values: &Tensor, len: usize) -> Result<Tensor> {
        let (_, heads, _, d) = q.dims4()?;
        let kv_heads = keys.dim(1)?;
        let keys = keys.narrow(2, 0, len)?.to_dtype(DType::F32)?;
        let values = values.narrow(2, 0, len)?.to_dtype(DType::F32)?;
        let q = q.reshape((1, kv_heads, heads / kv_heads, d))?;
        let scores = (q.matmul(&keys.t()?)? / (d as f64).sqrt())?;
        candle_nn::ops::softmax_last_dim(&scores)?
            .matmul(&values)?
            .reshape((1, heads * d))
    }

    fn largest_difference(
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        len: usize,
    ) -> Result<f32> {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (1, heads, 1, head_dim), &dev)?;
        let cache = |mean: f32| {
            Tensor::randn(mean, 1.0, (1, kv_heads, capacity, head_dim), &dev)?.to_dtype(DType::F16)
        };
        let (keys, values) = (cache(0.0)?, cache(0.5)?);
        let op = DecodeAttention {
            len,
            scale: 1.0 / (head_dim as f32).sqrt(),
        };
        let ours = q.apply_op3_no_bwd(&keys, &values, &op)?;
        let expected = reference(&q, &keys, &values, len)?;
        (ours - expected)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()
    }

    #[test]
    fn matches_candle_ops_on_the_widened_cache() -> Result<()> {
        // Llama 3's grouping (SIMD rows), SmolLM2's, and a head size the SIMD code skips.
        for (heads, kv_heads, head_dim, capacity, len) in
            [(32, 8, 128, 40, 33), (9, 3, 64, 20, 1), (4, 2, 12, 10, 10)]
        {
            let diff = largest_difference(heads, kv_heads, head_dim, capacity, len)?;
            assert!(diff < 1e-5, "{heads}/{kv_heads} heads x {head_dim}: {diff}");
        }
        Ok(())
    }

    #[test]
    fn rejects_a_query_that_does_not_fit_the_cache() -> Result<()> {
        let dev = Device::Cpu;
        let cache = Tensor::zeros((1, 3, 8, 16), DType::F16, &dev)?;
        // 4 query heads cannot share 3 key/value heads.
        let q = Tensor::zeros((1, 4, 1, 16), DType::F32, &dev)?;
        let op = DecodeAttention { len: 4, scale: 1.0 };
        let e = q
            .apply_op3_no_bwd(&cache, &cache, &op)
            .expect_err("4 heads over 3");
        assert!(e.to_string().contains("does not fit"), "{e}");
        // More positions than the cache holds.
        let q = Tensor::zeros((1, 6, 1, 16), DType::F32, &dev)?;
        let op = DecodeAttention { len: 9, scale: 1.0 };
        assert!(q.apply_op3_no_bwd(&cache, &cache, &op).is_err());
        Ok(())
    }
}
