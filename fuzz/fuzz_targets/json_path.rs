//! The JSON-path parser and matcher, and the bundle walker, over arbitrary input.
#![no_main]

use std::sync::LazyLock;

use exbrief::redact::Policies;
use exbrief::redact::path::{PathPattern, Step};
use libfuzzer_sys::fuzz_target;

static POLICIES: LazyLock<Policies> = LazyLock::new(|| {
    Policies::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../redaction"), "default")
        .expect("policies load")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // "pattern\nkey.0.key…": a pattern and a concrete path to match it against.
    let (pattern, path) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(p) = PathPattern::parse(pattern) {
        let steps: Vec<Step> = path
            .split('.')
            .map(|s| s.parse::<usize>().map(Step::Index).unwrap_or_else(|_| Step::Key(s.to_owned())))
            .collect();
        let _ = p.matches(&steps);
        let _ = p.last_key();
    }
    // And the whole walker over any JSON document.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let r = POLICIES.get(None).expect("default policy").redact(&value);
        let again = POLICIES.get(None).expect("default policy").redact(&r.value);
        assert_eq!(r.value, again.value, "redaction is not idempotent");
    }
});
