//! Decode-sized matrix products (1 to 15 tokens) with GGUF `Q4_K` and `Q6_K` weights, read
//! straight from the file's bytes.
//!
//! candle's VNNI kernel first repacks every `Q4_K` matrix (and, for more than one token,
//! every `Q6_K` one) into 16-row tiles with the sub-block scales widened to f32: a second
//! copy of the weights, 1.33x (1.5x) their size, made at the first decoded token and kept:
//! for Lynx-8B about 4 GB beside the 4.9 GB of the file. This kernel reads the blocks as
//! they are, one row at a time, as ggml does: `maddubs` of the 4- or 6-bit values with the
//! token's `Q8_K` values, `madd` with the sub-block scales, so a superblock's 256 products
//! sum exactly in integers and are scaled once in f32. The activations are quantized exactly
//! as candle does it ([`amx`]'s `Q8_K`); only the f32 summation order differs from candle's
//! kernels.
//!
//! Prompts (16 tokens or more) go to [`amx`]; other dtypes, other CPUs and GPUs return
//! `None` and stay with candle.

#![allow(unsafe_code)]

use std::sync::Mutex;

use candle_core::Tensor;
use candle_core::quantized::QTensor;
use candle_core::utils::barrier_pool;

use crate::amx::{self, Kind, Matrix};

const QK_K: usize = 256;
/// How far ahead the weights are prefetched, in blocks (16 `Q4_K` blocks are 2.3 KB). On
/// llama3-1b's shape 8 to 24 measured within 3% of each other; no prefetch, a third slower.
const PREFETCH_BLOCKS: usize = 16;

/// `x · Wᵀ` for every matrix in `mats` (each `Q4_K` or `Q6_K`, `[n, k]`, sharing the
/// input), or `None` where this kernel does not apply.
pub(crate) fn forward_all(
    mats: &[&QTensor],
    x: &Tensor,
) -> candle_core::Result<Option<Vec<Tensor>>> {
    let Some((m, k)) = amx::input_shape(x) else {
        return Ok(None);
    };
    if mats.is_empty() || m >= amx::MIN_TOKENS || !available() {
        return Ok(None);
    }
    let Some(weights) = amx::matrices(mats, k)? else {
        return Ok(None);
    };
    let Some(acts) = amx::with_input_rows(x, |rows| Activations::quantize(rows, m, k))? else {
        return Ok(None);
    };
    let kb = k / QK_K;

    let mut outputs: Vec<Vec<f32>> = weights.iter().map(|w| vec![0.0; m * w.n]).collect();
    let mut tasks = Vec::new();
    for (out, Matrix { kind, n, bytes }) in outputs.iter_mut().zip(&weights) {
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
            tasks.push(Mutex::new((first, *kind, bytes.as_ref(), parts)));
        }
    }
    barrier_pool().execute_chunked(tasks.len(), |range| {
        for task in &tasks[range] {
            let mut task = task.lock().unwrap_or_else(|e| e.into_inner());
            let (first, kind, bytes, parts) = &mut *task;
            let row_bytes = kb * kind.block_bytes();
            let rows = parts[0].len();
            for r in 0..rows {
                let row = &bytes[(*first + r) * row_bytes..][..row_bytes];
                for (t0, group) in (0..m).step_by(4).map(|t0| (t0, (m - t0).min(4))) {
                    let sums = platform::row_dot(*kind, row, &acts, t0, group);
                    for (j, sum) in sums.iter().take(group).enumerate() {
                        parts[t0 + j][r] = *sum;
                    }
                }
            }
        }
    });
    drop(tasks);
    amx::tensors(outputs, &weights, x)
}

/// Whether this CPU has AVX-512 F and BW. `HALUBENCH_KQUANT_DECODE=off` leaves decoding to
/// candle (to compare).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var("HALUBENCH_KQUANT_DECODE").as_deref() != Ok("off") && platform::enable()
    })
}

/// The tokens quantized to `Q8_K`.
struct Activations {
    kb: usize,
    /// `[token][superblock][256]`, in order.
    quants: Vec<i8>,
    /// The same, each superblock in the order of a `Q4_K` block's nibbles (see
    /// [`Activations::quantize`]).
    q4k_quants: Vec<i8>,
    /// `[token][superblock]`: `Q8_K`'s `d`.
    scales: Vec<f32>,
    /// `[token][superblock][8]`: the sums of the eight 32-value sub-blocks (`Q4_K`'s
    /// minimum term).
    sums32: Vec<i16>,
    /// `[token][superblock][16]`: the sums of the sixteen 16-value sub-blocks (`Q6_K`'s
    /// offset of 32).
    sums16: Vec<i16>,
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
            q4k_quants: vec![0; m * k],
            scales: vec![0.0; m * kb],
            sums32: vec![0; m * kb * 8],
            sums16: vec![0; m * kb * 16],
        };
        let mut q = [0i8; QK_K];
        let mut sums = [0i32; 8];
        for (i, values) in x.chunks_exact(QK_K).enumerate() {
            acts.scales[i] = amx::quantize_q8k(values, &mut q, &mut sums);
            acts.quants[i * QK_K..][..QK_K].copy_from_slice(&q);
            let sixteens = acts.sums16[i * 16..][..16].iter_mut();
            for (to, values) in sixteens.zip(q.chunks_exact(16)) {
                // At most 16 x 128 in magnitude.
                *to = values.iter().map(|&v| i16::from(v)).sum();
            }
            let out = &mut acts.q4k_quants[i * QK_K..][..QK_K];
            for (v, &value) in q.iter().enumerate() {
                let (half, r) = (v / 128, v % 128);
                let high = (r / 32) % 2;
                let at = half * 128 + high * 64 + (r / 64) * 32 + r % 32;
                out[at] = value;
            }
            for (to, sum) in acts.sums32[i * 8..][..8].iter_mut().zip(sums) {
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
    pub(super) fn row_dot(
        kind: Kind,
        row: &[u8],
        acts: &Activations,
        t0: usize,
        count: usize,
    ) -> [f32; 4] {
        // SAFETY: `available` checked AVX-512 F and BW.
        unsafe {
            match (kind, count) {
                (Kind::Q4K, 1) => widen(q4k_row_dot::<1>(row, acts, t0)),
                (Kind::Q4K, 2) => widen(q4k_row_dot::<2>(row, acts, t0)),
                (Kind::Q4K, 3) => widen(q4k_row_dot::<3>(row, acts, t0)),
                (Kind::Q4K, _) => q4k_row_dot::<4>(row, acts, t0),
                (Kind::Q6K, 1) => widen(q6k_row_dot::<1>(row, acts, t0)),
                (Kind::Q6K, 2) => widen(q6k_row_dot::<2>(row, acts, t0)),
                (Kind::Q6K, 3) => widen(q6k_row_dot::<3>(row, acts, t0)),
                (Kind::Q6K, _) => q6k_row_dot::<4>(row, acts, t0),
            }
        }
    }

    fn widen<const M: usize>(sums: [f32; M]) -> [f32; 4] {
        let mut out = [0.0; 4];
        out[..M].copy_from_slice(&sums);
        out
    }

    /// Asks for the block `PREFETCH_BLOCKS` ahead of block `b`. The rows stream from
    /// memory: without asking for them ahead, the loads waited on DRAM and decoding ran at
    /// half of candle's speed. Past the row's end this is the next row, which the task
    /// usually reads next.
    #[target_feature(enable = "sse")]
    fn prefetch(row: &[u8], b: usize, block_bytes: usize) {
        let ahead = row
            .as_ptr()
            .wrapping_add((b + PREFETCH_BLOCKS) * block_bytes);
        for line in (0..block_bytes).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line) as *const i8);
        }
    }

    /// The 32 16-bit lanes of a vector, in as many equal runs as `values` has entries,
    /// each run holding its value: indices for `_mm512_permutexvar_epi16` (which scale
    /// each lane of products takes), or shift counts.
    #[target_feature(enable = "avx512f")]
    fn runs(values: &[i16]) -> __m512i {
        let mut lanes = [0i16; 32];
        let per = 32 / values.len();
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = values[i / per];
        }
        // SAFETY: 64 bytes read from a 64-byte array.
        unsafe { _mm512_loadu_si512(lanes.as_ptr() as *const _) }
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

    /// The 256 products of a superblock's weights (four vectors of 64 values, 0-63) with
    /// token values `quants` of superblock `at`, each pair summed and multiplied by its
    /// lane's scale: integer sums of scale times dot product, in 16 lanes.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn scaled_products(
        weights: &[__m512i; 4],
        lane_scales: &[__m512i; 4],
        quants: &[i8],
        at: usize,
    ) -> __m512i {
        let q = &quants[at * QK_K..][..QK_K];
        let mut total = _mm512_setzero_si512();
        for v in 0..4 {
            // SAFETY: 64 bytes inside this superblock's 256.
            let a = unsafe { _mm512_loadu_si512(q.as_ptr().add(v * 64) as *const _) };
            let pairs = _mm512_maddubs_epi16(weights[v], a);
            total = _mm512_add_epi32(total, _mm512_madd_epi16(pairs, lane_scales[v]));
        }
        total
    }

    /// A `Q4_K` block: `d`, `dmin`, 12 bytes of packed scales and minimums, 128 bytes of
    /// 4-bit values (see [`Activations::quantize`] for their order).
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn q4k_row_dot<const M: usize>(row: &[u8], acts: &Activations, t0: usize) -> [f32; M] {
        const BLOCK_BYTES: usize = Kind::Q4K.block_bytes();
        let kb = acts.kb;
        assert!(row.len() == kb * BLOCK_BYTES && (t0 + M) * kb <= acts.scales.len());
        let nibbles = _mm512_set1_epi8(0x0f);
        // Which of the eight scales each 16-bit lane of the four vectors takes: the low
        // nibbles of half 0 hold sub-blocks 0 and 2, its high nibbles 1 and 3, and so on.
        let picks = [runs(&[0, 2]), runs(&[1, 3]), runs(&[4, 6]), runs(&[5, 7])];
        let mut sums = [_mm512_setzero_ps(); M];
        let mut min_sums = [_mm_setzero_ps(); M];
        for b in 0..kb {
            let block = &row[b * BLOCK_BYTES..][..BLOCK_BYTES];
            prefetch(row, b, BLOCK_BYTES);
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
                let total = scaled_products(&weights, &lane_scales, &acts.q4k_quants, at);
                let dd = _mm512_set1_ps(d * acts.scales[at]);
                sums[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), dd, sums[t]);
                // SAFETY: 8 sums of this superblock.
                let sub =
                    unsafe { _mm_loadu_si128(acts.sums32[at * 8..].as_ptr() as *const __m128i) };
                let min_term = _mm_cvtepi32_ps(_mm_madd_epi16(mins, sub));
                let dm = _mm_set1_ps(dmin * acts.scales[at]);
                min_sums[t] = _mm_fmadd_ps(min_term, dm, min_sums[t]);
            }
        }
        let mut out = [0.0; M];
        for t in 0..M {
            let min_total = _mm512_reduce_add_ps(_mm512_zextps128_ps512(min_sums[t]));
            out[t] = _mm512_reduce_add_ps(sums[t]) - min_total;
        }
        out
    }

    /// A `Q6_K` block: `ql` (128 bytes of low 4 bits), `qh` (64 bytes of high 2 bits),
    /// sixteen i8 scales, `d`. Half h's 64 bytes of `ql` hold values 128h + [0, 64) in their
    /// low nibbles and 128h + [64, 128) in their high ones, in order; the 2-bit parts come
    /// from `qh`'s 32 bytes of that half, bits 0-1, 2-3, 4-5 and 6-7 for its four quarters.
    /// Values are stored plus 32: the products take them as they are (0-63), and 32 times
    /// the token's 16-value sums is taken off per scale.
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn q6k_row_dot<const M: usize>(row: &[u8], acts: &Activations, t0: usize) -> [f32; M] {
        const BLOCK_BYTES: usize = Kind::Q6K.block_bytes();
        let kb = acts.kb;
        assert!(row.len() == kb * BLOCK_BYTES && (t0 + M) * kb <= acts.scales.len());
        let nibbles = _mm512_set1_epi8(0x0f);
        let twos = _mm512_set1_epi8(0x03);
        // Lanes 0-15 (bytes 0-31) are a half's first quarter, 16-31 its second.
        let low_shifts = runs(&[0, 2]);
        let high_shifts = runs(&[4, 6]);
        let picks = [
            runs(&[0, 1, 2, 3]),
            runs(&[4, 5, 6, 7]),
            runs(&[8, 9, 10, 11]),
            runs(&[12, 13, 14, 15]),
        ];
        let mut sums = [_mm512_setzero_ps(); M];
        let mut offsets = [_mm256_setzero_ps(); M];
        for b in 0..kb {
            let block = &row[b * BLOCK_BYTES..][..BLOCK_BYTES];
            prefetch(row, b, BLOCK_BYTES);
            let d = f32::from(half::f16::from_le_bytes([block[208], block[209]]));
            let mut weights = [_mm512_setzero_si512(); 4];
            let p = block.as_ptr();
            for h in 0..2 {
                // SAFETY: 64 bytes of `ql` and 32 of `qh` inside the block.
                let (low, qh) = unsafe {
                    let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
                    (_mm512_loadu_si512(p.add(64 * h) as *const _), qh)
                };
                let qh = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(qh), qh);
                let top = |shifts| {
                    _mm512_slli_epi16::<4>(_mm512_and_si512(_mm512_srlv_epi16(qh, shifts), twos))
                };
                weights[2 * h] = _mm512_or_si512(_mm512_and_si512(low, nibbles), top(low_shifts));
                weights[2 * h + 1] = _mm512_or_si512(
                    _mm512_and_si512(_mm512_srli_epi16::<4>(low), nibbles),
                    top(high_shifts),
                );
            }
            // SAFETY: the 16 scales inside the block.
            let scales =
                unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i)) };
            let wide = _mm512_castsi256_si512(scales);
            let lane_scales = picks.map(|p| _mm512_permutexvar_epi16(p, wide));
            for t in 0..M {
                let at = (t0 + t) * kb + b;
                let total = scaled_products(&weights, &lane_scales, &acts.quants, at);
                let dd = d * acts.scales[at];
                sums[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), _mm512_set1_ps(dd), sums[t]);
                // SAFETY: 16 sums of this superblock.
                let sixteens = unsafe {
                    _mm256_loadu_si256(acts.sums16[at * 16..].as_ptr() as *const __m256i)
                };
                let offset = _mm256_cvtepi32_ps(_mm256_madd_epi16(scales, sixteens));
                offsets[t] = _mm256_fmadd_ps(offset, _mm256_set1_ps(32.0 * dd), offsets[t]);
            }
        }
        let mut out = [0.0; M];
        for t in 0..M {
            let offset = _mm512_reduce_add_ps(_mm512_zextps256_ps512(offsets[t]));
            out[t] = _mm512_reduce_add_ps(sums[t]) - offset;
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

    pub(super) fn row_dot(_: Kind, _: &[u8], _: &Activations, _: usize, _: usize) -> [f32; 4] {
        unreachable!("never enabled here")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module};

    /// Against candle's product on the same weights and the same `Q8_K` activations: the
    /// integer sums agree, only f32 rounding may differ. 1 to 15 tokens (groups of 4 and
    /// a remainder), row counts that do not split evenly between tasks, k of 1 to 3
    /// superblocks, and matrices of both kinds and different heights sharing one input.
    #[test]
    fn matches_candles_qmatmul() {
        if !available() {
            eprintln!("skipped: this CPU lacks AVX-512 F/BW, and the kernel declines");
            return;
        }
        for (rows, k, tokens) in [(48, 256, 1), (80, 512, 4), (16, 768, 7), (100, 256, 15)] {
            let quantized = |rows: usize, seed: f32, dtype| {
                let w = Tensor::randn(seed, 0.05, (rows, k), &Device::Cpu).expect("w");
                QTensor::quantize(&w, dtype).expect("quantize")
            };
            let mats = [
                quantized(rows, 0.0, GgmlDType::Q4K),
                quantized(16, 0.01, GgmlDType::Q4K),
                quantized(rows, -0.01, GgmlDType::Q6K),
            ];
            let x = Tensor::randn(0f32, 1.0, (tokens, k), &Device::Cpu).expect("x");
            let ours = forward_all(&[&mats[0], &mats[1], &mats[2]], &x)
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
        let q8 = QTensor::quantize(&w, GgmlDType::Q8_0).expect("quantize");
        let x = Tensor::randn(0f32, 1.0, (2, 256), &Device::Cpu).expect("x");
        assert!(forward_all(&[&q8], &x).expect("runs").is_none());
        let q4 = QTensor::quantize(&w, GgmlDType::Q4K).expect("quantize");
        let prompt = Tensor::randn(0f32, 1.0, (amx::MIN_TOKENS, 256), &Device::Cpu).expect("x");
        assert!(forward_all(&[&q4], &prompt).expect("runs").is_none());
    }
}
