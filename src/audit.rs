//! The prompt log's hash chain. Each row's `hash` is sha256 over the previous row's hash and the
//! row's canonical JSON. Issue #7 adds verification, queries, export and retention on top.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash that starts the chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `sha256(prev_hash || "\n" || canonical_json(row))`, hex. `serde_json` objects keep keys
/// sorted, so serialising a `Value` is canonical for our purposes.
pub fn chain_hash(prev_hash: &str, row: &Value) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(row.to_string().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_changes_the_hash() {
        let row = serde_json::json!({"b": 1, "a": "x"});
        let h = chain_hash(GENESIS, &row);
        assert_eq!(
            h,
            chain_hash(GENESIS, &serde_json::json!({"a": "x", "b": 1}))
        );
        assert_ne!(
            h,
            chain_hash(GENESIS, &serde_json::json!({"a": "y", "b": 1}))
        );
        assert_ne!(h, chain_hash(&h, &row));
    }
}
