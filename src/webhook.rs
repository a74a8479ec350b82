//! Outbound webhooks: the signature both directions share, the callback allow-list, and the
//! events that subscriptions receive. Deliveries go through the outbox
//! ([`crate::outbox::webhook`]); what is queued holds ids only, and the body is built from the
//! stored rows when it is sent, so no raw value waits in the outbox.

use hmac::{Hmac, Mac};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::{Subscription, WebhooksConfig};
use crate::store::NewOutbox;

/// The outbox kind of an asynchronous summary's callback.
pub const CALLBACK: &str = "webhook.callback";
/// The outbox kind of an event for one subscription.
pub const EVENT: &str = "webhook.event";
/// The prefix both kinds share (what the webhook worker claims).
pub const KINDS: &str = "webhook.";

pub const SUMMARY_CREATED: &str = "summary.created";
pub const REVIEW_APPROVED: &str = "review.approved";
pub const REVIEW_REJECTED: &str = "review.rejected";
pub const OUTBOX_DEAD: &str = "outbox.dead";
/// Every event a subscription may name.
pub const EVENTS: [&str; 4] = [
    SUMMARY_CREATED,
    REVIEW_APPROVED,
    REVIEW_REJECTED,
    OUTBOX_DEAD,
];

/// `HMAC-SHA256(secret, t + "." + body)`: what `X-Exbrief-Signature`'s `v1` carries, inbound
/// and outbound.
pub fn mac(secret: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Exbrief-Signature` value for `body` sent at unix time `t`.
pub fn signature(secret: &SecretString, t: i64, body: &[u8]) -> String {
    let v1 = hex::encode(
        mac(secret.expose_secret().as_bytes(), t, body)
            .finalize()
            .into_bytes(),
    );
    format!("t={t},v1={v1}")
}

/// One allowed prefix: scheme, host and port must be equal, the path must start with `path`.
#[derive(Debug, Clone)]
struct Prefix {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
}

/// The URL prefixes a callback may go to (`webhooks.callback_allow`). Anything else is refused
/// before a request is accepted: exbrief must not become a way to reach arbitrary hosts.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<Prefix>);

impl AllowList {
    pub fn new(prefixes: &[String]) -> Self {
        Self::from_urls(prefixes.iter().filter_map(|p| Self::parse_prefix(p).ok()))
    }

    fn from_urls(urls: impl IntoIterator<Item = Url>) -> Self {
        Self(urls.into_iter().map(Prefix::from).collect())
    }

    /// Checks one configured prefix (also used for subscription URLs).
    pub fn parse_prefix(prefix: &str) -> Result<Url, String> {
        let url = Url::parse(prefix).map_err(|e| format!("`{prefix}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{prefix}` must be an http:// or https:// URL"));
        }
        if url.host_str().is_none() {
            return Err(format!("`{prefix}` has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{prefix}` must not carry a user name or password"));
        }
        Ok(url)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The parsed URL when it is allowed; otherwise why not, for the caller's `detail`.
    pub fn check(&self, url: &str) -> Result<Url, String> {
        if self.0.is_empty() {
            return Err("callbacks are switched off on this server: its operator adds the URL prefix to webhooks.callback_allow".to_owned());
        }
        let parsed = Self::parse_prefix(url)?;
        let allowed = self.0.iter().any(|p| {
            p.scheme == parsed.scheme()
                && parsed
                    .host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&p.host))
                && p.port == parsed.port_or_known_default()
                && parsed.path().starts_with(&p.path)
        });
        if allowed {
            Ok(parsed)
        } else {
            Err(format!(
                "`{}` is not under any prefix in webhooks.callback_allow; use an allowed URL or ask the operator to add its prefix",
                parsed.origin().ascii_serialization()
            ))
        }
    }
}

impl From<Url> for Prefix {
    fn from(u: Url) -> Self {
        Prefix {
            scheme: u.scheme().to_owned(),
            host: u.host_str().unwrap_or_default().to_ascii_lowercase(),
            port: u.port_or_known_default(),
            path: u.path().to_owned(),
        }
    }
}

/// The webhook side of the configuration, shared by the pipeline, the review and the worker.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub allow: AllowList,
    subscriptions: Vec<Subscription>,
}

impl Webhooks {
    pub fn from_config(c: &WebhooksConfig) -> Self {
        Self {
            allow: AllowList::new(&c.callback_allow),
            subscriptions: c.subscriptions.clone(),
        }
    }

    /// Whether anything can be sent at all: callbacks allowed, or a subscription.
    pub fn enabled(&self) -> bool {
        !self.allow.is_empty() || !self.subscriptions.is_empty()
    }

    pub fn subscription(&self, name: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.name == name)
    }

    /// One outbox row per subscription that wants `event`. `refs` are ids only (the body is
    /// built when the row is delivered).
    pub fn events(&self, event: &str, refs: Value) -> Vec<NewOutbox> {
        self.subscriptions
            .iter()
            .filter(|s| s.events.iter().any(|e| e == event))
            .map(|s| NewOutbox {
                id: Uuid::now_v7(),
                kind: EVENT.to_owned(),
                payload: json!({"event": event, "subscription": s.name, "refs": refs}),
            })
            .collect()
    }

    /// The callback row of an asynchronous summary: where to, signed with whose key, and (for a
    /// summary that failed) the problem document the caller would have had.
    pub fn callback(url: &str, key_id: Option<&str>, problem: Option<Value>) -> NewOutbox {
        NewOutbox {
            id: Uuid::now_v7(),
            kind: CALLBACK.to_owned(),
            payload: json!({"url": url, "key_id": key_id, "problem": problem}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(p: &[&str]) -> AllowList {
        AllowList::from_urls(p.iter().map(|p| AllowList::parse_prefix(p).unwrap()))
    }

    #[test]
    fn callbacks_go_only_under_an_allowed_prefix() {
        let a = allow(&["http://n8n.internal:5678/webhook-waiting/"]);
        assert!(
            a.check("http://n8n.internal:5678/webhook-waiting/123")
                .is_ok()
        );
        assert!(
            a.check("http://N8N.internal:5678/webhook-waiting/1?x=y")
                .is_ok()
        );
        for bad in [
            "http://n8n.internal:5678/webhook/123",
            "http://n8n.internal:5679/webhook-waiting/123",
            "https://n8n.internal:5678/webhook-waiting/123",
            "http://n8n.internal.evil.com:5678/webhook-waiting/123",
            "http://user:pw@n8n.internal:5678/webhook-waiting/123",
            "http://169.254.169.254/latest/meta-data/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(a.check(bad).is_err(), "{bad} was allowed");
        }
        // The default port is the same port, written or not.
        let b = allow(&["https://hooks.example.com/"]);
        assert!(b.check("https://hooks.example.com:443/x").is_ok());
        assert!(
            AllowList::default()
                .check("https://hooks.example.com/")
                .is_err()
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_hex_of_t_dot_body() {
        // Expected value from Python: hmac.new(b"whsec_test", b'1700000000.{"a":1}', sha256).
        let s = signature(
            &SecretString::from("whsec_test"),
            1_700_000_000,
            b"{\"a\":1}",
        );
        assert_eq!(
            s,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
