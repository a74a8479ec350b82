//! Redaction: nothing from a bundle reaches a model before passing through [`Redactor::redact`].
//!
//! This is the first, built-in policy: structured Odoo fields by name, then known-value
//! propagation and text detectors over free text. Issue #3 replaces the built-in rule tables with
//! versioned policy files in `redaction/` (JSON-path rules, validators, generalisation); the
//! [`Redactor`] / [`Redacted`] / [`PseudonymMap`] seam stays.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What kind of data a redacted value was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    CustomerPii,
    Pricing,
    Hr,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::CustomerPii => "customer_pii",
            Class::Pricing => "pricing",
            Class::Hr => "hr",
        }
    }
}

/// The typed token a pseudonymised value becomes: `[CUSTOMER_1]`, `[EMAIL_2]`…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Entity {
    Customer,
    Partner,
    Person,
    Employee,
    Email,
    Phone,
    Vat,
    Iban,
}

impl Entity {
    fn label(self) -> &'static str {
        match self {
            Entity::Customer => "CUSTOMER",
            Entity::Partner => "PARTNER",
            Entity::Person => "PERSON",
            Entity::Employee => "EMPLOYEE",
            Entity::Email => "EMAIL",
            Entity::Phone => "PHONE",
            Entity::Vat => "VAT",
            Entity::Iban => "IBAN",
        }
    }
}

/// The redaction policy in force. Built in for now (see the module docs).
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub name: String,
    pub version: String,
    pricing_keys: Vec<&'static str>,
    hr_amount_keys: Vec<&'static str>,
    email_keys: Vec<&'static str>,
    phone_keys: Vec<&'static str>,
    address_keys: Vec<&'static str>,
    partner_keys: Vec<&'static str>,
    employee_record_keys: Vec<&'static str>,
}

impl Policy {
    pub fn builtin_default() -> Self {
        Self {
            name: "default".to_owned(),
            version: "builtin-1".to_owned(),
            pricing_keys: vec![
                "price_unit",
                "price_subtotal",
                "price_total",
                "price_reduce",
                "amount_total",
                "amount_untaxed",
                "amount_tax",
                "amount_residual",
                "amount_paid",
                "margin",
                "margin_percent",
                "discount",
                "credit_limit",
                "standard_price",
                "list_price",
                "cost",
            ],
            hr_amount_keys: vec!["wage", "salary", "hourly_cost"],
            email_keys: vec![
                "email",
                "email_from",
                "email_cc",
                "work_email",
                "private_email",
            ],
            phone_keys: vec![
                "phone",
                "mobile",
                "mobile_phone",
                "work_phone",
                "private_phone",
            ],
            address_keys: vec!["street", "street2", "zip", "private_street"],
            partner_keys: vec![
                "partner_id",
                "partner_shipping_id",
                "partner_invoice_id",
                "commercial_partner_id",
                "customer_id",
            ],
            employee_record_keys: vec!["employees", "employee", "employee_id", "technician"],
        }
    }

    /// sha256 of the policy's canonical JSON; recorded with every summary and prompt-log row.
    pub fn sha256(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }
}

/// Tokens ↔ original values for one bundle. Lives only as long as the request.
#[derive(Debug, Default, Clone)]
pub struct PseudonymMap {
    by_value: HashMap<String, String>,
    by_token: BTreeMap<String, String>,
    counters: HashMap<Entity, u32>,
}

impl PseudonymMap {
    fn token_for(&mut self, entity: Entity, value: &str) -> String {
        let key = value.trim().to_lowercase();
        if let Some(t) = self.by_value.get(&key) {
            return t.clone();
        }
        let n = self.counters.entry(entity).or_insert(0);
        *n += 1;
        let token = format!("[{}_{}]", entity.label(), n);
        self.by_value.insert(key, token.clone());
        self.by_token.insert(token.clone(), value.trim().to_owned());
        token
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// Puts the original values back in text a person may see (draft reply, review page).
    pub fn restore(&self, text: &str) -> String {
        if self.by_token.is_empty() {
            return text.to_owned();
        }
        let tokens: Vec<&String> = self.by_token.keys().collect();
        let Ok(ac) = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&tokens)
        else {
            return text.to_owned();
        };
        let originals: Vec<&String> = self.by_token.values().collect();
        ac.replace_all(text, &originals)
    }

    /// [`PseudonymMap::restore`] over every string of a JSON value.
    pub fn restore_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.restore(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.restore_value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.restore_value(v)),
            _ => {}
        }
    }
}

/// A bundle after redaction: what templates and providers see.
#[derive(Debug, Clone)]
pub struct Redacted {
    pub value: Value,
    pub counts: BTreeMap<Class, u32>,
    pub pseudonyms: PseudonymMap,
}

impl Redacted {
    pub fn counts_json(&self) -> BTreeMap<&'static str, u32> {
        self.counts.iter().map(|(c, n)| (c.as_str(), *n)).collect()
    }
}

static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").unwrap_or_else(|_| never())
});
// International numbers (+CC or 00CC) and the North-American (NNN) NNN-NNNN form. Dates, SKUs
// and lot numbers do not start with `+`/`00`, which keeps them out. Issue #3 adds national forms.
static PHONE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+|\b00)\d{1,3}(?:[\s./-]?\(0\))?(?:[\s./-]?\d){6,14}\b|\(\d{3}\)\s?\d{3}[\s.-]\d{4}\b")
        .unwrap_or_else(|_| never())
});
static IBAN_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){2,7}(?:\s?[A-Z0-9]{1,3})?\b")
        .unwrap_or_else(|_| never())
});

// The patterns above are literals checked by the tests below; this cannot run.
fn never() -> Regex {
    #[allow(clippy::unwrap_used)]
    Regex::new("$^").unwrap()
}

#[derive(Debug, Clone)]
pub struct Redactor {
    policy: Policy,
    sha256: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Plain,
    Customer,
    Employee,
}

impl Redactor {
    pub fn new(policy: Policy) -> Self {
        let sha256 = policy.sha256();
        Self { policy, sha256 }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn policy_sha256(&self) -> &str {
        &self.sha256
    }

    /// Redacts a whole bundle document (the JSON the caller sent).
    pub fn redact(&self, bundle: &Value) -> Redacted {
        let mut out = bundle.clone();
        let mut state = State::default();
        if let Value::Object(root) = &mut out {
            // The customer record first, so its name gets the CUSTOMER token wherever it recurs.
            if let Some(Value::Object(facts)) = root.get_mut("facts") {
                if let Some(customer) = facts.get_mut("customer") {
                    self.structured(customer, Ctx::Customer, &mut state);
                }
                for (key, v) in facts.iter_mut() {
                    if key != "customer" {
                        self.structured_entry(key, v, Ctx::Plain, &mut state);
                    }
                }
            }
            if let Some(reply_to) = root.get_mut("reply_to") {
                if let Some(Value::String(name)) = reply_to.get_mut("name") {
                    *name = state.pseudonymize(Entity::Person, Class::CustomerPii, name);
                }
                if let Some(Value::String(email)) = reply_to.get_mut("email") {
                    *email = state.pseudonymize(Entity::Email, Class::CustomerPii, email);
                }
            }
            if let Some(Value::Array(messages)) = root.get_mut("messages") {
                for m in messages.iter_mut() {
                    if let Some(Value::String(author)) = m.get_mut("author") {
                        *author = state.pseudonymize(Entity::Person, Class::CustomerPii, author);
                    }
                }
            }
            // Free text: known values first, then detectors.
            let known = state.known_values();
            if let Some(facts) = root.get_mut("facts") {
                free_text(facts, known.as_ref(), &mut state);
            }
            if let Some(Value::Array(messages)) = root.get_mut("messages") {
                for m in messages.iter_mut() {
                    if let Some(body) = m.get_mut("body") {
                        free_text(body, known.as_ref(), &mut state);
                    }
                }
            }
            if let Some(Value::Object(source)) = root.get_mut("source")
                && let Some(name) = source.get_mut("name")
            {
                free_text(name, known.as_ref(), &mut state);
            }
        }
        Redacted {
            value: out,
            counts: state.counts,
            pseudonyms: state.map,
        }
    }

    fn structured(&self, value: &mut Value, ctx: Ctx, state: &mut State) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    self.structured_entry(key, v, ctx, state);
                }
            }
            Value::Array(items) => {
                for v in items.iter_mut() {
                    self.structured(v, ctx, state);
                }
            }
            _ => {}
        }
    }

    fn structured_entry(&self, key: &str, v: &mut Value, ctx: Ctx, state: &mut State) {
        let p = &self.policy;
        let person_class = if ctx == Ctx::Employee {
            Class::Hr
        } else {
            Class::CustomerPii
        };
        if is_empty(v) {
            return;
        }
        if p.pricing_keys.contains(&key) && is_scalar(v) {
            *v = Value::String("[PRICE]".to_owned());
            state.count(Class::Pricing);
        } else if p.hr_amount_keys.contains(&key) && is_scalar(v) {
            *v = Value::String("[SALARY]".to_owned());
            state.count(Class::Hr);
        } else if p.email_keys.contains(&key) {
            state.pseudonymize_value(v, Entity::Email, person_class);
        } else if p.phone_keys.contains(&key) {
            state.pseudonymize_value(v, Entity::Phone, person_class);
        } else if p.address_keys.contains(&key) && is_scalar(v) {
            *v = Value::String("[ADDRESS]".to_owned());
            state.count(person_class);
        } else if key == "vat" {
            state.pseudonymize_value(v, Entity::Vat, person_class);
        } else if key == "acc_number" {
            state.pseudonymize_value(v, Entity::Iban, person_class);
        } else if p.partner_keys.contains(&key) {
            state.pseudonymize_many2one(v, Entity::Partner, Class::CustomerPii);
        } else if p.employee_record_keys.contains(&key) {
            match v {
                Value::Array(items) if is_many2one(items) => {
                    state.pseudonymize_many2one(v, Entity::Employee, Class::Hr);
                }
                _ => self.structured(v, Ctx::Employee, state),
            }
        } else if key == "name" && ctx == Ctx::Customer {
            state.pseudonymize_value(v, Entity::Customer, Class::CustomerPii);
        } else if key == "name" && ctx == Ctx::Employee {
            state.pseudonymize_value(v, Entity::Employee, Class::Hr);
        } else {
            self.structured(v, ctx, state);
        }
    }
}

fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
        || matches!(v, Value::String(s) if s.trim().is_empty())
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::Number(_) | Value::String(_))
}

fn is_many2one(items: &[Value]) -> bool {
    items.len() == 2 && items[0].is_i64() && items[1].is_string()
}

#[derive(Default)]
struct State {
    map: PseudonymMap,
    counts: BTreeMap<Class, u32>,
}

impl State {
    fn count(&mut self, class: Class) {
        *self.counts.entry(class).or_insert(0) += 1;
    }

    fn pseudonymize(&mut self, entity: Entity, class: Class, value: &str) -> String {
        if value.trim().is_empty() {
            return value.to_owned();
        }
        self.count(class);
        self.map.token_for(entity, value)
    }

    fn pseudonymize_value(&mut self, v: &mut Value, entity: Entity, class: Class) {
        match v {
            Value::String(s) => *s = self.pseudonymize(entity, class, s),
            Value::Number(n) => {
                *v = Value::String(self.pseudonymize(entity, class, &n.to_string()))
            }
            _ => {}
        }
    }

    /// Odoo many2one: `[id, "display name"]` — the name is pseudonymised, the id kept.
    fn pseudonymize_many2one(&mut self, v: &mut Value, entity: Entity, class: Class) {
        match v {
            Value::Array(items) if is_many2one(items) => {
                if let Some(Value::String(name)) = items.get_mut(1) {
                    *name = self.pseudonymize(entity, class, name);
                }
            }
            Value::String(_) => self.pseudonymize_value(v, entity, class),
            _ => {}
        }
    }

    fn known_values(&self) -> Option<(AhoCorasick, Vec<String>)> {
        let pairs: Vec<(&String, &String)> = self
            .map
            .by_token
            .iter()
            .filter(|(_, original)| original.chars().count() >= 3)
            .collect();
        if pairs.is_empty() {
            return None;
        }
        let patterns: Vec<&String> = pairs.iter().map(|(_, o)| *o).collect();
        let tokens: Vec<String> = pairs.iter().map(|(t, _)| (*t).clone()).collect();
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(patterns)
            .ok()
            .map(|ac| (ac, tokens))
    }
}

fn free_text(v: &mut Value, known: Option<&(AhoCorasick, Vec<String>)>, state: &mut State) {
    match v {
        Value::String(s) => {
            let mut text = match known {
                Some((ac, tokens)) => {
                    let hits = ac.find_iter(s.as_str()).count() as u32;
                    if hits > 0 {
                        *state.counts.entry(Class::CustomerPii).or_insert(0) += hits;
                        ac.replace_all(s, tokens)
                    } else {
                        s.clone()
                    }
                }
                None => s.clone(),
            };
            text = detect(&text, &EMAIL_RE, Entity::Email, state);
            text = detect(&text, &IBAN_RE, Entity::Iban, state);
            text = detect(&text, &PHONE_RE, Entity::Phone, state);
            *s = text;
        }
        Value::Array(items) => items.iter_mut().for_each(|i| free_text(i, known, state)),
        Value::Object(map) => map.values_mut().for_each(|i| free_text(i, known, state)),
        _ => {}
    }
}

fn detect(text: &str, re: &Regex, entity: Entity, state: &mut State) -> String {
    if !re.is_match(text) {
        return text.to_owned();
    }
    re.replace_all(text, |caps: &regex::Captures<'_>| {
        state.pseudonymize(entity, Class::CustomerPii, &caps[0])
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn design_bundle() -> Value {
        json!({
            "event_id": "e1", "event_type": "receipt_delay", "occurred_at": "2026-11-20T06:00:00Z",
            "source": {"system": "odoo", "model": "purchase.order", "res_id": 17, "name": "P00017"},
            "facts": {
                "purchase_order": {"name": "P00017", "partner_id": [12, "Ningbo Fasteners Ltd"],
                    "date_planned": "2026-11-18 09:00:00", "effective_date": false,
                    "order_line": [{"product_id": [40, "[BLT-M8] Hex bolt M8"], "product_qty": 5000, "price_unit": 0.12}]},
                "impacted_sales_orders": [{"name": "S00042", "partner_id": [7, "Acme Hardware"],
                    "commitment_date": "2026-11-22 12:00:00", "amount_total": 3100.0}],
                "customer": {"name": "Acme Hardware", "email": "buyer@acme-hardware.example", "phone": "+1 312 555 0100"},
                "employees": [{"name": "Kim Lee", "wage": 4100.0, "work_email": "kim@corp.example"}]
            },
            "messages": [{"role": "customer", "author": "Jo Rivera", "sent_at": "2026-11-19T16:02:00Z",
                "body": "Jo Rivera here from Acme Hardware - will S00042 ship? Call +1 312 555 0199 or mail jo@acme-hardware.example"}],
            "reply_to": {"name": "Jo Rivera", "email": "jo.rivera@acme-hardware.example", "lang": "en_US"}
        })
    }

    #[test]
    fn patterns_compile() {
        for re in [&*EMAIL_RE, &*PHONE_RE, &*IBAN_RE] {
            assert_ne!(re.as_str(), "$^");
        }
    }

    #[test]
    fn seeded_values_do_not_survive() {
        let r = Redactor::new(Policy::builtin_default()).redact(&design_bundle());
        let text = r.value.to_string();
        for secret in [
            "Acme Hardware",
            "buyer@acme-hardware.example",
            "+1 312 555 0100",
            "Jo Rivera",
            "+1 312 555 0199",
            "jo@acme-hardware.example",
            "jo.rivera@acme-hardware.example",
            "0.12",
            "3100",
            "Kim Lee",
            "4100",
            "kim@corp.example",
            "Ningbo Fasteners",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        // Order numbers, SKUs and dates are not PII and stay.
        for kept in [
            "S00042",
            "P00017",
            "[BLT-M8] Hex bolt M8",
            "2026-11-22 12:00:00",
            "5000",
        ] {
            assert!(text.contains(kept), "{kept} was redacted: {text}");
        }
        assert_eq!(r.counts[&Class::Pricing], 2);
        assert_eq!(r.counts[&Class::Hr], 3);
    }

    #[test]
    fn same_value_same_token_and_restore_round_trips() {
        let r = Redactor::new(Policy::builtin_default()).redact(&design_bundle());
        let customer = r.value["facts"]["customer"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(customer, "[CUSTOMER_1]");
        assert_eq!(
            r.value["facts"]["impacted_sales_orders"][0]["partner_id"][1],
            customer
        );
        assert_eq!(
            r.value["reply_to"]["name"],
            r.value["messages"][0]["author"]
        );
        assert_eq!(
            r.pseudonyms.restore("Dear [PERSON_1], about [CUSTOMER_1]"),
            "Dear Jo Rivera, about Acme Hardware"
        );
    }

    #[test]
    fn dates_and_lot_numbers_are_not_phones() {
        let mut s = State::default();
        let mut v = json!("Lot LOT-2026-11-0042 due 2026-11-20 06:00:00, PO P00017, qty 5000");
        let before = v.clone();
        free_text(&mut v, None, &mut s);
        assert_eq!(v, before);
        let mut v = json!("IBAN GB82 WEST 1234 5698 7654 32, phone 0049 30 1234567");
        free_text(&mut v, None, &mut s);
        assert_eq!(v, json!("IBAN [IBAN_1], phone [PHONE_1]"));
    }
}
