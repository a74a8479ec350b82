//! Odoo's value conventions as serde types: `false` for an empty value, `[id, "display name"]`
//! for a many2one, UTC `"YYYY-MM-DD HH:MM:SS"` for a datetime and `"YYYY-MM-DD"` for a date.

use serde::{Deserialize, Deserializer, de::Error as _};
use time::macros::format_description;
use time::{Date, PrimitiveDateTime};

/// A value Odoo may send as `false` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Falsy<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Falsy<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            False(bool),
            Value(T),
        }
        match Option::<Raw<T>>::deserialize(d)? {
            None | Some(Raw::False(false)) => Ok(Falsy(None)),
            Some(Raw::False(true)) => Err(D::Error::custom(
                "`true` where a value or `false` was expected",
            )),
            Some(Raw::Value(v)) => Ok(Falsy(Some(v))),
        }
    }
}

/// A many2one: `[id, "display name"]`, or `false`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Many2one(pub Option<(i64, String)>);

impl<'de> Deserialize<'de> for Many2one {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Falsy(pair) = Falsy::<(i64, String)>::deserialize(d)?;
        Ok(Many2one(pair))
    }
}

/// A datetime as Odoo writes it: UTC, `"YYYY-MM-DD HH:MM:SS"`, no zone marker; or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OdooDateTime(pub Option<PrimitiveDateTime>);

impl<'de> Deserialize<'de> for OdooDateTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Falsy(text) = Falsy::<String>::deserialize(d)?;
        let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        text.map(|t| PrimitiveDateTime::parse(&t, format).map_err(D::Error::custom))
            .transpose()
            .map(OdooDateTime)
    }
}

/// `"YYYY-MM-DD"`, as Odoo's date fields and `date_deadline` take it.
pub fn date_string(d: Date) -> String {
    format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct PurchaseOrder {
        name: String,
        partner_id: Many2one,
        effective_date: OdooDateTime,
        date_planned: OdooDateTime,
        receipt_status: Falsy<String>,
        origin: Falsy<String>,
    }

    #[test]
    fn reads_a_purchase_order_as_odoo_sends_it() {
        let po: PurchaseOrder = serde_json::from_value(json!({
            "name": "P00017", "partner_id": [42, "Ningbo Fasteners Co."],
            "effective_date": false, "date_planned": "2026-11-18 09:00:00",
            "receipt_status": false, "origin": "S00042"}))
        .unwrap();
        assert_eq!(po.name, "P00017");
        assert_eq!(
            po.partner_id,
            Many2one(Some((42, "Ningbo Fasteners Co.".to_owned())))
        );
        assert_eq!(po.effective_date, OdooDateTime(None));
        assert_eq!(
            po.date_planned.0.map(|t| t.to_string()),
            Some("2026-11-18 9:00:00.0".to_owned())
        );
        assert_eq!(po.receipt_status, Falsy(None));
        assert_eq!(po.origin, Falsy(Some("S00042".to_owned())));
        assert_eq!(
            date_string(time::macros::date!(2026 - 11 - 03)),
            "2026-11-03"
        );
    }

    #[test]
    fn rejects_what_odoo_never_sends() {
        assert!(serde_json::from_value::<Many2one>(json!(true)).is_err());
        assert!(serde_json::from_value::<Many2one>(json!([42])).is_err());
        // ISO 8601 with a zone is not Odoo's datetime format.
        assert!(serde_json::from_value::<OdooDateTime>(json!("2026-11-18T09:00:00Z")).is_err());
    }
}
