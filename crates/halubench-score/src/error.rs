/// Everything that can go wrong while computing statistics. Plain scoring (`Summary`,
/// `metrics`) cannot fail; these errors come from inputs that make a statistic meaningless,
/// such as two judges that did not judge the same examples.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("no judgements to resample")]
    Empty,

    #[error("invalid bootstrap settings: {0}")]
    BootstrapConfig(String),

    /// Pairing two judges needs each example once per judge.
    #[error("the {judge} judge has example `{id}` more than once")]
    DuplicateId { judge: &'static str, id: String },

    /// Paired statistics compare judges on the same examples only.
    #[error(
        "example `{id}` was judged by the {present_in} judge only; both judges must judge the same examples"
    )]
    UnpairedId {
        id: String,
        present_in: &'static str,
    },

    /// The same id with another task or label means the two runs used different data.
    #[error("example `{id}` has {field} `{first}` in the first run and `{second}` in the second")]
    PairMismatch {
        id: String,
        field: &'static str,
        first: String,
        second: String,
    },

    #[error("p-value #{index} is {value}, not a probability in [0, 1]")]
    InvalidPValue { index: usize, value: f64 },

    #[error("`{model}` is not a row of the paper's Table 3 (rows: {})", known.join(", "))]
    UnknownModel { model: String, known: Vec<String> },

    #[error("significance level must lie strictly between 0 and 1, not {0}")]
    InvalidAlpha(f64),

    #[error("tolerance must be a finite, non-negative number of percentage points, not {0}")]
    InvalidTolerance(f64),

    #[error("the {rule} rule needs {missing}")]
    RuleInput {
        rule: crate::rule::AccuracyRule,
        missing: String,
    },
}
