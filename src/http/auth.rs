//! Who may call what: the API key (`Authorization: Bearer …` or `X-Api-Key`), its scope for
//! the route group, its rate limit, and — for keys that require it — the request signature
//! `X-Exbrief-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::Mac;
use secrecy::ExposeSecret;

use super::{AppState, Problem};
use crate::config::{AuthConfig, LimitsConfig};
use crate::keys::{self, Caller, Scope};

pub const SIGNATURE: &str = "x-exbrief-signature";

/// Authentication settings and the per-key limiter, shared by every route group.
#[derive(Debug)]
pub struct Auth {
    disabled: bool,
    max_skew: Duration,
    max_body_bytes: usize,
    limiter: DefaultKeyedRateLimiter<String>,
    keys: keys::KeyCache,
}

impl Auth {
    pub fn new(auth: &AuthConfig, limits: &LimitsConfig, max_body_bytes: usize) -> Self {
        let per_minute = NonZeroU32::new(limits.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            disabled: auth.disabled,
            max_skew: Duration::from_secs(auth.signature_max_skew_secs),
            max_body_bytes,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            keys: keys::KeyCache::new(Duration::from_millis(auth.key_cache_ms)),
        }
    }
}

fn unauthorized(slug: &str, detail: impl Into<String>) -> Response {
    let mut r =
        Problem::new(StatusCode::UNAUTHORIZED, slug, "Not authenticated", detail).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"exbrief\""),
    );
    r
}

/// The presented key: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim());
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The middleware of one route group: `scope` is what its routes need.
pub async fn require(
    State((state, scope)): State<(AppState, Scope)>,
    mut req: Request,
    next: Next,
) -> Response {
    let auth = Arc::clone(&state.auth);
    if auth.disabled {
        req.extensions_mut().insert(Caller::anonymous());
        return next.run(req).await;
    }
    let Some(secret) = presented(req.headers()) else {
        return unauthorized(
            "unauthorized",
            "this route needs an API key: send it as `Authorization: Bearer <key>` or `X-Api-Key: <key>`",
        );
    };
    let caller = match keys::authenticate(
        state.pipeline.store(),
        state.pipeline.vault(),
        &auth.keys,
        secret,
    )
    .await
    {
        Ok(Ok(caller)) => caller,
        Ok(Err(_)) => {
            return unauthorized(
                "unauthorized",
                "the API key is not valid or was revoked (`exbrief keys list` shows the keys)",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "key lookup failed");
            return Problem::storage_unavailable().into_response();
        }
    };
    if !caller.may(scope) {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The key lacks a scope",
            format!(
                "this route needs the `{scope}` scope; the key has: {}",
                caller
                    .scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into_response();
    }
    let key_id = caller.key_id.clone().unwrap_or_default();
    if let Err(not_until) = auth.limiter.check_key(&key_id) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        crate::metrics::rate_limited("requests");
        return Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            "this key sent more requests than limits.requests_per_minute allows; retry after Retry-After seconds",
        )
        .with_retry_after(wait.as_secs().max(1))
        .into_response();
    }
    if caller.webhook_secret.is_some() && req.method() == axum::http::Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, auth.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "The body is too large",
                    format!(
                        "the body is over server.max_body_bytes ({} bytes)",
                        auth.max_body_bytes
                    ),
                )
                .into_response();
            }
        };
        // A resend of an accepted summarize request is answered from the stored summary (the
        // same bytes carry the same event_id), so it is let through: n8n resends the same bytes
        // and signature when its own timeout fired after exbrief had already answered.
        let replay_safe =
            parts.method == axum::http::Method::POST && parts.uri.path() == "/v1/summarize";
        let signature = match check_signature(
            &state,
            &auth,
            &caller,
            &parts.headers,
            &bytes,
            replay_safe,
        )
        .await
        {
            Ok(sig) => sig,
            Err(r) => return r,
        };
        req = Request::from_parts(parts, Body::from(bytes));
        req.extensions_mut().insert(caller);
        let response = next.run(req).await;
        // A signature is spent by a request that succeeded: a blind retry of a failed one (n8n's
        // Retry On Fail resends the same bytes and headers) still goes through, a replay of an
        // accepted one does not.
        if response.status().is_success() {
            let store = state.pipeline.store();
            let seen_at = crate::store::now();
            if let Err(e) = store.first_use_of_signature(&signature, seen_at).await {
                tracing::error!(error = %e, "could not record a used signature");
            }
        }
        return response;
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Checks `X-Exbrief-Signature` against the key's secret, the clock and the signatures already
/// spent; returns the signature's id to spend once the request succeeds.
async fn check_signature(
    state: &AppState,
    auth: &Auth,
    caller: &Caller,
    headers: &HeaderMap,
    body: &[u8],
    replay_safe: bool,
) -> Result<String, Response> {
    let Some(header) = headers.get(SIGNATURE).and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized(
            "signature-missing",
            "this key requires signed requests: send X-Exbrief-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + \".\" + body)>",
        ));
    };
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1.push(x.to_owned()),
            _ => {}
        }
    }
    let (Some(t), false) = (t, v1.is_empty()) else {
        return Err(unauthorized(
            "bad-signature",
            "X-Exbrief-Signature must look like t=<unix seconds>,v1=<64 hex digits>",
        ));
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let skew = auth.max_skew.as_secs() as i64;
    if (now - t).abs() > skew {
        return Err(unauthorized(
            "signature-expired",
            format!(
                "the signature's timestamp t={t} is more than {skew} s from the server's clock ({now}); sign each request when it is sent"
            ),
        ));
    }
    let secret = caller
        .webhook_secret
        .as_ref()
        .map(|s| s.expose_secret().as_bytes().to_vec())
        .unwrap_or_default();
    let mac = crate::webhook::mac(&secret, t, body);
    let good = v1.iter().find(|sig| {
        hex::decode(sig)
            .ok()
            .is_some_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
    });
    let Some(sig) = good else {
        return Err(unauthorized(
            "bad-signature",
            "the signature does not match: sign exactly the bytes sent, as t + \".\" + body, with the key's signing secret",
        ));
    };
    let id = format!("{}:{sig}", caller.key_id.as_deref().unwrap_or(""));
    if replay_safe {
        return Ok(id);
    }
    match state.pipeline.store().signature_used(&id).await {
        Ok(false) => Ok(id),
        Ok(true) => Err(unauthorized(
            "signature-replayed",
            "this signature was already used by an accepted request: sign every new request (new t)",
        )),
        Err(e) => {
            tracing::error!(error = %e, "signature store failed");
            Err(Problem::storage_unavailable().into_response())
        }
    }
}
