//! A Llama-architecture decoder over candle's tensor ops, loaded from GGUF or safetensors.
//!
//! Why not `candle_transformers::models::{llama, quantized_llama}`: the quantized model caps
//! every prompt at 4,096 positions (Lynx reads 8,000) and neither runs prompts of different
//! lengths in one batch. Here the projections and the MLP of all sequences in a batch run as
//! one matrix product (the weights are read once for all of them, which is what batching buys
//! on a memory-bound decoder), while attention runs per sequence against that sequence's own
//! KV cache. No padding ever enters a reduction, so a sequence's tokens do not depend on what
//! it was batched with. candle-transformers' models stay the reference in the tests.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_nn::ops::{rms_norm, silu, softmax_last_dim};
use candle_nn::rotary_emb::{rope, rope_i};
use candle_transformers::models::llama::{Llama3RopeConfig, LlamaConfig};

use crate::amx;
use crate::attention::DecodeAttention;
use crate::error::{LocalError, Result};
use crate::gguf::Gguf;
use crate::kquant_decode;
use crate::mask::ScaleAndMask;
use crate::q4_1::Q4_1Matrix;

/// Longest prompt slice fed in one forward pass: bounds the attention scores' memory
/// (heads x chunk x context) on long passages.
pub const PREFILL_CHUNK: usize = 512;

/// The dimensions a Llama checkpoint declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Dims {
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub context_length: usize,
    pub rms_eps: f64,
    pub rope_theta: f32,
}

/// How a checkpoint lays out the two halves that rotary embedding pairs up. llama.cpp's
/// converter permutes the query and key weights so that GGUF pairs neighbours; Hugging Face
/// checkpoints pair dimension i with i + head_dim/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RopePairs {
    Adjacent,
    Halves,
}

/// A weight matrix: candle's `QMatMul`, or on the CPU our faster kernel for `Q4_1`.
enum Linear {
    Candle(QMatMul),
    Q4_1(Q4_1Matrix),
}

impl Linear {
    fn dense(w: Tensor) -> Linear {
        Linear::Candle(QMatMul::Tensor(w))
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if let Some(t) = self.quantized()
            && let Some(mut y) = fused(&[t], x)?
        {
            return Ok(y.remove(0));
        }
        match self {
            Linear::Candle(m) => m.forward(x),
            Linear::Q4_1(m) => m.forward(x),
        }
    }

    /// The quantized matrix candle multiplies, if this is one.
    fn quantized(&self) -> Option<&QTensor> {
        match self {
            Linear::Candle(QMatMul::QTensor(t)) => Some(t),
            _ => None,
        }
    }

    /// Several matrices applied to the same input (q, k and v; gate and up): where one
    /// kernel takes all of them, the input is quantized once and the products run in one
    /// parallel region.
    fn forward_all<const N: usize>(
        linears: [&Linear; N],
        x: &Tensor,
    ) -> candle_core::Result<[Tensor; N]> {
        let quantized: Vec<&QTensor> = linears.iter().filter_map(|l| l.quantized()).collect();
        if quantized.len() == N
            && let Some(outputs) = fused(&quantized, x)?
            && let Ok(outputs) = <[Tensor; N]>::try_from(outputs)
        {
            return Ok(outputs);
        }
        let outputs = linears
            .iter()
            .map(|l| l.forward(x))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(outputs
            .try_into()
            .unwrap_or_else(|_| unreachable!("one output per matrix")))
    }
}

/// Prompts go to our AMX kernel where the CPU has it; otherwise, and for decoding, to
/// candle's x86 "fused" entry point where it takes the matrices, which stays on its VNNI
/// kernel. (`QMatMul` would send inputs of 32 rows or more to candle's own AMX kernel, whose
/// second packed copy of every weight takes 2.2x the Q4_K bytes and which was the slower one:
/// reports/BENCHMARKS.md, Lynx-8B's shape needed 19 GB instead of 10 and prefilled at 6.9
/// instead of 23 tokens/s.)
fn fused(mats: &[&QTensor], x: &Tensor) -> candle_core::Result<Option<Vec<Tensor>>> {
    if let Some(outputs) = amx::forward_all(mats, x)? {
        return Ok(Some(outputs));
    }
    if let Some(outputs) = kquant_decode::forward_all(mats, x)? {
        return Ok(Some(outputs));
    }
    QTensor::gemv_fused_shared_lhs(mats, x)
}

/// The token embedding table. A GGUF's stays quantized and each token's row is widened when
/// it is looked up: Lynx-8B's table is 0.3 GB in Q4_K against 2.1 GB in F32.
enum Embeddings {
    Quantized(Arc<QTensor>),
    Dense(Tensor),
}

impl Embeddings {
    fn lookup(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Embeddings::Quantized(table) => table.embedding(ids),
            Embeddings::Dense(table) => table.embedding(ids),
        }
    }
}

struct Block {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

pub struct Llama {
    dims: Dims,
    embeddings: Embeddings,
    blocks: Vec<Block>,
    final_norm: Tensor,
    lm_head: Linear,
    pairs: RopePairs,
    cos: Tensor,
    sin: Tensor,
    device: Device,
    dtype: DType,
    /// What the KV cache holds: the compute type by default (exactly the reference models'
    /// arithmetic), F16 to halve the cache as llama.cpp does.
    kv_dtype: DType,
}

impl std::fmt::Debug for Llama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama")
            .field("dims", &self.dims)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .field("kv_dtype", &self.kv_dtype)
            .finish_non_exhaustive()
    }
}

/// One sequence's KV cache, sized once for its prompt plus the tokens it may generate.
pub struct SequenceState {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
    capacity: usize,
}

impl std::fmt::Debug for SequenceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequenceState")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl SequenceState {
    /// Positions already in the cache.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets the positions after `len`, as after a forward pass that failed part-way: the
    /// next pass writes over whatever that one left in the cache.
    pub(crate) fn rewind(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl Llama {
    pub fn dims(&self) -> &Dims {
        &self.dims
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn kv_dtype(&self) -> DType {
        self.kv_dtype
    }

    /// Keeps the KV cache of sequences made from now on in `dtype` (F16, BF16 or F32). Keys
    /// and values are rounded to it when stored; attention still computes in the model's type.
    pub fn set_kv_dtype(&mut self, dtype: DType) -> Result<()> {
        if !matches!(dtype, DType::F16 | DType::BF16 | DType::F32) {
            return Err(LocalError::Request(format!(
                "a KV cache of {dtype:?} is not supported (F16, BF16 or F32)"
            )));
        }
        self.kv_dtype = dtype;
        Ok(())
    }

    /// Loads a GGUF checkpoint of architecture `llama`. Quantized matrices stay quantized,
    /// the token embeddings too (rows are widened per lookup).
    pub fn from_gguf(gguf: &Gguf, device: &Device) -> Result<Llama> {
        let arch = gguf.string("general.architecture")?;
        if arch != "llama" {
            return Err(LocalError::Unsupported {
                path: gguf.path().to_path_buf(),
                problem: format!(
                    "architecture `{arch}` is not supported (only `llama`: Llama, Lynx, SmolLM)"
                ),
            });
        }
        let heads = gguf.usize("llama.attention.head_count")?;
        let hidden = gguf.usize("llama.embedding_length")?;
        let dims = Dims {
            layers: gguf.usize("llama.block_count")?,
            hidden,
            heads,
            kv_heads: gguf.usize("llama.attention.head_count_kv")?,
            head_dim: gguf
                .usize("llama.rope.dimension_count")
                .unwrap_or(hidden / heads.max(1)),
            vocab: gguf.array_len("tokenizer.ggml.tokens")?,
            context_length: gguf.usize("llama.context_length")?,
            rms_eps: gguf.f64("llama.attention.layer_norm_rms_epsilon")?,
            rope_theta: gguf.f64("llama.rope.freq_base").unwrap_or(10_000.0) as f32,
        };
        check_dims(gguf.path(), &dims)?;

        let mut tensors = GgufTensors {
            gguf,
            reader: gguf.reader()?,
            device,
        };
        let mut blocks = Vec::with_capacity(dims.layers);
        for i in 0..dims.layers {
            let p = format!("blk.{i}");
            blocks.push(Block {
                attn_norm: tensors.dense(&format!("{p}.attn_norm.weight"))?,
                q: tensors.matmul(&format!("{p}.attn_q.weight"))?,
                k: tensors.matmul(&format!("{p}.attn_k.weight"))?,
                v: tensors.matmul(&format!("{p}.attn_v.weight"))?,
                o: tensors.matmul(&format!("{p}.attn_output.weight"))?,
                ffn_norm: tensors.dense(&format!("{p}.ffn_norm.weight"))?,
                gate: tensors.matmul(&format!("{p}.ffn_gate.weight"))?,
                up: tensors.matmul(&format!("{p}.ffn_up.weight"))?,
                down: tensors.matmul(&format!("{p}.ffn_down.weight"))?,
            });
        }
        let final_norm = tensors.dense("output_norm.weight")?;
        let embeddings = Arc::new(tensors.read("token_embd.weight")?);
        let has = |name: &str| gguf.content().tensor_infos.contains_key(name);
        // Llama 3.1 GGUFs carry their long-context rope correction as a tensor.
        let freq_factors = if has("rope_freqs.weight") {
            Some(tensors.dense("rope_freqs.weight")?.to_vec1::<f32>()?)
        } else {
            None
        };
        // Tied embeddings: no `output.weight`, the embedding matrix projects back to tokens,
        // held once for both.
        let lm_head = if has("output.weight") {
            tensors.matmul("output.weight")?
        } else {
            tensors.linear("token_embd.weight", embeddings.clone())?
        };
        let (cos, sin) = rope_tables(&dims, freq_factors.as_deref(), DType::F32, device)?;
        Ok(Llama {
            dims,
            embeddings: Embeddings::Quantized(embeddings),
            blocks,
            final_norm,
            lm_head,
            pairs: RopePairs::Adjacent,
            cos,
            sin,
            device: device.clone(),
            dtype: DType::F32,
            kv_dtype: DType::F32,
        })
    }

    /// Loads a Hugging Face Llama checkpoint (`config.json` plus one or more safetensors
    /// shards) in `dtype`.
    pub fn from_safetensors(
        config_path: &Path,
        shards: &[PathBuf],
        dtype: DType,
        device: &Device,
    ) -> Result<Llama> {
        let config = read_config(config_path)?;
        let dims = Dims {
            layers: config.num_hidden_layers,
            hidden: config.hidden_size,
            heads: config.num_attention_heads,
            kv_heads: config.num_key_value_heads(),
            head_dim: config.hidden_size / config.num_attention_heads.max(1),
            vocab: config.vocab_size,
            context_length: config.max_position_embeddings,
            rms_eps: config.rms_norm_eps,
            rope_theta: config.rope_theta,
        };
        check_dims(config_path, &dims)?;

        // Memory-mapped: a tensor's bytes are read from the page cache as it is converted to
        // `dtype` on `device`, so only the converted weights take memory of their own
        // (reading the shards whole first held them twice).
        let mapped = shards
            .iter()
            .map(|shard| {
                // SAFETY: the mapping is only read, and only while loading; a shard changed
                // underneath by another process gives wrong weights, as a file read half-way
                // through a rewrite would.
                #[allow(unsafe_code)]
                let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[shard], dtype, device) };
                vb.map(|vb| (shard, vb))
                    .map_err(|e| LocalError::Unsupported {
                        path: shard.clone(),
                        problem: format!("not a readable safetensors file: {e}"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let take = |name: &str| -> Result<Tensor> {
            let Some((shard, vb)) = mapped.iter().find(|(_, vb)| vb.contains_tensor(name)) else {
                return Err(LocalError::Unsupported {
                    path: config_path.to_path_buf(),
                    problem: format!("no tensor `{name}` in the safetensors files {shards:?}"),
                });
            };
            vb.get_unchecked(name).map_err(|source| LocalError::Tensor {
                path: shard.to_path_buf(),
                name: name.to_string(),
                source: Box::new(source),
            })
        };
        let mut blocks = Vec::with_capacity(dims.layers);
        for i in 0..dims.layers {
            let p = format!("model.layers.{i}");
            let linear = |name: &str| take(&format!("{p}.{name}.weight")).map(Linear::dense);
            blocks.push(Block {
                q: linear("self_attn.q_proj")?,
                k: linear("self_attn.k_proj")?,
                v: linear("self_attn.v_proj")?,
                o: linear("self_attn.o_proj")?,
                gate: linear("mlp.gate_proj")?,
                up: linear("mlp.up_proj")?,
                down: linear("mlp.down_proj")?,
                attn_norm: take(&format!("{p}.input_layernorm.weight"))?,
                ffn_norm: take(&format!("{p}.post_attention_layernorm.weight"))?,
            });
        }
        let embeddings = take("model.embed_tokens.weight")?;
        let final_norm = take("model.norm.weight")?;
        let lm_head = match take("lm_head.weight") {
            Ok(w) => w,
            Err(_) if config.tie_word_embeddings.unwrap_or(false) => embeddings.clone(),
            Err(e) => return Err(e),
        };
        let freq_factors = config
            .rope_scaling
            .as_ref()
            .filter(|s| {
                matches!(
                    s.rope_type,
                    candle_transformers::models::llama::Llama3RopeType::Llama3
                )
            })
            .map(|s| llama3_freq_factors(s, &dims));
        let (cos, sin) = rope_tables(&dims, freq_factors.as_deref(), dtype, device)?;
        Ok(Llama {
            dims,
            embeddings: Embeddings::Dense(embeddings),
            blocks,
            final_norm,
            lm_head: Linear::dense(lm_head),
            pairs: RopePairs::Halves,
            cos,
            sin,
            device: device.clone(),
            dtype,
            kv_dtype: dtype,
        })
    }

    /// Random weights of the given shape, made on `device`: real throughput figures for a
    /// model size (Lynx-8B's, say) without any download. For benchmarks; it judges nothing.
    pub fn random(dims: Dims, dtype: DType, device: &Device) -> Result<Llama> {
        check_dims(Path::new("<random>"), &dims)?;
        let d = &dims;
        let kv = d.kv_heads * d.head_dim;
        let ffn = d.hidden * 7 / 2;
        let matrix = |rows: usize, cols: usize| -> Result<Linear> {
            let w = Tensor::randn(0f32, 0.02, (rows, cols), device)?.to_dtype(dtype)?;
            Ok(Linear::dense(w))
        };
        let ones = || Tensor::ones(d.hidden, dtype, device);
        let mut blocks = Vec::with_capacity(d.layers);
        for _ in 0..d.layers {
            blocks.push(Block {
                attn_norm: ones()?,
                q: matrix(d.heads * d.head_dim, d.hidden)?,
                k: matrix(kv, d.hidden)?,
                v: matrix(kv, d.hidden)?,
                o: matrix(d.hidden, d.heads * d.head_dim)?,
                ffn_norm: ones()?,
                gate: matrix(ffn, d.hidden)?,
                up: matrix(ffn, d.hidden)?,
                down: matrix(d.hidden, ffn)?,
            });
        }
        let embeddings = Tensor::randn(0f32, 0.02, (d.vocab, d.hidden), device)?.to_dtype(dtype)?;
        let (cos, sin) = rope_tables(d, None, dtype, device)?;
        Ok(Llama {
            lm_head: matrix(d.vocab, d.hidden)?,
            final_norm: ones()?,
            embeddings: Embeddings::Dense(embeddings),
            blocks,
            pairs: RopePairs::Halves,
            cos,
            sin,
            device: device.clone(),
            dtype,
            kv_dtype: dtype,
            dims,
        })
    }

    /// An empty KV cache for a sequence of at most `capacity` positions.
    pub fn new_sequence(&self, capacity: usize) -> Result<SequenceState> {
        let d = &self.dims;
        let shape = (1, d.kv_heads, capacity, d.head_dim);
        let mut keys = Vec::with_capacity(d.layers);
        let mut values = Vec::with_capacity(d.layers);
        for _ in 0..d.layers {
            keys.push(Tensor::zeros(shape, self.kv_dtype, &self.device)?);
            values.push(Tensor::zeros(shape, self.kv_dtype, &self.device)?);
        }
        Ok(SequenceState {
            keys,
            values,
            len: 0,
            capacity,
        })
    }

    /// Feeds each sequence its next tokens (a prompt chunk, or the last generated token)
    /// and returns the logits after each sequence's last token: `[sequences, vocab]`, F32.
    pub fn forward(&self, steps: &mut [(&[u32], &mut SequenceState)]) -> Result<Tensor> {
        let x = self.hidden_states(steps)?;
        let mut last = Vec::with_capacity(steps.len());
        let mut end = 0u32;
        for (tokens, _) in steps.iter() {
            end += tokens.len() as u32;
            last.push(end - 1);
        }
        let last = Tensor::new(last, &self.device)?;
        self.logits(&x.index_select(&last, 0)?)
    }

    /// Feeds one sequence `tokens` and returns the logits after every one of them,
    /// `[tokens, vocab]` F32: a teacher-forced prompt, position by position, to compare
    /// with another implementation's.
    pub fn forward_every_position(
        &self,
        tokens: &[u32],
        state: &mut SequenceState,
    ) -> Result<Tensor> {
        let x = self.hidden_states(&mut [(tokens, state)])?;
        self.logits(&x)
    }

    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let x = rms_norm(x, &self.final_norm, self.dims.rms_eps as f32)?;
        Ok(self.lm_head.forward(&x)?.to_dtype(DType::F32)?)
    }

    /// The last block's output for every token fed, `[tokens, hidden]`; each sequence's
    /// cache advances by its tokens.
    fn hidden_states(&self, steps: &mut [(&[u32], &mut SequenceState)]) -> Result<Tensor> {
        let d = &self.dims;
        for (tokens, state) in steps.iter() {
            if tokens.is_empty() || state.len + tokens.len() > state.capacity {
                return Err(LocalError::from(candle_core::Error::Msg(format!(
                    "cannot feed {} tokens to a sequence holding {} of {} positions",
                    tokens.len(),
                    state.len,
                    state.capacity
                ))));
            }
        }
        let ids: Vec<u32> = steps.iter().flat_map(|(t, _)| t.iter().copied()).collect();
        let n = ids.len();
        let ids = Tensor::from_vec(ids, n, &self.device)?;
        let masks = steps
            .iter()
            .map(|(tokens, state)| self.causal_mask(tokens.len(), state.len))
            .collect::<Result<Vec<_>>>()?;
        let eps = d.rms_eps as f32;
        let mut x = self.embeddings.lookup(&ids)?.to_dtype(self.dtype)?;
        for (layer, block) in self.blocks.iter().enumerate() {
            let h = rms_norm(&x, &block.attn_norm, eps)?;
            let [q, k, v] = Linear::forward_all([&block.q, &block.k, &block.v], &h)?;
            let mut outputs = Vec::with_capacity(steps.len());
            let mut row = 0;
            for ((tokens, state), mask) in steps.iter_mut().zip(&masks) {
                let t = tokens.len();
                outputs.push(self.attend(
                    layer,
                    &q.narrow(0, row, t)?,
                    &k.narrow(0, row, t)?,
                    &v.narrow(0, row, t)?,
                    mask.as_ref(),
                    state,
                )?);
                row += t;
            }
            let attention = Tensor::cat(&outputs, 0)?;
            x = (x + block.o.forward(&attention)?)?;
            let h = rms_norm(&x, &block.ffn_norm, eps)?;
            let [gate, up] = Linear::forward_all([&block.gate, &block.up], &h)?;
            let ff = (silu(&gate)? * up)?;
            x = (x + block.down.forward(&ff)?)?;
        }
        for (tokens, state) in steps.iter_mut() {
            state.len += tokens.len();
        }
        Ok(x)
    }

    /// Attention of one sequence's `t` new positions over its cache. Query heads that share
    /// a key/value head are folded into one matrix product instead of copying the keys.
    fn attend(
        &self,
        layer: usize,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        state: &mut SequenceState,
    ) -> Result<Tensor> {
        let d = &self.dims;
        let t = q.dim(0)?;
        let pos = state.len;
        let heads = |x: &Tensor, n: usize| -> candle_core::Result<Tensor> {
            x.reshape((1, t, n, d.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (
            heads(q, d.heads)?,
            heads(k, d.kv_heads)?,
            heads(v, d.kv_heads)?,
        );
        let cos = self.cos.narrow(0, pos, t)?;
        let sin = self.sin.narrow(0, pos, t)?;
        let (q, k) = match self.pairs {
            RopePairs::Adjacent => (rope_i(&q, &cos, &sin)?, rope_i(&k, &cos, &sin)?),
            RopePairs::Halves => (rope(&q, &cos, &sin)?, rope(&k, &cos, &sin)?),
        };
        let (cached_keys, cached_values) = (&state.keys[layer], &state.values[layer]);
        let cache = cached_keys.dtype();
        cached_keys.slice_set(&k.to_dtype(cache)?, 2, pos)?;
        cached_values.slice_set(&v.to_dtype(cache)?, 2, pos)?;
        let total = pos + t;
        let scale = 1.0 / (d.head_dim as f64).sqrt();
        if t == 1 && cache == DType::F16 && self.dtype == DType::F32 && self.device.is_cpu() {
            let op = DecodeAttention {
                len: total,
                scale: scale as f32,
            };
            return Ok(q.apply_op3_no_bwd(cached_keys, cached_values, &op)?);
        }
        // Converting the cache costs once per prompt chunk here, not once per token.
        let keys = cached_keys.narrow(2, 0, total)?.to_dtype(self.dtype)?;
        let values = cached_values.narrow(2, 0, total)?.to_dtype(self.dtype)?;
        let group = d.heads / d.kv_heads;
        let q = q.reshape((1, d.kv_heads, group * t, d.head_dim))?;
        let mut scores = q.matmul(&keys.t()?)?;
        if self.mask_in_place() {
            scores.inplace_op1(&ScaleAndMask {
                t,
                scale: scale as f32,
            })?;
        } else {
            scores = (scores * scale)?;
            if let Some(mask) = mask {
                scores = scores
                    .reshape((1, d.kv_heads, group, t, total))?
                    .broadcast_add(mask)?
                    .reshape((1, d.kv_heads, group * t, total))?;
            }
        }
        let out = softmax_last_dim(&scores)?.matmul(&values)?;
        Ok(out
            .reshape((1, d.heads, t, d.head_dim))?
            .transpose(1, 2)?
            .reshape((t, d.heads * d.head_dim))?)
    }

    /// `[t, pos + t]`: new position i may see every cached position and new positions up to
    /// itself. None for a single token, which may see everything, and where the scores are
    /// masked in place by position instead.
    fn causal_mask(&self, t: usize, pos: usize) -> Result<Option<Tensor>> {
        if t <= 1 || self.mask_in_place() {
            return Ok(None);
        }
        let total = pos + t;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| {
                (0..total).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
            })
            .collect();
        Ok(Some(
            Tensor::from_vec(mask, (t, total), &self.device)?.to_dtype(self.dtype)?,
        ))
    }

    /// Whether attention scores are scaled and masked in place (F32 on the CPU) instead of
    /// through candle's ops and a mask tensor.
    fn mask_in_place(&self) -> bool {
        self.device.is_cpu() && self.dtype == DType::F32
    }

    /// Greedy next tokens from `forward`'s logits.
    pub fn argmax(logits: &Tensor) -> Result<Vec<u32>> {
        Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?)
    }
}

/// Sizes come from the file, before any tensor is read: a corrupt or hostile one must get an
/// error here, not an allocation that aborts the process. The upper bounds are far above any
/// Llama released (Llama 3 405B: 126 layers, 128 heads, 128k context, 128k vocabulary).
fn check_dims(path: &Path, d: &Dims) -> Result<()> {
    let problem = if d.layers == 0 || d.layers > 1024 {
        Some("layers")
    } else if d.heads == 0 || d.heads > 1024 {
        Some("attention heads")
    } else if d.kv_heads == 0 || !d.heads.is_multiple_of(d.kv_heads) {
        Some("key/value heads (must divide the attention heads)")
    } else if d.head_dim == 0 || d.head_dim > 1024 || !d.head_dim.is_multiple_of(2) {
        Some("head dimension")
    } else if d.hidden == 0 || d.hidden > 1 << 17 {
        Some("hidden size")
    } else if d.vocab == 0 || d.vocab > 1 << 22 {
        Some("vocabulary size")
    } else if d.context_length == 0 || d.context_length > 1 << 20 {
        Some("context length")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(what) => Err(LocalError::Unsupported {
            path: path.to_path_buf(),
            problem: format!("implausible {what} in the model dimensions {d:?}"),
        }),
    }
}

fn read_config(path: &Path) -> Result<LlamaConfig> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LocalError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Divisors of the rotary frequencies for Llama 3.1's long-context scaling: high frequencies
/// kept, low ones slowed by `factor`, a smooth blend between.
fn llama3_freq_factors(s: &Llama3RopeConfig, d: &Dims) -> Vec<f32> {
    let low_wavelen = s.original_max_position_embeddings as f32 / s.low_freq_factor;
    let high_wavelen = s.original_max_position_embeddings as f32 / s.high_freq_factor;
    inverse_frequencies(d)
        .into_iter()
        .map(|freq| {
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                s.factor
            } else {
                let smooth = (s.original_max_position_embeddings as f32 / wavelen
                    - s.low_freq_factor)
                    / (s.high_freq_factor - s.low_freq_factor);
                let scaled = (1.0 - smooth) * freq / s.factor + smooth * freq;
                freq / scaled
            }
        })
        .collect()
}

fn inverse_frequencies(d: &Dims) -> Vec<f32> {
    (0..d.head_dim)
        .step_by(2)
        .map(|i| 1.0 / d.rope_theta.powf(i as f32 / d.head_dim as f32))
        .collect()
}

/// cos and sin of every (position, frequency) pair up to the context length.
fn rope_tables(
    d: &Dims,
    divisors: Option<&[f32]>,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let mut freqs = inverse_frequencies(d);
    if let Some(divisors) = divisors {
        for (f, div) in freqs.iter_mut().zip(divisors) {
            *f /= div;
        }
    }
    let half = freqs.len();
    let angles: Vec<f32> = (0..d.context_length)
        .flat_map(|p| freqs.iter().map(move |f| p as f32 * f))
        .collect();
    let angles = Tensor::from_vec(angles, (d.context_length, half), device)?;
    Ok((
        angles.cos()?.to_dtype(dtype)?,
        angles.sin()?.to_dtype(dtype)?,
    ))
}

/// Reads named tensors out of a GGUF file, naming the file and tensor in any error.
struct GgufTensors<'a> {
    gguf: &'a Gguf,
    reader: BufReader<File>,
    device: &'a Device,
}

impl GgufTensors<'_> {
    fn read(&mut self, name: &str) -> Result<QTensor> {
        self.gguf
            .content()
            .tensor(&mut self.reader, name, self.device)
            .map_err(|source| self.error(name, source))
    }

    fn matmul(&mut self, name: &str) -> Result<Linear> {
        let q = self.read(name)?;
        self.linear(name, Arc::new(q))
    }

    fn linear(&self, name: &str, q: Arc<QTensor>) -> Result<Linear> {
        let linear = match Q4_1Matrix::from_qtensor(&q) {
            Ok(Some(m)) => Ok(Linear::Q4_1(m)),
            Ok(None) => QMatMul::from_arc(q).map(Linear::Candle),
            Err(e) => Err(e),
        };
        linear.map_err(|source| self.error(name, source))
    }

    fn dense(&mut self, name: &str) -> Result<Tensor> {
        let q = self.read(name)?;
        q.dequantize(self.device)
            .map_err(|source| self.error(name, source))
    }

    fn error(&self, name: &str, source: candle_core::Error) -> LocalError {
        LocalError::Tensor {
            path: self.gguf.path().to_path_buf(),
            name: name.to_string(),
            source: Box::new(source),
        }
    }
}
