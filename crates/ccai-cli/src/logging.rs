//! The log subscriber: what the library (and the CLI) log through `tracing` goes to stderr, as
//! readable text (the default) or one JSON object per line (`--log-format json`), at `warn` for the
//! long-running `ccai listen` and `error` for one-shot commands (whose failure is their one error
//! line), unless `CCAI_LOG` or `RUST_LOG` say otherwise (`CCAI_LOG=info`,
//! `RUST_LOG=ccai::inbox=debug`). `CCAI_LOG` also takes `warning` and `information`.
//!
//! The library never logs a secret, a signature or an API key: deliveries are named by their
//! event hash, rejections by their kind, forward targets without their URL.

use crate::stdout::errln;
use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Readable lines: time, level, target, message and fields.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message and fields.
    Json,
}

/// The logging flags, global to every command.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// How log lines are written to stderr: text, or json (one object per line, for a log
    /// pipeline), upper or lower case (default: CCAI_LOG_FORMAT, else text). The level is warn
    /// for listen and error otherwise, unless CCAI_LOG or RUST_LOG set it (e.g. CCAI_LOG=info).
    // CCAI_LOG_FORMAT is read in `format()`, not by clap: clap's error for a bad value named
    // `--log-format`, a flag the user never typed.
    #[arg(
        long,
        global = true,
        value_enum,
        ignore_case = true,
        help_heading = "Logging"
    )]
    pub log_format: Option<LogFormat>,
}

impl LogArgs {
    /// `--log-format`, else `CCAI_LOG_FORMAT` (unset or empty: text). A bad value in the variable
    /// is an error that names it.
    pub(crate) fn format(&self) -> Result<LogFormat, String> {
        if let Some(format) = self.log_format {
            return Ok(format);
        }
        let Some(value) = std::env::var_os("CCAI_LOG_FORMAT").filter(|v| !v.is_empty()) else {
            return Ok(LogFormat::default());
        };
        // As the flag reads it: the names in any case (`JSON`, as environment values often are).
        value
            .to_str()
            .and_then(|text| LogFormat::from_str(text, true).ok())
            .ok_or_else(|| {
                format!(
                    "CCAI_LOG_FORMAT={:?} is not a log format: set it to text or json, or unset it",
                    value.to_string_lossy()
                )
            })
    }
}

/// Installs the subscriber (once, at start) with `default_level` unless `CCAI_LOG` or `RUST_LOG`
/// set a filter. A malformed filter falls back to `default_level`, with a note.
pub(crate) fn init(format: LogFormat, default_level: &str) {
    // CCAI_LOG is ours: it takes the common spellings of the levels. RUST_LOG is read as every
    // Rust program reads it.
    // An empty CCAI_LOG counts as unset, as every empty CCAI_* variable does: RUST_LOG applies.
    let directives = match std::env::var("CCAI_LOG").map(|v| (v.trim().is_empty(), v)) {
        Ok((false, ours)) => {
            let (directives, ignored) = ccai_log_directives(&ours);
            if !ignored.is_empty() {
                errln!(
                    "warning: ignoring {} in CCAI_LOG: not a log level (trace, debug, info, warn, \
                     error or off) nor a known target (for another, write target=level)",
                    ignored.join(", ")
                );
            }
            directives
        }
        Ok((true, _)) | Err(_) => std::env::var("RUST_LOG").unwrap_or_default(),
    };
    let filter = if directives.trim().is_empty() {
        EnvFilter::new(default_level)
    } else {
        EnvFilter::try_new(&directives).unwrap_or_else(|e| {
            errln!("warning: ignoring the log filter {directives:?}: {e}");
            EnvFilter::new(default_level)
        })
    };
    // tokio-postgres logs each statement's parameters at debug: the stored bodies and their
    // signatures. Capped whatever the filter says (a more specific target wins), so that no log
    // level shows a signature.
    let filter = match "tokio_postgres::query=info".parse() {
        Ok(cap) => filter.add_directive(cap),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogLine(Vec::new()));
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => {
            use std::io::IsTerminal;
            // no-color.org: set and not empty. An empty one (`NO_COLOR= ccai …`) keeps colour.
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
            let color = std::io::stderr().is_terminal() && !no_color;
            builder.with_ansi(color).try_init()
        }
    };
    // Already installed (cannot happen in the binary): keep the first.
    drop(installed);
}

/// Crates whose log lines a bare `CCAI_LOG=name` (all of that target's lines) may ask for. Not
/// `ccai_cli`: the CLI logs under `ccai::cli`, so that bare word would show nothing at all.
const KNOWN_TARGETS: [&str; 12] = [
    "ccai",
    "tokio_postgres",
    "deadpool_postgres",
    "rusqlite",
    "hyper",
    "hyper_util",
    "reqwest",
    "axum",
    "tower_http",
    "h2",
    "rustls",
    "tokio",
];

/// `CCAI_LOG`'s directives as `EnvFilter` reads them, and the bare words left out, quoted.
/// `warning` and `information` are `warn` and `info`, alone or in `target=level`. Any other
/// bare word that is neither a level nor a known target is left out: `EnvFilter` would read
/// `CCAI_LOG=verbose` as "only the target `verbose`", silencing every warning and error.
fn ccai_log_directives(directives: &str) -> (String, Vec<String>) {
    let level = |word: &str| {
        if word.eq_ignore_ascii_case("warning") {
            Some("warn".to_owned())
        } else if word.eq_ignore_ascii_case("information") {
            Some("info".to_owned())
        } else {
            word.parse::<tracing_subscriber::filter::LevelFilter>()
                .is_ok()
                .then(|| word.to_owned())
        }
    };
    let mut kept = Vec::new();
    let mut ignored = Vec::new();
    for directive in directives.split(',').map(str::trim) {
        if directive.is_empty() {
            continue;
        }
        // Span and field filters (`target[span{field=1}]=debug`) are passed on as written, but
        // for the level after the last `]` (an `=` before it is a field's).
        if directive.contains(['[', '{']) {
            match directive.rsplit_once("]=") {
                Some((span, word)) if !word.contains(']') => match level(word.trim()) {
                    Some(level) => kept.push(format!("{span}]={level}")),
                    None => kept.push(directive.to_owned()),
                },
                _ => kept.push(directive.to_owned()),
            }
        } else if let Some((target, word)) = directive.rsplit_once('=') {
            match level(word.trim()) {
                Some(level) => kept.push(format!("{target}={level}")),
                None => kept.push(directive.to_owned()),
            }
        } else if let Some(level) = level(directive) {
            kept.push(level);
        } else if directive
            .split("::")
            .next()
            .is_some_and(|root| KNOWN_TARGETS.contains(&root))
        {
            kept.push(directive.to_owned());
        } else {
            ignored.push(format!("{directive:?}"));
        }
    }
    (kept.join(","), ignored)
}

/// One log line, handed whole to standard error when the formatter is done with it: through
/// [`line_writer`](crate::line_writer), so that `ccai listen` logging to a standard error nobody
/// reads does not stop.
struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let text = String::from_utf8_lossy(&std::mem::take(&mut self.0)).into_owned();
            crate::line_writer::err_text(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::{ccai_log_directives, KNOWN_TARGETS};

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Every `.rs` file under `dir`, at any depth.
    fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    /// The targets named by a `target:` string in the workspace's crates' sources; fails on a
    /// tracing macro call without one (its target would be its module's path, in no list).
    fn targets_in_code() -> BTreeSet<String> {
        let mut files = Vec::new();
        for krate in std::fs::read_dir(workspace().join("crates")).expect("crates") {
            let src = krate.expect("crate").path().join("src");
            if src.is_dir() {
                rust_files(&src, &mut files);
            }
        }
        let mut targets = BTreeSet::new();
        let mut untargeted = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            for line in scan(&text, &mut targets) {
                untargeted.push(format!("{}:{line}", file.display()));
            }
        }
        assert!(
            untargeted.is_empty(),
            "log lines without a target: {untargeted:?}"
        );
        targets
    }

    /// Adds the targets named by a `target:` string in `text` (a source file) to `targets`;
    /// returns the lines of the log calls in it without one.
    fn scan(text: &str, targets: &mut BTreeSet<String>) -> Vec<usize> {
        for (at, _) in text.match_indices("target: \"") {
            let rest = &text[at + "target: \"".len()..];
            targets.insert(rest[..rest.find('"').expect("closing quote")].to_owned());
        }
        let line = |at: usize| text[..at].matches('\n').count() + 1;
        let mut untargeted = Vec::new();
        // Every call of a log or span macro, however it is reached (`tracing::warn!`, an
        // imported `warn!`, `log::warn!`) and with any delimiter: its first argument is the target.
        for (at, _) in text.match_indices('!') {
            let before = &text[..at];
            let name = before
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(before, |start| &before[start + 1..]);
            let args = text[at + 1..].trim_start();
            if LOG_MACROS.contains(&name)
                && args.starts_with(['(', '{', '['])
                && !args[1..].trim_start().starts_with("target:")
            {
                untargeted.push(line(at));
            }
        }
        // A span made by the `instrument` attribute has its module's path unless it says
        // `target = …`. (Put together here, so that the scan of this file does not find it.)
        for attribute in ["instrument", "tracing::instrument"].map(|name| format!("#[{name}")) {
            for (at, _) in text.match_indices(&attribute) {
                let rest = &text[at..];
                if !rest[..rest.find(']').unwrap_or(rest.len())].contains("target =") {
                    untargeted.push(line(at));
                }
            }
        }
        untargeted
    }

    /// The macros of `tracing` (and `log`) whose lines or spans take a target.
    const LOG_MACROS: [&str; 12] = [
        "trace",
        "debug",
        "info",
        "warn",
        "error",
        "event",
        "span",
        "trace_span",
        "debug_span",
        "info_span",
        "warn_span",
        "error_span",
    ];

    /// The scan finds a log call without a target in each form tracing takes: an imported
    /// macro, braces, a span, the `instrument` attribute; and not one with a target, on one line
    /// or several. (`@` stands for `!` and `#~[` for an attribute here, so that the scan of this
    /// very file does not find these.)
    #[test]
    fn the_scan_finds_log_calls_without_a_target_in_every_form() {
        let untargeted = [
            "use tracing::warn;\nfn f() {\n    warn@(\"x\");\n}",
            "tracing::warn@ { \"x\" };",
            "tracing::info@(x = 1, \"y\");",
            "log::error@(\"x\");",
            "tracing::event@(tracing::Level::INFO, \"x\");",
            "let _s = tracing::info_span@(\"x\").entered();",
            "let _s = debug_span@(\"x\");",
            "tracing::span@(tracing::Level::INFO, \"x\");",
            "#~[tracing::instrument]\nasync fn f() {}",
            "#~[instrument(skip(self))]\nfn f(&self) {}",
        ];
        for source in untargeted {
            let source = source.replace('@', "!").replace('~', "");
            assert_ne!(
                scan(&source, &mut BTreeSet::new()),
                Vec::<usize>::new(),
                "{source}"
            );
        }
        let targeted = [
            "tracing::warn@(target: \"ccai::a\", \"x\");",
            "tracing::warn@(\n    target: \"ccai::b\",\n    %error,\n    \"x\"\n);",
            "warn@(target: \"ccai::c\", \"x\");",
            "tracing::event@(target: \"ccai::d\", tracing::Level::INFO, \"x\");",
            "tracing::info_span@(target: \"ccai::e\", \"x\");",
            "#~[tracing::instrument(target = \"ccai::f\")]\nfn f() {}",
            "debug_assert@(x != y); errln@(\"x\"); let error = !ok;",
        ];
        for source in targeted {
            let source = source.replace('@', "!").replace('~', "");
            assert_eq!(
                scan(&source, &mut BTreeSet::new()),
                Vec::<usize>::new(),
                "{source}"
            );
        }
        let mut targets = BTreeSet::new();
        scan(
            &"tracing::warn@(\n    target: \"ccai::b\",\n    \"x\"\n);".replace('@', "!"),
            &mut targets,
        );
        assert_eq!(targets, BTreeSet::from(["ccai::b".to_owned()]));
    }

    /// The targets docs/operations.md lists: the bullets after "Targets, for a …".
    fn documented_targets() -> BTreeSet<String> {
        let doc = std::fs::read_to_string(workspace().join("docs/operations.md")).expect("doc");
        let (_, list) = doc
            .split_once("\nTargets, for a `target=level` filter")
            .expect("the list of targets");
        list.lines()
            .skip(2)
            .take_while(|line| !line.is_empty())
            .filter_map(|line| line.strip_prefix("- `"))
            .map(|line| line[..line.find('`').expect("closing backtick")].to_owned())
            .collect()
    }

    /// The log targets documented for `CCAI_LOG` are those the code logs under, no more, no
    /// fewer; each is taken bare (its crate is a known target), and the known targets of this
    /// workspace's crates are roots of targets in use.
    #[test]
    fn the_documented_log_targets_are_those_in_use() {
        let used = targets_in_code();
        assert_eq!(documented_targets(), used, "docs/operations.md's targets");
        let roots: BTreeSet<&str> = used
            .iter()
            .map(|target| target.split("::").next().unwrap_or(target))
            .collect();
        for root in &roots {
            assert!(KNOWN_TARGETS.contains(root), "{root} is not a known target");
        }
        for ours in ["ccai", "ccai_cli"] {
            assert_eq!(
                KNOWN_TARGETS.contains(&ours),
                roots.contains(ours),
                "{ours}: a known target exactly when lines are logged under it"
            );
        }
    }

    #[test]
    fn ccai_log_reads_common_level_spellings_and_leaves_unknown_words_out() {
        let read = |text: &str| ccai_log_directives(text);
        assert_eq!(read("warning"), ("warn".to_owned(), vec![]));
        assert_eq!(read("Information"), ("info".to_owned(), vec![]));
        assert_eq!(
            read("info, ccai::inbox=warning,hyper=debug"),
            ("info,ccai::inbox=warn,hyper=debug".to_owned(), vec![])
        );
        assert_eq!(read("ccai::inbox"), ("ccai::inbox".to_owned(), vec![]));
        // No line is logged under `ccai_cli`: alone it would silence every one.
        assert_eq!(
            read("ccai_cli,ccai_cli=debug"),
            ("ccai_cli=debug".to_owned(), vec!["\"ccai_cli\"".to_owned()])
        );
        assert_eq!(read("3,OFF"), ("3,OFF".to_owned(), vec![]));
        assert_eq!(
            read("verbose,ccai=debug"),
            ("ccai=debug".to_owned(), vec!["\"verbose\"".to_owned()])
        );
        assert_eq!(
            read("ccai[deliver{hash=a}]=debug"),
            ("ccai[deliver{hash=a}]=debug".to_owned(), vec![])
        );
        // The level of a span filter is read as others are; a field's value is not a level.
        assert_eq!(
            read("ccai[deliver]=warning,[{kind=warning}]=Information"),
            (
                "ccai[deliver]=warn,[{kind=warning}]=info".to_owned(),
                vec![]
            )
        );
        assert_eq!(
            read("[{kind=warning}]"),
            ("[{kind=warning}]".to_owned(), vec![])
        );
    }
}
