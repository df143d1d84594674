//! Decode-sized matrix products (1 to 15 tokens) with GGUF `Q4_K` weights, read straight
//! from the file's bytes.
//!
//! candle's VNNI kernel first repacks every `Q4_K` matrix into 16-row tiles with the
//! sub-block scales widened to f32: a second copy of the weights, 1.33x their size, made at
//! the first decoded token and kept (for Lynx-8B about 4.5 GB beside the 3.4 GB of `Q4_K`
//! bytes). This kernel reads the blocks as they are, one row at a time, as ggml does:
//! `maddubs` of the 4-bit values with the token's `Q8_K` values, `madd` with the 6-bit
//! sub-block scales, so a superblock's 256 products sum exactly in integers and are scaled
//! once in f32. The activations are quantized exactly as candle does it ([`amx`]'s
//! `Q8_K`); only the f32 summation order differs from candle's kernel.
//!
//! Prompts (16 tokens or more) go to [`amx`]; other dtypes (`Q6_K`), other CPUs and GPUs
//! return `None` and stay with candle.

#![allow(unsafe_code)]

use std::sync::Mutex;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::utils::barrier_pool;
use candle_core::{DType, Storage, Tensor};

use crate::amx;

const QK_K: usize = 256;
const BLOCK_BYTES: usize = 144;
/// How far ahead the weights are prefetched, in blocks (about 2.3 KB; 8 to 24 measured
/// within 3% of each other on llama3-1b's shape, none 40% slower).
const PREFETCH_BLOCKS: usize = 16;

/// `x · Wᵀ` for every matrix in `mats` (all `Q4_K`, `[n, k]`, sharing the input), or `None`
/// where this kernel does not apply.
pub(crate) fn forward_all(
    mats: &[&QTensor],
    x: &Tensor,
) -> candle_core::Result<Option<Vec<Tensor>>> {
    let dims = x.dims();
    let Some((&k, batch)) = dims.split_last() else {
        return Ok(None);
    };
    let m: usize = batch.iter().product();
    if mats.is_empty()
        || m == 0
        || m >= amx::MIN_TOKENS
        || k == 0
        || !k.is_multiple_of(QK_K)
        || x.dtype() != DType::F32
        || !x.device().is_cpu()
        || !available()
    {
        return Ok(None);
    }
    let kb = k / QK_K;
    let mut weights = Vec::with_capacity(mats.len());
    for t in mats {
        let Ok((n, tk)) = t.shape().dims2() else {
            return Ok(None);
        };
        if t.dtype() != GgmlDType::Q4K || tk != k || !t.device().is_cpu() {
            return Ok(None);
        }
        let bytes = t.data()?;
        if bytes.len() != n * kb * BLOCK_BYTES {
            candle_core::bail!("{n}x{k} Q4_K tensor holds {} bytes", bytes.len());
        }
        weights.push((n, bytes));
    }
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Ok(None);
    };
    let acts = Activations::quantize(&cpu.as_slice::<f32>()?[start..end], m, k);
    drop(storage);

    let mut outputs: Vec<Vec<f32>> = weights.iter().map(|(n, _)| vec![0.0; m * n]).collect();
    let mut tasks = Vec::new();
    for (out, (n, bytes)) in outputs.iter_mut().zip(&weights) {
        // Each task owns a range of columns of one output, for every token: two ranges
        // per thread. (Tasks of 32 rows ran 20% slower on llama3-1b's shape.)
        let mut columns: Vec<Vec<&mut [f32]>> = Vec::new();
        let per_task = n.div_ceil(2 * candle_core::utils::get_num_threads());
        for token_row in out.chunks_exact_mut(*n) {
            for (c, part) in token_row.chunks_mut(per_task).enumerate() {
                if columns.len() <= c {
                    columns.push(Vec::with_capacity(m));
                }
                columns[c].push(part);
            }
        }
        for (c, parts) in columns.into_iter().enumerate() {
            let first = c * per_task;
            tasks.push(Mutex::new((first, bytes.as_ref(), parts)));
        }
    }
    barrier_pool().execute_chunked(tasks.len(), |range| {
        for task in &tasks[range] {
            let mut task = task.lock().unwrap_or_else(|e| e.into_inner());
            let (first, bytes, parts) = &mut *task;
            let row_bytes = kb * BLOCK_BYTES;
            let rows = parts[0].len();
            for r in 0..rows {
                let row = &bytes[(*first + r) * row_bytes..][..row_bytes];
                for (t0, group) in (0..m).step_by(4).map(|t0| (t0, (m - t0).min(4))) {
                    let sums = platform::row_dot(row, &acts, t0, group);
                    for (j, sum) in sums.iter().take(group).enumerate() {
                        parts[t0 + j][r] = *sum;
                    }
                }
            }
        }
    });
    drop(tasks);
    let mut shape = dims.to_vec();
    outputs
        .into_iter()
        .zip(&weights)
        .map(|(out, (n, _))| {
            if let Some(last) = shape.last_mut() {
                *last = *n;
            }
            Tensor::from_vec(out, candle_core::Shape::from(shape.clone()), x.device())
        })
        .collect::<candle_core::Result<Vec<_>>>()
        .map(Some)
}

/// Whether this CPU has AVX-512 F and BW. `HALUBENCH_Q4K_DECODE=off` leaves decoding to
/// candle (to compare).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var("HALUBENCH_Q4K_DECODE").as_deref() != Ok("off") && platform::enable()
    })
}

/// The tokens quantized to `Q8_K`, each superblock's 256 values in the order of a `Q4_K`
/// block's nibbles (see [`Activations::quantize`]).
struct Activations {
    kb: usize,
    /// `[token][superblock][256]`.
    quants: Vec<i8>,
    /// `[token][superblock]`: `Q8_K`'s `d`.
    scales: Vec<f32>,
    /// `[token][superblock][8]`: the sums of the eight 32-value sub-blocks.
    sub_sums: Vec<i16>,
}

impl Activations {
    /// A `Q4_K` block's 128 bytes, read as two 64-byte halves, give four vectors of 64
    /// values: the low nibbles of half h are values 128h + [0, 32) and 128h + [64, 96), the
    /// high nibbles 128h + [32, 64) and 128h + [96, 128). The quantized values are stored
    /// in that order: low of half 0, high of half 0, low of half 1, high of half 1.
    fn quantize(x: &[f32], m: usize, k: usize) -> Activations {
        let kb = k / QK_K;
        let mut acts = Activations {
            kb,
            quants: vec![0; m * k],
            scales: vec![0.0; m * kb],
            sub_sums: vec![0; m * kb * 8],
        };
        let mut q = [0i8; QK_K];
        let mut sums = [0i32; 8];
        for (i, values) in x.chunks_exact(QK_K).enumerate() {
            acts.scales[i] = amx::quantize_q8k(values, &mut q, &mut sums);
            let out = &mut acts.quants[i * QK_K..][..QK_K];
            for (v, &value) in q.iter().enumerate() {
                let (half, r) = (v / 128, v % 128);
                let high = (r / 32) % 2;
                let at = half * 128 + high * 64 + (r / 64) * 32 + r % 32;
                out[at] = value;
            }
            for (to, sum) in acts.sub_sums[i * 8..][..8].iter_mut().zip(sums) {
                // At most 32 x 128 in magnitude.
                *to = sum as i16;
            }
        }
        acts
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod platform {
    use super::*;
    use std::arch::x86_64::*;

    pub(super) fn enable() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
    }

    /// Row `row` (a matrix row's blocks) times tokens `t0 .. t0 + count` (at most 4).
    pub(super) fn row_dot(row: &[u8], acts: &Activations, t0: usize, count: usize) -> [f32; 4] {
        // SAFETY: `available` checked AVX-512 F and BW.
        unsafe {
            match count {
                1 => widen(row_dot_avx512::<1>(row, acts, t0)),
                2 => widen(row_dot_avx512::<2>(row, acts, t0)),
                3 => widen(row_dot_avx512::<3>(row, acts, t0)),
                _ => row_dot_avx512::<4>(row, acts, t0),
            }
        }
    }

    fn widen<const M: usize>(sums: [f32; M]) -> [f32; 4] {
        let mut out = [0.0; 4];
        out[..M].copy_from_slice(&sums);
        out
    }

    /// A `Q4_K` block's 6-bit scales and minimums unpacked as ggml does, in a vector
    /// register: the 12 packed bytes (and 4 more, ignored) in, the eight scales and then the
    /// eight minimums out.
    #[target_feature(enable = "avx2")]
    pub(super) fn unpack_scales(packed: __m128i) -> __m128i {
        // Words w0 w1 w2: the low words per lane are [w0, w2, w1, w2], the high [w0, w0, w1, w1].
        let low = _mm_shuffle_epi32::<0b10_01_10_00>(packed);
        let high = _mm_shuffle_epi32::<0b01_01_00_00>(packed);
        let six = _mm_and_si128(low, _mm_set1_epi32(0x3f3f_3f3f));
        let four = _mm_and_si128(
            _mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4)),
            _mm_set1_epi32(0x0f0f_0f0f),
        );
        let two = _mm_and_si128(_mm_srli_epi32::<6>(high), _mm_set1_epi32(0x0303_0303));
        let upper = _mm_or_si128(four, _mm_slli_epi32::<4>(two));
        // Lanes: scales 0-3, scales 4-7, minimums 0-3, minimums 4-7.
        _mm_blend_epi32::<0b1010>(six, upper)
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn row_dot_avx512<const M: usize>(
        row: &[u8],
        acts: &Activations,
        t0: usize,
    ) -> [f32; M] {
        let kb = acts.kb;
        assert!(row.len() == kb * BLOCK_BYTES && (t0 + M) * kb <= acts.scales.len());
        let nibbles = _mm512_set1_epi8(0x0f);
        // Which of the eight scales each 16-bit lane of the four vectors takes: the low
        // nibbles of half 0 hold sub-blocks 0 and 2, its high nibbles 1 and 3, and so on.
        let pick = |a: i16, b: i16| {
            let mut lanes = [a; 32];
            lanes[16..].fill(b);
            // SAFETY: 64 bytes read from a 64-byte array.
            unsafe { _mm512_loadu_si512(lanes.as_ptr() as *const _) }
        };
        let picks = [pick(0, 2), pick(1, 3), pick(4, 6), pick(5, 7)];
        let mut sums = [_mm512_setzero_ps(); M];
        let mut min_sums = [_mm_setzero_ps(); M];
        for b in 0..kb {
            let block = &row[b * BLOCK_BYTES..][..BLOCK_BYTES];
            // The rows stream from memory: without asking for them ahead, the loads
            // waited on DRAM and decoding ran at half of candle's speed. Past the row's
            // end this is the next row, which this task usually reads next.
            let ahead = row
                .as_ptr()
                .wrapping_add((b + PREFETCH_BLOCKS) * BLOCK_BYTES);
            for line in [0, 64, 128] {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line) as *const i8);
            }
            let d = f32::from(half::f16::from_le_bytes([block[0], block[1]]));
            let dmin = f32::from(half::f16::from_le_bytes([block[2], block[3]]));
            // SAFETY (loads): bytes 4 .. 20 and 2 x 64 of the block's 144.
            let (scales, mins, halves) = unsafe {
                let both = unpack_scales(_mm_loadu_si128(block.as_ptr().add(4) as *const __m128i));
                let scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(both));
                let mins = _mm_cvtepu8_epi16(_mm_srli_si128::<8>(both));
                let qs = block.as_ptr().add(16);
                let halves = [
                    _mm512_loadu_si512(qs as *const _),
                    _mm512_loadu_si512(qs.add(64) as *const _),
                ];
                (scales, mins, halves)
            };
            let weights = [
                _mm512_and_si512(halves[0], nibbles),
                _mm512_and_si512(_mm512_srli_epi16::<4>(halves[0]), nibbles),
                _mm512_and_si512(halves[1], nibbles),
                _mm512_and_si512(_mm512_srli_epi16::<4>(halves[1]), nibbles),
            ];
            let lane_scales = picks.map(|p| _mm512_permutexvar_epi16(p, scales));
            for t in 0..M {
                let at = (t0 + t) * kb + b;
                let q = acts.quants[at * QK_K..][..QK_K].as_ptr();
                let mut total = _mm512_setzero_si512();
                for v in 0..4 {
                    // SAFETY: 4 x 64 bytes inside this superblock's 256.
                    let a = unsafe { _mm512_loadu_si512(q.add(v * 64) as *const _) };
                    let pairs = _mm512_maddubs_epi16(weights[v], a);
                    total = _mm512_add_epi32(total, _mm512_madd_epi16(pairs, lane_scales[v]));
                }
                let dd = _mm512_set1_ps(d * acts.scales[at]);
                sums[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), dd, sums[t]);
                // SAFETY: 8 sums of this superblock.
                let sub =
                    unsafe { _mm_loadu_si128(acts.sub_sums[at * 8..].as_ptr() as *const __m128i) };
                let min_term = _mm_cvtepi32_ps(_mm_madd_epi16(mins, sub));
                let dm = _mm_set1_ps(dmin * acts.scales[at]);
                min_sums[t] = _mm_fmadd_ps(min_term, dm, min_sums[t]);
            }
        }
        let mut out = [0.0; M];
        for t in 0..M {
            let mins = min_sums[t];
            let min_total = _mm512_reduce_add_ps(_mm512_castps128_ps512(mins));
            out[t] = _mm512_reduce_add_ps(sums[t]) - min_total;
        }
        out
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod platform {
    use super::*;

    pub(super) fn enable() -> bool {
        false
    }

    pub(super) fn row_dot(_: &[u8], _: &Activations, _: usize, _: usize) -> [f32; 4] {
        unreachable!("never enabled here")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module};

    /// Against candle's product on the same weights and the same `Q8_K` activations: the
    /// integer sums agree, only f32 rounding may differ. 1 to 15 tokens (groups of 4 and
    /// a remainder), row counts that do not split evenly between tasks, k of 1 to 3
    /// superblocks, and two matrices of different heights sharing one input.
    #[test]
    fn matches_candles_qmatmul() {
        if !available() {
            eprintln!("skipped: this CPU lacks AVX-512 F/BW, and the kernel declines");
            return;
        }
        for (rows, k, tokens) in [(48, 256, 1), (80, 512, 4), (16, 768, 7), (100, 256, 15)] {
            let quantized = |rows: usize, seed: f32| {
                let w = Tensor::randn(seed, 0.05, (rows, k), &Device::Cpu).expect("w");
                QTensor::quantize(&w, GgmlDType::Q4K).expect("quantize")
            };
            let mats = [quantized(rows, 0.0), quantized(16, 0.01)];
            let x = Tensor::randn(0f32, 1.0, (tokens, k), &Device::Cpu).expect("x");
            let ours = forward_all(&[&mats[0], &mats[1]], &x)
                .expect("ours")
                .expect("taken");
            for (ours, q) in ours.iter().zip(mats) {
                let reference = QMatMul::from_qtensor(q).expect("qmatmul").forward(&x);
                let reference = reference.expect("ref").to_vec2::<f32>().expect("reference");
                let ours = ours.to_vec2::<f32>().expect("ours");
                let scale = reference.iter().flatten().fold(1f32, |a, v| a.max(v.abs()));
                for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
                    for (j, (x, y)) in a.iter().zip(b).enumerate() {
                        assert!(
                            (x - y).abs() <= 1e-5 * scale,
                            "{rows}x{k}, {tokens} tokens: [{i}][{j}] {x} vs {y}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn unpacks_scales_as_ggml_does() {
        if !available() {
            return;
        }
        let mut packed = [0u8; 16];
        let mut state = 0x2545_f491_u32;
        for _ in 0..1000 {
            for byte in &mut packed {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                *byte = state as u8;
            }
            // ggml's get_scale_min_k4, written out.
            let mut expected = [0u8; 16];
            for j in 0..8 {
                let (sc, mn) = if j < 4 {
                    (packed[j] & 63, packed[j + 4] & 63)
                } else {
                    (
                        (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4),
                        (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
                    )
                };
                expected[j] = sc;
                expected[8 + j] = mn;
            }
            let mut got = [0u8; 16];
            // SAFETY: `available` checked AVX-512 (and so AVX2); 16 bytes each way.
            unsafe {
                use std::arch::x86_64::*;
                let unpacked =
                    platform::unpack_scales(_mm_loadu_si128(packed.as_ptr() as *const _));
                _mm_storeu_si128(got.as_mut_ptr() as *mut _, unpacked);
            }
            assert_eq!(got, expected, "{packed:?}");
        }
    }

    #[test]
    fn declines_prompts_and_other_dtypes() {
        let w = Tensor::randn(0f32, 0.05, (32, 256), &Device::Cpu).expect("w");
        let q6 = QTensor::quantize(&w, GgmlDType::Q6K).expect("quantize");
        let x = Tensor::randn(0f32, 1.0, (2, 256), &Device::Cpu).expect("x");
        assert!(forward_all(&[&q6], &x).expect("runs").is_none());
        let q4 = QTensor::quantize(&w, GgmlDType::Q4K).expect("quantize");
        let prompt = Tensor::randn(0f32, 1.0, (amx::MIN_TOKENS, 256), &Device::Cpu).expect("x");
        assert!(forward_all(&[&q4], &prompt).expect("runs").is_none());
    }
}
