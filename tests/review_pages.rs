#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The review pages: sign-in, CSRF, security headers over HTTP, then the whole flow in a real
//! Chromium (Debian's, driven by playwright-core from tests/browser; `.ci/run` installs both).

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Options, Reply, TestApp, spawn_app};

const SECRET: &str = "let-me-review-0123";

async fn app_with_script_in_the_draft() -> (TestApp, String) {
    let app = spawn_app(
        support::Backend::Sqlite,
        Options {
            model: true,
            tweak: |c| c.review.secret = Some(SECRET.to_owned().into()),
            ..Options::default()
        },
    )
    .await;
    app.fake().script([Reply::Content(
        json!({"subject": "Your order S00042", "tone": "apologetic", "language": "en",
            "body": "Dear [PERSON_1],\n\nPlease note <script>alert(1)</script> our update.\n\nRegards"})
        .to_string(),
    )]);
    let mut b = support::fixture("01-receipt-delay-imported.json");
    b["tasks"] = json!(["customer_reply"]);
    let r = app.summarize(&b).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();
    (app, id)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_csrf_and_headers() {
    let (app, id) = app_with_script_in_the_draft().await;
    let http = no_redirects();
    let base = app.base.clone();
    // Not signed in: to the sign-in page, which carries a strict CSP.
    let r = http.get(format!("{base}/review")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/review/sign-in");
    let r = http
        .get(format!("{base}/review/sign-in"))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    let field = |html: &str, name: &str| {
        let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap() + name.len() + 15;
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    };
    let (nonce, token) = (field(&page, "nonce"), field(&page, "csrf"));
    let sign_in = |secret: &str| {
        http.post(format!("{base}/review/sign-in")).form(&[
            ("reviewer", "anna@cs.example"),
            ("secret", secret),
            ("nonce", nonce.as_str()),
            ("csrf", token.as_str()),
        ])
    };
    assert_eq!(sign_in("wrong").send().await.unwrap().status(), 401);
    let r = sign_in(SECRET).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age="),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    // The draft page escapes the model's text.
    let page = http
        .get(format!("{base}/review/{id}"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("&lt;script&gt;alert(1)"),
        "escaped in the textarea"
    );
    assert!(!page.contains("<script>"));
    // A decision without the session's CSRF token is refused and changes nothing.
    let r = http
        .post(format!("{base}/review/{id}"))
        .header("cookie", &cookie)
        .form(&[("csrf", "00"), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        app.get(&format!("/v1/reviews/{id}")).await.json["status"],
        "pending_review"
    );
    // Rejecting needs a reason; the page says so.
    let csrf = field(&page, "csrf");
    let r = http
        .post(format!("{base}/review/{id}"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("decision", "reject"),
            ("comment", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("a rejection needs a reason")
    );
    app.stop().await;
}

/// Chromium, headless: sign in, queue, draft, edit, approve; the API then shows the decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_approves_an_edited_draft_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium not found at {chromium}: apt-get install chromium (.ci/run does)"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core missing: (cd tests/browser && npm ci) (.ci/run does)"
    );
    let (app, id) = app_with_script_in_the_draft().await;
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("review.png");
    let run = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/review.mjs"))
        .args([&app.base, SECRET, &id, shot.to_str().unwrap()])
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser run finished within 2 minutes")
        .unwrap();
    assert!(
        out.status.success(),
        "browser run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["redirected_to_sign_in"], true, "{seen}");
    assert_eq!(seen["queue_title"], "Review queue");
    assert_eq!(seen["queue_has_item"], true);
    // The model's <script> is text in the textarea, never an element or a dialog.
    let draft = seen["draft"].as_str().unwrap();
    assert!(draft.contains("<script>alert(1)</script>"), "{draft}");
    assert!(
        draft.starts_with("Dear "),
        "names restored for the reviewer: {draft}"
    );
    assert_eq!(seen["script_elements"], 0);
    assert_eq!(seen["dialogs"], 0);
    assert_eq!(seen["status"], "approved");
    assert_eq!(
        seen["console_errors"],
        json!([]),
        "no CSP violations or errors"
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "screenshot saved"
    );
    // To look at it: EXBRIEF_SCREENSHOT_DIR=/tmp cargo test --test review_pages
    if let Ok(keep) = std::env::var("EXBRIEF_SCREENSHOT_DIR") {
        std::fs::copy(&shot, Path::new(&keep).join("exbrief-review.png")).unwrap();
    }
    let api = app.get(&format!("/v1/reviews/{id}")).await.json;
    assert_eq!(api["status"], "approved");
    assert_eq!(api["decision"]["reviewer"], "anna@cs.example");
    assert_eq!(api["decision"]["edited"], true);
    let body = api["decision"]["final_reply"]["body"].as_str().unwrap();
    assert!(body.ends_with("\nEdited in the browser."), "{body}");
    app.stop().await;
}
