#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The binary as an operator uses it: no config at all, `--check`, overrides, `demo`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_exbrief");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A command with no EXBRIEF_* variables from the test's own environment.
fn exbrief(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("EXBRIEF_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A fresh directory holding only the templates and policies, as a newcomer's checkout would.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("prompts"), &dir.path().join("prompts"));
    copy_dir(&repo().join("redaction"), &dir.path().join("redaction"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn check_passes_with_no_config_and_reports_the_defaults() {
    let dir = workdir();
    let out = exbrief(dir.path())
        .args(["serve", "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("listen 127.0.0.1:8080"), "{stdout}");
    assert!(stdout.contains("sqlite://exbrief.db"), "{stdout}");
    assert!(stdout.contains("llm offline"), "{stdout}");
    assert!(
        !dir.path().join("exbrief.db").exists(),
        "--check must not create the database"
    );
}

#[test]
fn check_names_the_bad_key_whichever_layer_set_it() {
    let dir = workdir();
    let out = exbrief(dir.path())
        .args(["serve", "--check"])
        .env("EXBRIEF_LLM__BASE_URL", "http://127.0.0.1:9/v1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("llm.model"));

    std::fs::write(
        dir.path().join("bad.toml"),
        "[server]\nlisten = \"127.0.0.1:9\"\nlisen = 1\n",
    )
    .unwrap();
    let out = exbrief(dir.path())
        .args(["serve", "--check", "--config", "bad.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));

    let out = exbrief(dir.path())
        .args(["serve", "--check", "--database-url", "mysql://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));

    // The env var wins over the file.
    std::fs::write(
        dir.path().join("ok.toml"),
        "[server]\nlisten = \"127.0.0.1:9000\"\n",
    )
    .unwrap();
    let out = exbrief(dir.path())
        .args(["serve", "--check", "--config", "ok.toml"])
        .env("EXBRIEF_SERVER__LISTEN", "127.0.0.1:9001")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9001"));
    // And --listen wins over both.
    let out = exbrief(dir.path())
        .args([
            "serve",
            "--check",
            "--config",
            "ok.toml",
            "--listen",
            "127.0.0.1:9002",
        ])
        .env("EXBRIEF_SERVER__LISTEN", "127.0.0.1:9001")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9002"));
}

#[test]
fn a_broken_template_stops_start_up_with_file_and_line() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("prompts/impact_summary/v1/system.jinja"),
        "ok\n{{ oops(\n",
    )
    .unwrap();
    let out = exbrief(dir.path())
        .args(["serve", "--check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("impact_summary/v1/system.jinja:2"),
        "{stderr}"
    );
}

#[test]
fn serve_without_config_creates_the_database_answers_health_and_stops_on_sigterm() {
    let dir = workdir();
    let mut child = exbrief(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no listening line");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    assert!(dir.path().join("exbrief.db").exists());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        assert!(Instant::now() < deadline, "exbrief did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "exit status {code}");
}

#[test]
fn demo_prints_a_result_for_every_fixture() {
    let out = exbrief(repo()).arg("demo").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fixtures = std::fs::read_dir(repo().join("fixtures"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert!(fixtures >= 10);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("━━ ")).count(),
        fixtures,
        "{stdout}"
    );
    assert_eq!(stdout.matches("DRAFT REPLY").count(), fixtures);
    assert!(stdout.contains(&format!("{fixtures} of {fixtures} bundles summarised")));
    assert!(stdout.contains("DRAFT REPLY [de, "));
}

#[test]
fn a_malformed_policy_stops_start_up_with_file_line_and_reason() {
    let dir = workdir();
    let file = dir.path().join("redaction/default.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replacen("path = \"$..price_unit\"", "path = \"$..price_unit[\"", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("$..price_unit["))
        .unwrap()
        + 1;
    std::fs::write(&file, broken).unwrap();
    let out = exbrief(dir.path())
        .args(["serve", "--check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("default.toml:{line}:")),
        "{stderr}"
    );
    assert!(stderr.contains("price_unit["), "{stderr}");
}

#[test]
fn redact_command_prints_the_bundle_or_findings_without_values() {
    let fixture = repo().join("fixtures/01-receipt-delay-imported.json");
    let out = exbrief(repo())
        .args(["redact"])
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let redacted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let name = original["facts"]["customer"]["name"].as_str().unwrap();
    assert!(!redacted.to_string().contains(name));
    assert_eq!(redacted["facts"]["customer"]["name"], "[CUSTOMER_1]");

    let out = exbrief(repo())
        .args(["redact", "--format", "findings", "--policy", "strict"])
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(out.status.success());
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings["policy"], "strict");
    let list = findings["findings"].as_array().unwrap();
    assert!(list.len() > 10);
    assert!(
        list.iter()
            .all(|f| f["path"].as_str().unwrap().starts_with('$') && f["class"].is_string())
    );
    assert!(!findings.to_string().contains(name));
}

#[test]
fn prompts_commands_list_render_diff_and_lock() {
    let dir = workdir();
    let run = |args: &[&str]| {
        let out = exbrief(dir.path()).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, list, err) = run(&["prompts", "list"]);
    assert!(ok, "{err}");
    for task in ["impact_summary", "classification", "customer_reply"] {
        assert!(
            list.lines().any(|l| l.starts_with(task)
                && l.contains("released")
                && l.ends_with("production")),
            "{list}"
        );
    }

    // The exact messages for the German fixture: redacted, fenced, summary in the planner's
    // language and the reply in the customer's.
    let fixture = repo().join("fixtures/10-receipt-delay-german.json");
    let original = std::fs::read_to_string(&fixture).unwrap();
    for (task, lang) in [("impact_summary", "\"de\""), ("customer_reply", "\"de\"")] {
        let (ok, out, err) = run(&["prompts", "render", task, fixture.to_str().unwrap()]);
        assert!(ok, "{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["template"]["version"], "v1");
        assert_eq!(doc["template"]["sha256"].as_str().unwrap().len(), 64);
        let system = doc["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains(lang), "{system}");
        let user = doc["messages"][1]["content"].as_str().unwrap();
        assert!(user.contains("<untrusted_data"));
        assert!(original.contains("Katharina Brandl"));
        assert!(!out.contains("Katharina Brandl"), "{out}");
    }

    // A draft v2: diff shows the change, lock records it, and an edit to a released version is
    // refused.
    let v1 = dir.path().join("prompts/customer_reply/v1");
    let v2 = dir.path().join("prompts/customer_reply/v2");
    copy_dir(&v1, &v2);
    let meta = std::fs::read_to_string(v2.join("meta.toml")).unwrap();
    std::fs::write(
        v2.join("meta.toml"),
        meta.replace("status = \"released\"", "status = \"draft\""),
    )
    .unwrap();
    let user = std::fs::read_to_string(v2.join("user.jinja")).unwrap();
    std::fs::write(
        v2.join("user.jinja"),
        user.replace("Draft the reply.", "Draft a short reply."),
    )
    .unwrap();
    let (ok, diff, err) = run(&["prompts", "diff", "customer_reply", "v1", "v2"]);
    assert!(ok, "{err}");
    assert!(
        diff.contains("-Draft the reply.") && diff.contains("+Draft a short reply."),
        "{diff}"
    );
    assert!(diff.contains("+++ customer_reply/v2/user.jinja"), "{diff}");
    let (ok, out, err) = run(&["prompts", "lock"]);
    assert!(ok, "{err}");
    assert!(out.contains("records 4 versions"), "{out}");
    let (ok, out, _) = run(&[
        "prompts",
        "render",
        "customer_reply",
        fixture.to_str().unwrap(),
        "--version",
        "v2",
    ]);
    assert!(ok && out.contains("Draft a short reply."));
    std::fs::write(v1.join("user.jinja"), "edited {{ event_type }}\n").unwrap();
    let (ok, _, err) = run(&["prompts", "lock"]);
    assert!(!ok && err.contains("refusing to rewrite"), "{err}");
    let (ok, _, err) = run(&["serve", "--check"]);
    assert!(
        !ok && err.contains("customer_reply/v1 is released and its files changed"),
        "{err}"
    );
}
