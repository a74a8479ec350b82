//! Process metrics in Prometheus' text format: counters and histograms recorded where things
//! happen (requests, model calls, redactions, rate limits), rendered by `GET /metrics` together
//! with figures read from the database at scrape time (outbox, reviews).

use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

use foldhash::HashMap;

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
    counters: Series<f64>,
    histograms: Series<Histogram>,
}

/// Series of one kind, found by a hash of name and label values: recording one (dozens per
/// summary) looks it up without building its key, which only a new series needs.
#[derive(Default)]
struct Series<T, S = foldhash::fast::RandomState> {
    entries: Vec<((&'static str, Labels), T)>,
    by_hash: HashMap<u64, Vec<usize>>,
    hasher: S,
}

impl<T: Default, S: std::hash::BuildHasher> Series<T, S> {
    fn get(&mut self, name: &'static str, pairs: &[(&'static str, &str)]) -> &mut T {
        let ids = self
            .by_hash
            .entry(self.hasher.hash_one((name, pairs)))
            .or_default();
        let entries = &mut self.entries;
        let same = |((n, l), _): &((&'static str, Labels), T)| {
            *n == name
                && l.len() == pairs.len()
                && l.iter()
                    .zip(pairs)
                    .all(|((k, v), (pk, pv))| k == pk && v == pv)
        };
        let at = match ids.iter().copied().find(|&i| same(&entries[i])) {
            Some(i) => i,
            None => {
                entries.push(((name, labels(pairs)), T::default()));
                ids.push(entries.len() - 1);
                entries.len() - 1
            }
        };
        &mut entries[at].1
    }

    /// The series of `name`, ordered by their labels.
    fn of(&self, name: &str) -> Vec<&((&'static str, Labels), T)> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .filter(|((n, _), _)| *n == name)
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
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
    with(|r| *r.counters.get(name, pairs) += by);
}

pub fn observe(name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
    with(|r| {
        let h = r.histograms.get(name, pairs);
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
            for ((n, l), v) in r.counters.of(name) {
                let _ = writeln!(out, "{n}{} {v}", render_labels(l, None));
            }
            for ((n, l), h) in r.histograms.of(name) {
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

    /// Hashes every series alike, so that finding one rests on comparing names and values.
    #[derive(Default)]
    struct Collide;

    impl std::hash::BuildHasher for Collide {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    struct Constant;

    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn series_that_hash_alike_stay_apart() {
        let mut s: Series<f64, Collide> = Series::default();
        *s.get("a_total", &[("k", "x")]) += 1.0;
        *s.get("a_total", &[("k", "y")]) += 2.0;
        *s.get("a_total", &[("j", "x")]) += 4.0;
        *s.get("a_total", &[("k", "x"), ("j", "x")]) += 8.0;
        *s.get("b_total", &[("k", "x")]) += 16.0;
        *s.get("a_total", &[("k", &String::from("x"))]) += 32.0;
        let a: Vec<(Vec<(&str, &str)>, f64)> = s
            .of("a_total")
            .into_iter()
            .map(|((_, l), v)| (l.iter().map(|(k, v)| (*k, v.as_str())).collect(), *v))
            .collect();
        assert_eq!(
            a,
            [
                (vec![("j", "x")], 4.0),
                (vec![("k", "x")], 33.0),
                (vec![("k", "x"), ("j", "x")], 8.0),
                (vec![("k", "y")], 2.0),
            ]
        );
        assert_eq!(s.of("b_total").len(), 1);
        assert_eq!(s.by_hash.len(), 1);
    }

    /// A series recorded again is found by its name and label values, whatever strings hold
    /// them; series differing in one value stay apart; they render in the order of their labels.
    #[test]
    fn a_series_is_found_by_its_values_and_rendered_in_label_order() {
        let name = "exbrief_http_requests_total";
        let b = String::from("/test/metrics/b");
        count(name, &[("route", &b), ("status", "200")], 1.0);
        count(
            name,
            &[("route", "/test/metrics/a"), ("status", "200")],
            1.0,
        );
        count(
            name,
            &[
                ("route", &String::from("/test/metrics/b")),
                ("status", "200"),
            ],
            2.0,
        );
        count(
            name,
            &[("route", "/test/metrics/b"), ("status", "500")],
            1.0,
        );
        count(name, &[("route", "/test/metrics/b")], 4.0);
        let mut out = String::new();
        render(&mut out);
        let ours: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("/test/metrics/"))
            .collect();
        assert_eq!(
            ours,
            [
                "exbrief_http_requests_total{route=\"/test/metrics/a\",status=\"200\"} 1",
                "exbrief_http_requests_total{route=\"/test/metrics/b\"} 4",
                "exbrief_http_requests_total{route=\"/test/metrics/b\",status=\"200\"} 3",
                "exbrief_http_requests_total{route=\"/test/metrics/b\",status=\"500\"} 1",
            ]
        );
    }

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
