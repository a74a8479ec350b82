//! Process metrics in Prometheus' text format: counters and histograms recorded where things
//! happen (requests, model calls, redactions, rate limits), rendered by `GET /metrics` together
//! with figures read from the database at scrape time (outbox, reviews).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

type Labels = Vec<(&'static str, String)>;

/// Latency buckets in seconds: sub-millisecond overhead up to slow models.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// Name → help text, for every metric recorded here.
const HELP: &[(&str, &str, &str)] = &[
    (
        "exbrief_http_requests_total",
        "counter",
        "HTTP requests by route template, method and status.",
    ),
    (
        "exbrief_http_request_duration_seconds",
        "histogram",
        "HTTP request latency by route template.",
    ),
    (
        "exbrief_model_calls_total",
        "counter",
        "Model calls by provider, model, task, attempt kind and outcome.",
    ),
    (
        "exbrief_model_call_duration_seconds",
        "histogram",
        "Model call latency by model and task.",
    ),
    (
        "exbrief_model_tokens_total",
        "counter",
        "Model tokens by model, task and kind (prompt, completion).",
    ),
    (
        "exbrief_model_retries_total",
        "counter",
        "Model calls that were retries or schema repairs, by task.",
    ),
    (
        "exbrief_model_fallbacks_total",
        "counter",
        "Tasks answered by the offline provider after the model failed, by task.",
    ),
    (
        "exbrief_redactions_total",
        "counter",
        "Values redacted, by class and entity.",
    ),
    (
        "exbrief_outbox_dead_total",
        "counter",
        "Outbox deliveries given up (marked dead), by kind.",
    ),
    (
        "exbrief_store_commits_total",
        "counter",
        "Transactions that stored finished summaries (group commit: several per transaction under load).",
    ),
    (
        "exbrief_summaries_stored_total",
        "counter",
        "Finished summaries stored.",
    ),
    (
        "exbrief_rate_limited_total",
        "counter",
        "Requests refused by a limit: requests (per key rate), budget (daily tokens), tokens (global model tokens per minute).",
    ),
];

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard)
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

pub fn count(name: &'static str, pairs: &[(&'static str, &str)], by: f64) {
    with(|r| *r.counters.entry((name, labels(pairs))).or_default() += by);
}

pub fn observe(name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
    with(|r| {
        let h = r.histograms.entry((name, labels(pairs))).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    });
}

pub fn rate_limited(limit: &str) {
    count("exbrief_rate_limited_total", &[("limit", limit)], 1.0);
}

/// A Prometheus label value: backslash, quote and newline escaped.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(labels: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", label_value(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Everything recorded so far, in the text exposition format.
pub fn render(out: &mut String) {
    with(|r| {
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for ((n, l), v) in r.counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{n}{} {v}", render_labels(l, None));
            }
            for ((n, l), h) in r.histograms.iter().filter(|((n, _), _)| n == name) {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {}",
                        render_labels(l, Some(("le", b.to_string()))),
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "{n}_bucket{} {}",
                    render_labels(l, Some(("le", "+Inf".to_owned()))),
                    h.count
                );
                let _ = writeln!(out, "{n}_sum{} {}", render_labels(l, None), h.sum);
                let _ = writeln!(out, "{n}_count{} {}", render_labels(l, None), h.count);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        observe(
            "exbrief_model_call_duration_seconds",
            &[("model", "m\"1"), ("task", "t")],
            0.003,
        );
        observe(
            "exbrief_model_call_duration_seconds",
            &[("model", "m\"1"), ("task", "t")],
            0.2,
        );
        let mut out = String::new();
        render(&mut out);
        assert!(out.contains("exbrief_model_call_duration_seconds_bucket{model=\"m\\\"1\",task=\"t\",le=\"0.005\"} 1"), "{out}");
        assert!(out.contains(
            "exbrief_model_call_duration_seconds_bucket{model=\"m\\\"1\",task=\"t\",le=\"0.25\"} 2"
        ));
        assert!(
            out.contains(
                "exbrief_model_call_duration_seconds_count{model=\"m\\\"1\",task=\"t\"} 2"
            )
        );
    }
}
