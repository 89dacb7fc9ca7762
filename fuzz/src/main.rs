//! A small deterministic mutation fuzzer for the targets in `lib.rs`, on the stable toolchain:
//!
//! ```sh
//! cargo run --release --manifest-path fuzz/Cargo.toml -- <target|all> --seconds N [--seed S]
//! ```
//!
//! Starts from the seed corpus in `fuzz/corpus` (copied from `crates/ccai/tests/fixtures`),
//! mutates (bit flips, interesting bytes, JSON tokens, cuts, repeats, splices), and keeps an input
//! whose outcome (accepted, or the kind of error) is new. A panic is a finding: the input is
//! written to `fuzz/crashes/` and the run exits with status 1. No coverage feedback: that is what
//! the cargo-fuzz targets in `fuzz/libfuzzer/` add, on nightly.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ccai_fuzz::{fnv, Target, CLIENT_ID, SECRET, TARGETS};

const TOKENS: &[&[u8]] = &[
    b"\"eventType\"",
    b"\"eventHash\"",
    b"\"data\"",
    b"\"type\"",
    b"\"campaign\"",
    b"\"smsSid\"",
    b"\"message.sent\"",
    b"\"message.incoming\"",
    b"null",
    b"true",
    b"{}",
    b"[]",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u005f",
    b"\\/",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"1e400",
    b"-0",
    b"1.748623157e308",
    b"5e-324",
    b"18446744073709551616",
    b"0.1",
    b"\"$serde_json::private::RawValue\"",
    b"\"$serde_json::private::Number\"",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\x1b[2J",
    b"\xe2\x80\xae",
    b" ",
    b"\n",
    b"\t",
    b"\r",
];

/// xorshift64*: deterministic for a given seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = b"{}[]\":,\\0aZ \x00\x7f\x80\xff"[rng.below(16)];
            }
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            4 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            5 => out.truncate(at),
            6 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(32)).min(out.len());
                let chunk = out[start..end].to_vec();
                for _ in 0..=rng.below(3) {
                    out.splice(at..at, chunk.iter().copied());
                }
            }
            7 => {
                let other = &corpus[rng.below(corpus.len())];
                let start = rng.below(other.len() + 1);
                let end = (start + rng.below(64)).min(other.len());
                out.splice(at..at, other[start..end].iter().copied());
            }
            _ => {
                let depth = 1 + rng.below(200);
                let (open, close): (&[u8], &[u8]) = if rng.below(2) == 0 {
                    (b"[", b"]")
                } else {
                    (b"{\"a\":", b"}")
                };
                let mut nest = open.repeat(depth);
                nest.extend(b"1");
                nest.extend(close.repeat(depth));
                out.splice(at..at, nest);
            }
        }
    }
    out.truncate(64 * 1024);
    out
}

fn seeds(dir: &Path, target: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    let mut seeds: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if target == "verify" {
        // First line: the signature header; a valid one for bodies that parse.
        seeds = seeds
            .into_iter()
            .map(|body| {
                let header = ccai::webhook::parse_event(&body)
                    .map(|e| ccai::webhook::sign(CLIENT_ID, &e.event_hash, SECRET))
                    .unwrap_or_default();
                [header.as_bytes(), b"\n", &body].concat()
            })
            .collect();
    }
    if seeds.is_empty() {
        seeds.push(b"{}".to_vec());
    }
    seeds
}

struct Report {
    executions: u64,
    corpus: usize,
    outcomes: usize,
    crash: Option<PathBuf>,
}

fn run(target: Target, seconds: u64, seed: u64, dir: &Path) -> Report {
    let (name, function) = target;
    let mut corpus = seeds(&dir.join("corpus"), name);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut executions = 0u64;
    let mut pending: Vec<Vec<u8>> = corpus.clone();
    while Instant::now() < deadline {
        for _ in 0..256 {
            let input = pending.pop().unwrap_or_else(|| {
                let base = &corpus[rng.below(corpus.len())];
                mutate(&mut rng, base, &corpus)
            });
            executions += 1;
            match catch_unwind(AssertUnwindSafe(|| function(&input))) {
                Ok(outcome) => {
                    if seen.insert(outcome) && corpus.len() < 4096 {
                        corpus.push(input);
                    }
                }
                Err(_) => {
                    let crashes = dir.join("crashes");
                    let _ = std::fs::create_dir_all(&crashes);
                    let path = crashes.join(format!("{name}-{:016x}", fnv(&input)));
                    let _ = std::fs::write(&path, &input);
                    return Report {
                        executions,
                        corpus: corpus.len(),
                        outcomes: seen.len(),
                        crash: Some(path),
                    };
                }
            }
        }
    }
    Report {
        executions,
        corpus: corpus.len(),
        outcomes: seen.len(),
        crash: None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut target = None;
    let mut seconds = 10u64;
    let mut seed = 0x5eed_u64;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--seconds" => {
                seconds = args
                    .get(i + 1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(seconds);
                i += 1;
            }
            "--seed" => {
                seed = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(seed);
                i += 1;
            }
            other => target = Some(other.to_owned()),
        }
        i += 1;
    }
    let names: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
    let chosen: Vec<Target> = match target.as_deref() {
        Some("all") => TARGETS.to_vec(),
        Some(name) => match TARGETS.iter().find(|t| t.0 == name) {
            Some(t) => vec![*t],
            None => {
                eprintln!("unknown target {name:?}; one of {names:?} or all");
                return ExitCode::from(2);
            }
        },
        None => {
            eprintln!(
                "usage: ccai-fuzz <{}|all> [--seconds N] [--seed S]",
                names.join("|")
            );
            return ExitCode::from(2);
        }
    };
    // Panics are findings, reported below; the default hook's message says what failed.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failed = false;
    for target in chosen {
        let report = run(target, seconds, seed, dir);
        println!(
            "{}: {} executions in {seconds} s, {} distinct outcomes, corpus {}{}",
            target.0,
            report.executions,
            report.outcomes,
            report.corpus,
            match &report.crash {
                Some(path) => format!(", CRASH saved to {}", path.display()),
                None => ", no crash".to_owned(),
            }
        );
        failed |= report.crash.is_some();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
