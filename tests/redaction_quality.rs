#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Redaction quality on the labelled corpus (tests/redaction_corpus, 600+ strings in six
//! languages): recall and precision per entity, the share of negative characters redacted, and
//! floors that fail the build when detection regresses.

use std::collections::BTreeMap;
use std::path::Path;

use exbrief::redact::Policies;
use serde_json::Value;

struct Tally {
    spans: usize,
    found: usize,
}

struct Report {
    recall: BTreeMap<String, Tally>,
    over: f64,
    misses: Vec<String>,
    false_hits: Vec<String>,
}

impl Report {
    fn recall(&self, e: &str) -> f64 {
        self.recall
            .get(e)
            .map(|t| t.found as f64 / t.spans as f64)
            .unwrap_or(0.0)
    }

    fn known_names(&self) -> f64 {
        let (found, spans) = ["PERSON_KNOWN", "ORG_KNOWN"]
            .iter()
            .filter_map(|e| self.recall.get(*e))
            .fold((0, 0), |(f, s), t| (f + t.found, s + t.spans));
        found as f64 / spans.max(1) as f64
    }
}

/// The held-out corpus was written separately and never used to tune the detectors: its
/// figures are the honest estimate. Reported, with a floor only on over-redaction.
#[test]
fn held_out_corpus_figures() {
    let r = evaluate("tests/redaction_corpus/heldout.jsonl");
    assert!(
        r.over <= 0.01,
        "{:.2}% of negative characters redacted",
        r.over * 100.0
    );
    let _ = (r.recall("EMAIL"), r.known_names());
}

/// A second held-out corpus (300 strings), written blind to the engine by another author after
/// the first one had been used: measured once, never tuned on. Reported, with a floor only on
/// over-redaction.
#[test]
fn second_held_out_corpus_figures() {
    let r = evaluate("tests/redaction_corpus/heldout2.jsonl");
    assert!(
        r.over <= 0.01,
        "{:.2}% of negative characters redacted",
        r.over * 100.0
    );
    let _ = (r.recall("EMAIL"), r.known_names());
}

/// The tuning corpus: floors that fail the build when detection regresses.
#[test]
fn corpus_recall_precision_and_over_redaction() {
    let r = evaluate("tests/redaction_corpus/corpus.jsonl");
    let floors = [
        ("EMAIL", r.recall("EMAIL"), 0.99),
        ("IBAN", r.recall("IBAN"), 0.99),
        ("CREDIT_CARD", r.recall("CREDIT_CARD"), 0.99),
        ("IP_ADDRESS", r.recall("IP_ADDRESS"), 0.99),
        ("PHONE", r.recall("PHONE"), 0.97),
        ("VAT_ID", r.recall("VAT_ID"), 0.97),
        ("MONEY", r.recall("MONEY"), 0.97),
        ("known names", r.known_names(), 0.97),
        ("PERSON (free text only)", r.recall("PERSON"), 0.85),
    ];
    let failed: Vec<String> = floors
        .iter()
        .filter(|(_, got, floor)| got < floor)
        .map(|(name, got, floor)| format!("{name}: recall {got:.3} < {floor}"))
        .collect();
    assert!(
        failed.is_empty(),
        "below the floor: {failed:?}\nmisses:\n  {}",
        r.misses.join("\n  ")
    );
    assert!(
        r.over <= 0.01,
        "{:.2}% of negative characters redacted (max 1%)\n{}",
        r.over * 100.0,
        r.false_hits.join("\n")
    );
}

fn evaluate(file: &str) -> Report {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policies = Policies::load(&root.join("redaction"), "default").unwrap();
    let redactor = policies.get(None).unwrap();
    let corpus = std::fs::read_to_string(root.join(file)).unwrap();
    let mut recall: BTreeMap<String, Tally> = BTreeMap::new();
    let mut detected: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut negative_chars, mut negative_hit) = (0usize, 0usize);
    let mut misses: Vec<String> = Vec::new();
    let mut false_hits: Vec<String> = Vec::new();
    let mut items = 0;
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        items += 1;
        let item: Value = serde_json::from_str(line).unwrap();
        let text = item["text"].as_str().unwrap();
        let chars: Vec<char> = text.chars().collect();
        // Known values as the structured fields would give them: a contact (person) unless the
        // item only labels company mentions.
        let person = item["spans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["entity"] == "PERSON_KNOWN");
        let known: Vec<(&str, bool)> = item["known"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k.as_str().unwrap(), person))
            .collect();
        let (_, findings) = redactor.redact_text(text, &known);
        let mut covered = vec![false; chars.len()];
        for f in &findings {
            for c in covered
                .iter_mut()
                .take(f.end.unwrap())
                .skip(f.start.unwrap())
            {
                *c = true;
            }
        }
        let mut labelled = vec![false; chars.len()];
        for span in item["spans"].as_array().unwrap() {
            let (s, e) = (
                span["start"].as_u64().unwrap() as usize,
                span["end"].as_u64().unwrap() as usize,
            );
            let entity = span["entity"].as_str().unwrap().to_owned();
            labelled[s..e].iter_mut().for_each(|l| *l = true);
            let hit = (s..e).all(|i| covered[i] || chars[i].is_whitespace() || chars[i] == ',');
            let t = recall
                .entry(entity.clone())
                .or_insert(Tally { spans: 0, found: 0 });
            t.spans += 1;
            if hit {
                t.found += 1;
            } else {
                misses.push(format!(
                    "{entity}: «{}» in {}",
                    chars[s..e].iter().collect::<String>(),
                    item["id"]
                ));
            }
        }
        for f in &findings {
            let (s, e) = (f.start.unwrap(), f.end.unwrap());
            let d = detected.entry(f.entity.clone()).or_insert((0, 0));
            d.0 += 1;
            if (s..e).any(|i| labelled[i]) {
                d.1 += 1;
            } else {
                false_hits.push(format!(
                    "{}: «{}» in {}",
                    f.entity,
                    chars[s..e].iter().collect::<String>(),
                    item["id"]
                ));
            }
        }
        for i in 0..chars.len() {
            if !labelled[i] && !chars[i].is_whitespace() {
                negative_chars += 1;
                if covered[i] {
                    negative_hit += 1;
                }
            }
        }
    }
    println!("\nredaction quality on {items} strings of {file} (policy default):");
    println!("{:<16} {:>6} {:>7}", "entity", "spans", "recall");
    for (entity, t) in &recall {
        println!(
            "{entity:<16} {:>6} {:>7.3}",
            t.spans,
            t.found as f64 / t.spans as f64
        );
    }
    println!("{:<16} {:>6} {:>9}", "detected as", "spans", "precision");
    for (entity, (n, ok)) in &detected {
        println!("{entity:<16} {n:>6} {:>9.3}", *ok as f64 / *n as f64);
    }
    let over = negative_hit as f64 / negative_chars as f64;
    println!(
        "negative characters redacted: {negative_hit} of {negative_chars} = {:.2}%",
        over * 100.0
    );
    if std::env::var("EXBRIEF_SHOW_MISSES").is_ok() {
        println!("misses:\n  {}", misses.join("\n  "));
        println!("false hits:\n  {}", false_hits.join("\n  "));
    }
    Report {
        recall,
        over,
        misses,
        false_hits,
    }
}
