#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The promise compliance signs off on: seeded PII and prices in every field kind of every
//! fixture never reach the model — not verbatim, not in another case, without diacritics, or
//! with other digit grouping. Plus property tests of restore and idempotence.

mod support;

use exbrief::redact::Policies;
use exbrief::redact::names::fold_str;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Backend, Options, spawn_app};

/// Seeds of one fixture: what was planted, to be looked for in model requests.
#[derive(Default)]
struct Seeds {
    texts: Vec<String>,
    amounts: Vec<f64>,
}

const PRICE_KEYS: &[&str] = &[
    "price_unit",
    "price_subtotal",
    "price_total",
    "amount_total",
    "amount_untaxed",
    "amount_residual",
    "amount_tax",
    "margin",
    "credit_limit",
    "standard_price",
    "list_price",
    "purchase_price",
    "disputed_amount",
    "credit",
    "wage",
];

fn seed(v: &mut Value, key: Option<&str>, n: &mut u32, seeds: &mut Seeds) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                seed(child, Some(k.as_str()), n, seeds);
            }
        }
        Value::Array(items) => {
            // Odoo many2one pair: a partner's or employee's display name.
            let is_pair = items.len() == 2 && items[0].is_i64() && items[1].is_string();
            if is_pair
                && matches!(
                    key,
                    Some(
                        "partner_id"
                            | "employee_id"
                            | "user_id"
                            | "customer_id"
                            | "partner_shipping_id"
                    )
                )
            {
                *n += 1;
                let name = format!("Zoë Quellbrünn{n} Holdings");
                seeds.texts.push(name.clone());
                items[1] = json!(name);
            } else {
                for i in items.iter_mut() {
                    seed(i, key, n, seeds);
                }
            }
        }
        Value::Number(_) if key.is_some_and(|k| PRICE_KEYS.contains(&k)) => {
            *n += 1;
            let amount = 7000.0 + f64::from(*n) * 13.0 + 0.37;
            seeds.amounts.push(amount);
            *v = json!(amount);
        }
        Value::String(_) => {
            *n += 1;
            let seeded = match key {
                Some("email" | "work_email" | "email_from") => {
                    format!("seed.person{n}@pii-seed.example")
                }
                Some("phone" | "mobile" | "mobile_phone" | "work_phone") => {
                    format!("+49 30 5550 {:04}", 1000 + *n)
                }
                Some("vat") => format!("DE{:09}", 100_000_000 + *n),
                Some("acc_number") => "DE89 3704 0044 0532 0130 00".to_owned(),
                Some("street") => format!("Quellbrunnenstraße {n}"),
                _ => return,
            };
            seeds.texts.push(seeded.clone());
            *v = json!(seeded);
        }
        _ => {}
    }
}

fn seeded_fixture(mut bundle: Value, i: usize) -> (Value, Seeds) {
    let mut seeds = Seeds::default();
    let mut n = (i as u32) * 100;
    seed(&mut bundle["facts"], None, &mut n, &mut seeds);
    let customer = format!("Brünnhilde Öztürk-Lindqvist{i}");
    let email = format!("b.oeztuerk{i}@seed-customer.example");
    let phone = format!("+31 20 555 {:04}", 3000 + i);
    bundle["facts"]["customer"]["name"] = json!(customer);
    bundle["reply_to"] = json!({"name": customer, "email": email, "lang": "en_US"});
    let amount = 12_345.67 + i as f64;
    let body = format!(
        "Hello, this is {} (or {}) from the buyer side. Reach me at {email} or {phone}. We agreed EUR {} last week; IBAN GB82 WEST 1234 5698 7654 32.",
        customer.to_uppercase(),
        fold_str(&customer),
        format_grouped(amount, ',', '.'),
    );
    bundle["messages"] = json!([{"role": "customer", "author": customer, "body": body}]);
    seeds.texts.extend([
        customer,
        email,
        phone,
        "GB82 WEST 1234 5698 7654 32".to_owned(),
    ]);
    seeds.amounts.push(amount);
    (bundle, seeds)
}

fn format_grouped(amount: f64, thousands: char, decimal: char) -> String {
    let whole = amount.trunc() as i64;
    let cents = ((amount - amount.trunc()) * 100.0).round() as i64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) && thousands != '\0' {
            out.push(thousands);
        }
        out.push(c);
    }
    format!("{out}{decimal}{cents:02}")
}

/// Every spelling under which a seeded value must not appear.
fn forbidden(seeds: &Seeds) -> Vec<String> {
    let mut out = Vec::new();
    for t in &seeds.texts {
        out.push(t.clone());
        out.push(t.to_lowercase());
        out.push(t.to_uppercase());
        out.push(fold_str(t));
        out.push(t.chars().filter(char::is_ascii_digit).collect::<String>());
    }
    for a in &seeds.amounts {
        for (t, d) in [(',', '.'), ('.', ','), (' ', ','), ('\0', '.'), ('\0', ',')] {
            out.push(format_grouped(*a, t, d));
        }
    }
    out.retain(|s| s.chars().filter(|c| c.is_alphanumeric()).count() >= 6);
    out
}

backend_tests! {
    no_seeded_value_reaches_the_model_from_any_fixture => no_seeded_value_reaches_the_model_from_any_fixture;
}

async fn no_seeded_value_reaches_the_model_from_any_fixture(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            model: true,
            ..Options::default()
        },
    )
    .await;
    let mut checked = 0;
    for (i, (name, fixture)) in support::fixtures().into_iter().enumerate() {
        let (bundle, seeds) = seeded_fixture(fixture, i);
        let before = app.fake().count();
        let r = app.summarize(&bundle).await;
        assert_eq!(r.status, 200, "{name}: {}", r.json);
        let requests = app.fake().requests();
        assert!(requests.len() > before, "{name}: no model call");
        let sent: String = requests[before..]
            .iter()
            .map(|r| r.body.to_string())
            .collect();
        let sent_folded = fold_str(&sent);
        for f in forbidden(&seeds) {
            assert!(
                !sent.contains(&f) && !sent_folded.contains(&fold_str(&f)),
                "{name}: `{f}` reached the model"
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} seeded spellings checked");
    app.stop().await;
}

static POLICIES: std::sync::LazyLock<Policies> = std::sync::LazyLock::new(|| {
    Policies::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("redaction"),
        "default",
    )
    .unwrap()
});

fn policies() -> &'static Policies {
    &POLICIES
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the contact is called, a reply written with the tokens the model saw comes back
    /// with the real values.
    #[test]
    fn restore_undoes_redact_on_the_reply_path(
        first in "[A-Z][a-zäöüéè]{2,9}",
        last in "[A-Z][a-zäöüéè]{2,12}",
        local in "[a-z]{3,10}",
        digits in "[1-9][0-9]{7}",
    ) {
        let name = format!("{first} {last}");
        let email = format!("{local}@example.org");
        let phone = format!("+44 20 {digits}");
        let bundle = json!({"event_id": "p", "event_type": "other", "occurred_at": "2026-11-20T06:00:00Z",
            "source": {"system": "odoo", "model": "x", "res_id": 1},
            "facts": {"customer": {"name": "Acme Ltd", "phone": phone}},
            "reply_to": {"name": name, "email": email}});
        let policies = policies();
        let r = policies.get(None).unwrap().redact(&bundle);
        let t_name = r.value["reply_to"]["name"].as_str().unwrap().to_owned();
        let t_mail = r.value["reply_to"]["email"].as_str().unwrap().to_owned();
        let t_phone = r.value["facts"]["customer"]["phone"].as_str().unwrap().to_owned();
        prop_assert!(t_name.starts_with("[PERSON_"));
        let reply = format!("Dear {t_name}, we will call {t_phone} and write to {t_mail}.");
        let restored = r.pseudonyms.restore_checked(&reply).unwrap();
        prop_assert_eq!(restored, format!("Dear {name}, we will call {phone} and write to {email}."));
    }

    /// Redacting redacted output changes nothing.
    #[test]
    fn redaction_is_idempotent(
        body in "[A-Za-z0-9 ,.:@+€$-]{0,120}",
        name in "[A-Z][a-z]{2,8} [A-Z][a-z]{2,10}",
        amount in 1u32..10_000_000,
    ) {
        let bundle = json!({"event_id": "p", "event_type": "other", "occurred_at": "2026-11-20T06:00:00Z",
            "source": {"system": "odoo", "model": "x", "res_id": 1},
            "facts": {"customer": {"name": name}, "order": {"amount_total": amount}},
            "messages": [{"role": "customer", "body": format!("{body} {name} EUR {amount}")}]});
        let policies = policies();
        let red = policies.get(None).unwrap();
        let once = red.redact(&bundle);
        let twice = red.redact(&once.value);
        prop_assert_eq!(&once.value, &twice.value);
    }
}

backend_tests! {
    no_seeded_value_is_stored_in_any_column => no_seeded_value_is_stored_in_any_column;
}

/// Data minimisation: after the whole pipeline — summaries, prompt log, pseudonym maps, Odoo
/// write-back through the outbox, a review approved and one rejected — no column of any table
/// holds a seeded value in any spelling, except the reply a human approved.
async fn no_seeded_value_is_stored_in_any_column(backend: Backend) {
    let app = spawn_app(
        backend,
        Options {
            model: true,
            odoo: Some(exbrief::config::OdooApi::Json2),
            ..Options::default()
        },
    )
    .await;
    let mut forbidden_all = Vec::new();
    let mut ids = Vec::new();
    for (i, (name, fixture)) in support::fixtures().into_iter().enumerate() {
        let (bundle, seeds) = seeded_fixture(fixture, i);
        let r = app.summarize(&bundle).await;
        assert_eq!(r.status, 200, "{name}: {}", r.json);
        // The reader gets the customer's name back from the sealed map.
        let read = app
            .get(&format!("/v1/summaries/{}", r.json["id"].as_str().unwrap()))
            .await;
        assert_eq!(
            read.json["key_facts"]["reply_to"]["name"], bundle["reply_to"]["name"],
            "{name}"
        );
        ids.push(r.json["id"].as_str().unwrap().to_owned());
        forbidden_all.extend(forbidden(&seeds));
    }
    let decide = |id: &str, body: Value| {
        let app = &app;
        let id = id.to_owned();
        async move {
            app.post_raw(
                &format!("/v1/reviews/{id}/decision"),
                Some("application/json"),
                body.to_string().into_bytes(),
                &[],
            )
            .await
        }
    };
    let approved = decide(
        &ids[0],
        json!({"decision": "approve", "reviewer": "cs@example.com"}),
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.json);
    let rejected = decide(
        &ids[1],
        json!({"decision": "reject", "reviewer": "cs@example.com", "comment": "wrong tone"}),
    )
    .await;
    assert_eq!(rejected.status, 200, "{}", rejected.json);
    // Let the outbox write everything to the fake Odoo (results are stored too).
    let store = app.pipeline.store().clone();
    let start = std::time::Instant::now();
    loop {
        let rows = store.outbox_list(false).await.unwrap();
        if !rows.is_empty() && rows.iter().all(|r| r.status == "done") {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "outbox not done"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The approved reply is the one thing kept in clear, wherever it is stored.
    let reply = &approved.json["final_reply"];
    let exempt: Vec<String> = ["subject", "body"]
        .iter()
        .filter_map(|k| reply[*k].as_str())
        .flat_map(|t| {
            let escaped = serde_json::to_string(t).unwrap();
            [t.to_owned(), escaped[1..escaped.len() - 1].to_owned()]
        })
        .collect();
    assert!(
        exempt
            .iter()
            .any(|e| forbidden_all.iter().any(|f| e.contains(f.as_str()))),
        "the approved reply should carry the customer's name back (else this test proves less)"
    );
    let dump = app.dump().await;
    let tables: std::collections::BTreeSet<&str> = dump
        .iter()
        .map(|(c, _)| c.split('.').next().unwrap())
        .collect();
    for t in [
        "summaries",
        "prompt_log",
        "outbox",
        "review_decisions",
        "pseudonym_maps",
    ] {
        assert!(tables.contains(t), "{t} not dumped: {tables:?}");
    }
    let mut checked = 0;
    for (column, value) in &dump {
        let mut value = value.clone();
        for e in &exempt {
            value = value.replace(e.as_str(), "");
        }
        let folded = fold_str(&value);
        for f in &forbidden_all {
            assert!(
                !value.contains(f.as_str()) && !folded.contains(&fold_str(f)),
                "`{f}` is stored in {column}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10_000, "only {checked} checks");
    app.stop().await;
}
