//! Every detector and name finder over arbitrary text: no panic, findings inside the text,
//! redacting the output again finds nothing new to restore.
#![no_main]

use std::sync::LazyLock;

use exbrief::redact::Policies;
use libfuzzer_sys::fuzz_target;

static POLICIES: LazyLock<Policies> = LazyLock::new(|| {
    Policies::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../redaction"), "default")
        .expect("policies load")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let redactor = POLICIES.get(None).expect("default policy");
    let known = [("Anna Müller", true), ("Brandl Sanitär GmbH", false)];
    let (out, findings) = redactor.redact_text(text, &known);
    let chars = text.chars().count();
    for f in &findings {
        let (s, e) = (f.start.unwrap_or(0), f.end.unwrap_or(0));
        assert!(s <= e && e <= chars, "finding {s}..{e} outside {chars} chars");
    }
    if findings.is_empty() {
        assert_eq!(out, text);
    }
});
