//! The exception bundle an n8n workflow or an Odoo automation posts, parsed into validated types.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

/// Longest accepted `event_id` (and `Idempotency-Key`), in characters.
pub const MAX_EVENT_ID_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BundleError {
    /// Where in the document the problem is, e.g. `messages[0].sent_at`.
    pub path: String,
    pub message: String,
}

/// The outputs exbrief can produce for one bundle.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    ImpactSummary,
    Classification,
    CustomerReply,
}

impl Task {
    pub const ALL: [Task; 3] = [
        Task::ImpactSummary,
        Task::Classification,
        Task::CustomerReply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::ImpactSummary => "impact_summary",
            Task::Classification => "classification",
            Task::CustomerReply => "customer_reply",
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Task::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown task `{s}` (impact_summary, classification, customer_reply)")
            })
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of operational exception exbrief knows how to brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    ReceiptDelay,
    AllocationFailure,
    StockoutRisk,
    QualityHold,
    InvoiceDispute,
    SlaBreach,
    MarginException,
    EquipmentDowntime,
    SupplierSubstitution,
    Other,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ReceiptDelay => "receipt_delay",
            EventType::AllocationFailure => "allocation_failure",
            EventType::StockoutRisk => "stockout_risk",
            EventType::QualityHold => "quality_hold",
            EventType::InvoiceDispute => "invoice_dispute",
            EventType::SlaBreach => "sla_breach",
            EventType::MarginException => "margin_exception",
            EventType::EquipmentDowntime => "equipment_downtime",
            EventType::SupplierSubstitution => "supplier_substitution",
            EventType::Other => "other",
        }
    }
}

/// A caller-chosen event identifier: 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let n = s.chars().count();
        if n == 0 || s.trim().is_empty() {
            return Err("must not be empty".to_owned());
        }
        if n > MAX_EVENT_ID_CHARS {
            return Err(format!(
                "is {n} characters long; at most {MAX_EVENT_ID_CHARS} are allowed"
            ));
        }
        if s.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EventId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub system: String,
    pub model: String,
    pub res_id: i64,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: MessageRole,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<OffsetDateTime>,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    Customer,
    Supplier,
    Carrier,
    Internal,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyTo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteBack {
    pub model: String,
    pub res_id: i64,
    #[serde(default)]
    pub activity_user_id: Option<i64>,
}

/// An exception bundle. Only `event_id`, `event_type`, `occurred_at` and `source` are required.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// The idempotency key: 1 to 200 visible characters.
    #[schema(value_type = String, example = "odoo:purchase.order:P00017:receipt_delay:2026-11-20")]
    pub event_id: EventId,
    pub event_type: EventType,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    pub source: Source,
    #[serde(default, deserialize_with = "tasks")]
    pub tasks: Option<Vec<Task>>,
    #[serde(default)]
    pub locale: Option<String>,
    /// Odoo records as Odoo returns them; free-form.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub facts: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub reply_to: Option<ReplyTo>,
    #[serde(default)]
    pub write_back: Option<WriteBack>,
    /// Pins a template version per task, overriding the configured production version.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub prompt_versions: BTreeMap<Task, String>,
    /// Redaction policy by name (a file in `redaction/`); the configured default when absent.
    #[serde(default)]
    pub policy: Option<String>,
    /// Asynchronous mode: answer 202 at once and POST the summary here when it is ready.
    #[serde(default)]
    pub callback: Option<Callback>,
}

/// Where an asynchronous summary is delivered (a URL under `webhooks.callback_allow`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    #[schema(example = "https://n8n.example.com/webhook-waiting/231")]
    pub url: String,
}

fn tasks<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Task>>, D::Error> {
    let tasks: Option<Vec<Task>> = Option::deserialize(d)?;
    if let Some(list) = &tasks
        && list.is_empty()
    {
        return Err(serde::de::Error::custom(
            "must name at least one task, or be left out for all three",
        ));
    }
    Ok(tasks)
}

impl Bundle {
    /// Parses a JSON document, naming the path of the first offending field.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, BundleError> {
        if !value.is_object() {
            return Err(BundleError {
                path: "(document)".to_owned(),
                message: "the body must be a JSON object (an exception bundle)".to_owned(),
            });
        }
        if let Some(path) = nul_at(value) {
            return Err(BundleError {
                path: if path.is_empty() {
                    "(document)".to_owned()
                } else {
                    path
                },
                message: "text must not contain NUL characters (\\u0000)".to_owned(),
            });
        }
        let bundle = serde_path_to_error::deserialize::<_, Bundle>(value).map_err(|e| {
            let path = e.path().to_string();
            BundleError {
                path: if path == "." {
                    "(document)".to_owned()
                } else {
                    path
                },
                message: e.into_inner().to_string(),
            }
        })?;
        bundle.check_codes()?;
        Ok(bundle)
    }

    /// Fields that reach the prompt verbatim must be codes, not free text.
    fn check_codes(&self) -> Result<(), BundleError> {
        let bad = |path: &str, what: &str| BundleError {
            path: path.to_owned(),
            message: format!("must be {what}"),
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        };
        let lang = |s: &str| {
            let mut parts = s.split(['_', '-']);
            parts.next().is_some_and(|p| {
                (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic())
            }) && parts
                .all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
        };
        if !ident(&self.source.system) {
            return Err(bad("source.system", "a system code such as `odoo`"));
        }
        if !ident(&self.source.model) {
            return Err(bad(
                "source.model",
                "an Odoo model name such as `purchase.order`",
            ));
        }
        if let Some(l) = &self.locale
            && !lang(l)
        {
            return Err(bad("locale", "a locale such as `en_US`"));
        }
        if let Some(l) = self.reply_to.as_ref().and_then(|r| r.lang.as_ref())
            && !lang(l)
        {
            return Err(bad("reply_to.lang", "a language such as `de_DE`"));
        }
        Ok(())
    }

    /// The tasks to run, in their canonical order, without duplicates.
    pub fn selected_tasks(&self) -> Vec<Task> {
        match &self.tasks {
            None => Task::ALL.to_vec(),
            Some(list) => Task::ALL.into_iter().filter(|t| list.contains(t)).collect(),
        }
    }

    /// The language the customer reply is written in: `reply_to.lang`, else `locale`, else `en`.
    pub fn reply_language(&self) -> String {
        let raw = self
            .reply_to
            .as_ref()
            .and_then(|r| r.lang.as_deref())
            .or(self.locale.as_deref())
            .unwrap_or("en");
        let primary = raw.split(['_', '-']).next().unwrap_or("en");
        let primary = primary.to_ascii_lowercase();
        if (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()) {
            primary
        } else {
            "en".to_owned()
        }
    }
}

/// The path of the first string or key holding a NUL (PostgreSQL's JSON cannot store one).
fn nul_at(v: &serde_json::Value) -> Option<String> {
    let nul = |s: &str| s.contains('\0');
    find(v, &mut |key, x| {
        (key.is_some_and(nul) || x.as_str().is_some_and(nul)).then_some(())
    })
    .map(|(path, ())| path)
}

/// The first place (path, finding) where `check(key, value)` finds something, depth first; the
/// key is the object key a value sits under. Paths are written only once something is found:
/// most bundles have nothing to find, and writing a path for every node was most of the walk.
pub(crate) fn find<T>(
    root: &serde_json::Value,
    check: &mut impl FnMut(Option<&str>, &serde_json::Value) -> Option<T>,
) -> Option<(String, T)> {
    use std::fmt::Write as _;
    fn any<T>(
        v: &serde_json::Value,
        key: Option<&str>,
        check: &mut impl FnMut(Option<&str>, &serde_json::Value) -> Option<T>,
    ) -> bool {
        check(key, v).is_some()
            || match v {
                serde_json::Value::Array(a) => a.iter().any(|x| any(x, None, check)),
                serde_json::Value::Object(o) => o.iter().any(|(k, x)| any(x, Some(k), check)),
                _ => false,
            }
    }
    fn walk<T>(
        v: &serde_json::Value,
        key: Option<&str>,
        path: &mut String,
        check: &mut impl FnMut(Option<&str>, &serde_json::Value) -> Option<T>,
    ) -> Option<(String, T)> {
        if let Some(found) = check(key, v) {
            return Some((path.clone(), found));
        }
        let len = path.len();
        let r = match v {
            serde_json::Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| {
                path.truncate(len);
                let _ = write!(path, "[{i}]");
                walk(x, None, path, check)
            }),
            serde_json::Value::Object(o) => o.iter().find_map(|(k, x)| {
                path.truncate(len);
                if len > 0 {
                    path.push('.');
                }
                path.push_str(k);
                walk(x, Some(k), path, check)
            }),
            _ => None,
        };
        path.truncate(len);
        r
    }
    if !any(root, None, check) {
        return None;
    }
    walk(root, None, &mut String::new(), check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> serde_json::Value {
        json!({
            "event_id": "odoo:purchase.order:P00017:receipt_delay:2026-11-20",
            "event_type": "receipt_delay",
            "occurred_at": "2026-11-20T06:00:00Z",
            "source": {"system": "odoo", "model": "purchase.order", "res_id": 17, "name": "P00017"}
        })
    }

    #[test]
    fn minimal_bundle_selects_all_tasks() {
        let b = Bundle::from_value(&minimal()).unwrap();
        assert_eq!(b.selected_tasks(), Task::ALL.to_vec());
        assert_eq!(b.reply_language(), "en");
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = minimal();
        v["occurred_at"] = json!("yesterday");
        assert_eq!(Bundle::from_value(&v).unwrap_err().path, "occurred_at");
        let mut v = minimal();
        v["tasks"] = json!(["impact_summary", "haiku"]);
        assert_eq!(Bundle::from_value(&v).unwrap_err().path, "tasks[1]");
        let mut v = minimal();
        v["event_id"] = json!("x".repeat(201));
        let e = Bundle::from_value(&v).unwrap_err();
        assert_eq!(e.path, "event_id");
        assert!(e.message.contains("201"));
        let mut v = minimal();
        v.as_object_mut().unwrap().remove("source");
        assert!(
            Bundle::from_value(&v)
                .unwrap_err()
                .message
                .contains("source")
        );
    }

    #[test]
    fn a_nul_is_named_by_its_path_after_siblings_without_one() {
        let nul_path = |facts: serde_json::Value| {
            let mut v = minimal();
            v["facts"] = facts;
            Bundle::from_value(&v).unwrap_err().path
        };
        let lines = json!({"a": 1, "lines": [{"name": "ok"}, {"name": "b", "x": ["c", "d\u{0}"]}]});
        assert_eq!(nul_path(lines), "facts.lines[1].x[1]");
        assert_eq!(nul_path(json!({"a": [[]], "z\u{0}": 1})), "facts.z\u{0}");
        assert_eq!(nul_path(json!([["a"], ["b", "\u{0}"]])), "facts[1][1]");
    }

    #[test]
    fn reply_language_prefers_reply_to() {
        let mut v = minimal();
        v["locale"] = json!("fr_FR");
        v["reply_to"] = json!({"lang": "de_DE"});
        assert_eq!(Bundle::from_value(&v).unwrap().reply_language(), "de");
    }
}
