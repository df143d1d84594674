//! The local judge: a Llama-architecture model (Lynx, or any Llama 3 / SmolLM checkpoint) run
//! in-process on candle, from one GGUF file or a Hugging Face safetensors directory.
//!
//! The model lives on its own thread and greedy-decodes every prompt the runner sends it
//! through a channel, batching whatever is waiting. Prompts go through the model's own chat
//! template and tokenizer (from the GGUF metadata where there is no `tokenizer.json`). A
//! prompt that does not fit the model's context is recorded as `INVALID` (`too_long`), never
//! cut short silently.
//!
//! Not here: downloading models (the binary resolves hub repos to files through the same
//! cache code as datasets), sampling (the protocol is greedy), and any architecture but
//! Llama's.

mod amx;
mod attention;
pub mod error;
pub mod generate;
pub mod gguf;
mod kquant_decode;
mod mask;
pub mod model;
mod q4_1;
pub mod template;
pub mod tokenizer;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use candle_core::{DType, Device};
use halubench_core::{Example, JudgeInfo, Usage, Verdict};
use halubench_judge::{
    BoxFuture, InvalidReason, Judge, JudgeError, PromptTemplate, Reply, parse_verdict,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use error::LocalError;
pub use generate::{Engine, Generation, Stop};
pub use gguf::Gguf;
pub use model::Llama;
pub use template::ChatTemplate;
pub use tokenizer::TextCodec;
pub use verdict::{VerdictCandidates, VerdictMass};

use error::Result;
use generate::Request;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Cuda,
    Metal,
}

impl DeviceKind {
    pub fn open(self) -> Result<Device> {
        let opened = match self {
            DeviceKind::Cpu => Ok(Device::Cpu),
            DeviceKind::Cuda => Device::new_cuda(0),
            DeviceKind::Metal => Device::new_metal(0),
        };
        opened.map_err(|source| LocalError::Device {
            device: self.name().to_string(),
            source: Box::new(source),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
            DeviceKind::Metal => "metal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// A `.gguf` file, or a directory holding `config.json`, safetensors and `tokenizer.json`.
    pub model: PathBuf,
    /// A `tokenizer.json` to use instead of the one the model brings.
    pub tokenizer: Option<PathBuf>,
    pub device: DeviceKind,
    /// Weights and activations of safetensors models; default F32 on CPU (candle's BF16 CPU
    /// kernels are far slower), BF16 on a GPU. GGUF models compute in F32.
    pub dtype: Option<DType>,
    /// What the KV cache holds: F16 (or BF16) takes half the memory of F32, as llama.cpp
    /// keeps it; F32 repeats the reference models' arithmetic exactly. None: F16 on a CPU,
    /// the model's own type on a GPU (no conversion at every step).
    pub kv_cache: Option<DType>,
    pub max_new_tokens: usize,
    /// Most sequences decoded together.
    pub batch_size: usize,
}

/// A model ready to generate, with what it takes to talk to it.
pub struct LoadedModel {
    pub engine: Engine,
    pub codec: TextCodec,
    pub template: ChatTemplate,
    /// The name the checkpoint gives itself (GGUF `general.name`, else the path).
    pub name: String,
    pub format: &'static str,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl LoadedModel {
    /// What the model is given for `example` under `prompt`: the chat text and its ids.
    pub fn prompt(&self, prompt: &PromptTemplate, example: &Example) -> Result<(String, Vec<u32>)> {
        render_prompt(&self.template, &self.codec, prompt, example)
    }
}

/// The user message `prompt` makes of `example`, in the model's chat template, tokenized:
/// one path for the judge, the tests and the benches.
fn render_prompt(
    template: &ChatTemplate,
    codec: &TextCodec,
    prompt: &PromptTemplate,
    example: &Example,
) -> Result<(String, Vec<u32>)> {
    let text = template.render_user(&prompt.render(example))?;
    let ids = codec.encode_prompt(&text)?;
    Ok((text, ids))
}

/// Loads the model, its tokenizer and its chat template.
pub fn load(settings: &LocalSettings) -> Result<LoadedModel> {
    let device = settings.device.open()?;
    let path = &settings.model;
    if path.is_file() {
        load_gguf(settings, &device)
    } else if path.join("config.json").is_file() {
        load_safetensors(settings, &device)
    } else {
        Err(LocalError::NotAModel {
            path: path.clone(),
            hint: "expected a .gguf file, or a directory with config.json, *.safetensors and \
                   tokenizer.json"
                .to_string(),
        })
    }
}

fn load_gguf(settings: &LocalSettings, device: &Device) -> Result<LoadedModel> {
    let gguf = Gguf::open(&settings.model)?;
    let mut model = Llama::from_gguf(&gguf, device)?;
    model.set_kv_dtype(kv_cache(settings, &model))?;
    let codec = match &settings.tokenizer {
        Some(file) => {
            let (bos, stop) = tokenizer::gguf_special_ids(&gguf);
            TextCodec::from_file(file, bos, &stop)?
        }
        None => TextCodec::from_gguf(&gguf)?,
    };
    let token_text = |key: &str| {
        gguf.token_id(key)
            .and_then(|id| codec.id_to_token(id))
            .unwrap_or_default()
    };
    let (bos, eos) = (
        token_text("tokenizer.ggml.bos_token_id"),
        token_text("tokenizer.ggml.eos_token_id"),
    );
    let origin = settings.model.display().to_string();
    let template = match gguf.get("tokenizer.chat_template") {
        Some(_) => ChatTemplate::new(
            gguf.string("tokenizer.chat_template")?,
            &format!("{origin} (tokenizer.chat_template)"),
            &bos,
            &eos,
        )?,
        None => ChatTemplate::new(
            template::LLAMA3_FALLBACK,
            "built-in Llama 3 template (the GGUF has none)",
            &bos,
            &eos,
        )?,
    };
    let name = gguf
        .string("general.name")
        .map(str::to_string)
        .unwrap_or_else(|_| origin.clone());
    let candidates = VerdictCandidates::from_codec(&codec, model.dims().vocab)?;
    let engine = Engine::new(model, codec.stop_tokens().clone(), settings.batch_size)
        .with_verdict_candidates(candidates)?;
    Ok(LoadedModel {
        engine,
        codec,
        template,
        name,
        format: "gguf",
    })
}

fn load_safetensors(settings: &LocalSettings, device: &Device) -> Result<LoadedModel> {
    let dir = &settings.model;
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    let dtype = settings.dtype.unwrap_or(if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    });
    let mut model =
        Llama::from_safetensors(&config_path, &safetensors_shards(dir)?, dtype, device)?;
    model.set_kv_dtype(kv_cache(settings, &model))?;

    let tokenizer_config = optional_json(&dir.join("tokenizer_config.json"))?;
    let generation_config = optional_json(&dir.join("generation_config.json"))?;
    let mut stop = token_ids(config.get("eos_token_id"));
    stop.extend(token_ids(
        generation_config
            .as_ref()
            .and_then(|g| g.get("eos_token_id")),
    ));
    let tokenizer_path = settings
        .tokenizer
        .clone()
        .unwrap_or_else(|| dir.join("tokenizer.json"));
    // No BOS of our own: as in transformers' chat templating, the prompt has one only if
    // the template writes it.
    let codec = TextCodec::from_file(&tokenizer_path, None, &stop)?;

    // The texts the template knows as `bos_token` and `eos_token`: tokenizer_config.json's,
    // else those of config.json's ids (the built-in Llama 3 template starts with BOS).
    let special = |key: &str| -> String {
        let configured = match tokenizer_config.as_ref().and_then(|c| c.get(key)) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(String::from),
            _ => None,
        };
        configured
            .or_else(|| {
                let id = token_ids(config.get(format!("{key}_id")))
                    .first()
                    .copied()?;
                codec.id_to_token(id)
            })
            .unwrap_or_default()
    };
    let (bos_text, eos_text) = (special("bos_token"), special("eos_token"));
    let template = match chat_template_source(dir, tokenizer_config.as_ref())? {
        Some((source, origin)) => ChatTemplate::new(&source, &origin, &bos_text, &eos_text)?,
        None => ChatTemplate::new(
            template::LLAMA3_FALLBACK,
            "built-in Llama 3 template (the model has none)",
            &bos_text,
            &eos_text,
        )?,
    };
    let candidates = VerdictCandidates::from_codec(&codec, model.dims().vocab)?;
    let engine = Engine::new(model, codec.stop_tokens().clone(), settings.batch_size)
        .with_verdict_candidates(candidates)?;
    Ok(LoadedModel {
        engine,
        codec,
        template,
        name: dir.display().to_string(),
        format: "safetensors",
    })
}

fn kv_cache(settings: &LocalSettings, model: &Llama) -> DType {
    match settings.kv_cache {
        Some(dtype) => dtype,
        None if model.device().is_cpu() => DType::F16,
        None => model.dtype(),
    }
}

/// The shard list of `model.safetensors.index.json`, else `model.safetensors`, else every
/// `*.safetensors` file in the directory.
/// The shard files a `model.safetensors.index.json` names, sorted, each once.
pub fn shard_names(index: &Path) -> Result<Vec<String>> {
    let json = read_json(index)?;
    let map = json
        .get("weight_map")
        .and_then(Value::as_object)
        .ok_or_else(|| LocalError::Unsupported {
            path: index.to_path_buf(),
            problem: "no `weight_map` object".to_string(),
        })?;
    let mut files: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    files.sort_unstable();
    files.dedup();
    Ok(files)
}

fn safetensors_shards(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        return Ok(shard_names(&index)?
            .into_iter()
            .map(|f| dir.join(f))
            .collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| LocalError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LocalError::NotAModel {
            path: dir.to_path_buf(),
            hint: "config.json is there but no *.safetensors file".to_string(),
        });
    }
    Ok(files)
}

/// `chat_template.jinja` (newer checkpoints), else `chat_template` in tokenizer_config.json:
/// a string, or a list of named templates of which `default` is used.
fn chat_template_source(dir: &Path, config: Option<&Value>) -> Result<Option<(String, String)>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        let text = std::fs::read_to_string(&jinja).map_err(|source| LocalError::Io {
            path: jinja.clone(),
            source,
        })?;
        return Ok(Some((text, jinja.display().to_string())));
    }
    let origin = format!(
        "{} (chat_template)",
        dir.join("tokenizer_config.json").display()
    );
    Ok(match config.and_then(|c| c.get("chat_template")) {
        Some(Value::String(s)) => Some((s.clone(), origin)),
        Some(Value::Array(named)) => named
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template").and_then(Value::as_str))
            .map(|s| (s.to_string(), origin)),
        _ => None,
    })
}

fn token_ids(value: Option<&Value>) -> Vec<u32> {
    match value {
        Some(Value::Number(n)) => n.as_u64().map(|v| v as u32).into_iter().collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_u64().map(|v| v as u32))
            .collect(),
        _ => Vec::new(),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LocalError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn optional_json(path: &Path) -> Result<Option<Value>> {
    if path.is_file() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The `Judge` over a loaded model running on its own thread.
pub struct LocalJudge {
    settings: LocalSettings,
    prompt: PromptTemplate,
    codec: TextCodec,
    template: ChatTemplate,
    name: String,
    format: &'static str,
    context_length: usize,
    /// What the KV cache holds, as `LocalSettings::kv_cache` resolved.
    kv_cache: DType,
    /// Identifies the weights for the response cache without hashing gigabytes.
    weights_identity: String,
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for LocalJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJudge")
            .field("settings", &self.settings)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LocalJudge {
    /// Loads the model and starts its thread.
    pub fn start(settings: LocalSettings, prompt: PromptTemplate) -> Result<LocalJudge> {
        let LoadedModel {
            engine,
            codec,
            template,
            name,
            format,
        } = load(&settings)?;
        let context_length = engine.model().dims().context_length;
        let kv_cache = engine.model().kv_dtype();
        let (requests, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("halubench-model".to_string())
            .spawn(move || engine.serve(receiver))
            .map_err(|source| LocalError::Io {
                path: settings.model.clone(),
                source,
            })?;
        Ok(LocalJudge {
            weights_identity: weights_identity(&settings.model),
            settings,
            prompt,
            codec,
            template,
            name,
            format,
            context_length,
            kv_cache,
            requests,
        })
    }

    /// The token ids the model is given for `example`.
    pub fn prompt_ids(&self, example: &Example) -> Result<Vec<u32>> {
        render_prompt(&self.template, &self.codec, &self.prompt, example).map(|(_, ids)| ids)
    }

    async fn call(&self, example: &Example) -> Result<Reply, JudgeError> {
        let rejected = |e: LocalError| JudgeError::Rejected {
            reason: e.to_string(),
        };
        let prompt = self.prompt_ids(example).map_err(rejected)?;
        let prompt_tokens = prompt.len() as u64;
        let max_new = self.settings.max_new_tokens;
        if prompt.len() + max_new > self.context_length {
            return Ok(Reply {
                verdict: Verdict::Invalid,
                raw: String::new(),
                invalid_reason: Some(InvalidReason::TooLong.as_str().to_string()),
                usage: Some(Usage {
                    prompt_tokens,
                    completion_tokens: 0,
                }),
                model: Some(self.name.clone()),
                p_fail: None,
                ragas: None,
            });
        }
        let (reply, generation) = tokio::sync::oneshot::channel();
        let gone = || JudgeError::Unavailable {
            reason: "the model thread has stopped".to_string(),
            retry_after: None,
        };
        self.requests
            .send(Request {
                prompt,
                max_new_tokens: max_new,
                reply,
            })
            .map_err(|_| gone())?;
        let generation = generation
            .await
            .map_err(|_| gone())?
            .map_err(|reason| JudgeError::Rejected { reason })?;
        let raw = self.codec.decode(&generation.tokens).map_err(rejected)?;
        let parsed = parse_verdict(&raw);
        let p_fail = verdict::reply_p_fail(
            &self.codec,
            &generation.tokens,
            &generation.verdict_masses,
            parsed.verdict,
        )
        .map_err(rejected)?;
        let end_token = u64::from(generation.stop == Stop::EndToken);
        Ok(Reply {
            verdict: parsed.verdict,
            invalid_reason: parsed.invalid.map(|r| r.as_str().to_string()),
            raw,
            usage: Some(Usage {
                prompt_tokens,
                completion_tokens: generation.tokens.len() as u64 + end_token,
            }),
            model: Some(self.name.clone()),
            p_fail,
            ragas: None,
        })
    }
}

/// Path, size and modification time: enough to notice replaced weights.
fn weights_identity(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| {
                let modified = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{}:{modified}", m.len())
            })
            .unwrap_or_default()
    };
    let mut parts = vec![format!("{}={}", path.display(), stamp(&path))];
    if path.is_dir()
        && let Ok(entries) = std::fs::read_dir(&path)
    {
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        parts.extend(
            files
                .iter()
                .map(|f| format!("{}={}", f.display(), stamp(f))),
        );
    }
    parts.join(";")
}

impl Judge for LocalJudge {
    fn info(&self) -> JudgeInfo {
        let s = &self.settings;
        let mut settings = BTreeMap::from([
            ("model".to_string(), s.model.display().to_string()),
            ("model_name".to_string(), self.name.clone()),
            ("format".to_string(), self.format.to_string()),
            ("device".to_string(), s.device.name().to_string()),
            ("max_new_tokens".to_string(), s.max_new_tokens.to_string()),
            ("batch_size".to_string(), s.batch_size.to_string()),
            ("kv_cache".to_string(), self.kv_cache.as_str().to_string()),
            (
                "context_length".to_string(),
                self.context_length.to_string(),
            ),
            ("decoding".to_string(), "greedy".to_string()),
            ("tokenizer".to_string(), self.codec.origin().to_string()),
            (
                "chat_template".to_string(),
                self.template.origin().to_string(),
            ),
            ("template".to_string(), self.prompt.name().to_string()),
        ]);
        if let Some(dtype) = s.dtype {
            settings.insert("dtype".to_string(), dtype.as_str().to_string());
        }
        JudgeInfo {
            name: "local".to_string(),
            prompt_sha256: Some(self.prompt.sha256().to_string()),
            settings,
        }
    }

    /// Greedy decoding of the same ids by the same weights gives the same reply, and a CPU
    /// reply can take minutes: worth caching.
    fn cache_key(&self, example: &Example) -> Option<String> {
        let ids = self.prompt_ids(example).ok()?;
        let key = serde_json::json!({
            "judge": "local",
            "weights": self.weights_identity,
            "device": self.settings.device.name(),
            "dtype": self.settings.dtype.map(|d| d.as_str()),
            "kv_cache": self.kv_cache.as_str(),
            "max_new_tokens": self.settings.max_new_tokens,
            // The ids cover the prompt's tokenizer; this covers how the reply is decoded.
            "tokenizer": self.codec.origin(),
            "prompt_ids": ids,
        });
        let digest = Sha256::digest(key.to_string().as_bytes());
        Some(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    fn judge<'a>(&'a self, example: &'a Example) -> BoxFuture<'a, Result<Reply, JudgeError>> {
        Box::pin(self.call(example))
    }
}
