//! Prompt-sized matrix products with GGUF `Q4_K` and `Q6_K` weights on Intel AMX.
//!
//! Lynx's `Q4_K_M` file is all `Q4_K` and `Q6_K`. candle multiplies them with AVX-512 VNNI,
//! 64 multiply-adds per instruction, and that loop was 80% of a prompt's time, at about the
//! speed of llama.cpp's AVX2 code. An AMX tile product does 16,384 per instruction, so for
//! prompts (16 tokens or more) this module takes the product off candle's hands.
//!
//! The sums are exact integers, as in ggml's `Q4_K x Q8_K` dot product: activations are
//! quantized to `Q8_K` exactly as candle does it, and each weight's 6-bit sub-block scale is
//! multiplied into its 4- or 6-bit value before the product (`sc * q` needs up to 13 bits,
//! so it is kept as a low and a high byte and the two products are added as
//! `low + 256 * high`). Each 256-value superblock is then scaled once in f32 instead of
//! once per 32- or 16-value sub-block, which is what keeps the vector units from becoming the
//! bottleneck. Only the f32 summation order differs from candle's kernels.
//!
//! The weights stay in the GGUF's own bytes: each task expands 16 rows at a time into a
//! buffer that stays in L2 while every 16-token block of the prompt goes past it, so no
//! second copy of the model is kept. Decoding (a few tokens) stays with candle: expanding
//! the weights costs more than so few tokens repay (see [`MIN_TOKENS`]). Other CPUs, other
//! dtypes and GPUs return `None` and stay with candle too.

// AMX has no Rust intrinsics on stable (tile instructions are written as `asm!`), and the
// AVX-512 intrinsics need `unsafe`; all of it is confined to this module.
#![allow(unsafe_code)]

use std::sync::Mutex;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::utils::barrier_pool;
use candle_core::{DType, Storage, Tensor};

/// Values per k-quant superblock.
const QK_K: usize = 256;
/// Rows of every tile: 16 weight rows, or 16 tokens.
const TILE: usize = 16;
/// Bytes of one 16 x 64 tile.
const TILE_BYTES: usize = TILE * 64;
/// Tile bytes of one superblock: four 64-value quarters.
const SUPERBLOCK_BYTES: usize = 4 * TILE_BYTES;
const Q4K_BLOCK_BYTES: usize = 144;
const Q6K_BLOCK_BYTES: usize = 210;

/// Expanded weights one task keeps for reuse: half of a 2 MiB L2, the other half for the
/// activations and sums passing through.
const STRIPES_IN_L2: usize = 1 << 20;

/// Below this many tokens, candle's VNNI kernels on its compact layout are faster: the
/// expanded weights would be used by too few tokens to repay expanding them.
pub(crate) const MIN_TOKENS: usize = 16;

/// `x · Wᵀ` for every matrix in `mats` (all `[n, k]`, sharing the input), or `None` where
/// this module does not apply: no AMX, too few tokens, a dtype other than `Q4_K`/`Q6_K`.
pub(crate) fn forward_all(
    mats: &[&QTensor],
    x: &Tensor,
) -> candle_core::Result<Option<Vec<Tensor>>> {
    let Some((m, k)) = input_shape(x) else {
        return Ok(None);
    };
    if mats.is_empty() || m < MIN_TOKENS || !available() {
        return Ok(None);
    }
    let Some(weights) = matrices(mats, k)? else {
        return Ok(None);
    };
    if weights
        .iter()
        .any(|w| w.n == 0 || !w.n.is_multiple_of(TILE))
    {
        return Ok(None);
    }
    let Some(acts) = with_input_rows(x, |rows| Activations::quantize(rows, m, k))? else {
        return Ok(None);
    };
    tensors(multiply(&weights, &acts), &weights, x)
}

/// `x`'s rows and row length, if they can be taken as `Q8_K` input: F32 on the CPU, rows a
/// whole number of superblocks. (Shared with [`crate::kquant_decode`], as are the three
/// functions below.)
pub(crate) fn input_shape(x: &Tensor) -> Option<(usize, usize)> {
    let (&k, batch) = x.dims().split_last()?;
    let m: usize = batch.iter().product();
    let usable =
        m > 0 && k > 0 && k.is_multiple_of(QK_K) && x.dtype() == DType::F32 && x.device().is_cpu();
    usable.then_some((m, k))
}

/// Every matrix of `mats` in the GGUF's bytes, if all are `Q4_K` or `Q6_K` and `[n, k]` on
/// the CPU.
pub(crate) fn matrices<'a>(
    mats: &[&'a QTensor],
    k: usize,
) -> candle_core::Result<Option<Vec<Matrix<'a>>>> {
    let kb = k / QK_K;
    let mut weights = Vec::with_capacity(mats.len());
    for t in mats {
        let Ok((n, tk)) = t.shape().dims2() else {
            return Ok(None);
        };
        let kind = match t.dtype() {
            GgmlDType::Q4K => Kind::Q4K,
            GgmlDType::Q6K => Kind::Q6K,
            _ => return Ok(None),
        };
        if tk != k || !t.device().is_cpu() {
            return Ok(None);
        }
        let bytes = t.data()?;
        let expected = n * kb * kind.block_bytes();
        if bytes.len() != expected {
            candle_core::bail!("{n}x{k} tensor holds {} bytes, not {expected}", bytes.len());
        }
        weights.push(Matrix { kind, n, bytes });
    }
    Ok(Some(weights))
}

/// `read` applied to `x`'s values, if they are contiguous in CPU memory.
pub(crate) fn with_input_rows<T>(
    x: &Tensor,
    read: impl FnOnce(&[f32]) -> T,
) -> candle_core::Result<Option<T>> {
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Ok(None);
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        return Ok(None);
    };
    Ok(Some(read(&cpu.as_slice::<f32>()?[start..end])))
}

/// The products as tensors of `x`'s shape with the last dimension each matrix's `n`.
pub(crate) fn tensors(
    outputs: Vec<Vec<f32>>,
    mats: &[Matrix],
    x: &Tensor,
) -> candle_core::Result<Option<Vec<Tensor>>> {
    let mut shape = x.dims().to_vec();
    outputs
        .into_iter()
        .zip(mats)
        .map(|(out, mat)| {
            if let Some(last) = shape.last_mut() {
                *last = mat.n;
            }
            Tensor::from_vec(out, candle_core::Shape::from(shape.clone()), x.device())
        })
        .collect::<candle_core::Result<Vec<_>>>()
        .map(Some)
}

/// Whether this CPU has AMX-INT8 and AVX-512 and the kernel lets this process use tiles.
/// `HALUBENCH_AMX=off` turns the path off (to compare with candle's kernels).
pub(crate) fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::env::var("HALUBENCH_AMX").as_deref() != Ok("off") && platform::enable()
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Q4K,
    Q6K,
}

impl Kind {
    pub(crate) const fn block_bytes(self) -> usize {
        match self {
            Kind::Q4K => Q4K_BLOCK_BYTES,
            Kind::Q6K => Q6K_BLOCK_BYTES,
        }
    }
}

/// One weight matrix in the GGUF's bytes: `n` rows of k / 256 superblocks.
pub(crate) struct Matrix<'a> {
    pub(crate) kind: Kind,
    pub(crate) n: usize,
    pub(crate) bytes: std::borrow::Cow<'a, [u8]>,
}

/// The input rows quantized to `Q8_K` and laid out as tile operands.
///
/// Within a superblock the k order is that of a `Q4_K` block's bytes (see [`position`]), so
/// that a weight row expands with whole-register operations.
struct Activations {
    m: usize,
    kb: usize,
    /// `[token block][superblock][quarter][16 groups of 4 k][16 tokens][4]`: the B operand.
    quants: Vec<i8>,
    /// `[token block][superblock][16 tokens]`: each block's scale (`Q8_K`'s `d`).
    scales: Vec<f32>,
    /// `[token block][superblock][pair p][16 tokens]`: the sums of 32-value sub-blocks 2p
    /// (low half) and 2p + 1 (high half), for `Q4_K`'s minimum term.
    sub_sums: Vec<i32>,
}

/// One 16-token block's quantized values, scales and sub-block sums.
type BlockSlices<'a> = (&'a mut [i8], &'a mut [f32], &'a mut [i32]);

impl Activations {
    fn quantize(x: &[f32], m: usize, k: usize) -> Activations {
        let kb = k / QK_K;
        // Products take token blocks two at a time; an odd last one is paired with zeros.
        let blocks = m.div_ceil(2 * TILE) * 2;
        let mut acts = Activations {
            m,
            kb,
            quants: vec![0; blocks * kb * SUPERBLOCK_BYTES],
            scales: vec![0.0; blocks * kb * TILE],
            sub_sums: vec![0; blocks * kb * 4 * TILE],
        };
        // One task per 16-token block, on candle's pool: each owns its block's slices. (On
        // the calling thread alone this was 2-3% of a prompt with the other core idle.)
        let tasks: Vec<Mutex<BlockSlices>> = acts
            .quants
            .chunks_mut(kb * SUPERBLOCK_BYTES)
            .zip(acts.scales.chunks_mut(kb * TILE))
            .zip(acts.sub_sums.chunks_mut(kb * 4 * TILE))
            .take(m.div_ceil(TILE))
            .map(|((quants, scales), sub_sums)| Mutex::new((quants, scales, sub_sums)))
            .collect();
        barrier_pool().execute_chunked(tasks.len(), |range| {
            let mut q = [0i8; QK_K];
            let mut sums = [0i32; 8];
            for block in range {
                let mut slices = tasks[block].lock().unwrap_or_else(|e| e.into_inner());
                let (quants, scales, sub_sums) = &mut *slices;
                let rows = &x[block * TILE * k..((block + 1) * TILE).min(m) * k];
                for (lane, values) in rows.chunks_exact(k).enumerate() {
                    for (b, values) in values.chunks_exact(QK_K).enumerate() {
                        scales[b * TILE + lane] = quantize_q8k(values, &mut q, &mut sums);
                        let quants = &mut quants[b * SUPERBLOCK_BYTES..][..SUPERBLOCK_BYTES];
                        for (group, four) in q.chunks_exact(4).enumerate() {
                            let at = position(group * 4) + lane * 4;
                            quants[at..at + 4].copy_from_slice(four);
                        }
                        for pair in 0..4 {
                            let (low, high) = (sums[2 * pair], sums[2 * pair + 1]);
                            sub_sums[(b * 4 + pair) * TILE + lane] = (low & 0xFFFF) | (high << 16);
                        }
                    }
                }
            }
        });
        drop(tasks);
        acts
    }

    /// Pairs of 16-token blocks.
    fn pairs(&self) -> usize {
        self.m.div_ceil(2 * TILE)
    }
}

/// Where value `k` of a superblock sits in its 4 x 1,024 bytes of tile operands, for token 0
/// (each token adds 4). Quarter 2h holds k = 128h + [0, 32) then 128h + [64, 96), quarter
/// 2h + 1 holds k = 128h + [32, 64) then 128h + [96, 128): the low and high nibbles of
/// a `Q4_K` block's bytes 64h .. 64h + 64, in byte order.
fn position(k: usize) -> usize {
    let (half, r) = (k / 128, k % 128);
    let quarter = 2 * half + (r / 32) % 2;
    let p = (r / 64) * 32 + r % 32;
    quarter * TILE_BYTES + (p / 4) * 64 + p % 4
}

/// candle's (and ggml's) `Q8_K` quantization of 256 values: `d` is returned, `q` filled.
pub(crate) fn quantize_q8k(x: &[f32], q: &mut [i8; QK_K], sub_sums: &mut [i32; 8]) -> f32 {
    // The first value of the largest magnitude sets the sign of the scale, as in ggml.
    let max = platform::largest(x);
    if max == 0.0 {
        q.fill(0);
        sub_sums.fill(0);
        return 0.0;
    }
    let iscale = -127f32 / max;
    platform::quantize(x, iscale, q, sub_sums);
    1.0 / iscale
}

/// Every matrix's `[m, n]` output, one task per group of 16-row stripes, on candle's thread
/// pool.
fn multiply(mats: &[Matrix], acts: &Activations) -> Vec<Vec<f32>> {
    let m = acts.m;
    // Not zeroed: every element is written below (zeroing them was 5% of a prompt's time).
    let mut outputs: Vec<Vec<f32>> = mats
        .iter()
        .map(|mat| Vec::with_capacity(m * mat.n))
        .collect();
    // A task is a group of stripes of one matrix. The group's expanded weights stay in L2
    // while each pair of token blocks is read once for all of them: one stripe per task
    // read every activation again from L3 for every 16 rows, and waited on it.
    let group = (STRIPES_IN_L2 / (acts.kb * 2 * SUPERBLOCK_BYTES)).clamp(1, 8);
    let mut tasks = Vec::new();
    for (i, mat) in mats.iter().enumerate() {
        let stripes = mat.n / TILE;
        tasks.extend(
            (0..stripes)
                .step_by(group)
                .map(|first| (i, first..(first + group).min(stripes))),
        );
    }
    // Each task writes only its own columns of one output: disjoint, so the pointers are
    // shared as addresses and written through without a lock.
    let outs: Vec<(usize, usize)> = outputs
        .iter_mut()
        .map(|o| (o.as_mut_ptr() as usize, o.capacity()))
        .collect();
    barrier_pool().execute_chunked(tasks.len(), |range| {
        let mut stripes: Vec<Stripe> = (0..group).map(|_| Stripe::new(acts.kb)).collect();
        platform::with_tiles(|| {
            for (i, task) in &tasks[range] {
                let mat = &mats[*i];
                for (stripe, index) in stripes.iter_mut().zip(task.clone()) {
                    stripe.expand(mat, index * TILE);
                }
                let (ptr, capacity) = outs[*i];
                for pair in 0..acts.pairs() {
                    for (stripe, index) in stripes.iter().zip(task.clone()) {
                        let tiles = platform::product(stripe, acts, pair);
                        for (half, tile) in tiles.iter().enumerate() {
                            let block = 2 * pair + half;
                            let rows = m.saturating_sub(block * TILE).min(TILE);
                            for (token, values) in tile.iter().enumerate().take(rows) {
                                let at = (block * TILE + token) * mat.n + index * TILE;
                                assert!(at + TILE <= capacity);
                                // SAFETY: in bounds (checked); columns index*16 .. index*16
                                // + 16 of output i are written by this task alone.
                                unsafe {
                                    std::ptr::copy_nonoverlapping(
                                        values.as_ptr(),
                                        (ptr as *mut f32).add(at),
                                        TILE,
                                    )
                                };
                            }
                        }
                    }
                }
            }
        });
    });
    for (out, mat) in outputs.iter_mut().zip(mats) {
        // SAFETY: the tasks wrote every element: 16 columns per stripe, every token.
        unsafe { out.set_len(m * mat.n) };
    }
    outputs
}

/// Sixteen weight rows expanded to tile operands: `sc * q` as low and high bytes per value,
/// and the per-row superblock scales.
struct Stripe {
    kind: Kind,
    kb: usize,
    /// `[superblock][quarter][16 rows][64]`, values in [`position`] order.
    low: Vec<u8>,
    high: Vec<u8>,
    /// `[superblock][16 rows]`: `d`, and for `Q4_K` `dmin`.
    d: Vec<f32>,
    dmin: Vec<f32>,
    /// `[superblock][16 rows][pair]`: `Q4_K` sub-block minimums 2p and 2p + 1 as i16 halves.
    mins: Vec<i32>,
}

impl Stripe {
    fn new(kb: usize) -> Stripe {
        Stripe {
            kind: Kind::Q4K,
            kb,
            low: vec![0; kb * SUPERBLOCK_BYTES],
            high: vec![0; kb * SUPERBLOCK_BYTES],
            d: vec![0.0; kb * TILE],
            dmin: vec![0.0; kb * TILE],
            mins: vec![0; kb * TILE * 4],
        }
    }

    fn expand(&mut self, mat: &Matrix, first_row: usize) {
        self.kind = mat.kind;
        let size = mat.kind.block_bytes();
        for row in 0..TILE {
            let blocks = &mat.bytes[(first_row + row) * self.kb * size..][..self.kb * size];
            for (b, block) in blocks.chunks_exact(size).enumerate() {
                let at = b * TILE + row;
                match mat.kind {
                    Kind::Q4K => {
                        self.d[at] = f16_at(block, 0);
                        self.dmin[at] = f16_at(block, 2);
                        let (scales, mins) = q4k_scales(block[4..16].try_into().expect("12"));
                        for p in 0..4 {
                            self.mins[at * 4 + p] =
                                mins[2 * p] as i32 | (mins[2 * p + 1] as i32) << 16;
                        }
                        platform::expand_q4k(block, &scales, self, b, row);
                    }
                    Kind::Q6K => {
                        self.d[at] = f16_at(block, 208);
                        platform::expand_q6k(block, self, b, row);
                    }
                }
            }
        }
    }

    /// The 64 bytes of one row of one quarter, in the low and the high plane.
    fn rows_mut(&mut self, b: usize, quarter: usize, row: usize) -> (&mut [u8], &mut [u8]) {
        let at = b * SUPERBLOCK_BYTES + quarter * TILE_BYTES + row * 64;
        (&mut self.low[at..at + 64], &mut self.high[at..at + 64])
    }
}

fn f16_at(block: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

/// `Q4_K`'s eight 6-bit scales and minimums, packed in 12 bytes (ggml's `get_scale_min_k4`).
fn q4k_scales(packed: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            scales[j] = packed[j] & 63;
            mins[j] = packed[j + 4] & 63;
        } else {
            scales[j] = (packed[j + 4] & 0x0F) | ((packed[j - 4] >> 6) << 4);
            mins[j] = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
        }
    }
    (scales, mins)
}

/// The two 32-value sub-blocks of a `Q4_K` quarter's halves, following [`position`].
fn q4k_subs(quarter: usize) -> [usize; 2] {
    let (half, odd) = (quarter / 2, quarter % 2);
    [4 * half + odd, 4 * half + 2 + odd]
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod platform {
    use super::*;
    use std::arch::asm;
    use std::arch::x86_64::*;

    pub(super) fn enable() -> bool {
        if !(is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni"))
        {
            return false;
        }
        // CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
        let leaf = __cpuid_count(7, 0);
        if leaf.edx & (0b11 << 24) != 0b11 << 24 {
            return false;
        }
        // Linux hands out the 8 KiB tile state only to processes that ask for it.
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: a plain system call with integer arguments.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }

    /// Palette 1, eight tiles of 16 rows x 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// Runs `work` with the tiles configured on this thread, then puts back the
    /// configuration it found: candle's own AMX kernel configures each thread once and
    /// counts on it staying (it faulted with an illegal instruction after a release here).
    /// A thread left with no configuration releases its tiles, which otherwise cost 8 KiB
    /// more at every context switch.
    pub(super) fn with_tiles(work: impl FnOnce()) {
        let blank = || TileConfig {
            palette: 0,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        let mut found = blank();
        let mut ours = blank();
        ours.palette = 1;
        for t in 0..8 {
            ours.bytes_per_row[t] = 64;
            ours.rows[t] = TILE as u8;
        }
        // SAFETY: `enable` succeeded (callers check `available`); both configs are valid.
        unsafe {
            asm!("sttilecfg [{}]", in(reg) &mut found, options(nostack));
            asm!("ldtilecfg [{}]", in(reg) &ours, options(nostack, readonly));
        }
        work();
        unsafe {
            if found.palette == 0 {
                asm!("tilerelease", options(nostack, nomem));
            } else {
                asm!("ldtilecfg [{}]", in(reg) &found, options(nostack, readonly));
            }
        }
    }

    pub(super) fn largest(x: &[f32]) -> f32 {
        // SAFETY: `available` checked AVX-512F.
        unsafe { largest_avx512(x) }
    }

    /// The first value of the largest magnitude (0 when all are 0, or for NaN input, which
    /// then quantizes to zeros).
    #[target_feature(enable = "avx512f")]
    unsafe fn largest_avx512(x: &[f32]) -> f32 {
        assert_eq!(x.len(), QK_K);
        // SAFETY (loads): 16 vectors of 16 inside `x`.
        let load = |i: usize| unsafe { _mm512_abs_ps(_mm512_loadu_ps(x.as_ptr().add(i * 16))) };
        let mut most = _mm512_setzero_ps();
        for i in 0..QK_K / 16 {
            most = _mm512_max_ps(most, load(i));
        }
        let amax = _mm512_reduce_max_ps(most);
        if amax == 0.0 {
            return 0.0;
        }
        let target = _mm512_set1_ps(amax);
        for i in 0..QK_K / 16 {
            let hits = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(load(i), target);
            if hits != 0 {
                return x[i * 16 + hits.trailing_zeros() as usize];
            }
        }
        0.0
    }

    pub(super) fn quantize(x: &[f32], iscale: f32, q: &mut [i8; QK_K], sub_sums: &mut [i32; 8]) {
        // SAFETY: `available` checked AVX-512F.
        unsafe { quantize_avx512(x, iscale, q, sub_sums) }
    }

    /// `round(iscale * x)` with ties away from zero (Rust's and ggml's `round`), clamped.
    #[target_feature(enable = "avx512f")]
    unsafe fn quantize_avx512(x: &[f32], iscale: f32, q: &mut [i8; QK_K], sub_sums: &mut [i32; 8]) {
        assert_eq!(x.len(), QK_K);
        let scale = _mm512_set1_ps(iscale);
        let half = _mm512_set1_ps(0.5);
        let sign_bit = _mm512_set1_epi32(i32::MIN);
        let one = _mm512_set1_ps(1.0);
        *sub_sums = [0; 8];
        for i in 0..QK_K / 16 {
            unsafe {
                let v = _mm512_mul_ps(_mm512_loadu_ps(x.as_ptr().add(i * 16)), scale);
                let whole = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
                let frac = _mm512_abs_ps(_mm512_sub_ps(v, whole));
                let away = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(frac, half);
                let step = _mm512_castsi512_ps(_mm512_or_si512(
                    _mm512_and_si512(_mm512_castps_si512(v), sign_bit),
                    _mm512_castps_si512(one),
                ));
                let rounded = _mm512_mask_add_ps(whole, away, whole, step);
                let clamped = _mm512_min_ps(
                    _mm512_max_ps(rounded, _mm512_set1_ps(-128.0)),
                    _mm512_set1_ps(127.0),
                );
                let ints = _mm512_cvttps_epi32(clamped);
                sub_sums[i / 2] += _mm512_reduce_add_epi32(ints);
                _mm_storeu_si128(
                    q.as_mut_ptr().add(i * 16) as *mut __m128i,
                    _mm512_cvtepi32_epi8(ints),
                );
            }
        }
    }

    pub(super) fn expand_q4k(
        block: &[u8],
        scales: &[u8; 8],
        stripe: &mut Stripe,
        b: usize,
        row: usize,
    ) {
        // SAFETY: `available` checked AVX-512BW.
        unsafe { expand_q4k_avx512(block, scales, stripe, b, row) }
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn expand_q4k_avx512(
        block: &[u8],
        scales: &[u8; 8],
        stripe: &mut Stripe,
        b: usize,
        row: usize,
    ) {
        let qs = &block[16..Q4K_BLOCK_BYTES];
        let nibble = _mm512_set1_epi8(0x0F);
        for half in 0..2 {
            // SAFETY: 64 bytes of the 128 in `qs`.
            let bytes = unsafe { _mm512_loadu_si512(qs.as_ptr().add(half * 64) as *const _) };
            let values = [
                _mm512_and_si512(bytes, nibble),
                _mm512_and_si512(_mm512_srli_epi16::<4>(bytes), nibble),
            ];
            for (odd, q) in values.into_iter().enumerate() {
                let quarter = 2 * half + odd;
                let [first, second] = q4k_subs(quarter);
                let s = _mm512_inserti64x4::<1>(
                    _mm512_set1_epi16(scales[first] as i16),
                    _mm256_set1_epi16(scales[second] as i16),
                );
                let even = _mm512_maddubs_epi16(q, s);
                let odd_products = _mm512_maddubs_epi16(q, _mm512_slli_epi16::<8>(s));
                store_planes(stripe, b, quarter, row, even, odd_products);
            }
        }
    }

    pub(super) fn expand_q6k(block: &[u8], stripe: &mut Stripe, b: usize, row: usize) {
        // SAFETY: `available` checked AVX-512BW.
        unsafe { expand_q6k_avx512(block, stripe, b, row) }
    }

    /// The 16-bit lanes of each `Q6_K` quarter mapped to their sub-block's scale.
    const Q6K_LANE_SUBS: [[i16; 32]; 4] = {
        let mut table = [[0i16; 32]; 4];
        let mut quarter = 0;
        while quarter < 4 {
            let (half, odd) = (quarter / 2, quarter % 2);
            let first = 8 * half + 2 * odd;
            let subs = [first, first + 1, first + 4, first + 5];
            let mut lane = 0;
            while lane < 32 {
                table[quarter][lane] = subs[lane / 8] as i16;
                lane += 1;
            }
            quarter += 1;
        }
        table
    };

    /// 32 bytes at `p` in both halves of a register.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn twice(p: *const u8) -> __m512i {
        // SAFETY: the caller passes 32 readable bytes.
        let half = unsafe { _mm256_loadu_si256(p as *const _) };
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(half), half)
    }

    /// Shift counts per 16-bit lane: the first 32 bytes take one, the last 32 another.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn shifts(first: i16, second: i16) -> __m512i {
        _mm512_inserti64x4::<1>(_mm512_set1_epi16(first), _mm256_set1_epi16(second))
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn expand_q6k_avx512(block: &[u8], stripe: &mut Stripe, b: usize, row: usize) {
        assert!(block.len() >= Q6K_BLOCK_BYTES);
        let (ql, qh, sc) = (&block[..128], &block[128..192], &block[192..208]);
        // SAFETY: 16 bytes of scales.
        let scales = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(unsafe {
            _mm_loadu_si128(sc.as_ptr() as *const _)
        }));
        for half in 0..2 {
            for odd in 0..2 {
                let quarter = 2 * half + odd;
                // SAFETY: 32 bytes from offsets at most 96 of `ql` and 32 of `qh`.
                let (low, high) = unsafe {
                    (
                        twice(ql[half * 64 + odd * 32..].as_ptr()),
                        twice(qh[half * 32..].as_ptr()),
                    )
                };
                let low =
                    _mm512_and_si512(_mm512_srlv_epi16(low, shifts(0, 4)), _mm512_set1_epi8(0x0F));
                let shift = 2 * odd as i16;
                let high = _mm512_and_si512(
                    _mm512_srlv_epi16(high, shifts(shift, shift + 4)),
                    _mm512_set1_epi8(0x03),
                );
                let q = _mm512_or_si512(low, _mm512_slli_epi16::<4>(high));
                // SAFETY: 64 bytes of the table.
                let index =
                    unsafe { _mm512_loadu_si512(Q6K_LANE_SUBS[quarter].as_ptr() as *const _) };
                let s = _mm512_permutexvar_epi16(index, scales);
                // q - 32 is signed: maddubs takes q unsigned and the signed scale, and the
                // 32 * scale is taken off in 16 bits.
                let offset = _mm512_slli_epi16::<5>(s);
                let even = _mm512_sub_epi16(
                    _mm512_maddubs_epi16(q, _mm512_and_si512(s, _mm512_set1_epi16(0xFF))),
                    offset,
                );
                let odd_products =
                    _mm512_sub_epi16(_mm512_maddubs_epi16(q, _mm512_slli_epi16::<8>(s)), offset);
                store_planes(stripe, b, quarter, row, even, odd_products);
            }
        }
    }

    /// Splits 16-bit products of even and odd bytes into a low-byte plane (unsigned) and a
    /// high-byte plane (two's complement, shifted arithmetically).
    #[target_feature(enable = "avx512f,avx512bw")]
    fn store_planes(
        stripe: &mut Stripe,
        b: usize,
        quarter: usize,
        row: usize,
        even: __m512i,
        odd: __m512i,
    ) {
        const ODD_BYTES: u64 = 0xAAAA_AAAA_AAAA_AAAA;
        let low = _mm512_mask_blend_epi8(ODD_BYTES, even, _mm512_slli_epi16::<8>(odd));
        let high = _mm512_mask_blend_epi8(ODD_BYTES, _mm512_srai_epi16::<8>(even), odd);
        let (low_row, high_row) = stripe.rows_mut(b, quarter, row);
        // SAFETY: both rows are 64 bytes.
        unsafe {
            _mm512_storeu_si512(low_row.as_mut_ptr() as *mut _, low);
            _mm512_storeu_si512(high_row.as_mut_ptr() as *mut _, high);
        }
    }

    /// One 16-row stripe times tokens 32p .. 32p + 32 over all of k: `[block][token][row]`.
    pub(super) fn product(
        stripe: &Stripe,
        acts: &Activations,
        pair: usize,
    ) -> [[[f32; TILE]; TILE]; 2] {
        // SAFETY: `available` checked AVX-512 and AMX; tiles are configured by `with_tiles`.
        unsafe { product_amx(stripe, acts, pair) }
    }

    /// The integer sums of one superblock: `[low, high][block][row][token]`.
    #[repr(C, align(64))]
    struct Sums([[[i32; TILE]; TILE]; 4]);

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn product_amx(
        stripe: &Stripe,
        acts: &Activations,
        pair: usize,
    ) -> [[[f32; TILE]; TILE]; 2] {
        // Written by the tile stores before they are read: zeroing 8 KiB per call was
        // measurable.
        let mut sums = [const { std::mem::MaybeUninit::<Sums>::uninit() }; 2];
        let mut acc = [[_mm512_setzero_ps(); TILE]; 2];
        let kb = stripe.kb;
        let first = 2 * pair * kb;
        // SAFETY (all three calls): superblocks inside the stripe and the pair's blocks.
        unsafe { tile_sums(stripe, acts, first, 0, &mut sums[0]) };
        for b in 0..kb {
            // The tile unit works on the next superblock while the vector units scale this
            // one: the sums go through two buffers.
            if b + 1 < kb {
                unsafe { tile_sums(stripe, acts, first, b + 1, &mut sums[(b + 1) % 2]) };
            }
            // SAFETY: `tile_sums` wrote all 4 KiB of this buffer.
            let sums = unsafe { &sums[b % 2].assume_init_ref().0 };
            for (half, acc) in acc.iter_mut().enumerate() {
                let sb = first + half * kb + b;
                unsafe { scale_superblock(stripe, acts, b, sb, &sums[half], &sums[2 + half], acc) };
            }
        }
        let mut out = [[[0f32; TILE]; TILE]; 2];
        for (block, acc) in out.iter_mut().zip(acc) {
            for (row, column) in block.iter_mut().zip(transpose(acc)) {
                // SAFETY: 16 floats.
                unsafe { _mm512_storeu_ps(row.as_mut_ptr(), column) };
            }
        }
        out
    }

    /// Superblock `b` of the stripe times the two token blocks starting at superblock
    /// `first` of `acts`, into `sums`.
    #[inline(always)]
    unsafe fn tile_sums(
        stripe: &Stripe,
        acts: &Activations,
        first: usize,
        b: usize,
        sums: &mut std::mem::MaybeUninit<Sums>,
    ) {
        let kb = stripe.kb;
        let low = stripe.low[b * SUPERBLOCK_BYTES..].as_ptr();
        let high = stripe.high[b * SUPERBLOCK_BYTES..].as_ptr();
        let x0 = acts.quants[(first + b) * SUPERBLOCK_BYTES..].as_ptr();
        let x1 = acts.quants[(first + kb + b) * SUPERBLOCK_BYTES..].as_ptr();
        // tmm0/1: weight low/high bytes (A); tmm2/3: two token blocks (B); tmm4-7: sums
        // (C), low and high for each block. Every weight tile loaded serves both blocks.
        // The low plane is unsigned (tdpbusd); Q6_K's high plane is signed (tdpbssd).
        // SAFETY: each operand is 4 x 1,024 bytes inside its buffer; `sums` is 4 KiB.
        unsafe {
            macro_rules! quarter {
                ($high_product:literal, $offset:literal) => {
                    concat!(
                        "tileloadd tmm0, [{low} + {stride}*1 + ",
                        $offset,
                        "]\n",
                        "tileloadd tmm2, [{x0} + {stride}*1 + ",
                        $offset,
                        "]\n",
                        "tdpbusd tmm4, tmm0, tmm2\n",
                        "tileloadd tmm1, [{high} + {stride}*1 + ",
                        $offset,
                        "]\n",
                        $high_product,
                        " tmm5, tmm1, tmm2\n",
                        "tileloadd tmm3, [{x1} + {stride}*1 + ",
                        $offset,
                        "]\n",
                        "tdpbusd tmm6, tmm0, tmm3\n",
                        $high_product,
                        " tmm7, tmm1, tmm3\n",
                    )
                };
            }
            macro_rules! superblock {
                ($high_product:literal) => {
                    asm!(
                        "tilezero tmm4",
                        "tilezero tmm5",
                        "tilezero tmm6",
                        "tilezero tmm7",
                        quarter!($high_product, "0"),
                        quarter!($high_product, "1024"),
                        quarter!($high_product, "2048"),
                        quarter!($high_product, "3072"),
                        "tilestored [{sums} + {stride}*1], tmm4",
                        "tilestored [{sums} + {stride}*1 + 1024], tmm6",
                        "tilestored [{sums} + {stride}*1 + 2048], tmm5",
                        "tilestored [{sums} + {stride}*1 + 3072], tmm7",
                        x0 = in(reg) x0,
                        x1 = in(reg) x1,
                        low = in(reg) low,
                        high = in(reg) high,
                        sums = in(reg) sums.as_mut_ptr(),
                        stride = in(reg) 64usize,
                        options(nostack),
                    )
                };
            }
            match stripe.kind {
                Kind::Q4K => superblock!("tdpbusd"),
                Kind::Q6K => superblock!("tdpbssd"),
            }
        }
    }

    /// A 16 x 16 transpose of f32 in registers: rows become columns.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose(rows: [__m512; TILE]) -> [__m512; TILE] {
        // Pairs of rows interleaved by 32 bits, then by 64 bits: in each 128-bit lane L,
        // `by64[4b + c]` holds column 4L + c of rows 4b .. 4b + 4.
        let by32: [__m512; TILE] = std::array::from_fn(|i| {
            let (x, y) = (rows[i & !1], rows[i | 1]);
            if i % 2 == 0 {
                _mm512_unpacklo_ps(x, y)
            } else {
                _mm512_unpackhi_ps(x, y)
            }
        });
        let by64: [__m512; TILE] = std::array::from_fn(|i| {
            let (b, c) = (i / 4, i % 4);
            let (x, y) = (
                _mm512_castps_pd(by32[4 * b + c / 2]),
                _mm512_castps_pd(by32[4 * b + c / 2 + 2]),
            );
            _mm512_castpd_ps(if c % 2 == 0 {
                _mm512_unpacklo_pd(x, y)
            } else {
                _mm512_unpackhi_pd(x, y)
            })
        });
        // Then 128-bit lanes gathered across registers: column 4L + c takes lane L of
        // by64[c], by64[4 + c], by64[8 + c] and by64[12 + c].
        let mut columns = [_mm512_setzero_ps(); TILE];
        for c in 0..4 {
            let even0 = _mm512_shuffle_f32x4::<0b10_00_10_00>(by64[c], by64[4 + c]);
            let odd0 = _mm512_shuffle_f32x4::<0b11_01_11_01>(by64[c], by64[4 + c]);
            let even1 = _mm512_shuffle_f32x4::<0b10_00_10_00>(by64[8 + c], by64[12 + c]);
            let odd1 = _mm512_shuffle_f32x4::<0b11_01_11_01>(by64[8 + c], by64[12 + c]);
            columns[c] = _mm512_shuffle_f32x4::<0b10_00_10_00>(even0, even1);
            columns[4 + c] = _mm512_shuffle_f32x4::<0b10_00_10_00>(odd0, odd1);
            columns[8 + c] = _mm512_shuffle_f32x4::<0b11_01_11_01>(even0, even1);
            columns[12 + c] = _mm512_shuffle_f32x4::<0b11_01_11_01>(odd0, odd1);
        }
        columns
    }

    /// Adds superblock `b` of one token block (`sb` in `acts`) to `acc`, `[row]` of 16
    /// tokens: `d_token * (d_row * sum - dmin_row * sum of minimums)`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn scale_superblock(
        stripe: &Stripe,
        acts: &Activations,
        b: usize,
        sb: usize,
        low: &[[i32; TILE]; TILE],
        high: &[[i32; TILE]; TILE],
        acc: &mut [__m512; TILE],
    ) {
        // SAFETY: 16 floats and four rows of 16 i32 inside `acts`.
        let token_scales = unsafe { _mm512_loadu_ps(acts.scales[sb * TILE..].as_ptr()) };
        let d = &stripe.d[b * TILE..][..TILE];
        match stripe.kind {
            Kind::Q6K => {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let total = whole_sum(low, high, j);
                    let row = _mm512_mul_ps(_mm512_cvtepi32_ps(total), _mm512_set1_ps(d[j]));
                    *acc = _mm512_fmadd_ps(row, token_scales, *acc);
                }
            }
            Kind::Q4K => {
                let sub_sums = acts.sub_sums[sb * 4 * TILE..][..4 * TILE].as_ptr();
                let pairs: [__m512i; 4] = unsafe {
                    [
                        _mm512_loadu_si512(sub_sums as *const _),
                        _mm512_loadu_si512(sub_sums.add(TILE) as *const _),
                        _mm512_loadu_si512(sub_sums.add(2 * TILE) as *const _),
                        _mm512_loadu_si512(sub_sums.add(3 * TILE) as *const _),
                    ]
                };
                let dmin = &stripe.dmin[b * TILE..][..TILE];
                let mins = &stripe.mins[b * TILE * 4..][..TILE * 4];
                for (j, acc) in acc.iter_mut().enumerate() {
                    let total = whole_sum(low, high, j);
                    let mut min_sum = _mm512_setzero_si512();
                    for (p, pair) in pairs.iter().enumerate() {
                        min_sum =
                            _mm512_dpwssd_epi32(min_sum, *pair, _mm512_set1_epi32(mins[j * 4 + p]));
                    }
                    let row = _mm512_mul_ps(_mm512_cvtepi32_ps(total), _mm512_set1_ps(d[j]));
                    let row =
                        _mm512_fnmadd_ps(_mm512_cvtepi32_ps(min_sum), _mm512_set1_ps(dmin[j]), row);
                    *acc = _mm512_fmadd_ps(row, token_scales, *acc);
                }
            }
        }
    }

    /// Row `j` of the low-byte sums plus 256 times row `j` of the high-byte sums.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn whole_sum(low: &[[i32; TILE]; TILE], high: &[[i32; TILE]; TILE], j: usize) -> __m512i {
        // SAFETY: row j of each.
        unsafe {
            let low = _mm512_loadu_si512(low[j].as_ptr() as *const _);
            let high = _mm512_loadu_si512(high[j].as_ptr() as *const _);
            _mm512_add_epi32(low, _mm512_slli_epi32::<8>(high))
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod platform {
    use super::*;

    pub(super) fn enable() -> bool {
        false
    }

    pub(super) fn with_tiles(_work: impl FnOnce()) {
        unreachable!("AMX is never enabled here")
    }

    pub(super) fn largest(_x: &[f32]) -> f32 {
        unreachable!("AMX is never enabled here")
    }

    pub(super) fn quantize(_: &[f32], _: f32, _: &mut [i8; QK_K], _: &mut [i32; 8]) {
        unreachable!("AMX is never enabled here")
    }

    pub(super) fn expand_q4k(_: &[u8], _: &[u8; 8], _: &mut Stripe, _: usize, _: usize) {
        unreachable!("AMX is never enabled here")
    }

    pub(super) fn expand_q6k(_: &[u8], _: &mut Stripe, _: usize, _: usize) {
        unreachable!("AMX is never enabled here")
    }

    pub(super) fn product(_: &Stripe, _: &Activations, _: usize) -> [[[f32; TILE]; TILE]; 2] {
        unreachable!("AMX is never enabled here")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module};

    fn quantized(rows: usize, cols: usize, dtype: GgmlDType, seed: f64) -> QTensor {
        let w = Tensor::randn(seed as f32 * 0.01, 0.05, (rows, cols), &Device::Cpu).expect("w");
        QTensor::quantize(&w, dtype).expect("quantize")
    }

    fn assert_close(ours: &Tensor, reference: &Tensor, what: &str) {
        let ours = ours.to_vec2::<f32>().expect("ours");
        let reference = reference.to_vec2::<f32>().expect("reference");
        let scale = reference.iter().flatten().fold(1f32, |a, v| a.max(v.abs()));
        for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
            for (j, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-5 * scale,
                    "{what}: [{i}][{j}] {x} vs {y}"
                );
            }
        }
    }

    /// Against candle's own product on the same quantized weights and the same `Q8_K`
    /// activations: the integer sums are the same, only f32 rounding may differ. 37 tokens
    /// leave a partial 16-token block and an odd one; 160 rows are ten stripes, a task of
    /// eight and one of two; q, k and v mix dtypes as Lynx's `Q4_K_M` layers do.
    #[test]
    fn matches_candles_qmatmul() {
        for (k, tokens) in [(512, 37), (256, 24), (256, 16), (768, 33)] {
            let mats = [
                quantized(160, k, GgmlDType::Q4K, 1.0),
                quantized(32, k, GgmlDType::Q6K, 2.0),
                quantized(16, k, GgmlDType::Q4K, 3.0),
            ]
            .map(std::sync::Arc::new);
            let refs: Vec<&QTensor> = mats.iter().map(|m| m.as_ref()).collect();
            let x = Tensor::randn(0f32, 1.0, (tokens, k), &Device::Cpu).expect("x");
            let Some(ours) = forward_all(&refs, &x).expect("forward") else {
                assert!(
                    !available(),
                    "AMX is available but the product was declined"
                );
                return;
            };
            for (i, (mat, ours)) in mats.iter().zip(&ours).enumerate() {
                let candle = QMatMul::from_arc(mat.clone())
                    .and_then(|m| m.forward(&x))
                    .expect("candle");
                assert_eq!(ours.dims(), candle.dims());
                let what = format!("{tokens} x {k}, matrix {i} ({:?})", mat.dtype());
                assert_close(ours, &candle, &what);
            }
        }
    }

    #[test]
    fn declines_what_it_does_not_cover() {
        let q4k = quantized(16, 256, GgmlDType::Q4K, 1.0);
        let few = Tensor::randn(0f32, 1.0, (MIN_TOKENS - 1, 256), &Device::Cpu).expect("x");
        assert!(
            forward_all(&[&q4k], &few).expect("few").is_none(),
            "decoding stays with candle"
        );
        let q8 = quantized(16, 256, GgmlDType::Q8_0, 1.0);
        let many = Tensor::randn(0f32, 1.0, (MIN_TOKENS, 256), &Device::Cpu).expect("x");
        assert!(
            forward_all(&[&q8], &many).expect("q8_0").is_none(),
            "only Q4_K and Q6_K"
        );
    }

    /// Byte for byte candle's `Q8_K`, ties included: with 127 and -127 both present the
    /// first one sets the sign, so the scale is exactly 1 and every x.5 is a tie.
    #[test]
    fn quantizes_activations_like_candle() {
        if !available() {
            // The quantizer is AVX-512 code that only this path runs; without AMX it never
            // runs, and `matches_candles_qmatmul` checks that the path declines.
            eprintln!("no AMX on this CPU: the kernel's quantizer is not used here");
            return;
        }
        let mut blocks: Vec<f32> = (0..QK_K).map(|i| (i as f32 - 128.0) / 2.0).collect();
        blocks[0] = -127.0;
        blocks[1] = 127.0;
        blocks.extend((0..QK_K).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013));
        blocks.extend(std::iter::repeat_n(0.0, QK_K));
        let t = Tensor::from_vec(blocks.clone(), blocks.len(), &Device::Cpu).expect("t");
        let candle = QTensor::quantize(&t, GgmlDType::Q8K).expect("q8k");
        let candle = candle.data().expect("bytes");
        for (b, (values, theirs)) in blocks
            .chunks_exact(QK_K)
            .zip(candle.chunks_exact(292))
            .enumerate()
        {
            let (mut q, mut sums) = ([0i8; QK_K], [0i32; 8]);
            let d = quantize_q8k(values, &mut q, &mut sums);
            assert_eq!(d.to_le_bytes(), theirs[..4], "block {b}: d");
            let bytes: Vec<u8> = q.iter().map(|&v| v as u8).collect();
            assert_eq!(bytes, theirs[4..4 + QK_K], "block {b}: quants");
            for (sub, &sum) in sums.iter().enumerate() {
                let sixteens = &theirs[4 + QK_K + sub * 4..][..4];
                let theirs = i16::from_le_bytes([sixteens[0], sixteens[1]]) as i32
                    + i16::from_le_bytes([sixteens[2], sixteens[3]]) as i32;
                assert_eq!(sum, theirs, "block {b}: sum of sub-block {sub}");
            }
        }
    }

    #[test]
    fn positions_cover_every_byte_once() {
        let mut seen = vec![false; QK_K];
        for k in 0..QK_K {
            let at = position(k);
            let slot = at / TILE_BYTES * 64 + (at % TILE_BYTES) / 64 * 4 + at % 4;
            assert!(!seen[slot], "k = {k} collides");
            seen[slot] = true;
        }
    }
}
