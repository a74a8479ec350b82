//! The review pages: sign-in, the queue and one draft, server-rendered with minijinja (every
//! value escaped), no JavaScript needed. A signed, HttpOnly, SameSite=Strict cookie holds the
//! session; every form carries a CSRF token; every page sends a strict Content-Security-Policy.

mod session;

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{Environment, context};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::config::ReviewConfig;
use crate::review::{self, DecisionInput, ReviewError, Verdict};
use crate::store;
use session::{COOKIE, Sessions};

pub struct Pages {
    env: Environment<'static>,
    sessions: Sessions,
    secret: Option<SecretString>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Pages {
    pub fn new(config: &ReviewConfig) -> Self {
        let mut env = Environment::new();
        for (name, text) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("sign_in.html", include_str!("templates/sign_in.html")),
            ("queue.html", include_str!("templates/queue.html")),
            ("detail.html", include_str!("templates/detail.html")),
            ("message.html", include_str!("templates/message.html")),
        ] {
            // The templates are part of the binary and covered by tests.
            if let Err(e) = env.add_template(name, text) {
                tracing::error!(template = name, error = %e, "review page template does not compile");
            }
        }
        let key = match &config.session_key {
            Some(k) => k.expose_secret().as_bytes().to_vec(),
            None => {
                let mut k = vec![0u8; 32];
                rand::rng().fill(&mut k[..]);
                k
            }
        };
        Self {
            env,
            sessions: Sessions::new(key, config.session_minutes.max(1), config.secure_cookie),
            secret: config.secret.clone(),
        }
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Response {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "review page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered",
                )
                    .into_response()
            }
        }
    }

    fn message(
        &self,
        status: StatusCode,
        title: &str,
        message: &str,
        who: Option<&Who>,
    ) -> Response {
        let ctx = context! {title, message, reviewer => who.map(|w| &w.reviewer), csrf => who.map(|w| &w.csrf)};
        (status, self.render("message.html", ctx)).into_response()
    }
}

/// The signed-in reviewer and the CSRF token of their session.
struct Who {
    reviewer: String,
    cookie: String,
    csrf: String,
}

fn unix_now() -> i64 {
    store::now().unix_timestamp()
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
}

fn who(pages: &Pages, headers: &HeaderMap) -> Option<Who> {
    let cookie = cookie_value(headers)?;
    let reviewer = pages.sessions.reviewer(&cookie, unix_now())?;
    let csrf = pages.sessions.csrf(&cookie);
    Some(Who {
        reviewer,
        cookie,
        csrf,
    })
}

fn pages(state: &AppState) -> Option<&Arc<Pages>> {
    state.pages.as_ref()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue))
        .routes(routes!(css))
        .routes(routes!(favicon))
        .routes(routes!(sign_in_page, sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(detail, decide))
        .layer(middleware::map_response(security_headers))
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[utoipa::path(
    get,
    path = "/review/static/review.css",
    tag = "review pages",
    summary = "The review pages' style sheet",
    responses((status = 200, description = "CSS", content_type = "text/css"), (status = 503, description = "review.secret is not set"))
)]
async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("templates/review.css"),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/review/static/favicon.svg",
    tag = "review pages",
    summary = "The review pages' icon",
    responses((status = 200, description = "SVG", content_type = "image/svg+xml"), (status = 503, description = "review.secret is not set"))
)]
async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#243447\"/><path d=\"M4 8l3 3 5-6\" stroke=\"#fff\" stroke-width=\"2\" fill=\"none\"/></svg>",
    )
        .into_response()
}

fn not_configured() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "review sign-in is not configured (set review.secret)",
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/review/sign-in",
    tag = "review pages",
    summary = "Reviewer sign-in form",
    responses((status = 200, description = "HTML page", content_type = "text/html"), (status = 503, description = "review.secret is not set"))
)]
async fn sign_in_page(State(state): State<AppState>) -> Response {
    let Some(p) = pages(&state) else {
        return not_configured();
    };
    sign_in_form(p, StatusCode::OK, None)
}

fn sign_in_form(p: &Pages, status: StatusCode, error: Option<&str>) -> Response {
    let nonce = hex::encode(rand::rng().random::<[u8; 16]>());
    let token = p.sessions.signin_token(&nonce);
    (
        status,
        p.render("sign_in.html", context! {nonce, token, error}),
    )
        .into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
struct SignIn {
    reviewer: String,
    secret: String,
    nonce: String,
    csrf: String,
}

#[utoipa::path(
    post,
    path = "/review/sign-in",
    tag = "review pages",
    summary = "Sign in (form: reviewer, secret, nonce, csrf); sets the session cookie",
    responses((status = 303, description = "Signed in: to the queue"), (status = 401, description = "Wrong secret: the form again", content_type = "text/html"), (status = 503, description = "review.secret is not set"))
)]
async fn sign_in(State(state): State<AppState>, Form(f): Form<SignIn>) -> Response {
    let Some(p) = pages(&state) else {
        return not_configured();
    };
    let Some(secret) = &p.secret else {
        return not_configured();
    };
    if !p.sessions.signin_ok(&f.nonce, &f.csrf) {
        return sign_in_form(
            p,
            StatusCode::FORBIDDEN,
            Some("The form expired; please sign in again."),
        );
    }
    let reviewer = f.reviewer.trim();
    let secret_ok = {
        use hmac::Mac;
        // Compare through HMAC so that timing says nothing about the secret.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"exbrief-review-secret")
            .unwrap_or_else(|_| unreachable!());
        mac.update(secret.expose_secret().as_bytes());
        let want = mac.finalize().into_bytes();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"exbrief-review-secret")
            .unwrap_or_else(|_| unreachable!());
        mac.update(f.secret.as_bytes());
        mac.verify_slice(&want).is_ok()
    };
    if reviewer.is_empty()
        || reviewer.chars().count() > 100
        || reviewer.contains(['\n', '\r'])
        || !secret_ok
    {
        tracing::warn!("review sign-in refused");
        return sign_in_form(
            p,
            StatusCode::UNAUTHORIZED,
            Some("Name or secret not accepted."),
        );
    }
    let mut resp = Redirect::to("/review").into_response();
    if let Ok(v) = HeaderValue::from_str(&p.sessions.issue(reviewer, unix_now())) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Csrf {
    csrf: String,
}

#[utoipa::path(
    post,
    path = "/review/sign-out",
    tag = "review pages",
    summary = "Sign out (form: csrf)",
    responses((status = 303, description = "Signed out"), (status = 503, description = "review.secret is not set"))
)]
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Csrf>,
) -> Response {
    let Some(p) = pages(&state) else {
        return not_configured();
    };
    if let Some(w) = who(p, &headers)
        && !p.sessions.csrf_ok(&w.cookie, &f.csrf)
    {
        return p.message(
            StatusCode::FORBIDDEN,
            "Not signed out",
            "The form expired.",
            Some(&w),
        );
    }
    let mut resp = Redirect::to("/review/sign-in").into_response();
    if let Ok(v) = HeaderValue::from_str(&p.sessions.clear()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize, Default)]
struct QueueQuery {
    status: Option<String>,
    event_type: Option<String>,
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// Rows on the queue page; the counts say how many there are in all.
const PAGE_ROWS: i64 = 200;

#[utoipa::path(
    get,
    path = "/review",
    tag = "review pages",
    summary = "The review queue page (session cookie)",
    params(("status" = Option<String>, Query), ("event_type" = Option<String>, Query)),
    responses((status = 200, description = "HTML page", content_type = "text/html"), (status = 503, description = "review.secret is not set"))
)]
async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> Response {
    let Some(p) = pages(&state) else {
        return not_configured();
    };
    let Some(w) = who(p, &headers) else {
        return Redirect::to("/review/sign-in").into_response();
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let status = match q.status.as_deref() {
        Some(s @ ("pending_review" | "approved" | "rejected")) => s.to_owned(),
        _ => "pending_review".to_owned(),
    };
    let event_type = q.event_type.filter(|t| !t.is_empty() && t.len() <= 64);
    let store = state.pipeline.store();
    let rows = store
        .review_queue_by_severity(&status, event_type.as_deref(), PAGE_ROWS)
        .await;
    let (rows, overview) = match (rows, store.review_overview().await) {
        (Ok(r), Ok(o)) => (r, o),
        _ => {
            return p.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unavailable",
                "The queue could not be read.",
                Some(&w),
            );
        }
    };
    // Most severe first, then oldest first (the database orders them).
    let mut items = review::queue_items(&rows, state.pipeline.vault());
    for i in &mut items {
        i["age"] = json!(age(i["age_seconds"].as_i64().unwrap_or(0)));
    }
    let (counts, event_types) = overview;
    let count = |s: &str| counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    let statuses = json!([
        {"name": "pending_review", "label": "Pending", "count": count("pending_review")},
        {"name": "approved", "label": "Approved", "count": count("approved")},
        {"name": "rejected", "label": "Rejected", "count": count("rejected")},
    ]);
    let shown = items.len();
    let ctx = context! {reviewer => w.reviewer, csrf => w.csrf, shown, total => count(&status), items => minijinja::Value::from_serialize(&items),
    statuses => minijinja::Value::from_serialize(&statuses), status, event_type, event_types};
    p.render("queue.html", ctx)
}

fn parse_id(id: Result<Path<String>, PathRejection>) -> Option<uuid::Uuid> {
    id.ok().and_then(|Path(id)| uuid::Uuid::parse_str(&id).ok())
}

#[utoipa::path(
    get,
    path = "/review/{id}",
    tag = "review pages",
    summary = "One draft to review (session cookie)",
    params(("id" = String, Path)),
    responses((status = 200, description = "HTML page", content_type = "text/html"), (status = 503, description = "review.secret is not set"))
)]
async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(p) = pages(&state) else {
        return not_configured();
    };
    let Some(w) = who(p, &headers) else {
        return Redirect::to("/review/sign-in").into_response();
    };
    let Some(id) = parse_id(id) else {
        return p.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "No summary has this id.",
            Some(&w),
        );
    };
    render_detail(p, &state, &w, id, StatusCode::OK, None).await
}

async fn render_detail(
    p: &Pages,
    state: &AppState,
    w: &Who,
    id: uuid::Uuid,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    match review::detail(state.pipeline.store(), state.pipeline.vault(), id).await {
        Ok(doc) => {
            let ctx = context! {reviewer => w.reviewer, csrf => w.csrf,
            doc => minijinja::Value::from_serialize(&doc), error};
            (status, p.render("detail.html", ctx)).into_response()
        }
        Err(ReviewError::NotFound) => p.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "No summary has this id.",
            Some(w),
        ),
        Err(_) => p.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Unavailable",
            "The draft could not be read.",
            Some(w),
        ),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    reply: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    comment: Option<String>,
}

#[utoipa::path(
    post,
    path = "/review/{id}",
    tag = "review pages",
    summary = "Approve or reject from the page (form with csrf; session cookie)",
    params(("id" = String, Path)),
    responses((status = 303, description = "Decided: back to the queue"), (status = 422, description = "The form again, with the problem", content_type = "text/html"), (status = 503, description = "review.secret is not set"))
)]
async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let Some(p) = pages(&state) else {
        return not_configured();
    };
    let Some(w) = who(p, &headers) else {
        return Redirect::to("/review/sign-in").into_response();
    };
    if !p.sessions.csrf_ok(&w.cookie, &f.csrf) {
        return p.message(
            StatusCode::FORBIDDEN,
            "Not saved",
            "The form expired; reload the page.",
            Some(&w),
        );
    }
    let Some(id) = parse_id(id) else {
        return p.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "No summary has this id.",
            Some(&w),
        );
    };
    let verdict = match f.decision.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        _ => {
            return render_detail(
                p,
                &state,
                &w,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Choose Approve or Reject.".to_owned()),
            )
            .await;
        }
    };
    // Browsers send CRLF line ends from a textarea.
    let normalise = |s: Option<String>| {
        s.map(|t| t.replace("\r\n", "\n"))
            .filter(|t| !t.trim().is_empty())
    };
    let input = DecisionInput {
        verdict,
        reviewer: w.reviewer.clone(),
        // An emptied reply box is passed on as such: approving it is refused, not the draft sent.
        reply: f.reply.map(|t| t.replace("\r\n", "\n")),
        subject: normalise(f.subject),
        comment: normalise(f.comment),
    };
    match review::decide(&state.pipeline, id, input).await {
        Ok(_) => Redirect::to(&format!("/review/{id}")).into_response(),
        Err(ReviewError::Invalid { field, message }) => {
            render_detail(
                p,
                &state,
                &w,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(format!("{field}: {message}")),
            )
            .await
        }
        Err(e @ ReviewError::Conflict { .. }) => {
            render_detail(p, &state, &w, id, StatusCode::CONFLICT, Some(e.to_string())).await
        }
        Err(ReviewError::NotFound) => p.message(
            StatusCode::NOT_FOUND,
            "Not found",
            "No summary has this id.",
            Some(&w),
        ),
        Err(ReviewError::Store(e)) => {
            tracing::error!(error = %e, "storing a review decision failed");
            p.message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not saved",
                "The decision could not be stored; try again.",
                Some(&w),
            )
        }
    }
}
