//! Random-weight GGUF files in the layout of Lynx-8B's own quantization,
//! `patronus-lynx-8b-instruct-q4_k_m.gguf`: Llama-3 architecture, llama.cpp's Q4_K_M mix of
//! tensor types, and the Llama-3 tokenizer in the metadata, so that llama.cpp loads the very
//! same file our local judge does. Weights are random (no download, no licence); speed does
//! not depend on their values. Used by `benches/local_decode.rs -- --write-gguf` and by the
//! tests that need a Llama-3 tokenizer inside a GGUF.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// Llama 3's begin-of-text and end-of-turn token ids.
pub const BEGIN_OF_TEXT: u32 = 128_000;
pub const END_OF_TURN: u32 = 128_009;

/// A Llama-3-architecture shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub name: &'static str,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub context: usize,
}

/// `llama3-1b` for quick iteration (Llama 3.2 1B's shape with untied output), `lynx-8b` for
/// the headline figure (Llama 3 8B's, which Lynx-8B has).
pub const SHAPES: [Shape; 2] = [
    Shape {
        name: "llama3-1b",
        hidden: 2048,
        layers: 16,
        heads: 32,
        kv_heads: 8,
        ffn: 8192,
        vocab: 128_256,
        context: 8192,
    },
    Shape {
        name: "lynx-8b",
        hidden: 4096,
        layers: 32,
        heads: 32,
        kv_heads: 8,
        ffn: 14_336,
        vocab: 128_256,
        context: 8192,
    },
];

pub fn shape(name: &str) -> Option<Shape> {
    SHAPES.iter().copied().find(|s| s.name == name)
}

/// The Llama-3 tokenizer of a Hugging Face `tokenizer.json` as GGUF metadata, the way
/// llama.cpp's converter writes it (`gpt2` BPE, `llama-bpe` pre-tokenizer, merges as
/// "left right", added tokens as control tokens).
pub fn llama3_tokenizer_metadata(tokenizer_json: &Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(tokenizer_json)
        .unwrap_or_else(|e| panic!("{}: {e}", tokenizer_json.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("tokenizer.json is JSON");
    let mut tokens: Vec<(u32, String, i32)> = json["model"]["vocab"]
        .as_object()
        .expect("vocab")
        .iter()
        .map(|(t, id)| (id.as_u64().expect("id") as u32, t.clone(), 1))
        .collect();
    for added in json["added_tokens"].as_array().expect("added") {
        let id = added["id"].as_u64().expect("id") as u32;
        tokens.push((id, added["content"].as_str().expect("text").to_string(), 3));
    }
    tokens.sort();
    assert!(
        tokens.iter().enumerate().all(|(i, t)| t.0 as usize == i),
        "dense ids"
    );
    let merges: Vec<Value> = json["model"]["merges"]
        .as_array()
        .expect("merges")
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Value::String(s.clone()),
            pair => Value::String(format!(
                "{} {}",
                pair[0].as_str().expect("merge left"),
                pair[1].as_str().expect("merge right")
            )),
        })
        .collect();
    vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        (
            "tokenizer.ggml.pre".into(),
            Value::String("llama-bpe".into()),
        ),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| Value::String(t.1.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(tokens.iter().map(|t| Value::I32(t.2)).collect()),
        ),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
        (
            "tokenizer.ggml.bos_token_id".into(),
            Value::U32(BEGIN_OF_TEXT),
        ),
        (
            "tokenizer.ggml.eos_token_id".into(),
            Value::U32(END_OF_TURN),
        ),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
    ]
}

/// llama.cpp's Q4_K_M rule for the layers that get Q6_K in `attn_v` and `ffn_down`: the
/// first and last eighth, and every third layer between.
fn more_bits(layer: usize, layers: usize) -> bool {
    layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
}

/// A random `[rows, columns]` matrix (normal, standard deviation 0.02, as Llama's
/// initialisation) quantized to `dtype`.
fn random(rows: usize, columns: usize, dtype: GgmlDType) -> QTensor {
    let t = Tensor::randn(0f32, 0.02, (rows, columns), &Device::Cpu).expect("randn");
    QTensor::quantize(&t, dtype).expect("quantize")
}

/// Writes a random-weight GGUF of `shape` with Q4_K_M's tensor types and the Llama-3
/// tokenizer of `tokenizer_json` to `out`.
pub fn write_gguf(shape: Shape, tokenizer_json: &Path, out: &Path) {
    let head_dim = shape.hidden / shape.heads;
    let kv = shape.kv_heads * head_dim;
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        (
            "general.name".into(),
            Value::String(format!("random {}", shape.name)),
        ),
        // llama.cpp's file type 15: mostly Q4_K_M.
        ("general.file_type".into(), Value::U32(15)),
        (
            "llama.context_length".into(),
            Value::U32(shape.context as u32),
        ),
        (
            "llama.embedding_length".into(),
            Value::U32(shape.hidden as u32),
        ),
        ("llama.block_count".into(), Value::U32(shape.layers as u32)),
        (
            "llama.feed_forward_length".into(),
            Value::U32(shape.ffn as u32),
        ),
        (
            "llama.attention.head_count".into(),
            Value::U32(shape.heads as u32),
        ),
        (
            "llama.attention.head_count_kv".into(),
            Value::U32(shape.kv_heads as u32),
        ),
        ("llama.rope.freq_base".into(), Value::F32(500_000.0)),
        (
            "llama.rope.dimension_count".into(),
            Value::U32(head_dim as u32),
        ),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            Value::F32(1e-5),
        ),
        ("llama.vocab_size".into(), Value::U32(shape.vocab as u32)),
    ];
    metadata.extend(llama3_tokenizer_metadata(tokenizer_json));

    let norm = |n: usize| {
        QTensor::quantize(
            &Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).expect("ones"),
            GgmlDType::F32,
        )
        .expect("norm")
    };
    let mut tensors: Vec<(String, QTensor)> = vec![
        (
            "token_embd.weight".into(),
            random(shape.vocab, shape.hidden, GgmlDType::Q4K),
        ),
        ("output_norm.weight".into(), norm(shape.hidden)),
        (
            "output.weight".into(),
            random(shape.vocab, shape.hidden, GgmlDType::Q6K),
        ),
    ];
    for layer in 0..shape.layers {
        let wide = if more_bits(layer, shape.layers) {
            GgmlDType::Q6K
        } else {
            GgmlDType::Q4K
        };
        let name = |t: &str| format!("blk.{layer}.{t}.weight");
        tensors.extend([
            (name("attn_norm"), norm(shape.hidden)),
            (
                name("attn_q"),
                random(shape.hidden, shape.hidden, GgmlDType::Q4K),
            ),
            (name("attn_k"), random(kv, shape.hidden, GgmlDType::Q4K)),
            (name("attn_v"), random(kv, shape.hidden, wide)),
            (
                name("attn_output"),
                random(shape.hidden, shape.hidden, GgmlDType::Q4K),
            ),
            (name("ffn_norm"), norm(shape.hidden)),
            (
                name("ffn_gate"),
                random(shape.ffn, shape.hidden, GgmlDType::Q4K),
            ),
            (
                name("ffn_up"),
                random(shape.ffn, shape.hidden, GgmlDType::Q4K),
            ),
            (name("ffn_down"), random(shape.hidden, shape.ffn, wide)),
        ]);
    }
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).unwrap_or_else(|e| panic!("{}: {e}", out.display())),
    );
    gguf_file::write(&mut file, &metadata, &tensors).expect("write gguf");
}

/// Writes a Hugging Face checkpoint of `shape` with random BF16 weights (`config.json` and
/// one `model.safetensors`, tensor names as transformers writes them) into `dir`: what the
/// local judge loads from a safetensors directory, for its load time and memory.
pub fn write_safetensors(shape: Shape, dir: &Path) {
    use candle_core::DType;
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let head_dim = shape.hidden / shape.heads;
    let kv = shape.kv_heads * head_dim;
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": shape.hidden,
        "intermediate_size": shape.ffn,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "vocab_size": shape.vocab,
        "max_position_embeddings": shape.context,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "bos_token_id": BEGIN_OF_TEXT,
        "eos_token_id": END_OF_TURN,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16",
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config.json");
    let random = |rows: usize, columns: usize| {
        Tensor::randn(0f32, 0.02, (rows, columns), &Device::Cpu)
            .and_then(|t| t.to_dtype(DType::BF16))
            .expect("randn")
    };
    let ones = |n: usize| Tensor::ones(n, DType::BF16, &Device::Cpu).expect("ones");
    let mut tensors = std::collections::HashMap::from([
        (
            "model.embed_tokens.weight".to_string(),
            random(shape.vocab, shape.hidden),
        ),
        ("model.norm.weight".to_string(), ones(shape.hidden)),
        (
            "lm_head.weight".to_string(),
            random(shape.vocab, shape.hidden),
        ),
    ]);
    for layer in 0..shape.layers {
        let name = |t: &str| format!("model.layers.{layer}.{t}.weight");
        tensors.extend([
            (name("input_layernorm"), ones(shape.hidden)),
            (name("post_attention_layernorm"), ones(shape.hidden)),
            (name("self_attn.q_proj"), random(shape.hidden, shape.hidden)),
            (name("self_attn.k_proj"), random(kv, shape.hidden)),
            (name("self_attn.v_proj"), random(kv, shape.hidden)),
            (name("self_attn.o_proj"), random(shape.hidden, shape.hidden)),
            (name("mlp.gate_proj"), random(shape.ffn, shape.hidden)),
            (name("mlp.up_proj"), random(shape.ffn, shape.hidden)),
            (name("mlp.down_proj"), random(shape.hidden, shape.ffn)),
        ]);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))
        .expect("write model.safetensors");
}
