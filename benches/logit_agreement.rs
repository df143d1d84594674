//! Does the local judge compute what llama.cpp computes? Both are fed the same token ids of
//! real Lynx prompts (the first `--rows` rows of the HaluBench sample in ../shared/data,
//! rendered with the Lynx prompt and the model's chat template, tokenized by our tokenizer),
//! teacher-forced, and their logits after every position are compared: how often the top-1
//! token agrees, the largest and mean absolute logit difference, and for each disagreement
//! the margins by which each side preferred its token (a near tie that rounding can flip, or
//! a real difference). llama.cpp runs through `scripts/llama-server.sh logits`
//! (llama-cpp-python, installed by `scripts/llama-server.sh install`), which also reports
//! whether llama.cpp's own tokenization of the rendered text gives the same ids.
//!
//! `cargo bench -p halubench-candle --bench logit_agreement -- [--model FILE] [--rows 4]
//! [--max-positions N] [--kv-cache f16|f32] [--flash-attn on|off] [--threads 2] [--out DIR]`
//! (default model: SmolLM2's Q4_1 file from scripts/fetch-test-models.sh). The last line is
//! one JSON object with `top1_agreement`, `max_abs_diff` and the settings.

// `--threads` sets RAYON_NUM_THREADS before any thread exists: std's set_var is unsafe.
#![allow(unsafe_code)]

mod bench_flags;

use std::path::PathBuf;
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use halubench_candle::model::PREFILL_CHUNK;
use halubench_candle::{DeviceKind, LocalSettings};
use halubench_data::{DatasetSpec, HubSettings};
use halubench_judge::PromptTemplate;

struct Options {
    model: PathBuf,
    rows: usize,
    max_positions: usize,
    kv_cache: DType,
    flash_attn: String,
    threads: usize,
    out: PathBuf,
}

fn options() -> Options {
    let root = bench_flags::workspace_root();
    let mut o = Options {
        model: bench_flags::smollm2_gguf(),
        rows: 4,
        max_positions: usize::MAX,
        kv_cache: DType::F16,
        flash_attn: "off".to_string(),
        threads: 2,
        out: root.join("target/logit-agreement"),
    };
    let mut flags = bench_flags::Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--model" => o.model = flags.value(&flag).into(),
            "--rows" => o.rows = flags.number(&flag).max(1),
            "--max-positions" => o.max_positions = flags.number(&flag).max(1),
            "--kv-cache" => {
                o.kv_cache = flags.float_type(&flag);
                // The noise floor is the other of the two; llama.cpp's script takes these.
                assert!(o.kv_cache != DType::BF16, "--kv-cache f16|f32");
            }
            "--flash-attn" => {
                o.flash_attn = flags.value(&flag);
                assert!(
                    o.flash_attn == "on" || o.flash_attn == "off",
                    "--flash-attn on|off"
                );
            }
            "--threads" => o.threads = flags.number(&flag).max(1),
            "--out" => o.out = flags.value(&flag).into(),
            // cargo bench passes --bench; anything else is ignored the same way.
            _ => {}
        }
    }
    o
}

/// One position where the two top-1 tokens differ, and by how much each side preferred its
/// own: a margin near zero is a tie that any rounding can flip.
struct Disagreement {
    position: usize,
    ours: u32,
    theirs: u32,
    our_margin: f32,
    their_margin: f32,
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best as u32
}

fn main() {
    let o = options();
    // SAFETY: nothing else runs yet: no thread has been started.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", o.threads.to_string()) };
    let settings = LocalSettings {
        model: o.model.clone(),
        tokenizer: None,
        device: DeviceKind::Cpu,
        dtype: None,
        kv_cache: Some(o.kv_cache),
        max_new_tokens: 1,
        batch_size: 1,
    };
    let loaded = halubench_candle::load(&settings).expect("load the model");
    let sample = bench_flags::workspace_root()
        .join("../shared/data/halubench-sample/test-00000-of-00001.parquet");
    let rows = halubench_data::load(&DatasetSpec::file(&sample), &HubSettings::from_env())
        .expect("load the HaluBench sample")
        .examples;
    let lynx = PromptTemplate::lynx();
    let prompts: Vec<(String, Vec<u32>)> = rows
        .iter()
        .take(o.rows)
        .map(|e| {
            let (text, mut ids) = loaded.prompt(&lynx, e).expect("prompt");
            ids.truncate(o.max_positions);
            (text, ids)
        })
        .collect();
    std::fs::create_dir_all(&o.out).expect("create --out");
    let prompts_file = o.out.join("prompts.json");
    let json: Vec<_> = prompts
        .iter()
        .map(|(text, ids)| serde_json::json!({"text": text, "ids": ids}))
        .collect();
    std::fs::write(&prompts_file, serde_json::to_string(&json).expect("JSON")).expect("write");

    let script = bench_flags::workspace_root().join("scripts/llama-server.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("logits")
        .arg("--model")
        .arg(&o.model)
        .arg("--prompts")
        .arg(&prompts_file)
        .arg("--out")
        .arg(&o.out)
        .args(["--threads", &o.threads.to_string()])
        .args(["--flash-attn", &o.flash_attn])
        .args(["--kv-cache", o.kv_cache.as_str()])
        // llama-cpp-python 0.3.36 crashes repacking weights on AVX-512/AMX CPUs; repacking
        // changes llama.cpp's kernels, so it is one more setting to compare, not a default.
        .arg("--no-repack")
        .output()
        .expect("run scripts/llama-server.sh logits");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} logits failed:\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs_info: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's JSON");

    let model = loaded.engine.model();
    // The noise floor: the same model with its KV cache in the other type, a change that is
    // no bug by construction. Differences from llama.cpp of that size are rounding amplified
    // through the layers (each product rounds its input to 8 bits again), not a mistake.
    let other_cache = if o.kv_cache == DType::F16 {
        DType::F32
    } else {
        DType::F16
    };
    let other = halubench_candle::load(&LocalSettings {
        kv_cache: Some(other_cache),
        ..settings.clone()
    })
    .expect("load the model again");
    let mut against_llama_cpp = Totals::default();
    let mut against_other_cache = Totals::default();
    let mut first_tokens_same = Vec::new();
    for (i, (_, ids)) in prompts.iter().enumerate() {
        let ours = teacher_forced(model, ids);
        let theirs = Tensor::read_npy(o.out.join(format!("llama-cpp-{i}.npy")))
            .and_then(|t| t.to_device(&Device::Cpu))
            .and_then(|t| t.to_vec2::<f32>())
            .expect("llama.cpp's logits");
        assert_eq!(ours.len(), theirs.len(), "prompt {i}: positions");
        let last = ours.len() - 1;
        first_tokens_same.push(argmax(&ours[last]) == argmax(&theirs[last]));
        println!("prompt {i}: {} positions", ours.len());
        against_llama_cpp.add(&ours, &theirs, "llama.cpp", true);
        let floor = teacher_forced(other.engine.model(), ids);
        against_other_cache.add(&ours, &floor, other_cache.as_str(), false);
    }
    println!(
        "against llama.cpp: {}\nagainst our own {} KV cache (the noise floor): {}",
        against_llama_cpp.line(),
        other_cache.as_str(),
        against_other_cache.line()
    );
    println!(
        "{}",
        serde_json::json!({
            "model": o.model.file_name().map(|n| n.to_string_lossy().into_owned()),
            "prompts": prompts.len(),
            "positions": against_llama_cpp.positions,
            "top1_agreement": against_llama_cpp.agreement(),
            "max_abs_diff": against_llama_cpp.max_diff,
            "mean_abs_diff": against_llama_cpp.mean_diff(),
            "position0_max_abs_diff": against_llama_cpp.first_position_max_diff,
            "first_generated_token_same": first_tokens_same,
            "kv_cache": o.kv_cache.as_str(),
            "llama_cpp": theirs_info,
            "noise_floor": {
                "kv_cache": other_cache.as_str(),
                "top1_agreement": against_other_cache.agreement(),
                "max_abs_diff": against_other_cache.max_diff,
                "mean_abs_diff": against_other_cache.mean_diff(),
                "position0_max_abs_diff": against_other_cache.first_position_max_diff,
            },
        })
    );
}

/// Our logits after every position of `ids`, fed in prefill chunks as the judge feeds them.
fn teacher_forced(model: &halubench_candle::Llama, ids: &[u32]) -> Vec<Vec<f32>> {
    let mut state = model.new_sequence(ids.len()).expect("state");
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(PREFILL_CHUNK) {
        let logits = model
            .forward_every_position(chunk, &mut state)
            .expect("forward");
        rows.extend(logits.to_vec2::<f32>().expect("logits"));
    }
    rows
}

/// Agreement of our logits with another set, summed over prompts.
#[derive(Default)]
struct Totals {
    positions: usize,
    agreeing: usize,
    max_diff: f32,
    first_position_max_diff: f32,
    diff_sum: f64,
    diff_count: usize,
}

impl Totals {
    fn add(&mut self, ours: &[Vec<f32>], theirs: &[Vec<f32>], name: &str, show: bool) {
        let mut disagreements = Vec::new();
        for (position, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let (top_a, top_b) = (argmax(a), argmax(b));
            if top_a == top_b {
                self.agreeing += 1;
            } else {
                disagreements.push(Disagreement {
                    position,
                    ours: top_a,
                    theirs: top_b,
                    our_margin: a[top_a as usize] - a[top_b as usize],
                    their_margin: b[top_b as usize] - b[top_a as usize],
                });
            }
            let mut row_max = 0f32;
            for (x, y) in a.iter().zip(b) {
                let d = (x - y).abs();
                row_max = row_max.max(d);
                self.diff_sum += f64::from(d);
            }
            if position == 0 {
                self.first_position_max_diff = self.first_position_max_diff.max(row_max);
            }
            self.max_diff = self.max_diff.max(row_max);
            self.diff_count += a.len();
        }
        self.positions += ours.len();
        println!(
            "  against {name}: top-1 differs at {} positions",
            disagreements.len()
        );
        for d in disagreements.iter().filter(|_| show) {
            println!(
                "    position {}: ours {} by {:.4}, {name}'s {} by {:.4}",
                d.position, d.ours, d.our_margin, d.theirs, d.their_margin
            );
        }
    }

    fn agreement(&self) -> f64 {
        self.agreeing as f64 / self.positions as f64
    }

    fn mean_diff(&self) -> f64 {
        self.diff_sum / self.diff_count as f64
    }

    fn line(&self) -> String {
        format!(
            "top-1 agreement {:.5} over {} positions; |logit difference| largest {:.4}, mean \
             {:.5}, largest at position 0 {:.4}",
            self.agreement(),
            self.positions,
            self.max_diff,
            self.mean_diff(),
            self.first_position_max_diff
        )
    }
}
