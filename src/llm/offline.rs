//! The offline provider: deterministic rules over the (redacted) bundle's facts. The default
//! without a model, and the fallback when the model fails. Its outputs say how they were made.

use std::sync::{Arc, LazyLock};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use time::{Date, OffsetDateTime, PrimitiveDateTime, format_description::BorrowedFormatItem};

use super::{ModelReply, ModelRequest, Parameters, Provider, ProviderError};
use crate::bundle::Task;
use crate::prompts::ChatMessage;

pub struct OfflineProvider;

const ODOO_DATETIME: &[BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const ODOO_DATE: &[BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl Provider for OfflineProvider {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn model(&self) -> &str {
        "offline-rules-1"
    }

    fn parameters(&self, _req: &ModelRequest<'_>) -> Arc<Parameters> {
        static PARAMETERS: LazyLock<Arc<Parameters>> =
            LazyLock::new(|| Arc::new(Parameters::new(json!({"model": "offline-rules-1"}))));
        Arc::clone(&PARAMETERS)
    }

    fn complete<'a>(
        &'a self,
        req: &'a ModelRequest<'a>,
        _parameters: &'a Parameters,
        _messages: &'a [ChatMessage],
    ) -> BoxFuture<'a, Result<ModelReply, ProviderError>> {
        let facts = req.facts;
        let output = match req.task {
            Task::ImpactSummary => impact_summary(facts),
            Task::Classification => classification(facts),
            Task::CustomerReply => customer_reply(facts, req.language),
        };
        let content = output.to_string();
        Box::pin(async move {
            Ok(ModelReply {
                raw: json!({"offline": true, "content": content}),
                content,
                usage: None,
                model: "offline-rules-1".to_owned(),
            })
        })
    }
}

#[derive(Debug)]
struct Order {
    name: String,
    customer: Option<String>,
    commitment: Option<PrimitiveDateTime>,
    strategic: bool,
    warehouse: Option<String>,
    /// Ordered quantity over the order lines, when the bundle carries them.
    qty: Option<f64>,
}

/// What the rules need, read leniently from Odoo-shaped facts.
#[derive(Debug)]
pub struct Facts {
    event_type: String,
    source: String,
    occurred_at: Option<PrimitiveDateTime>,
    planned: Option<PrimitiveDateTime>,
    expected: Option<PrimitiveDateTime>,
    tolerance_days: Option<f64>,
    orders: Vec<Order>,
    customer: Option<String>,
    contact: Option<String>,
    /// Amount bands (as redaction wrote them) of the orders and amounts at stake.
    bands: Vec<String>,
}

/// The exposure bands in increasing order; redaction's `generalize` writes these.
const BANDS: [&str; 4] = ["under 1k", "1k–10k", "10k–100k", "over 100k"];

impl Facts {
    /// Reads a (redacted) bundle document.
    pub fn read(bundle: &Value) -> Self {
        let facts = &bundle["facts"];
        let planned = odoo_datetime(&facts["purchase_order"]["date_planned"])
            .or_else(|| odoo_datetime(&facts["receipt"]["scheduled_date"]));
        let orders = facts["impacted_sales_orders"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|so| {
                        Some(Order {
                            name: so["name"].as_str()?.to_owned(),
                            customer: many2one_name(&so["partner_id"]),
                            commitment: odoo_datetime(&so["commitment_date"]),
                            strategic: so["customer_tier"] == "strategic",
                            warehouse: many2one_name(&so["warehouse_id"]),
                            qty: so["order_line"].as_array().map(|lines| {
                                lines
                                    .iter()
                                    .filter_map(|l| l["product_uom_qty"].as_f64())
                                    .sum()
                            }),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            event_type: bundle["event_type"].as_str().unwrap_or("other").to_owned(),
            source: bundle["source"]["name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    format!(
                        "{} {}",
                        bundle["source"]["model"].as_str().unwrap_or("record"),
                        bundle["source"]["res_id"]
                    )
                }),
            occurred_at: bundle["occurred_at"]
                .as_str()
                .and_then(|s| {
                    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
                })
                .map(|t| {
                    let t = t.to_offset(time::UtcOffset::UTC);
                    PrimitiveDateTime::new(t.date(), t.time())
                }),
            planned,
            expected: odoo_datetime(&facts["expected_date"]),
            tolerance_days: facts["tolerance_days"].as_f64(),
            orders,
            customer: facts["customer"]["name"].as_str().map(str::to_owned),
            contact: bundle["reply_to"]["name"].as_str().map(str::to_owned),
            bands: [
                &facts["disputed_amount"],
                &facts["sale_order"]["amount_total"],
            ]
            .into_iter()
            .chain(
                facts["impacted_sales_orders"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|so| &so["amount_total"]),
            )
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        }
    }

    /// The highest band among the amounts at stake: "unknown" when amounts exist but are
    /// masked, "none" when there is no amount at all.
    fn exposure_band(&self) -> &'static str {
        let best = self
            .bands
            .iter()
            .filter_map(|b| BANDS.iter().position(|band| b.starts_with(band)))
            .max();
        match best {
            Some(i) => BANDS[i],
            None if self.bands.is_empty() && self.orders.is_empty() => "none",
            None => "unknown",
        }
    }

    fn delay_days(&self) -> Option<i64> {
        let (p, e) = (self.planned?, self.expected?);
        let secs = (e - p).whole_seconds();
        Some((secs + 86_399).div_euclid(86_400))
    }

    fn beyond_tolerance(&self) -> bool {
        match (self.delay_days(), self.tolerance_days) {
            (Some(d), Some(t)) => d as f64 > t,
            (Some(d), None) => d > 0,
            _ => false,
        }
    }

    fn earliest(&self) -> Option<&Order> {
        self.orders
            .iter()
            .filter(|o| o.commitment.is_some())
            .min_by_key(|o| o.commitment)
    }

    /// Commitments that fall before the new expected date (or all, when that is unknown).
    fn commitments_missed(&self) -> usize {
        match self.expected {
            Some(e) => self
                .orders
                .iter()
                .filter(|o| o.commitment.is_some_and(|c| c < e))
                .count(),
            None => 0,
        }
    }

    fn customers(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .orders
            .iter()
            .filter_map(|o| o.customer.clone())
            .collect();
        c.sort();
        c.dedup();
        c
    }

    fn strategic_customers(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .orders
            .iter()
            .filter(|o| o.strategic)
            .filter_map(|o| o.customer.clone())
            .collect();
        c.sort();
        c.dedup();
        c
    }

    fn warehouses(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .orders
            .iter()
            .filter_map(|o| o.warehouse.clone())
            .collect();
        w.sort();
        w.dedup();
        w
    }

    /// Orders of the customer the reply goes to; never other customers' orders.
    fn customer_orders(&self) -> Vec<&Order> {
        match &self.customer {
            Some(c) => self
                .orders
                .iter()
                .filter(|o| o.customer.as_deref() == Some(c))
                .collect(),
            None => Vec::new(),
        }
    }
}

fn odoo_datetime(v: &Value) -> Option<PrimitiveDateTime> {
    let s = v.as_str()?;
    PrimitiveDateTime::parse(s, ODOO_DATETIME)
        .ok()
        .or_else(|| Date::parse(s, ODOO_DATE).ok().map(|d| d.midnight()))
}

fn many2one_name(v: &Value) -> Option<String> {
    v.as_array()
        .and_then(|a| a.get(1))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn label(event_type: &str) -> &'static str {
    match event_type {
        "receipt_delay" => "Delayed purchase receipt",
        "allocation_failure" => "Allocation failure",
        "stockout_risk" => "Stockout risk",
        "quality_hold" => "Inbound quality hold",
        "invoice_dispute" => "Invoice dispute",
        "sla_breach" => "Service-level breach",
        "margin_exception" => "Margin exception",
        "equipment_downtime" => "Warehouse equipment downtime",
        "supplier_substitution" => "Supplier substitution",
        _ => "Operational exception",
    }
}

/// Cuts text to a schema's length limit (in characters), marking the cut.
fn clip(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// At most `n` names, then "and N more".
fn list(names: &[&str], n: usize) -> String {
    if names.len() <= n {
        names.join(", ")
    } else {
        format!("{} and {} more", names[..n].join(", "), names.len() - n)
    }
}

fn ymd(t: PrimitiveDateTime) -> String {
    format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn impact_summary(f: &Facts) -> Value {
    let customers = f.customers();
    let strategic = f.strategic_customers();
    let headline = if f.orders.is_empty() {
        format!("{} on {}", label(&f.event_type), f.source)
    } else {
        format!(
            "{} on {}: {} for {} at risk",
            label(&f.event_type),
            f.source,
            plural(f.orders.len(), "sales order", "sales orders"),
            plural(customers.len(), "customer", "customers"),
        )
    };
    let mut sentences = Vec::new();
    if let (Some(d), Some(p), Some(e)) = (f.delay_days().filter(|d| *d > 0), f.planned, f.expected)
    {
        let tol = f
            .tolerance_days
            .map(|t| format!(" against a tolerance of {t} days"))
            .unwrap_or_default();
        sentences.push(format!(
            "Now expected on {} instead of {}: {}{tol}.",
            ymd(e),
            ymd(p),
            plural(d as usize, "day late", "days late")
        ));
    } else if let Some(e) = f.expected {
        sentences.push(format!("Expected resolution: {}.", ymd(e)));
    }
    if !f.orders.is_empty() {
        let names: Vec<&str> = f.orders.iter().map(|o| o.name.as_str()).collect();
        let wh = f.warehouses();
        let across = if wh.is_empty() {
            String::new()
        } else {
            format!(
                " across {} ({})",
                plural(wh.len(), "warehouse", "warehouses"),
                wh.join(", ")
            )
        };
        sentences.push(format!(
            "{} affected ({}){across}.",
            plural(f.orders.len(), "sales order is", "sales orders are"),
            list(&names, 10)
        ));
    }
    if let Some(o) = f.earliest()
        && let Some(c) = o.commitment
    {
        sentences.push(format!(
            "The earliest customer commitment at risk is {} on {}.",
            o.name,
            ymd(c)
        ));
    }
    let missed = f.commitments_missed();
    if missed > 0 {
        sentences.push(format!(
            "{} before the expected date.",
            plural(missed, "commitment falls", "commitments fall")
        ));
    }
    if !strategic.is_empty() {
        sentences.push(format!(
            "Strategic account affected: {}.",
            strategic.join(", ").trim_end_matches('.')
        ));
    }
    if sentences.is_empty() {
        sentences.push("No customer commitment is known to be affected.".to_owned());
    }
    let orders: Vec<Value> = f
        .orders
        .iter()
        .take(50)
        .map(|o| {
            json!({
                "order_ref": clip(o.name.clone(), 64),
                "customer_token": o.customer.clone().filter(|c| c.chars().count() <= 64),
                "promised_date": o.commitment.map(ymd),
                "at_risk_qty": o.qty.filter(|q| *q >= 0.0),
            })
        })
        .collect();
    let mut options: Vec<String> = match f.event_type.as_str() {
        "receipt_delay" | "supplier_substitution" => vec![
            "Confirm the new arrival date with the supplier or carrier",
            "Ship partially from stock in other warehouses",
        ],
        "allocation_failure" | "stockout_risk" => vec![
            "Re-allocate stock by commitment date and customer tier",
            "Expedite replenishment",
        ],
        "quality_hold" => vec![
            "Keep the held lots quarantined and request a corrective action",
            "Release unaffected lots or ship a substitute",
        ],
        "invoice_dispute" => vec!["Check the disputed lines against order and delivery"],
        "sla_breach" => vec!["Assign an owner and agree a resolution date today"],
        "margin_exception" => vec!["Get approval or revise the price before confirming"],
        "equipment_downtime" => vec!["Re-sequence picking to another line or shift"],
        _ => vec!["Review the exception and assign an owner"],
    }
    .into_iter()
    .map(str::to_owned)
    .collect();
    if !f.orders.is_empty() {
        options.push("Tell affected customers before their commitment dates".to_owned());
    }
    options.truncate(6);
    json!({
        "headline": clip(headline, 200),
        "impacted_orders": orders,
        "customer_impact": clip(sentences.join(" "), 2000),
        "financial_exposure_band": f.exposure_band(),
        "mitigation_options": options,
    })
}

fn classification(f: &Facts) -> Value {
    let category = match f.event_type.as_str() {
        "receipt_delay" => "supplier_delay",
        "supplier_substitution" => "substitution_request",
        t @ ("allocation_failure" | "stockout_risk" | "quality_hold" | "invoice_dispute"
        | "sla_breach" | "margin_exception" | "equipment_downtime") => t,
        _ => "other",
    };
    let at_risk = !f.orders.is_empty();
    let strategic = !f.strategic_customers().is_empty();
    let missed = f.commitments_missed() > 0;
    let soon = match (f.earliest().and_then(|o| o.commitment), f.occurred_at) {
        (Some(c), Some(now)) => (c - now).whole_days() <= 3,
        _ => false,
    };
    let customer_facing = matches!(category, "invoice_dispute" | "sla_breach");
    let (severity, why) = if strategic && (missed || f.beyond_tolerance()) {
        (
            "critical",
            "a strategic account's commitment is at risk beyond tolerance",
        )
    } else if (at_risk && (missed || soon || f.beyond_tolerance())) || customer_facing {
        (
            "high",
            "customer commitments are at risk within days or a customer is waiting",
        )
    } else if at_risk
        || matches!(
            category,
            "margin_exception" | "substitution_request" | "quality_hold"
        )
    {
        (
            "medium",
            "commitments are affected but there is slack or a workaround",
        )
    } else {
        ("low", "no customer commitment is affected")
    };
    let priority = match severity {
        "critical" => 1,
        "high" => 2,
        "medium" => 3,
        _ => 4,
    };
    let mut actions: Vec<&str> = match category {
        "supplier_delay" => vec!["expedite_replenishment", "partial_shipment"],
        "allocation_failure" => vec!["reallocate_stock", "partial_shipment"],
        "stockout_risk" => vec!["expedite_replenishment", "reallocate_stock"],
        "quality_hold" => vec!["quality_inspection", "substitute_item"],
        "invoice_dispute" => vec!["credit_review"],
        "sla_breach" => vec!["notify_customer"],
        "margin_exception" => vec!["credit_review"],
        "equipment_downtime" => vec!["maintenance_review", "reallocate_stock"],
        "substitution_request" => vec!["substitute_item"],
        _ => vec!["no_action"],
    };
    if at_risk && !actions.contains(&"notify_customer") {
        actions.push("notify_customer");
    }
    if strategic {
        actions.push("escalate_account_manager");
    }
    if actions.len() > 1 {
        actions.retain(|a| *a != "no_action");
    }
    actions.truncate(5);
    json!({
        "category": category,
        "severity": severity,
        "priority": priority,
        "recommended_actions": actions,
        // Rules map the event type to its category; anything else is a guess.
        "confidence": if category == "other" { 0.3 } else { 0.9 },
        "rationale": format!("Offline rules: severity {severity} because {why}."),
    })
}

struct Phrases {
    greeting: &'static str,
    greeting_anon: &'static str,
    subject_delay: &'static str,
    subject_invoice: &'static str,
    subject_ticket: &'static str,
    subject_order: &'static str,
    delay: &'static str,
    expected: &'static str,
    invoice: &'static str,
    ticket: &'static str,
    order: &'static str,
    update: &'static str,
    closing: &'static str,
    your_order: &'static str,
    months: [&'static str; 12],
}

fn phrases(lang: &str) -> (&'static str, Phrases) {
    match lang {
        "de" => (
            "de",
            Phrases {
                greeting: "Guten Tag {name},",
                greeting_anon: "Guten Tag,",
                subject_delay: "Information zu Ihrer Bestellung {orders}",
                subject_invoice: "Ihre Rückfrage zur Rechnung {ref}",
                subject_ticket: "Ihre Anfrage {ref}",
                subject_order: "Ihre Bestellung {ref}",
                delay: "wir möchten Sie informieren, dass sich die Lieferung {orders} leider verzögert.",
                expected: "Nach aktuellem Stand erwarten wir die Ware am {date}.",
                invoice: "vielen Dank für Ihre Nachricht zur Rechnung {ref}. Wir prüfen die genannten Punkte und melden uns mit einer Klärung bei Ihnen.",
                ticket: "es tut uns leid, dass Ihre Anfrage {ref} nicht in der vereinbarten Zeit gelöst wurde. Wir haben sie priorisiert.",
                order: "vielen Dank für Ihre Bestellung {ref}. Wir schließen die Bestätigung gerade ab.",
                update: "Wir arbeiten daran, die Auswirkungen für Sie so gering wie möglich zu halten, und melden uns spätestens am nächsten Werktag mit einem Update.",
                closing: "Mit freundlichen Grüßen\nIhr Kundenservice",
                your_order: "Ihrer Bestellung",
                months: [
                    "Januar",
                    "Februar",
                    "März",
                    "April",
                    "Mai",
                    "Juni",
                    "Juli",
                    "August",
                    "September",
                    "Oktober",
                    "November",
                    "Dezember",
                ],
            },
        ),
        "fr" => (
            "fr",
            Phrases {
                greeting: "Bonjour {name},",
                greeting_anon: "Bonjour,",
                subject_delay: "Information sur votre commande {orders}",
                subject_invoice: "Votre question sur la facture {ref}",
                subject_ticket: "Votre demande {ref}",
                subject_order: "Votre commande {ref}",
                delay: "Nous souhaitons vous informer que la livraison {orders} est malheureusement retardée.",
                expected: "À ce jour, nous prévoyons la réception de la marchandise le {date}.",
                invoice: "Merci pour votre message concernant la facture {ref}. Nous examinons les points soulevés et revenons vers vous avec une réponse.",
                ticket: "Nous sommes désolés que votre demande {ref} n'ait pas été traitée dans le délai convenu. Nous l'avons rendue prioritaire.",
                order: "Merci pour votre commande {ref}. Nous finalisons sa confirmation.",
                update: "Nous faisons le nécessaire pour limiter l'impact pour vous et vous tiendrons informé au plus tard le prochain jour ouvré.",
                closing: "Cordialement,\nLe service client",
                your_order: "de votre commande",
                months: [
                    "janvier",
                    "février",
                    "mars",
                    "avril",
                    "mai",
                    "juin",
                    "juillet",
                    "août",
                    "septembre",
                    "octobre",
                    "novembre",
                    "décembre",
                ],
            },
        ),
        "nl" => (
            "nl",
            Phrases {
                greeting: "Beste {name},",
                greeting_anon: "Beste klant,",
                subject_delay: "Informatie over uw bestelling {orders}",
                subject_invoice: "Uw vraag over factuur {ref}",
                subject_ticket: "Uw verzoek {ref}",
                subject_order: "Uw bestelling {ref}",
                delay: "Wij willen u laten weten dat de levering {orders} helaas vertraagd is.",
                expected: "Volgens de huidige planning verwachten wij de goederen op {date}.",
                invoice: "Dank voor uw bericht over factuur {ref}. Wij bekijken de punten die u noemt en komen bij u terug met een antwoord.",
                ticket: "Het spijt ons dat uw verzoek {ref} niet binnen de afgesproken tijd is opgelost. Wij hebben het voorrang gegeven.",
                order: "Dank voor uw bestelling {ref}. Wij ronden de bevestiging af.",
                update: "Wij doen er alles aan om de gevolgen voor u te beperken en informeren u uiterlijk de volgende werkdag.",
                closing: "Met vriendelijke groet,\nKlantenservice",
                your_order: "van uw bestelling",
                months: [
                    "januari",
                    "februari",
                    "maart",
                    "april",
                    "mei",
                    "juni",
                    "juli",
                    "augustus",
                    "september",
                    "oktober",
                    "november",
                    "december",
                ],
            },
        ),
        _ => (
            "en",
            Phrases {
                greeting: "Dear {name},",
                greeting_anon: "Dear customer,",
                subject_delay: "Update on your order {orders}",
                subject_invoice: "Your query about invoice {ref}",
                subject_ticket: "Your request {ref}",
                subject_order: "Your order {ref}",
                delay: "We would like to let you know that the delivery {orders} is delayed.",
                expected: "We currently expect the goods on {date}.",
                invoice: "Thank you for your message about invoice {ref}. We are reviewing the points you raised and will come back to you with an answer.",
                ticket: "We are sorry that your request {ref} was not resolved within the agreed time. We have made it a priority.",
                order: "Thank you for your order {ref}. We are finalising its confirmation.",
                update: "We are working to keep the impact on you as small as possible and will update you by the next business day at the latest.",
                closing: "Kind regards,\nCustomer Service",
                your_order: "of your order",
                months: [
                    "January",
                    "February",
                    "March",
                    "April",
                    "May",
                    "June",
                    "July",
                    "August",
                    "September",
                    "October",
                    "November",
                    "December",
                ],
            },
        ),
    }
}

fn long_date(lang: &str, p: &Phrases, t: PrimitiveDateTime) -> String {
    let month = p.months[usize::from(u8::from(t.month())) - 1];
    match lang {
        "de" => format!("{}. {} {}", t.day(), month, t.year()),
        "en" => format!("{} {}, {}", month, t.day(), t.year()),
        _ => format!("{} {} {}", t.day(), month, t.year()),
    }
}

fn customer_reply(f: &Facts, requested: &str) -> Value {
    let (lang, p) = phrases(requested);
    let own: Vec<&str> = f
        .customer_orders()
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    let orders = list(&own, 5);
    let greeting = match &f.contact {
        Some(name) => p.greeting.replace("{name}", name),
        None => p.greeting_anon.to_owned(),
    };
    let reference = &f.source;
    let (subject, opening) = match f.event_type.as_str() {
        "invoice_dispute" => (
            p.subject_invoice.replace("{ref}", reference),
            p.invoice.replace("{ref}", reference),
        ),
        "sla_breach" => (
            p.subject_ticket.replace("{ref}", reference),
            p.ticket.replace("{ref}", reference),
        ),
        "margin_exception" => {
            let r = own.first().copied().unwrap_or(reference.as_str());
            (
                p.subject_order.replace("{ref}", r),
                p.order.replace("{ref}", r),
            )
        }
        _ => {
            let of_orders = if own.is_empty() {
                p.your_order.to_owned()
            } else {
                format!("{} {orders}", p.your_order)
            };
            let subject = if own.is_empty() {
                p.subject_delay.replace(" {orders}", "")
            } else {
                p.subject_delay.replace("{orders}", &orders)
            };
            let mut text = p.delay.replace("{orders}", &of_orders);
            if let Some(e) = f.expected {
                text.push(' ');
                text.push_str(&p.expected.replace("{date}", &long_date(lang, &p, e)));
            }
            (subject, text)
        }
    };
    let body = format!("{greeting}\n\n{opening}\n\n{}\n\n{}", p.update, p.closing);
    let tone = match f.event_type.as_str() {
        "invoice_dispute" | "margin_exception" => "informative",
        _ => "apologetic",
    };
    json!({"subject": clip(subject, 200), "body": clip(body, 4000), "tone": tone, "language": lang})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> Value {
        json!({
            "event_type": "receipt_delay", "occurred_at": "2026-11-20T06:00:00Z",
            "source": {"system": "odoo", "model": "purchase.order", "res_id": 17, "name": "P00017"},
            "facts": {
                "tolerance_days": 2,
                "purchase_order": {"date_planned": "2026-11-18 09:00:00"},
                "expected_date": "2026-11-25 09:00:00",
                "impacted_sales_orders": [
                    {"name": "S00042", "partner_id": [7, "[CUSTOMER_1]"], "commitment_date": "2026-11-22 12:00:00",
                     "customer_tier": "strategic", "warehouse_id": [1, "WH-Chicago"]},
                    {"name": "S00043", "partner_id": [8, "[PARTNER_1]"], "commitment_date": "2026-11-28 12:00:00",
                     "customer_tier": "standard", "warehouse_id": [2, "WH-Dallas"]}],
                "customer": {"name": "[CUSTOMER_1]"}
            },
            "reply_to": {"name": "[PERSON_1]"}
        })
    }

    #[test]
    fn delay_against_tolerance_with_a_strategic_account_is_critical() {
        let f = Facts::read(&bundle());
        assert_eq!(f.delay_days(), Some(7));
        let c = classification(&f);
        assert_eq!(c["severity"], "critical");
        assert_eq!(c["priority"], 1);
        assert_eq!(c["category"], "supplier_delay");
        assert_eq!(
            c["recommended_actions"],
            json!([
                "expedite_replenishment",
                "partial_shipment",
                "notify_customer",
                "escalate_account_manager"
            ])
        );
        let s = impact_summary(&f);
        let text = s["customer_impact"].as_str().unwrap();
        assert!(text.contains("7 days late"), "{text}");
        assert!(text.contains("S00042 on 2026-11-22"), "{text}");
        assert_eq!(
            s["impacted_orders"][0],
            json!({"order_ref": "S00042",
            "customer_token": "[CUSTOMER_1]", "promised_date": "2026-11-22", "at_risk_qty": null})
        );
        assert_eq!(s["impacted_orders"].as_array().unwrap().len(), 2);
        // Orders whose amounts are masked: the exposure is unknown, not none.
        assert_eq!(s["financial_exposure_band"], "unknown");
    }

    #[test]
    fn exposure_is_the_highest_band_at_stake() {
        let mut b = bundle();
        b["facts"]["impacted_sales_orders"][0]["amount_total"] = json!("1k–10k EUR");
        b["facts"]["impacted_sales_orders"][1]["amount_total"] = json!("10k–100k EUR");
        assert_eq!(
            impact_summary(&Facts::read(&b))["financial_exposure_band"],
            "10k–100k"
        );
        let none =
            Facts::read(&json!({"event_type": "other", "source": {"model": "x", "res_id": 1}}));
        assert_eq!(impact_summary(&none)["financial_exposure_band"], "none");
    }

    #[test]
    fn reply_is_in_the_customers_language_and_names_only_their_orders() {
        let f = Facts::read(&bundle());
        let de = customer_reply(&f, "de");
        assert_eq!(de["language"], "de");
        let body = de["body"].as_str().unwrap();
        assert!(body.starts_with("Guten Tag [PERSON_1],"), "{body}");
        assert!(body.contains("25. November 2026"), "{body}");
        assert!(
            body.contains("S00042") && !body.contains("S00043"),
            "{body}"
        );
        assert_eq!(customer_reply(&f, "nl")["language"], "nl");
        assert_eq!(customer_reply(&f, "fr")["language"], "fr");
        assert_eq!(customer_reply(&f, "ja")["language"], "en");
    }

    #[test]
    fn nothing_at_risk_is_low() {
        let f = Facts::read(&json!({"event_type": "other", "source": {"model": "x", "res_id": 1}}));
        assert_eq!(classification(&f)["severity"], "low");
    }
}
