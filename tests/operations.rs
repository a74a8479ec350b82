#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The binary as operators run it: the first admin key, key management, SIGTERM with a request
//! in flight, and logs at TRACE that carry no bundle text.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::FakeLlm;

const BIN: &str = env!("CARGO_BIN_EXE_exbrief");

/// A command in `dir` (a fresh SQLite database there), none of the test's EXBRIEF_* variables.
fn exbrief(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(support::repo());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("EXBRIEF_")) {
        cmd.env_remove(k);
    }
    cmd.env(
        "EXBRIEF_DATABASE__URL",
        format!("sqlite://{}/exbrief.db", dir.display()),
    );
    cmd
}

struct Server {
    child: Child,
    base: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

fn collect(r: impl Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let mut s = into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

fn start(mut cmd: Command) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = cmd
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (Arc::default(), Arc::default());
    collect(child.stdout.take().unwrap(), Arc::clone(&stdout));
    collect(child.stderr.take().unwrap(), Arc::clone(&stderr));
    let base = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "exbrief did not start: {}",
            stderr_of(&stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        base,
        stdout,
        stderr,
    }
}

fn stderr_of(s: &Arc<Mutex<String>>) -> String {
    s.lock().unwrap().clone()
}

impl Server {
    /// SIGTERM, then the exit status (within 20 s).
    fn stop(mut self) -> (std::process::ExitStatus, String, String) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("exbrief did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        (status, stderr_of(&self.stdout), stderr_of(&self.stderr))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn key_in(stdout: &str) -> Option<String> {
    stdout
        .split_whitespace()
        .find(|w| w.starts_with("exb_"))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_prints_one_admin_key_and_keys_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(exbrief(dir.path()));
    let t = Instant::now();
    let key = loop {
        if let Some(k) = key_in(&server.stdout.lock().unwrap()) {
            break k;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no admin key printed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let client = reqwest::Client::new();
    let fixture = support::fixture("01-receipt-delay-imported.json");
    let r = client
        .post(format!("{}/v1/redact", server.base))
        .bearer_auth(&key)
        .json(&fixture)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _, stderr) = server.stop();
    assert!(status.success());
    assert!(!stderr.contains(&key), "the key reached the logs");

    // A second start makes no second key.
    let again = start(exbrief(dir.path()));
    std::thread::sleep(Duration::from_millis(500));
    let (_, stdout, _) = again.stop();
    assert_eq!(key_in(&stdout), None, "{stdout}");

    let out = exbrief(dir.path())
        .args([
            "keys",
            "create",
            "--name",
            "n8n-prod",
            "--scopes",
            "summarize",
            "--signed",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let n8n = key_in(&text).unwrap();
    assert!(text.contains("signing secret: whsec_"));
    let id = n8n.split('_').nth(1).unwrap().to_owned();
    let list = exbrief(dir.path()).args(["keys", "list"]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("initial-admin") && list.contains("n8n-prod") && list.contains(&id));
    assert!(
        !list.contains(&n8n) && !list.contains(&key),
        "secrets are never shown again"
    );
    let bad = exbrief(dir.path())
        .args([
            "keys",
            "create",
            "--name",
            "x",
            "--scopes",
            "summarize,everything",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope `everything`"));
    let revoke = exbrief(dir.path())
        .args(["keys", "revoke", &id])
        .output()
        .unwrap();
    assert!(revoke.status.success());
    let list = exbrief(dir.path()).args(["keys", "list"]).output().unwrap();
    let line = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap()
        .to_owned();
    assert!(
        line.trim_end().ends_with('Z'),
        "revocation time shown: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_and_store_its_summary() {
    let (fake, url) = FakeLlm::start().await;
    fake.set_delay(Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = exbrief(dir.path());
    cmd.env("EXBRIEF_LLM__BASE_URL", &url)
        .env("EXBRIEF_LLM__MODEL", "fake-model")
        .env("EXBRIEF_LLM__API_KEY", "sk-test")
        .env("EXBRIEF_AUTH__DISABLED", "true");
    let server = start(cmd);
    let mut bundle = support::fixture("02-allocation-failure.json");
    bundle["event_id"] = json!("sigterm-in-flight");
    let base = server.base.clone();
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/v1/summarize"))
            .json(&bundle)
            .send()
            .await
            .unwrap()
    });
    // The request is with the model when SIGTERM arrives.
    let t = Instant::now();
    while fake.count() == 0 {
        assert!(t.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = tokio::task::spawn_blocking(move || server.stop());
    let answer = request.await.unwrap();
    assert_eq!(answer.status(), 200);
    let doc: Value = answer.json().await.unwrap();
    let (status, _, stderr) = stopping.await.unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("auth.disabled"),
        "the demo-only warning is logged"
    );
    // Whole: the summary and its three model calls are stored and chained.
    let out = exbrief(dir.path())
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Three model calls, and the access record of this very verify.
    assert_eq!(report["rows"], 4);
    let export = exbrief(dir.path())
        .args(["audit", "export", "--format", "jsonl", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8(export.stdout).unwrap();
    assert!(text.contains(doc["id"].as_str().unwrap()));
}

/// Every log line the server writes at TRACE while it summarises seeded bundles: no seeded
/// value appears in any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_carry_no_bundle_or_model_text() {
    let (_fake, url) = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = exbrief(dir.path());
    cmd.env("EXBRIEF_LLM__BASE_URL", &url)
        .env("EXBRIEF_LLM__MODEL", "fake-model")
        .env("EXBRIEF_LLM__API_KEY", "sk-test")
        .env("EXBRIEF_AUTH__DISABLED", "true")
        .env("EXBRIEF_LOG", "trace");
    let server = start(cmd);
    let client = reqwest::Client::new();
    let mut seeds = Vec::new();
    for (i, (name, mut b)) in support::fixtures().into_iter().enumerate() {
        let person = format!("Xavérine Quillbottom{i}");
        let email = format!("xq{i}@trace-seed.example");
        let phone = format!("+44 20 7946 {:04}", 100 + i);
        b["reply_to"] = json!({"name": person, "email": email, "lang": "en_US"});
        b["messages"] = json!([{"role": "customer", "author": person,
            "body": format!("This is {person}, {email}, {phone}. Unit price 8,417.25 EUR agreed; IBAN DE89 3704 0044 0532 0130 00.")}]);
        b["facts"]["trace_note"] = json!(format!("Call {person} about invoice total 9,731.55"));
        let r = client
            .post(format!("{}/v1/summarize", server.base))
            .json(&b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        seeds.extend([person, email, phone]);
    }
    seeds.extend(
        [
            "8,417.25",
            "8417.25",
            "9,731.55",
            "DE89 3704",
            "DE89370400440532013000",
            "Quillbottom",
            "trace-seed.example",
        ]
        .map(str::to_owned),
    );
    let (status, stdout, stderr) = server.stop();
    assert!(status.success());
    assert!(stderr.lines().count() > 100, "TRACE logging was not on");
    for s in &seeds {
        assert!(!stderr.contains(s.as_str()), "`{s}` is in the logs");
        assert!(!stdout.contains(s.as_str()), "`{s}` is on stdout");
    }
}
