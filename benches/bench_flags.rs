//! Command-line flags of the local-judge benches (`local_decode`, `logit_agreement`): each
//! flag takes the argument after it as its value, unless the bench treats it as a switch;
//! arguments a bench does not know (cargo bench's `--bench`) are skipped.

use candle_core::DType;

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
