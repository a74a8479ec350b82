//! The pending-review note and activity as Odoo shows them in the chatter. Every string that
//! came from a model, a bundle or a reviewer is HTML-escaped before it goes into the body; the
//! visible `[PENDING REVIEW]` prefix and the `exbrief <summary id>` marker survive Odoo's
//! sanitizer (it strips custom `data-*` attributes, not text) and can be searched with `ilike`.

use serde_json::Value;
use time::{Date, Duration, Weekday};

/// Text for an HTML element body or attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The marker a note carries so that a retry finds the note it already posted.
pub fn marker(summary_id: &str) -> String {
    format!("exbrief {summary_id}")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => escape(s),
        Value::Null => String::new(),
        other => escape(&other.to_string()),
    }
}

/// The note body for a stored summary document.
pub fn pending_review(doc: &Value, review_url: &str) -> String {
    let id = doc["id"].as_str().unwrap_or_default();
    let mut h = String::new();
    h.push_str(&format!(
        "<div class=\"o_exbrief_pending_review\" id=\"exbrief-{}\">",
        escape(id)
    ));
    h.push_str(&format!(
        "<p><b>[PENDING REVIEW]</b> AI draft — pending review · {}</p>",
        escape(&marker(id))
    ));
    let impact = &doc["impact_summary"];
    if impact.is_object() {
        h.push_str(&format!("<p><b>{}</b></p>", text(&impact["headline"])));
        h.push_str(&format!("<p>{}</p>", text(&impact["customer_impact"])));
        let orders = impact["impacted_orders"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !orders.is_empty() {
            h.push_str("<ul>");
            for o in &orders {
                h.push_str(&format!(
                    "<li>{} · {} · promised {} · at risk {}</li>",
                    text(&o["order_ref"]),
                    text(&o["customer_token"]),
                    text(&o["promised_date"]),
                    text(&o["at_risk_qty"])
                ));
            }
            h.push_str("</ul>");
        }
        h.push_str(&format!(
            "<p>Financial exposure: {}</p>",
            text(&impact["financial_exposure_band"])
        ));
        let options = impact["mitigation_options"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !options.is_empty() {
            h.push_str("<p>Options:</p><ul>");
            for o in &options {
                h.push_str(&format!("<li>{}</li>", text(o)));
            }
            h.push_str("</ul>");
        }
    }
    let c = &doc["classification"];
    if c.is_object() {
        h.push_str(&format!(
            "<p><b>Classification:</b> {} · severity {} · priority {} · confidence {}</p>",
            text(&c["category"]),
            text(&c["severity"]),
            text(&c["priority"]),
            text(&c["confidence"])
        ));
        let actions: Vec<String> = c["recommended_actions"]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        if !actions.is_empty() {
            h.push_str(&format!("<p>Recommended: {}</p>", actions.join(", ")));
        }
        h.push_str(&format!("<p>{}</p>", text(&c["rationale"])));
    }
    let r = &doc["draft_reply"];
    if r.is_object() {
        h.push_str(&format!(
            "<p><b>Draft reply</b> ({}, {}): {}</p>",
            text(&r["language"]),
            text(&r["tone"]),
            text(&r["subject"])
        ));
        let body = text(&r["body"]).replace('\n', "<br>");
        h.push_str(&format!("<blockquote>{body}</blockquote>"));
    }
    if let Some(list) = doc["needs_attention"].as_array().filter(|l| !l.is_empty()) {
        h.push_str("<p><b>Needs attention:</b></p><ul>");
        for a in list {
            h.push_str(&format!("<li>{}</li>", text(a)));
        }
        h.push_str("</ul>");
    }
    let versions: Vec<String> = doc["tasks"]
        .as_object()
        .map(|tasks| {
            tasks
                .iter()
                .map(|(task, t)| {
                    let sha = t["prompt_sha256"].as_str().unwrap_or("");
                    format!(
                        "{} {} ({})",
                        escape(task),
                        text(&t["prompt_version"]),
                        escape(sha.get(..12).unwrap_or(sha))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let red = &doc["redaction"];
    h.push_str(&format!(
        "<p>Prompts: {}. Redaction policy: {} {}.</p>",
        versions.join(", "),
        text(&red["policy"]),
        text(&red["policy_version"])
    ));
    if !review_url.is_empty() {
        let href = format!("{}/review/{}", review_url.trim_end_matches('/'), id);
        h.push_str(&format!(
            "<p><a href=\"{}\" target=\"_blank\">Review in exbrief</a></p>",
            escape(&href)
        ));
    }
    h.push_str("</div>");
    h
}

/// The marker of the message a decision posts (also the id of its wrapper, which Odoo keeps).
pub fn decision_marker(summary_id: &str) -> String {
    format!("exbrief-decision-{summary_id}")
}

/// The internal note for a decision: the approved reply, or the rejection and its reason.
pub fn decision(summary_id: &str, payload: &Value) -> String {
    let reviewer = text(&payload["reviewer"]);
    let marker = escape(&decision_marker(summary_id));
    if payload["decision"] == "approved" {
        let reply = &payload["reply"];
        let mut h = format!(
            "<div id=\"{marker}\"><p><b>[APPROVED]</b> Approved reply · reviewed by {reviewer} · {marker}</p>"
        );
        if reply.is_object() {
            h.push_str(&format!("<p><b>{}</b></p>", text(&reply["subject"])));
            h.push_str(&format!(
                "<blockquote>{}</blockquote>",
                text(&reply["body"]).replace('\n', "<br>")
            ));
        }
        if let Some(c) = payload["comment"].as_str() {
            h.push_str(&format!("<p>Comment: {}</p>", escape(c)));
        }
        h.push_str("</div>");
        h
    } else {
        format!(
            "<div id=\"{marker}\"><p><b>[REJECTED]</b> AI draft rejected by {reviewer}: {} · {marker}</p></div>",
            text(&payload["comment"])
        )
    }
}

/// The approved reply as the customer receives it (a comment, which Odoo e-mails): the text
/// only, in a wrapper whose id (kept by Odoo's sanitizer) lets a retry find it.
pub fn customer_reply(summary_id: &str, reply: &Value) -> String {
    format!(
        "<div id=\"{}\"><p>{}</p></div>",
        escape(&decision_marker(summary_id)),
        text(&reply["body"]).replace('\n', "<br>")
    )
}

/// The activity's note: short, with the marker so a retry can find the activity too.
pub fn activity_note(doc: &Value) -> String {
    let id = doc["id"].as_str().unwrap_or_default();
    format!(
        "<p>Review the AI draft posted in the chatter ({}) before anything reaches the customer.</p>",
        escape(&marker(id))
    )
}

/// Review deadline from the severity: critical today, high the next day, anything else two
/// working days later.
pub fn deadline(severity: Option<&str>, today: Date) -> Date {
    match severity {
        Some("critical") => today,
        Some("high") => today + Duration::days(1),
        _ => {
            let mut d = today;
            let mut left = 2;
            while left > 0 {
                d += Duration::days(1);
                if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
                    left -= 1;
                }
            }
            d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    #[test]
    fn model_text_is_escaped_and_the_marker_is_visible() {
        let doc = json!({"id": "0190-abc", "impact_summary": {"headline": "<img src=x onerror=alert(1)>",
            "customer_impact": "a & b", "impacted_orders": [], "financial_exposure_band": "1k–10k",
            "mitigation_options": ["<script>steal()</script>"]},
            "draft_reply": {"subject": "Re: \"order\"", "body": "Dear Jo,\n<b>hi</b>", "language": "en", "tone": "apologetic"},
            "tasks": {"impact_summary": {"prompt_version": "v1", "prompt_sha256": "0123456789abcdef"}},
            "redaction": {"policy": "default", "policy_version": "2026.11.1"}});
        let html = pending_review(&doc, "https://exbrief.example.com/");
        assert!(html.contains("<b>[PENDING REVIEW]</b>"));
        assert!(html.contains("exbrief 0190-abc"));
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
        assert!(html.contains("Dear Jo,<br>&lt;b&gt;hi&lt;/b&gt;"));
        assert!(html.contains("Re: &quot;order&quot;"));
        assert!(html.contains("impact_summary v1 (0123456789ab)"));
        assert!(html.contains("href=\"https://exbrief.example.com/review/0190-abc\""));
    }

    #[test]
    fn deadlines_follow_severity_and_skip_weekends() {
        let thursday = date!(2026 - 11 - 26);
        assert_eq!(deadline(Some("critical"), thursday), thursday);
        assert_eq!(deadline(Some("high"), thursday), date!(2026 - 11 - 27));
        // Thursday + 2 working days = Monday.
        assert_eq!(deadline(Some("medium"), thursday), date!(2026 - 11 - 30));
        assert_eq!(deadline(None, date!(2026 - 11 - 23)), date!(2026 - 11 - 25));
    }
}
