//! The safetensors path on tiny random-weight Llama checkpoints written by the test itself,
//! checked against candle-transformers' Llama; and the errors a user sees for bad files.

use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::{Cache, Llama as Reference, LlamaConfig};
use candle_transformers::models::quantized_llama::ModelWeights;
use halubench_candle::{DeviceKind, Gguf, Llama, LocalError, LocalSettings};

/// Writes config.json and model.safetensors of a random Llama into `dir` and returns
/// candle-transformers' model of the same weights.
pub fn write_tiny_llama(dir: &Path, config: serde_json::Value) -> (Reference, LlamaConfig) {
    std::fs::write(dir.join("config.json"), config.to_string()).expect("write config");
    let parsed: LlamaConfig = serde_json::from_value(config).expect("config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let reference = Reference::load(vb, &parsed.clone().into_config(false)).expect("init");
    varmap
        .save(dir.join("model.safetensors"))
        .expect("save safetensors");
    (reference, parsed)
}

pub fn tiny_config(vocab: usize, context: usize) -> serde_json::Value {
    serde_json::json!({
        "hidden_size": 64,
        "intermediate_size": 96,
        "vocab_size": vocab,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "max_position_embeddings": context,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": false,
    })
}

fn reference_logits(reference: &Reference, config: LlamaConfig, ids: &[u32]) -> Vec<f32> {
    let config = config.into_config(false);
    let mut cache = Cache::new(true, DType::F32, &config, &Device::Cpu).expect("cache");
    let input = Tensor::new(ids, &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .expect("input");
    reference
        .forward(&input, 0, &mut cache)
        .and_then(|t| t.squeeze(0))
        .and_then(|t| t.to_vec1())
        .expect("reference forward")
}

fn our_logits(dir: &Path, ids: &[u32], pieces: usize) -> Vec<f32> {
    let model = Llama::from_safetensors(
        &dir.join("config.json"),
        &[dir.join("model.safetensors")],
        DType::F32,
        &Device::Cpu,
    )
    .expect("load");
    let mut state = model.new_sequence(ids.len()).expect("state");
    let mut logits = None;
    for chunk in ids.chunks(ids.len().div_ceil(pieces)) {
        logits = Some(model.forward(&mut [(chunk, &mut state)]).expect("forward"));
    }
    logits
        .expect("some input")
        .squeeze(0)
        .and_then(|t| t.to_vec1())
        .expect("logits")
}

fn assert_close(ours: &[f32], expected: &[f32]) {
    let diff = ours
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "max |ours - candle-transformers| = {diff}");
}

#[test]
fn safetensors_logits_match_candle_transformers_llama() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reference, config) = write_tiny_llama(dir.path(), tiny_config(300, 256));
    let ids: Vec<u32> = (0..40).map(|i| (i * 37 + 11) % 300).collect();
    let expected = reference_logits(&reference, config, &ids);
    assert_close(&our_logits(dir.path(), &ids, 1), &expected);
    // Through the KV cache in three pieces.
    assert_close(&our_logits(dir.path(), &ids, 3), &expected);
}

#[test]
fn llama3_rope_scaling_matches_candle_transformers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_config(300, 256);
    config["rope_scaling"] = serde_json::json!({
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
        "rope_type": "llama3",
    });
    let (reference, parsed) = write_tiny_llama(dir.path(), config);
    let ids: Vec<u32> = (0..120).map(|i| (i * 53 + 7) % 300).collect();
    let expected = reference_logits(&reference, parsed, &ids);
    assert_close(&our_logits(dir.path(), &ids, 2), &expected);
}

fn settings(model: &Path) -> LocalSettings {
    LocalSettings {
        model: model.to_path_buf(),
        tokenizer: None,
        device: DeviceKind::Cpu,
        dtype: None,
        kv_cache: Some(DType::F32),
        max_new_tokens: 8,
        batch_size: 1,
    }
}

fn load_error(model: &Path) -> String {
    match halubench_candle::load(&settings(model)) {
        Ok(_) => panic!("{} loaded", model.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_model_files_get_errors_that_name_them() {
    let dir = tempfile::tempdir().expect("tempdir");

    let missing = dir.path().join("nothing-here");
    let e = load_error(&missing);
    assert!(
        e.contains("nothing-here") && e.contains("config.json"),
        "{e}"
    );

    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "this is not a model").expect("write");
    let e = load_error(&text);
    assert!(
        e.contains("notes.gguf") && e.contains("not a readable GGUF"),
        "{e}"
    );

    let empty_dir = dir.path().join("half-model");
    std::fs::create_dir(&empty_dir).expect("mkdir");
    std::fs::write(empty_dir.join("config.json"), "{\"hidden_size\": ").expect("write");
    let e = load_error(&empty_dir);
    assert!(
        e.contains("config.json") && e.contains("invalid JSON"),
        "{e}"
    );

    let no_weights = dir.path().join("no-weights");
    std::fs::create_dir(&no_weights).expect("mkdir");
    std::fs::write(
        no_weights.join("config.json"),
        tiny_config(300, 64).to_string(),
    )
    .expect("write");
    let e = load_error(&no_weights);
    assert!(e.contains("no *.safetensors"), "{e}");
}

fn write_gguf(path: &Path, metadata: &[(&str, gguf_file::Value)]) {
    let mut file = std::fs::File::create(path).expect("create");
    let refs: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    gguf_file::write(&mut file, &refs, &[]).expect("write gguf");
}

#[test]
fn unsupported_gguf_metadata_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gemma = dir.path().join("gemma.gguf");
    write_gguf(
        &gemma,
        &[(
            "general.architecture",
            gguf_file::Value::String("gemma2".into()),
        )],
    );
    let gguf = Gguf::open(&gemma).expect("header reads");
    let e = Llama::from_gguf(&gguf, &Device::Cpu).expect_err("gemma2 refused");
    assert!(matches!(e, LocalError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("gemma2"), "{e}");

    let llama = dir.path().join("llama.gguf");
    write_gguf(
        &llama,
        &[(
            "general.architecture",
            gguf_file::Value::String("llama".into()),
        )],
    );
    let gguf = Gguf::open(&llama).expect("header reads");
    let e = Llama::from_gguf(&gguf, &Device::Cpu).expect_err("no dimensions");
    assert!(
        e.to_string().contains("llama.attention.head_count") && e.to_string().contains("missing"),
        "{e}"
    );

    // Sizes read from the file are bounded before anything is allocated by them.
    let huge = dir.path().join("huge.gguf");
    let u32v = gguf_file::Value::U32;
    write_gguf(
        &huge,
        &[
            (
                "general.architecture",
                gguf_file::Value::String("llama".into()),
            ),
            ("llama.attention.head_count", u32v(4)),
            ("llama.attention.head_count_kv", u32v(2)),
            ("llama.embedding_length", u32v(64)),
            ("llama.block_count", gguf_file::Value::U64(1 << 40)),
            ("llama.context_length", u32v(256)),
            (
                "llama.attention.layer_norm_rms_epsilon",
                gguf_file::Value::F32(1e-5),
            ),
            (
                "tokenizer.ggml.tokens",
                gguf_file::Value::Array(vec![gguf_file::Value::String("a".into())]),
            ),
        ],
    );
    let gguf = Gguf::open(&huge).expect("header reads");
    let e = Llama::from_gguf(&gguf, &Device::Cpu).expect_err("2^40 layers refused");
    assert!(matches!(e, LocalError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("implausible layers"), "{e}");

    let odd_tokenizer = dir.path().join("odd.gguf");
    write_gguf(
        &odd_tokenizer,
        &[
            (
                "tokenizer.ggml.model",
                gguf_file::Value::String("gpt2".into()),
            ),
            (
                "tokenizer.ggml.pre",
                gguf_file::Value::String("deepseek-coder".into()),
            ),
        ],
    );
    let gguf = Gguf::open(&odd_tokenizer).expect("header reads");
    let e = halubench_candle::TextCodec::from_gguf(&gguf).expect_err("unknown pre");
    assert!(
        e.to_string().contains("deepseek-coder") && e.to_string().contains("--tokenizer"),
        "{e}"
    );
}

/// A random Llama GGUF with unquantized (F32) tensors: quantizing the activations, as every
/// quantized product does, would hide small errors in rounding jumps.
fn write_tiny_gguf(path: &Path) {
    let (vocab, hidden, heads, kv_heads, ffn, layers) =
        (300usize, 64usize, 4u32, 2u32, 96usize, 2u32);
    let dev = Device::Cpu;
    let tensor = |shape: &[usize], mean: f32| {
        let t = Tensor::randn(mean, 0.2f32, shape, &dev).expect("randn");
        QTensor::quantize(&t, GgmlDType::F32).expect("f32 qtensor")
    };
    let mut tensors = vec![
        (
            "token_embd.weight".to_string(),
            tensor(&[vocab, hidden], 0.0),
        ),
        ("output_norm.weight".to_string(), tensor(&[hidden], 1.0)),
        ("output.weight".to_string(), tensor(&[vocab, hidden], 0.0)),
    ];
    let kv = hidden / heads as usize * kv_heads as usize;
    for i in 0..layers {
        for (name, shape, mean) in [
            ("attn_q", vec![hidden, hidden], 0.0),
            ("attn_k", vec![kv, hidden], 0.0),
            ("attn_v", vec![kv, hidden], 0.0),
            ("attn_output", vec![hidden, hidden], 0.0),
            ("ffn_gate", vec![ffn, hidden], 0.0),
            ("ffn_up", vec![ffn, hidden], 0.0),
            ("ffn_down", vec![hidden, ffn], 0.0),
            ("attn_norm", vec![hidden], 1.0),
            ("ffn_norm", vec![hidden], 1.0),
        ] {
            tensors.push((format!("blk.{i}.{name}.weight"), tensor(&shape, mean)));
        }
    }
    use gguf_file::Value;
    let metadata = [
        ("general.architecture", Value::String("llama".into())),
        ("llama.attention.head_count", Value::U32(heads)),
        ("llama.attention.head_count_kv", Value::U32(kv_heads)),
        ("llama.block_count", Value::U32(layers)),
        ("llama.embedding_length", Value::U32(hidden as u32)),
        (
            "llama.rope.dimension_count",
            Value::U32(hidden as u32 / heads),
        ),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("llama.context_length", Value::U32(256)),
        (
            "tokenizer.ggml.tokens",
            Value::Array((0..vocab).map(|i| Value::String(format!("t{i}"))).collect()),
        ),
    ];
    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut file = std::fs::File::create(path).expect("create");
    gguf_file::write(&mut file, &meta, &refs).expect("write gguf");
}

#[test]
fn gguf_kv_cache_matches_candle_transformers_quantized_llama() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tiny.gguf");
    write_tiny_gguf(&path);
    let ids: Vec<u32> = (0..30).map(|i| (i * 41 + 3) % 300).collect();
    let pieces = [&ids[..11], &ids[11..12], &ids[12..]];

    let mut file = std::fs::File::open(&path).expect("open");
    let content = gguf_file::Content::read(&mut file).expect("read");
    let mut reference = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).expect("ref");
    let gguf = Gguf::open(&path).expect("open");
    let model = Llama::from_gguf(&gguf, &Device::Cpu).expect("load");
    let mut state = model.new_sequence(ids.len()).expect("state");
    let mut fed = 0;
    for piece in pieces {
        let input = Tensor::new(piece, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("input");
        let expected: Vec<f32> = reference
            .forward(&input, fed)
            .and_then(|t| t.squeeze(0))
            .and_then(|t| t.to_vec1())
            .expect("reference");
        let ours: Vec<f32> = model
            .forward(&mut [(piece, &mut state)])
            .and_then(|t| Ok(t.squeeze(0)?.to_vec1()?))
            .expect("ours");
        assert_close(&ours, &expected);
        fed += piece.len();
    }
}

/// A step that fails for one sequence (here a token id outside the vocabulary) costs that
/// sequence alone: the others of its batch are stepped again and finish as they would alone.
#[test]
fn a_failing_sequence_does_not_fail_its_batch() {
    use halubench_candle::generate::Request;
    let dir = tempfile::tempdir().expect("tempdir");
    write_tiny_llama(dir.path(), tiny_config(300, 256));
    let model = Llama::from_safetensors(
        &dir.path().join("config.json"),
        &[dir.path().join("model.safetensors")],
        DType::F32,
        &Device::Cpu,
    )
    .expect("load");
    let engine = halubench_candle::Engine::new(model, Default::default(), 3);
    let good_a: Vec<u32> = (0..20).map(|i| (i * 37 + 11) % 300).collect();
    let good_b: Vec<u32> = (0..9).map(|i| (i * 13 + 5) % 300).collect();
    let alone = engine
        .generate(&[good_a.clone(), good_b.clone()], 6)
        .expect("generate alone");

    let (requests, queue) = std::sync::mpsc::channel();
    let mut answers = Vec::new();
    for prompt in [good_a, vec![5, 100_000, 7], good_b] {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = Request {
            prompt,
            max_new_tokens: 6,
            reply,
        };
        requests.send(request).expect("queue");
        answers.push(answer);
    }
    drop(requests);
    engine.serve(queue);
    let replies: Vec<_> = answers
        .into_iter()
        .map(|a| a.blocking_recv().expect("a reply"))
        .collect();
    assert_eq!(replies[0].as_ref().expect("first"), &alone[0]);
    assert!(replies[1].is_err(), "{:?}", replies[1]);
    assert_eq!(replies[2].as_ref().expect("third"), &alone[1]);
}
