//! Review decisions: a reviewer approves a draft (perhaps after editing the reply) or rejects it
//! with a reason. The decision, the draft and the approved text are stored together, and the
//! Odoo side of it (an "Approved reply" note, the review activity marked done) goes through the
//! outbox in the same transaction.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::outbox::{PENDING_REVIEW, REVIEW_DECISION};
use crate::pipeline::Pipeline;
use crate::pipeline::document_of;
use crate::store::{
    self, Decided, NewDecision, NewOutbox, QueueFilter, Store, StoreError, SummaryRow,
};
use crate::vault::Vault;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

#[derive(Debug, Clone)]
pub struct DecisionInput {
    pub verdict: Verdict,
    /// Who decided, as the reviewer names themselves.
    pub reviewer: String,
    /// The reply body as the reviewer edited it; the draft's when absent.
    pub reply: Option<String>,
    pub subject: Option<String>,
    /// Required to reject: the reason.
    pub comment: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no summary has this id")]
    NotFound,
    #[error("the summary is already {status}; a draft is decided once")]
    Conflict { status: String },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: &str) -> ReviewError {
    ReviewError::Invalid {
        field,
        message: message.to_owned(),
    }
}

fn checked(
    field: &'static str,
    text: Option<&str>,
    max: usize,
) -> Result<Option<String>, ReviewError> {
    match text.map(str::trim) {
        None => Ok(None),
        Some("") => Err(invalid(field, "must not be empty")),
        Some(t) if t.chars().count() > max => {
            Err(invalid(field, &format!("must be at most {max} characters")))
        }
        Some(t) if t.contains('\0') => Err(invalid(field, "must not contain NUL characters")),
        Some(t) => Ok(Some(t.to_owned())),
    }
}

/// Records the decision; returns the summary's new state.
pub async fn decide(
    pipeline: &Pipeline,
    id: Uuid,
    input: DecisionInput,
) -> Result<Value, ReviewError> {
    let (store, vault, webhooks) = (pipeline.store(), pipeline.vault(), pipeline.webhooks());
    let reviewer = checked("reviewer", Some(&input.reviewer), 200)?
        .ok_or_else(|| invalid("reviewer", "is required"))?;
    let comment = checked("comment", input.comment.as_deref(), 2000)?;
    let blank_reply = input.reply.as_deref().is_some_and(|r| r.trim().is_empty());
    let reply = if blank_reply {
        None
    } else {
        checked("reply", input.reply.as_deref(), 4000)?
    };
    let subject = checked("subject", input.subject.as_deref(), 200)?;
    if input.verdict == Verdict::Reject && comment.is_none() {
        return Err(invalid("comment", "a rejection needs a reason"));
    }
    let row = store.summary(id).await?.ok_or(ReviewError::NotFound)?;
    if row.status == "processing" {
        return Err(ReviewError::NotFound);
    }
    if row.status != "pending_review" {
        return Err(ReviewError::Conflict { status: row.status });
    }
    let doc = document_of(&row, vault);
    let draft = doc.get("draft_reply").filter(|d| d.is_object()).cloned();
    // Approving an emptied reply would send the draft: say so instead.
    if blank_reply && draft.is_some() && input.verdict == Verdict::Approve {
        return Err(invalid(
            "reply",
            "is empty: write the reply, or reject the draft",
        ));
    }
    let final_reply = match input.verdict {
        Verdict::Reject => None,
        Verdict::Approve => match (&draft, &reply) {
            (Some(d), _) => {
                let mut f = d.clone();
                // Whitespace a browser adds or drops around the text is not an edit.
                let same = |a: &str, b: &str| a.trim() == b.trim();
                if let Some(body) = &reply
                    && !same(body, d["body"].as_str().unwrap_or(""))
                {
                    f["body"] = json!(body);
                }
                if let Some(s) = &subject {
                    f["subject"] = json!(s);
                }
                Some(f)
            }
            (None, Some(body)) => Some(json!({"subject": subject, "body": body})),
            (None, None) => None,
        },
    };
    // A customer must never receive a placeholder: the reviewer replaces it first.
    if let Some(f) = &final_reply {
        let text = format!(
            "{} {}",
            f["subject"].as_str().unwrap_or(""),
            f["body"].as_str().unwrap_or("")
        );
        let left = crate::redact::placeholders_in(&text);
        if !left.is_empty() {
            return Err(ReviewError::Invalid {
                field: "reply",
                message: format!(
                    "still contains placeholders ({}); replace them before approving",
                    left.join(", ")
                ),
            });
        }
    }
    let edited = match (&draft, &final_reply) {
        (Some(d), Some(f)) => d["body"] != f["body"] || d["subject"] != f["subject"],
        _ => false,
    };
    let decision = match input.verdict {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
    };
    // The Odoo side goes where the pending-review note went.
    let mut outbox: Vec<NewOutbox> = store
        .outbox_row(id, PENDING_REVIEW)
        .await?
        .map(|note| {
            let p = &note.payload.0;
            NewOutbox {
                id: Uuid::now_v7(),
                kind: REVIEW_DECISION.to_owned(),
                payload: json!({"model": p["model"], "res_id": p["res_id"], "summary_id": id,
                    "decision": decision, "reviewer": reviewer, "comment": comment,
                    "reply": final_reply}),
            }
        })
        .into_iter()
        .collect();
    let odoo = !outbox.is_empty();
    let event = match input.verdict {
        Verdict::Approve => crate::webhook::REVIEW_APPROVED,
        Verdict::Reject => crate::webhook::REVIEW_REJECTED,
    };
    outbox.extend(webhooks.events(event, json!({"summary_id": id})));
    let edit = match (&draft, &final_reply) {
        (Some(d), Some(f)) => Some(edit_distance(
            d["body"].as_str().unwrap_or(""),
            f["body"].as_str().unwrap_or(""),
        ) as i64),
        _ => None,
    };
    let new = NewDecision {
        id: Uuid::now_v7(),
        summary_id: id,
        decision: decision.to_owned(),
        reviewer: reviewer.clone(),
        comment: comment.clone(),
        // The draft as stored (placeholders, not names): only the approved reply is kept in clear.
        draft_reply: row
            .document
            .as_ref()
            .map(|d| d.0["draft_reply"].clone())
            .filter(Value::is_object),
        final_reply: final_reply.clone(),
        edited,
        prompt_version: doc["tasks"]["customer_reply"]["prompt_version"]
            .as_str()
            .map(str::to_owned),
        edit_distance: edit,
    };
    match store.decide(&new, &outbox).await? {
        Decided::Done => Ok(json!({"id": id, "status": decision, "reviewer": reviewer,
            "comment": comment, "edited": edited, "final_reply": final_reply,
            "odoo": odoo})),
        Decided::Conflict(status) => Err(ReviewError::Conflict { status }),
        Decided::NotFound => Err(ReviewError::NotFound),
    }
}

/// Characters inserted, deleted or replaced to turn `a` into `b` (Levenshtein, over chars).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let replace = prev[j] + usize::from(ca != cb);
            cur[j + 1] = replace.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Queue rows as the API lists them.
pub fn queue_items(rows: &[store::QueueRow], vault: &Vault) -> Vec<Value> {
    let now = store::now();
    rows.iter()
        .map(|r| {
            let revealed = r.document.as_ref().map(|d| {
                let summary = SummaryRow {
                    id: r.id,
                    idempotency_key: String::new(),
                    event_id: r.event_id.clone(),
                    request_sha256: String::new(),
                    status: r.status.clone(),
                    lease_until_ms: 0,
                    document: Some(d.clone()),
                    created_at: r.created_at,
                    sealed: r.sealed.clone(),
                };
                document_of(&summary, vault)
            });
            let doc = revealed.as_ref();
            let get = |path: &[&str]| {
                let mut v = doc.unwrap_or(&Value::Null);
                for p in path {
                    v = &v[*p];
                }
                v.clone()
            };
            json!({"id": r.id, "event_id": r.event_id, "event_type": r.event_type,
                "status": r.status, "severity": r.severity,
                "priority": get(&["classification", "priority"]),
                "headline": get(&["impact_summary", "headline"]),
                "needs_attention": get(&["needs_attention"]).as_array().is_some_and(|a| !a.is_empty()),
                "created_at": store::rfc3339(r.created_at),
                "age_seconds": (now - r.created_at).whole_seconds()})
        })
        .collect()
}

/// One page of the review queue, oldest first, and the cursor of the next page.
pub async fn queue(
    store: &Store,
    vault: &Vault,
    filter: QueueFilter,
) -> Result<Value, ReviewError> {
    let limit = filter.limit;
    let mut rows = store
        .review_queue(&QueueFilter {
            limit: limit + 1,
            ..filter
        })
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let items = queue_items(&rows, vault);
    let next = if more {
        rows.last().map(|r| json!(r.id.to_string()))
    } else {
        None
    };
    Ok(json!({"items": items, "next_cursor": next}))
}

/// Everything a reviewer needs on one summary: the document (key facts, outputs, redaction
/// counts and findings without values, prompt and policy versions), the decision once made,
/// and the Odoo ids once written.
pub async fn detail(store: &Store, vault: &Vault, id: Uuid) -> Result<Value, ReviewError> {
    let row = store.summary(id).await?.ok_or(ReviewError::NotFound)?;
    if row.status == "processing" {
        return Err(ReviewError::NotFound);
    }
    let mut doc = document_of(&row, vault);
    doc["decision"] = match store.decision(id).await? {
        Some(d) => json!({"decision": d.decision, "reviewer": d.reviewer, "comment": d.comment,
            "edited": d.edited, "final_reply": d.final_reply.map(|f| f.0),
            "edit_distance": d.edit_distance, "decided_at": store::rfc3339(d.decided_at)}),
        None => Value::Null,
    };
    let odoo_ids = |row: Option<crate::store::OutboxRow>| {
        row.map(|r| json!({"status": r.status, "ids": r.result.map(|x| x.0), "last_error": r.last_error}))
    };
    doc["odoo"] = json!({
        "pending_review": odoo_ids(store.outbox_row(id, PENDING_REVIEW).await?),
        "decision": odoo_ids(store.outbox_row(id, REVIEW_DECISION).await?),
    });
    Ok(doc)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Review quality figures: cycle time (created → decided) per event type; approval and
/// rejection rates and how far reviewers edit, per customer-reply prompt version.
pub async fn stats(store: &Store) -> Result<Value, ReviewError> {
    use std::collections::BTreeMap;
    let rows = store.decisions().await?;
    let mut by_type: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    #[derive(Default)]
    struct Version {
        approved: u64,
        rejected: u64,
        edited: u64,
        distances: Vec<f64>,
    }
    let mut by_version: BTreeMap<String, Version> = BTreeMap::new();
    for r in &rows {
        let cycle = (r.decided_at - r.created_at).as_seconds_f64();
        by_type.entry(r.event_type.clone()).or_default().push(cycle);
        let v = by_version
            .entry(
                r.prompt_version
                    .clone()
                    .unwrap_or_else(|| "none".to_owned()),
            )
            .or_default();
        if r.decision == "approved" {
            v.approved += 1;
            v.edited += u64::from(r.edited);
            if let Some(d) = r.edit_distance {
                v.distances.push(d as f64);
            }
        } else {
            v.rejected += 1;
        }
    }
    let cycle: BTreeMap<String, Value> = by_type
        .into_iter()
        .map(|(t, v)| {
            (
                t,
                json!({"decided": v.len(), "median_seconds": median(v.clone()),
                "mean_seconds": mean(&v)}),
            )
        })
        .collect();
    let versions: BTreeMap<String, Value> = by_version
        .into_iter()
        .map(|(k, v)| {
            let decided = (v.approved + v.rejected) as f64;
            (k, json!({"approved": v.approved, "rejected": v.rejected,
                "approval_rate": v.approved as f64 / decided,
                "rejection_rate": v.rejected as f64 / decided,
                "edited_share": if v.approved > 0 { Some(v.edited as f64 / v.approved as f64) } else { None },
                "mean_edit_distance": mean(&v.distances),
                "median_edit_distance": median(v.distances)}))
        })
        .collect();
    Ok(
        json!({"decided": rows.len(), "cycle_time_by_event_type": cycle,
        "by_customer_reply_prompt_version": versions}),
    )
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("Grüße", "Grüsse"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
