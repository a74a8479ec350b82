#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Redaction speed: free text (MB/s, every detector on), whole bundles (bundles/s), policy
//! load, and pathological inputs that must stay linear.
//!
//! `cargo bench --bench redact`
//!
//! With `REDACT_COUNT=1` it instead redacts the corpus and the fixtures a few times over and
//! exits, for `bench/instructions.sh`: instructions counted by callgrind inside the measured
//! passes do not move with the machine's load the way wall time does.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// The allocator the service binary ships with (`src/main.rs`), so that the figures are what
/// `exbrief serve` pays.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group};
use exbrief::redact::{Policies, Policy, Redactor};
use serde_json::{Value, json};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The labelled corpus and the fixtures' messages, repeated to at least 1 MiB of text.
fn text_corpus() -> Vec<String> {
    let mut base: Vec<String> =
        std::fs::read_to_string(root().join("tests/redaction_corpus/corpus.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(str::to_owned))
            .collect();
    for (_, bundle) in fixtures() {
        for m in bundle["messages"].as_array().into_iter().flatten() {
            if let Some(b) = m["body"].as_str() {
                base.push(b.to_owned());
            }
        }
    }
    to_a_mebibyte(&base)
}

/// Strings repeated to at least 1 MiB.
fn to_a_mebibyte(base: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut bytes = 0;
    while bytes < 1024 * 1024 && !base.is_empty() {
        for s in base {
            bytes += s.len();
            out.push(s.clone());
        }
    }
    out
}

/// The three labelled corpora's negatives (strings with no span to redact: references, dates,
/// quantities, product and place names written to look like what the detectors look for).
fn negatives() -> Vec<String> {
    let mut base = Vec::new();
    for file in ["corpus.jsonl", "heldout.jsonl", "heldout2.jsonl"] {
        let text = std::fs::read_to_string(root().join("tests/redaction_corpus").join(file))
            .unwrap_or_default();
        for v in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            if v["spans"].as_array().is_some_and(Vec::is_empty)
                && let Some(t) = v["text"].as_str()
            {
                base.push(t.to_owned());
            }
        }
    }
    to_a_mebibyte(&base)
}

/// The fixtures' messages (e-mails and chatter as an exception bundle carries them), each whole.
fn fixture_messages() -> Vec<String> {
    let base: Vec<String> = fixtures()
        .iter()
        .flat_map(|(_, b)| b["messages"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect();
    to_a_mebibyte(&base)
}

fn fixtures() -> Vec<(String, Value)> {
    let mut paths: Vec<_> = std::fs::read_dir(root().join("fixtures"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|x| x == "json"));
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            Some((p.display().to_string(), v))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let policies = Policies::load(&root().join("redaction"), "default").expect("policies");
    let redactor = policies.get(None).expect("default policy");

    let texts = text_corpus();
    let total: usize = texts.iter().map(String::len).sum();
    let mut g = c.benchmark_group("free_text");
    g.throughput(Throughput::Bytes(total as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function(
        format!("{} strings, {} KiB", texts.len(), total / 1024),
        |b| {
            b.iter(|| {
                for t in &texts {
                    black_box(redactor.redact_text(t, &[]));
                }
            })
        },
    );
    // The same strings as message-sized texts (about 2 KiB each, lines joined the way an e-mail
    // or a chatter thread holds them): per-call costs spread over more bytes.
    let messages: Vec<String> = texts.chunks(25).map(|c| c.join("\n")).collect();
    g.bench_function(
        format!(
            "{} messages of ~{} bytes (the same text)",
            messages.len(),
            total / messages.len().max(1)
        ),
        |b| {
            b.iter(|| {
                for t in &messages {
                    black_box(redactor.redact_text(t, &[]));
                }
            })
        },
    );
    g.finish();

    // What the text is made of moves the figure: strings with nothing to redact cost the byte
    // pass, the gates and the regexes they let through; each finding adds its token, its
    // variants and often a rescan.
    let mut g = c.benchmark_group("free_text_by_content");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for (name, texts) in [
        ("negatives of the three corpora", negatives()),
        ("the fixtures' messages", fixture_messages()),
    ] {
        let total: usize = texts.iter().map(String::len).sum();
        g.throughput(Throughput::Bytes(total as u64));
        g.bench_function(
            format!("{name}: {} strings, {} KiB", texts.len(), total / 1024),
            |b| {
                b.iter(|| {
                    for t in &texts {
                        black_box(redactor.redact_text(t, &[]));
                    }
                })
            },
        );
    }
    g.finish();

    let bundles = fixtures();
    let bytes: usize = bundles.iter().map(|(_, b)| b.to_string().len()).sum();
    let mut g = c.benchmark_group("bundles");
    g.throughput(Throughput::Elements(bundles.len() as u64));
    g.bench_function(
        format!(
            "{} fixtures, {} bytes on average",
            bundles.len(),
            bytes / bundles.len().max(1)
        ),
        // Each iteration redacts its own copies, made outside the timing: the service redacts
        // the request's document in place (`Redactor::redact_owned`), copying nothing.
        |b| {
            b.iter_batched(
                || bundles.clone(),
                |copies| {
                    for (_, bundle) in copies {
                        black_box(redactor.redact_owned(bundle));
                    }
                },
                BatchSize::SmallInput,
            )
        },
    );
    g.finish();

    let mut g = c.benchmark_group("policy_load");
    g.bench_function("one policy file (default.toml)", |b| {
        b.iter(|| black_box(Policy::load(&root().join("redaction/default.toml")).expect("load")))
    });
    g.sample_size(10);
    g.bench_function("compile the built-in detectors (once per process)", |b| {
        b.iter(|| black_box(exbrief::redact::compile_builtin_patterns().expect("compile")))
    });
    g.bench_function("all policies and the name gazetteer", |b| {
        b.iter(|| black_box(Policies::load(&root().join("redaction"), "default").expect("load")))
    });
    g.finish();

    // Pathological inputs: the time per byte must not grow with size.
    let mut g = c.benchmark_group("pathological");
    g.sample_size(10);
    for size in [64 * 1024, 1024 * 1024] {
        let digits: String = "0123456789".chars().cycle().take(size).collect();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("digits", size), &digits, |b, s| {
            b.iter(|| black_box(redactor.redact_text(s, &[])))
        });
    }
    for n in [10_000, 100_000] {
        let ats = "@".repeat(n);
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_with_input(BenchmarkId::new("at_signs", n), &ats, |b, s| {
            b.iter(|| black_box(redactor.redact_text(s, &[])))
        });
    }
    for depth in [16, 60] {
        let mut v = json!([
            "Call +49 30 1234567 or mail a@b.example",
            "Dear Anna Schmidt"
        ]);
        for _ in 0..depth {
            v = json!([v.clone(), "note by Jo Rivera, 1 200 €"]);
        }
        let bundle = json!({"event_id": "p", "event_type": "other", "occurred_at": "2026-11-20T06:00:00Z",
            "source": {"system": "odoo", "model": "x", "res_id": 1}, "facts": {"nested": v}});
        g.throughput(Throughput::Elements(depth as u64));
        g.bench_with_input(BenchmarkId::new("nested_arrays", depth), &bundle, |b, v| {
            b.iter(|| black_box(redactor.redact(v)))
        });
    }
    g.finish();
}

/// One pass over the free-text corpus (each text once), counted by `bench/instructions.sh`.
#[inline(never)]
fn counted_text_pass(redactor: &Redactor, texts: &[String]) {
    for t in texts {
        black_box(redactor.redact_text(t, &[]));
    }
}

/// One pass over the fixtures, counted by `bench/instructions.sh`: copies made by the caller,
/// redacted in place as the service does.
#[inline(never)]
fn counted_bundle_pass(redactor: &Redactor, bundles: Vec<(String, Value)>) {
    for (_, bundle) in bundles {
        black_box(redactor.redact_owned(bundle));
    }
}

/// [`counted_bundle_pass`] as the bench counted it before the service redacted in place: each
/// fixture copied inside the count (`REDACT_COPYING=1`).
#[inline(never)]
fn counted_bundle_pass_copying(redactor: &Redactor, bundles: &[(String, Value)]) {
    for (_, bundle) in bundles {
        black_box(redactor.redact(bundle));
    }
}

/// One string redacted a thousand times, counted by callgrind (`REDACT_ONE`).
#[inline(never)]
fn counted_one(redactor: &Redactor, text: &str) {
    for _ in 0..1000 {
        black_box(redactor.redact_text(black_box(text), &[]));
    }
}

/// `REDACT_COUNT=1`: two uncounted passes (patterns compiled, lazy DFAs built), then
/// `PASSES` counted ones of each kind; prints what a pass covers. With `REDACT_ONE=<text>`,
/// that one string instead, warmed up and then redacted a thousand times in `counted_one`. With
/// `REDACT_COPYING=1`, bundles are counted with their copies (`counted_bundle_pass_copying`).
fn count() {
    let policies = Policies::load(&root().join("redaction"), "default").expect("policies");
    let redactor = policies.get(None).expect("default policy");
    if let Ok(text) = std::env::var("REDACT_ONE") {
        for _ in 0..100 {
            black_box(redactor.redact_text(&text, &[]));
        }
        counted_one(redactor, &text);
        return;
    }
    let texts = text_corpus();
    let bundles = fixtures();
    let copying = std::env::var_os("REDACT_COPYING").is_some();
    let passes: usize = std::env::var("PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3);
    // Not through the counted functions: callgrind counts every call of those.
    for _ in 0..2 {
        for t in &texts {
            black_box(redactor.redact_text(t, &[]));
        }
        for (_, bundle) in &bundles {
            black_box(redactor.redact(bundle));
        }
    }
    for _ in 0..passes {
        counted_text_pass(redactor, &texts);
        if copying {
            counted_bundle_pass_copying(redactor, &bundles);
        } else {
            counted_bundle_pass(redactor, bundles.clone());
        }
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    println!(
        "passes={passes} text_bytes={bytes} texts={} bundles={}",
        texts.len(),
        bundles.len()
    );
}

criterion_group!(benches, bench);

fn main() {
    if std::env::var_os("REDACT_COUNT").is_some() {
        count();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
