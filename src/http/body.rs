//! Reading a bundle from a request: content type, size, UTF-8, depth, JSON, then the types.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::Problem;
use crate::bundle::{Bundle, find};
use crate::config::LimitsConfig;
use crate::keys::Caller;

/// The body as JSON and as a validated bundle, or the problem that names what is wrong.
pub fn bundle(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    max_depth: usize,
) -> Result<(Value, Bundle), Problem> {
    let raw = json(headers, body, max_depth)?;
    let bundle =
        Bundle::from_value(&raw).map_err(|e| Problem::invalid_bundle(&e.path, e.to_string()))?;
    Ok((raw, bundle))
}

/// Takes `callback` out of the document that is redacted: where a summary is delivered is never
/// shown to a model (nor kept in the prompt log).
pub fn strip_callback(raw: &mut Value) {
    if let Some(doc) = raw.as_object_mut() {
        doc.remove("callback");
    }
}

/// Bundle-size limits (`limits.*`): messages, fact values, string length. Checked before any
/// work, so an oversized bundle costs nothing and stores nothing.
pub fn within_limits(raw: &Value, limits: &LimitsConfig) -> Result<(), Problem> {
    let too_big = |field: &str, detail: String| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bundle-too-large",
            "The bundle is over a limit",
            detail,
        )
        .with_field(field)
    };
    if let Some(m) = raw.get("messages").and_then(Value::as_array)
        && m.len() > limits.max_messages
    {
        return Err(too_big(
            "messages",
            format!(
                "{} messages; at most {} (limits.max_messages): send the latest ones",
                m.len(),
                limits.max_messages
            ),
        ));
    }
    fn leaves(v: &Value) -> usize {
        match v {
            Value::Array(a) => a.iter().map(leaves).sum(),
            Value::Object(o) => o.values().map(leaves).sum(),
            _ => 1,
        }
    }
    if let Some(f) = raw.get("facts") {
        let n = leaves(f);
        if n > limits.max_fact_values {
            return Err(too_big(
                "facts",
                format!(
                    "{n} fact values; at most {} (limits.max_fact_values)",
                    limits.max_fact_values
                ),
            ));
        }
    }
    // Bundles travel on to JavaScript (n8n): keys that rewrite an object's prototype there have
    // no business in an exception bundle. (NUL characters are refused by `Bundle::from_value`.)
    let prototype_key = find(raw, &mut |key, _| {
        key.is_some_and(|k| ["__proto__", "constructor", "prototype"].contains(&k))
            .then_some("is a key JavaScript treats as an object's prototype")
    });
    if let Some((path, what)) = prototype_key {
        return Err(Problem::invalid_bundle(
            &path,
            format!("`{path}` {what}; remove it"),
        ));
    }
    // A string has no more characters than bytes: only a long one is counted.
    let longest = find(raw, &mut |_, v| {
        v.as_str()
            .filter(|s| s.len() > limits.max_string_chars)
            .map(|s| s.chars().count())
            .filter(|n| *n > limits.max_string_chars)
    });
    if let Some((path, n)) = longest {
        return Err(too_big(
            &path,
            format!(
                "a string of {n} characters; at most {} (limits.max_string_chars)",
                limits.max_string_chars
            ),
        ));
    }
    Ok(())
}

/// A key pinned to a policy: the bundle may name that policy or none, never another.
pub fn apply_key_policy(caller: &Caller, bundle: &mut Bundle) -> Result<(), Problem> {
    let Some(pinned) = &caller.policy else {
        return Ok(());
    };
    match &bundle.policy {
        Some(asked) if asked != pinned => Err(Problem::invalid_bundle(
            "policy",
            format!(
                "this API key is pinned to redaction policy `{pinned}`; omit `policy` or name that one"
            ),
        )),
        _ => {
            bundle.policy = Some(pinned.clone());
            Ok(())
        }
    }
}

/// The body as a JSON value: content type, size, UTF-8, depth and syntax checked.
pub fn json(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    max_depth: usize,
) -> Result<Value, Problem> {
    require_json(headers)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The body is too large",
                "the request body exceeds server.max_body_bytes",
            )
        } else {
            Problem::new(
                e.status(),
                "unreadable-body",
                "The body could not be read",
                e.body_text(),
            )
        }
    })?;
    parse_json(&body, max_depth)
}

fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The body must be JSON",
            format!(
                "Content-Type must be application/json, got `{}`",
                if ct.is_empty() { "(none)" } else { ct }
            ),
        ))
    }
}

/// UTF-8 and depth are checked before parsing, so that a hostile body costs a linear scan.
fn parse_json(body: &[u8], max_depth: usize) -> Result<Value, Problem> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-utf8",
            "The body is not valid UTF-8",
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        ));
    }
    let depth = json_depth(body);
    if depth > max_depth {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "too-deep",
            "The JSON is nested too deeply",
            format!("nesting depth {depth} exceeds the limit of {max_depth}"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| Problem::malformed_json(e.to_string()))
}

/// Deepest nesting of arrays and objects, ignoring brackets inside strings.
fn json_depth(body: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a": "[[[{{{", "b": [1, [2]]}"#), 3);
        assert_eq!(json_depth(br#""\"[""#), 0);
        assert_eq!(json_depth(b"[[[[]]]]"), 4);
    }

    #[test]
    fn limits_count_characters_and_name_the_first_offender() {
        let limits = LimitsConfig {
            max_string_chars: 4,
            ..LimitsConfig::default()
        };
        let field = |v: Value| within_limits(&v, &limits).err().map(|p| p.field);
        // Four characters in eight bytes are within the limit.
        assert_eq!(
            field(serde_json::json!({"facts": {"a": ["ok", "éééé"]}})),
            None
        );
        assert_eq!(
            field(serde_json::json!({"facts": {"a": ["ok", {"b": "ééééé"}]}})),
            Some(Some("facts.a[1].b".to_owned()))
        );
        // A prototype key is named before a long string that comes earlier.
        assert_eq!(
            field(serde_json::json!({"facts": {"a": "long string", "z": [{"__proto__": 1}]}})),
            Some(Some("facts.z[0].__proto__".to_owned()))
        );
    }
}
