use super::*;
use serde_json::json;

fn policies() -> Policies {
    Policies::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("redaction"),
        "default",
    )
    .unwrap()
}

fn design_bundle() -> Value {
    json!({
        "event_id": "e1", "event_type": "receipt_delay", "occurred_at": "2026-11-20T06:00:00Z",
        "source": {"system": "odoo", "model": "purchase.order", "res_id": 17, "name": "P00017"},
        "facts": {
            "purchase_order": {"name": "P00017", "partner_id": [12, "Ningbo Fasteners Ltd"], "currency_id": [2, "USD"],
                "date_planned": "2026-11-18 09:00:00", "effective_date": false,
                "order_line": [{"product_id": [40, "[BLT-M8] Hex bolt M8"], "product_qty": 5000, "price_unit": 0.12}]},
            "impacted_sales_orders": [{"name": "S00042", "partner_id": [7, "Acme Hardware"],
                "commitment_date": "2026-11-22 12:00:00", "amount_total": 3100.0, "margin_percent": 0.083}],
            "customer": {"name": "Acme Hardware", "email": "buyer@acme-hardware.example", "phone": "+1 312 555 0100"},
            "employees": [{"id": 31, "name": "Kim Lee", "wage": 4100.0, "work_email": "kim@corp.example", "job_title": "Technician"}]
        },
        "messages": [{"role": "customer", "author": "Jo Rivera", "sent_at": "2026-11-19T16:02:00Z",
            "body": "Jo here from ACME hardware - will S00042 ship? Kim Lee said 3,100.00 is fine. Call 312-555-0199 or mail jo@acme-hardware.example"}],
        "reply_to": {"name": "Jo Rivera", "email": "jo.rivera@acme-hardware.example", "lang": "en_US"}
    })
}

#[test]
fn seeded_values_do_not_survive_and_references_stay() {
    let p = policies();
    let r = p.get(None).unwrap().redact(&design_bundle());
    let text = r.value.to_string();
    for secret in [
        "Acme Hardware",
        "ACME hardware",
        "buyer@acme-hardware.example",
        "+1 312 555 0100",
        "Jo Rivera",
        "Jo here",
        "312-555-0199",
        "jo@acme-hardware.example",
        "jo.rivera@acme-hardware.example",
        "0.12",
        "3100",
        "3,100",
        "Kim Lee",
        "4100",
        "kim@corp.example",
        "Ningbo Fasteners",
        "0.083",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for kept in [
        "S00042",
        "P00017",
        "[BLT-M8] Hex bolt M8",
        "2026-11-22 12:00:00",
        "5000",
        "Technician",
        "receipt_delay",
    ] {
        assert!(text.contains(kept), "{kept} was redacted: {text}");
    }
    assert_eq!(
        r.value["facts"]["impacted_sales_orders"][0]["amount_total"],
        "1k–10k USD"
    );
    assert_eq!(
        r.value["facts"]["impacted_sales_orders"][0]["margin_percent"],
        "low margin"
    );
    assert_eq!(r.value["facts"]["employees"][0]["wage"], "[SALARY]");
    assert!(
        r.counts["pricing"] >= 3 && r.counts["hr"] >= 3 && r.counts["customer_pii"] >= 8,
        "{:?}",
        r.counts
    );
}

#[test]
fn the_same_value_gets_the_same_token_everywhere() {
    let r = policies().get(None).unwrap().redact(&design_bundle());
    let customer = r.value["facts"]["customer"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(customer, "[CUSTOMER_1]");
    assert_eq!(
        r.value["facts"]["impacted_sales_orders"][0]["partner_id"][1],
        customer
    );
    assert!(
        r.value["messages"][0]["body"]
            .as_str()
            .unwrap()
            .contains("from [CUSTOMER_1]")
    );
    assert_eq!(
        r.value["reply_to"]["name"],
        r.value["messages"][0]["author"]
    );
    assert_eq!(
        r.pseudonyms
            .restore_checked("Dear [PERSON_1], about [Customer 1] and customer_1 and CUSTOMER-1")
            .unwrap(),
        "Dear Jo Rivera, about Acme Hardware and Acme Hardware and Acme Hardware"
    );
}

#[test]
fn invented_tokens_are_not_restored() {
    let r = policies().get(None).unwrap().redact(&design_bundle());
    let e = r
        .pseudonyms
        .restore_checked("Dear [PERSON_1] and [CUSTOMER_7]")
        .unwrap_err();
    assert_eq!(e, ["[CUSTOMER_7]"]);
    assert_eq!(leftover_masks("total [PRICE] for [PERSON_1]"), ["[PRICE]"]);
    // Prose that merely looks numbered is left alone.
    assert_eq!(
        r.pseudonyms.restore_checked("covid-19 and item 2").unwrap(),
        "covid-19 and item 2"
    );
}

#[test]
fn findings_point_at_characters_never_values() {
    let r = policies().get(None).unwrap().redact(&design_bundle());
    let body = design_bundle()["messages"][0]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let chars: Vec<char> = body.chars().collect();
    let in_body: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.path == "$.messages[0].body")
        .collect();
    assert!(in_body.len() >= 4);
    for f in &in_body {
        let (s, e) = (f.start.unwrap(), f.end.unwrap());
        let found: String = chars[s..e].iter().collect();
        assert!(!found.trim().is_empty());
    }
    let json = serde_json::to_string(&r.findings).unwrap();
    assert!(!json.contains("Rivera") && !json.contains("acme"));
}

#[test]
fn strict_drops_prices_and_hr() {
    let r = policies()
        .get(Some("strict"))
        .unwrap()
        .redact(&design_bundle());
    assert!(
        r.value["facts"]["impacted_sales_orders"][0]
            .get("amount_total")
            .is_none()
    );
    assert!(r.value["facts"]["employees"][0].get("wage").is_none());
    assert!(!r.value.to_string().contains("3,100"));
}

#[test]
fn redaction_is_idempotent_on_its_output() {
    let p = policies();
    let red = p.get(None).unwrap();
    let once = red.redact(&design_bundle());
    let twice = red.redact(&once.value);
    assert_eq!(once.value, twice.value);
}

#[test]
fn amounts_parse_in_both_conventions() {
    for (s, n) in [
        ("EUR 12.400,50", 12400.5),
        ("$1,200.00", 1200.0),
        ("1 200 €", 1200.0),
        ("12.5k USD", 12500.0),
        ("0.12", 0.12),
        ("3100", 3100.0),
    ] {
        assert_eq!(parse_amount(s), Some(n), "{s}");
    }
    assert!(number_variants("3100.0").contains(&"3.100,00".to_owned()));
}
