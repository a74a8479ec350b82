//! Issue 9's load benchmark, one binary with three roles (driven by `bench/load.sh`):
//!
//!   loadbench fake --port 18091 --latency-ms 0        # a lean OpenAI-compatible fake model
//!   loadbench load --url http://127.0.0.1:18090 --rate 500 --seconds 10 --key exb_…
//!   loadbench load … --timeline                        # and each second's p50/p99/max on stderr
//!   loadbench load --direct http://127.0.0.1:18091/v1 --rate 500 --seconds 10
//!   loadbench burst --url http://127.0.0.1:18090 --n 2000 --key exb_…
//!   loadbench burst --direct http://127.0.0.1:18091/v1 --n 2000
//!
//! `load` is open-loop: request i is due at start + i/rate whatever earlier ones are doing, and
//! its latency counts from when it was due (no coordinated omission). `--direct` sends, per
//! "summary", the three chat completions exbrief would make, at once, straight to the model, so
//! exbrief's overhead is the difference of two runs of one sitting. Prints one JSON line.

#[allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#[path = "../tests/support/fake_llm.rs"]
mod fake_llm;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fake") => fake(&args).await,
        Some("load") => load(&args).await,
        Some("burst") => burst(&args).await,
        _ => anyhow::bail!("usage: loadbench fake|load|burst …"),
    }
}

async fn fake(args: &[String]) -> anyhow::Result<()> {
    let port: u16 = arg(args, "--port")
        .unwrap_or_else(|| "18091".into())
        .parse()?;
    let latency = Duration::from_millis(
        arg(args, "--latency-ms")
            .unwrap_or_else(|| "0".into())
            .parse()?,
    );
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<Value>| async move {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let content = fake_llm::valid_output(fake_llm::task_of(&body)).to_string();
            Json(json!({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_764_000_000,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content,
                    "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
            }))
        }),
    );
    // A burst of a few thousand calls must not overflow the fake's accept queue: the fake is
    // not what is measured.
    let listener = exbrief::app::listen(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The fixture's bundle as JSON text with a placeholder event id, read and serialised once: the
/// generator shares the cores with exbrief, so each request only splices in its own number.
struct Bundles {
    head: String,
    tail: String,
}

impl Bundles {
    const MARK: &'static str = "@@N@@";

    fn new(run: &str) -> Self {
        let text = std::fs::read_to_string("fixtures/01-receipt-delay-imported.json")
            .unwrap_or_else(|_| "{}".to_owned());
        let mut b: Value = serde_json::from_str(&text).unwrap_or_default();
        b["event_id"] = json!(format!("load-{run}-{}", Self::MARK));
        let text = b.to_string();
        let (head, tail) = text.split_once(Self::MARK).unwrap_or((&text, ""));
        Self {
            head: head.to_owned(),
            tail: tail.to_owned(),
        }
    }

    fn body(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.head.len() + self.tail.len() + 20);
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(n.to_string().as_bytes());
        out.extend_from_slice(self.tail.as_bytes());
        out
    }
}

/// Three chat-completion bodies of the size exbrief sends for the fixture (system + fenced user
/// message), for the direct baseline.
fn direct_bodies() -> Vec<Value> {
    ["impact_summary", "classification", "customer_reply"]
        .iter()
        .map(|task| {
            json!({"model": "fake-model", "temperature": 0.2, "max_tokens": 900,
                "response_format": {"type": "json_schema", "json_schema": {"name": task, "strict": true,
                    "schema": {"type": "object"}}},
                "messages": [{"role": "system", "content": "You write impact summaries. ".repeat(40)},
                             {"role": "user", "content": "<bundle>".to_owned() + &"x".repeat(3000) + "</bundle>"}]})
        })
        .collect()
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<f64>,
    errors: std::collections::BTreeMap<String, usize>,
}

fn report(kind: &str, rate: f64, wall: f64, mut o: Outcome, sent: usize) -> Value {
    o.latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if o.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (o.latencies.len() as f64 - 1.0)).round() as usize;
        (o.latencies[i] * 1000.0 * 100.0).round() / 100.0
    };
    json!({"mode": kind, "rate": rate, "sent": sent, "ok": o.latencies.len(),
        "errors": o.errors, "throughput_per_s": ((o.latencies.len() as f64 / wall) * 10.0).round() / 10.0,
        "p50_ms": pct(50.0), "p90_ms": pct(90.0), "p99_ms": pct(99.0), "max_ms": pct(100.0)})
}

/// Ok for a 2xx whose body arrived; else the status, `timeout` or `transport`.
async fn outcome(sent: Result<reqwest::Response, reqwest::Error>) -> Result<(), String> {
    match sent {
        Ok(resp) if resp.status().is_success() => {
            let _ = resp.bytes().await;
            Ok(())
        }
        Ok(resp) => Err(resp.status().as_u16().to_string()),
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(_) => Err("transport".into()),
    }
}

/// One summary's three model calls sent straight to the model at `base`, at once.
async fn straight(client: &reqwest::Client, base: &str, bodies: &[Value]) -> Result<(), String> {
    let calls = bodies.iter().map(|b| {
        client
            .post(format!("{base}/chat/completions"))
            .json(b)
            .send()
    });
    let mut r = Ok(());
    for a in futures::future::join_all(calls).await {
        if let Err(e) = outcome(a).await {
            r = Err(e);
        }
    }
    r
}

async fn load(args: &[String]) -> anyhow::Result<()> {
    let rate: f64 = arg(args, "--rate")
        .unwrap_or_else(|| "100".into())
        .parse()?;
    let seconds: f64 = arg(args, "--seconds")
        .unwrap_or_else(|| "10".into())
        .parse()?;
    let key = arg(args, "--key").unwrap_or_default();
    let direct = arg(args, "--direct");
    let url = arg(args, "--url").unwrap_or_else(|| "http://127.0.0.1:18090".into());
    let run = uuid::Uuid::now_v7().simple().to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(120))
        .build()?;
    let n = (rate * seconds) as usize;
    let bodies = Arc::new(direct_bodies());
    let bundles = Bundles::new(&run);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let client = client.clone();
        let (key, url, direct, bodies) = (
            key.clone(),
            url.clone(),
            direct.clone(),
            Arc::clone(&bodies),
        );
        let body = if direct.is_none() {
            Some(bundles.body(i))
        } else {
            None
        };
        tasks.push(tokio::spawn(async move {
            let result: Result<(), String> = match direct {
                Some(base) => straight(&client, &base, &bodies).await,
                None => {
                    outcome(
                        client
                            .post(format!("{url}/v1/summarize"))
                            .bearer_auth(&key)
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(body.unwrap_or_default())
                            .send()
                            .await,
                    )
                    .await
                }
            };
            (due.elapsed().as_secs_f64(), result)
        }));
    }
    let mut o = Outcome::default();
    // `--timeline`: each second's p50/p99/max on stderr, to tell a start-up transient from a
    // steady tail.
    let timeline = args.iter().any(|a| a == "--timeline");
    let mut seconds_seen: Vec<Vec<f64>> = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await? {
            (lat, Ok(())) => {
                o.latencies.push(lat);
                let second = (i as f64 / rate) as usize;
                if seconds_seen.len() <= second {
                    seconds_seen.resize_with(second + 1, Vec::new);
                }
                seconds_seen[second].push(lat * 1000.0);
            }
            (_, Err(e)) => *o.errors.entry(e).or_default() += 1,
        }
    }
    if timeline {
        for (second, mut v) in seconds_seen.into_iter().enumerate() {
            v.sort_by(f64::total_cmp);
            let q = |p: f64| v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)));
            eprintln!(
                "second {second}: n={} p50={:.1} p99={:.1} max={:.1} ms",
                v.len(),
                q(0.5).copied().unwrap_or(0.0),
                q(0.99).copied().unwrap_or(0.0),
                v.last().copied().unwrap_or(0.0)
            );
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let kind = if direct.is_some() {
        "direct"
    } else {
        "exbrief"
    };
    println!("{}", report(kind, rate, wall, o, n));
    Ok(())
}

/// N summaries sent at once; all must succeed.
async fn burst(args: &[String]) -> anyhow::Result<()> {
    let n: usize = arg(args, "--n").unwrap_or_else(|| "2000".into()).parse()?;
    let key = arg(args, "--key").unwrap_or_default();
    let url = arg(args, "--url").unwrap_or_else(|| "http://127.0.0.1:18090".into());
    let run = uuid::Uuid::now_v7().simple().to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .timeout(Duration::from_secs(120))
        .build()?;
    // `--direct BASE`: the same burst straight to the model, each summary's three calls at once.
    let direct = arg(args, "--direct");
    let bodies = Arc::new(direct_bodies());
    let bundles = Bundles::new(&run);
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, key, url, body) =
                (client.clone(), key.clone(), url.clone(), bundles.body(i));
            let (direct, bodies) = (direct.clone(), Arc::clone(&bodies));
            tokio::spawn(async move {
                let t = Instant::now();
                let r = match direct {
                    Some(base) => straight(&client, &base, &bodies).await,
                    None => {
                        let r = client
                            .post(format!("{url}/v1/summarize"))
                            .bearer_auth(&key)
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(body)
                            .send()
                            .await;
                        outcome(r).await
                    }
                };
                (t.elapsed().as_secs_f64(), r)
            })
        })
        .collect();
    let mut o = Outcome::default();
    for t in tasks {
        match t.await? {
            (lat, Ok(())) => o.latencies.push(lat),
            (_, Err(e)) => *o.errors.entry(e).or_default() += 1,
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let mode = if direct.is_some() {
        "burst-direct"
    } else {
        "burst"
    };
    println!("{}", report(mode, n as f64, wall, o, n));
    Ok(())
}
