//! examples/nightly.yml against the real binary: the file is YAML with a list of steps in
//! every job, each `halubench` command in a `run:` script names a subcommand and flags that
//! `halubench <subcommand> --help` lists, and `cargo build` asks only for a release build and
//! the features halubench-cli defines. Flags added to the CLI later are found in `--help` at
//! test time; a flag renamed or removed there while the workflow still passes it fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use crate::{halubench, stderr, stdout, workspace_root};

/// The options a help text lists, by spelling (`--out`, `-d`): whether each takes a value.
type Options = BTreeMap<String, bool>;

/// One `--help` text, read for what the checks need.
#[derive(Debug, Clone, Default)]
struct Help {
    options: Options,
    /// Subcommands, for a command that has them (`halubench`, `halubench datasets`).
    commands: BTreeSet<String>,
}

impl Help {
    /// Options are the lines of the help that start (after at most 8 spaces: descriptions
    /// are indented further) with `-`, up to the first double space: `-d, --dataset <NAME>`.
    /// Subcommands are the two-space-indented first words under `Commands:`.
    fn parse(text: &str) -> Help {
        let mut help = Help::default();
        let mut in_commands = false;
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            let trimmed = line.trim();
            if indent == 0 {
                in_commands = trimmed == "Commands:";
                continue;
            }
            if in_commands && indent == 2 {
                if let Some(name) = trimmed.split_whitespace().next() {
                    help.commands.insert(name.to_string());
                }
                continue;
            }
            if indent > 8 || !trimmed.starts_with('-') {
                continue;
            }
            let spec = trimmed.split("  ").next().unwrap_or_default();
            // `--out <DIR>` or `--out=<DIR>` takes a value; `--x [<X>]` only may.
            let takes_value = spec.contains(" <") || spec.contains("=<");
            for alternative in spec.split(", ") {
                let name: String = alternative
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if name.len() > 1 {
                    help.options.insert(name, takes_value);
                }
            }
        }
        help
    }
}

/// Where the checks get help texts: the real binary in the tests.
trait HelpSource {
    /// The `--help` of `halubench <path...>`, or why there is none.
    fn help(&mut self, path: &[String]) -> Result<Help, String>;
}

/// `halubench <path...> --help` from the binary under test, each asked once.
struct Binary {
    dir: tempfile::TempDir,
    cache: BTreeMap<Vec<String>, Result<Help, String>>,
}

impl Binary {
    fn new() -> Binary {
        Binary {
            dir: tempfile::tempdir().expect("tempdir"),
            cache: BTreeMap::new(),
        }
    }
}

impl HelpSource for Binary {
    fn help(&mut self, path: &[String]) -> Result<Help, String> {
        if let Some(known) = self.cache.get(path) {
            return known.clone();
        }
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = halubench(self.dir.path(), &args);
        let help = if out.status.success() {
            Ok(Help::parse(&stdout(&out)))
        } else {
            Err(format!(
                "`halubench {}` failed: {}",
                args.join(" "),
                stderr(&out).trim()
            ))
        };
        self.cache.insert(path.to_vec(), help.clone());
        help
    }
}

/// The features halubench-cli's Cargo.toml defines (`default`, `local`, ...).
fn cli_features() -> BTreeSet<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read Cargo.toml");
    let table: toml::Table = toml::from_str(&text).expect("Cargo.toml is TOML");
    table
        .get("features")
        .and_then(toml::Value::as_table)
        .map(|features| features.keys().cloned().collect())
        .unwrap_or_default()
}

/// One simple command of a `run:` script, where it was found.
#[derive(Debug, Clone, PartialEq)]
struct ShellCommand {
    /// `jobs.<job>.steps[<i>]` and the step's name when it has one.
    step: String,
    words: Vec<String>,
}

/// The `run:` scripts of every step, by where they are, or what is wrong with the file's
/// shape: not YAML, no `jobs`, a job whose `steps` is not a list, a `run` that is not text.
fn run_scripts(yaml: &str) -> Result<Vec<(String, String)>, Vec<String>> {
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| vec![format!("not YAML: {e}")])?;
    let [doc] = docs.as_slice() else {
        return Err(vec![format!(
            "expected one YAML document, found {}",
            docs.len()
        )]);
    };
    let Some(jobs) = doc["jobs"].as_hash() else {
        return Err(vec!["no `jobs` mapping".to_string()]);
    };
    if jobs.is_empty() {
        return Err(vec!["`jobs` is empty".to_string()]);
    }
    let mut scripts = Vec::new();
    let mut problems = Vec::new();
    for (name, job) in jobs {
        let name = name.as_str().unwrap_or("?");
        let Some(steps) = job["steps"].as_vec() else {
            problems.push(format!("jobs.{name}.steps is not a list"));
            continue;
        };
        for (i, step) in steps.iter().enumerate() {
            let mut place = format!("jobs.{name}.steps[{i}]");
            if let Some(title) = step["name"].as_str() {
                place.push_str(&format!(" ({title})"));
            }
            match &step["run"] {
                Yaml::BadValue => {}
                Yaml::String(script) => scripts.push((place, script.clone())),
                other => problems.push(format!("{place}: `run` is not text: {other:?}")),
            }
        }
    }
    if problems.is_empty() {
        Ok(scripts)
    } else {
        Err(problems)
    }
}

/// `${{ ... }}` (a GitHub Actions expression, which may hold spaces) as one plain word.
fn replace_expressions(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut rest = script;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => {
                out.push_str("EXPR");
                rest = &rest[start + end + 2..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The simple commands of a shell script, as far as a workflow needs: lines ending in `\`
/// joined to the next, `#` comments dropped, quotes removed, and commands split at `;`, `&&`,
/// `||`, `|`, `&` and parentheses. Enough for a workflow's scripts, not a shell.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    let script = replace_expressions(script);
    let mut logical_lines = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                logical_lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        logical_lines.push(current);
    }

    let mut commands = Vec::new();
    for line in logical_lines {
        let mut words: Vec<String> = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut quote: Option<char> = None;
        let mut chars = line.chars().peekable();
        let end_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
            if *in_word {
                words.push(std::mem::take(word));
                *in_word = false;
            }
        };
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some('"'), '\\') => {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
                (Some(_), c) => word.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    in_word = true;
                }
                (None, '\\') => {
                    if let Some(next) = chars.next() {
                        word.push(next);
                        in_word = true;
                    }
                }
                (None, '#') if !in_word => break,
                (None, ';' | '&' | '|' | '(' | ')') => {
                    end_word(&mut words, &mut word, &mut in_word);
                    if !words.is_empty() {
                        commands.push(std::mem::take(&mut words));
                    }
                    // `&&` and `||` are one separator.
                    chars.next_if_eq(&c);
                }
                (None, c) if c.is_whitespace() => end_word(&mut words, &mut word, &mut in_word),
                (None, c) => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        end_word(&mut words, &mut word, &mut in_word);
        if !words.is_empty() {
            commands.push(words);
        }
    }
    commands
}

/// The program a simple command runs, and its arguments: reserved words (`then`, `do`, ...),
/// `NAME=value` assignments and the wrappers `time`, `exec`, `command` skipped.
fn program(words: &[String]) -> Option<(&str, &[String])> {
    const SKIPPED: [&str; 12] = [
        "if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "exec", "command",
    ];
    let skip = |w: &str| {
        let assignment = w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        });
        assignment || SKIPPED.contains(&w)
    };
    let start = words.iter().position(|w| !skip(w))?;
    Some((words[start].as_str(), &words[start + 1..]))
}

fn is_halubench(program: &str) -> bool {
    program == "halubench" || program.ends_with("/halubench")
}

/// The commands of every step that run `halubench` or `cargo`.
fn commands_of(scripts: &[(String, String)]) -> Vec<ShellCommand> {
    scripts
        .iter()
        .flat_map(|(place, script)| {
            shell_commands(script)
                .into_iter()
                .filter(|words| {
                    program(words).is_some_and(|(p, _)| is_halubench(p) || p == "cargo")
                })
                .map(|words| ShellCommand {
                    step: place.clone(),
                    words,
                })
        })
        .collect()
}

/// What is wrong with one `halubench` invocation: a subcommand its parent's help does not
/// list, an option the help of the (sub)command it is given to does not list.
fn check_halubench(args: &[String], help: &mut dyn HelpSource) -> Vec<String> {
    let mut problems = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut current = match help.help(&path) {
        Ok(h) => h,
        Err(e) => return vec![e],
    };
    let shown = |path: &[String]| {
        std::iter::once("halubench")
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline_value) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            let flag = format!("--{name}");
            match current.options.get(&flag) {
                Some(true) if !inline_value => {
                    words.next();
                }
                Some(_) => {}
                None => problems.push(format!(
                    "`{flag}` is not an option of `{}` (see its --help)",
                    shown(&path)
                )),
            }
            continue;
        }
        if let Some(shorts) = word.strip_prefix('-')
            && !shorts.is_empty()
            && !shorts.starts_with(|c: char| c.is_ascii_digit())
        {
            // `-abc` is `-a -b -c` until one that takes a value: the rest is its value.
            for (i, c) in shorts.char_indices() {
                let flag = format!("-{c}");
                match current.options.get(&flag) {
                    Some(true) => {
                        if i + c.len_utf8() == shorts.len() {
                            words.next();
                        }
                        break;
                    }
                    Some(false) => {}
                    None => {
                        problems.push(format!(
                            "`{flag}` is not an option of `{}` (see its --help)",
                            shown(&path)
                        ));
                        break;
                    }
                }
            }
            continue;
        }
        if current.commands.is_empty() {
            // A positional argument of a command without subcommands.
            continue;
        }
        if !current.commands.contains(word) {
            problems.push(format!(
                "`{word}` is not a subcommand of `{}` (it has: {})",
                shown(&path),
                current
                    .commands
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return problems;
        }
        path.push(word.clone());
        current = match help.help(&path) {
            Ok(h) => h,
            Err(e) => {
                problems.push(e);
                return problems;
            }
        };
    }
    let asks_help = args
        .iter()
        .any(|a| matches!(a.as_str(), "-h" | "--help" | "-V" | "--version"));
    if !current.commands.is_empty() && !asks_help {
        problems.push(format!("`{}` names no subcommand", shown(&path)));
    }
    problems
}

/// What is wrong with one `cargo build`: anything beyond `--release`, `--no-default-features`
/// and `--features`/`-F` with features halubench-cli defines.
fn check_cargo_build(args: &[String], features: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let check_features = |list: &str, problems: &mut Vec<String>| {
        for feature in list.split([',', ' ']).filter(|f| !f.is_empty()) {
            if !features.contains(feature) {
                problems.push(format!(
                    "`cargo build` asks for feature `{feature}`, which halubench-cli does not \
                     define (it has: {})",
                    features.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    };
    let mut words = args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--release" | "--no-default-features" => {}
            "--features" | "-F" => match words.next() {
                Some(list) => check_features(list, &mut problems),
                None => problems.push(format!("`cargo build {word}` has no value")),
            },
            other => match other
                .strip_prefix("--features=")
                .or_else(|| other.strip_prefix("-F").filter(|v| !v.is_empty()))
            {
                Some(list) => check_features(list, &mut problems),
                None => problems.push(format!(
                    "`cargo build` with `{other}`: the workflow's build may use only \
                     --release, --no-default-features and --features"
                )),
            },
        }
    }
    problems
}

/// Every problem of a workflow, one line each, naming the step: its shape, then each
/// `halubench` and `cargo build` command of its `run:` scripts.
fn workflow_problems(
    yaml: &str,
    help: &mut dyn HelpSource,
    features: &BTreeSet<String>,
) -> Vec<String> {
    let scripts = match run_scripts(yaml) {
        Ok(scripts) => scripts,
        Err(problems) => return problems,
    };
    let mut problems = Vec::new();
    let mut release_built = false;
    let mut debug_built = false;
    for command in commands_of(&scripts) {
        let Some((program, args)) = program(&command.words) else {
            continue;
        };
        let found = |problem: String| format!("{}: {problem}", command.step);
        if is_halubench(program) {
            // A binary from target/ must have been built by an earlier step.
            if program.ends_with("target/release/halubench") && !release_built {
                problems.push(found(format!(
                    "`{program}` runs before any `cargo build --release`"
                )));
            }
            if program.ends_with("target/debug/halubench") && !debug_built {
                problems.push(found(format!(
                    "`{program}` runs before any `cargo build` without --release"
                )));
            }
            problems.extend(check_halubench(args, help).into_iter().map(found));
        } else if let Some(("build", build_args)) =
            args.split_first().map(|(sub, rest)| (sub.as_str(), rest))
        {
            let release = build_args.iter().any(|a| a == "--release");
            release_built |= release;
            debug_built |= !release;
            problems.extend(
                check_cargo_build(build_args, features)
                    .into_iter()
                    .map(found),
            );
        }
    }
    problems
}

fn nightly_yml() -> String {
    std::fs::read_to_string(workspace_root().join("examples/nightly.yml"))
        .expect("read examples/nightly.yml")
}

#[test]
fn nightly_workflow_is_yaml_with_a_list_of_steps_in_every_job() {
    let yaml = nightly_yml();
    let scripts = run_scripts(&yaml).unwrap_or_else(|problems| panic!("{problems:#?}"));
    let commands = commands_of(&scripts);
    // Not vacuous: the build and the three halubench commands the workflow runs were found.
    let programs: Vec<String> = commands
        .iter()
        .filter_map(|c| program(&c.words))
        .map(|(p, args)| format!("{p} {}", args.first().map_or("", String::as_str)))
        .collect();
    assert_eq!(
        programs,
        [
            "cargo build",
            "target/release/halubench run",
            "target/release/halubench gate",
            "target/release/halubench compare",
        ],
        "{commands:#?}"
    );
}

#[test]
fn nightly_workflow_uses_only_real_subcommands_flags_and_features() {
    let problems = workflow_problems(&nightly_yml(), &mut Binary::new(), &cli_features());
    assert!(
        problems.is_empty(),
        "examples/nightly.yml:\n{}",
        problems.join("\n")
    );
}

/// A workflow whose steps hold the mistakes the check exists for, and things that are not.
const PLANTED: &str = r#"
on: push
jobs:
  judge:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Build
        run: cargo build --release --features local   # --not-a-flag in a comment
      - name: Judge
        env:
          KEY: ${{ secrets.KEY }}
        run: |
          # --also-not-checked: a comment
          X=1 target/release/halubench run --dataset halubench --limit 5 \
            --seed 7 --judge baseline \
            --no-such-flag --out "reports/n-${{ github.run_id }}" && echo done
          if [ -d reports ]; then halubench datasets list --bogus; fi
          halubench no-such-command --out x
"#;

#[test]
fn planted_mistakes_are_reported() {
    let problems = workflow_problems(PLANTED, &mut Binary::new(), &cli_features());
    let text = problems.join("\n");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`--no-such-flag`") && p.contains("`halubench run`")),
        "{text}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`--bogus`") && p.contains("`halubench datasets list`")),
        "{text}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`no-such-command` is not a subcommand")),
        "{text}"
    );
    assert_eq!(problems.len(), 3, "{text}");
    assert!(
        problems.iter().all(|p| p.contains("(Judge)")),
        "each names its step: {text}"
    );
}

#[test]
fn the_build_may_ask_only_for_release_and_the_crates_features() {
    let features = cli_features();
    assert!(
        features.contains("local") && features.contains("default"),
        "{features:?}"
    );
    let yaml = |build: &str| {
        format!(
            "jobs:\n  j:\n    steps:\n      - run: {build}\n      - run: target/release/halubench score r\n"
        )
    };
    let problems = |build: &str| workflow_problems(&yaml(build), &mut Binary::new(), &features);
    assert_eq!(
        problems("cargo build --release --no-default-features"),
        Vec::<String>::new()
    );
    assert_eq!(
        problems("cargo build --release -F local,cuda"),
        Vec::<String>::new()
    );
    let bad = problems("cargo build --release --features no-such-feature --locked");
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert!(bad[0].contains("`no-such-feature`"), "{bad:#?}");
    assert!(bad[1].contains("`--locked`"), "{bad:#?}");
    let unbuilt = problems("cargo build --no-default-features");
    assert_eq!(unbuilt.len(), 1, "{unbuilt:#?}");
    assert!(unbuilt[0].contains("before any `cargo build --release`"));
}

#[test]
fn a_file_of_the_wrong_shape_is_reported() {
    let features = cli_features();
    let mut binary = Binary::new();
    let mut problems = |yaml: &str| workflow_problems(yaml, &mut binary, &features);
    assert!(problems("jobs: [unclosed")[0].starts_with("not YAML"));
    assert_eq!(problems("name: x\n"), ["no `jobs` mapping"]);
    assert_eq!(
        problems("jobs:\n  j:\n    steps:\n      run: halubench run\n"),
        ["jobs.j.steps is not a list"]
    );
    assert_eq!(
        problems("jobs:\n  j:\n    steps:\n      - run: [halubench]\n")[0]
            .split(':')
            .take(2)
            .collect::<Vec<_>>(),
        ["jobs.j.steps[0]", " `run` is not text"]
    );
}

#[test]
fn shell_scripts_split_into_simple_commands() {
    let commands = shell_commands(
        "a --x \\\n  --y 'q r' # c\nif [ -d d ]; then b -z; fi\nc \"${{ e.f }}\"|| d",
    );
    let words = |ws: &[&str]| ws.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert_eq!(
        commands,
        [
            words(&["a", "--x", "--y", "q r"]),
            words(&["if", "[", "-d", "d", "]"]),
            words(&["then", "b", "-z"]),
            words(&["fi"]),
            words(&["c", "EXPR"]),
            words(&["d"]),
        ]
    );
}
