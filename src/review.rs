//! Review decisions: a reviewer approves a draft (perhaps after editing the reply) or rejects it
//! with a reason. The decision, the draft and the approved text are stored together, and the
//! Odoo side of it (an "Approved reply" note, the review activity marked done) goes through the
//! outbox in the same transaction.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::outbox::{PENDING_REVIEW, REVIEW_DECISION};
use crate::pipeline::document_of;
use crate::store::{Decided, NewDecision, NewOutbox, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

#[derive(Debug, Clone)]
pub struct DecisionInput {
    pub verdict: Verdict,
    /// Who decided (the key's owner once API keys exist).
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
pub async fn decide(store: &Store, id: Uuid, input: DecisionInput) -> Result<Value, ReviewError> {
    let reviewer = checked("reviewer", Some(&input.reviewer), 200)?
        .ok_or_else(|| invalid("reviewer", "is required"))?;
    let comment = checked("comment", input.comment.as_deref(), 2000)?;
    let reply = checked("reply", input.reply.as_deref(), 4000)?;
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
    let doc = document_of(&row);
    let draft = doc.get("draft_reply").filter(|d| d.is_object()).cloned();
    let final_reply = match input.verdict {
        Verdict::Reject => None,
        Verdict::Approve => match (&draft, &reply) {
            (Some(d), _) => {
                let mut f = d.clone();
                if let Some(body) = &reply {
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
    let edited = match (&draft, &final_reply) {
        (Some(d), Some(f)) => d["body"] != f["body"] || d["subject"] != f["subject"],
        _ => false,
    };
    let decision = match input.verdict {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
    };
    // The Odoo side goes where the pending-review note went.
    let outbox: Vec<NewOutbox> = store
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
    let new = NewDecision {
        id: Uuid::now_v7(),
        summary_id: id,
        decision: decision.to_owned(),
        reviewer: reviewer.clone(),
        comment: comment.clone(),
        draft_reply: draft,
        final_reply: final_reply.clone(),
        edited,
    };
    match store.decide(&new, &outbox).await? {
        Decided::Done => Ok(json!({"id": id, "status": decision, "reviewer": reviewer,
            "comment": comment, "edited": edited, "final_reply": final_reply,
            "odoo": !outbox.is_empty()})),
        Decided::Conflict(status) => Err(ReviewError::Conflict { status }),
        Decided::NotFound => Err(ReviewError::NotFound),
    }
}
