//! API keys: scopes, secrets shown once and stored only as sha256, revocation, the optional
//! webhook-signing secret (sealed, since a signature check needs it back), and the first admin
//! key a fresh installation prints once.
//!
//! A secret is `exb_<id>_<43 base64url characters>` (256 random bits). The id in it finds the
//! row; the sha256 of the whole secret is compared in constant time. A fast hash is enough: the
//! secret is random, not a password.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{KeyRow, NewKey, Store, StoreError};
use crate::vault::{Sealed, Vault};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `POST /v1/summarize`, `POST /v1/redact`, `GET /v1/summaries/{id}`.
    Summarize,
    /// The review API.
    Review,
    /// The compliance log.
    Audit,
    /// Everything, plus `/metrics`.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Summarize, Scope::Review, Scope::Audit, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Summarize => "summarize",
            Scope::Review => "review",
            Scope::Audit => "audit",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| KeyError::UnknownScope(s.trim().to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown scope `{0}` (summarize, review, audit, admin)")]
    UnknownScope(String),
    #[error("a key needs at least one scope")]
    NoScope,
    #[error("a key name is 1 to 64 characters")]
    BadName,
    #[error("no key has id `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who is calling: what authentication found.
#[derive(Debug, Clone, Serialize)]
pub struct Caller {
    /// `None` only when `auth.disabled`.
    pub key_id: Option<String>,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The redaction policy for this key's requests when a bundle names none.
    pub policy: Option<String>,
    /// Set when the key requires signed requests.
    #[serde(skip)]
    pub webhook_secret: Option<SecretString>,
}

impl Caller {
    /// Everything allowed: `auth.disabled` (local demos only).
    pub fn anonymous() -> Self {
        Self {
            key_id: None,
            name: "anonymous".to_owned(),
            scopes: Scope::ALL.to_vec(),
            policy: None,
            webhook_secret: None,
        }
    }

    /// Admin holds every scope.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match &self.key_id {
            Some(id) => format!("key:{id} ({})", self.name),
            None => "anonymous (auth.disabled)".to_owned(),
        }
    }
}

/// A key as it is created: the secrets are shown once, then only hashes (and the sealed
/// webhook secret) remain.
#[derive(Debug)]
pub struct Created {
    pub id: String,
    pub secret: SecretString,
    pub webhook_secret: Option<SecretString>,
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The id inside a secret, when it has our shape.
fn id_of(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("exb_")?;
    let (id, random) = rest.split_once('_')?;
    (id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && random.len() == 43)
        .then_some(id)
}

fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    b.iter()
        .map(|x| ALPHABET[(*x as usize) % ALPHABET.len()] as char)
        .collect()
}

/// Parses `summarize,review` into scopes.
pub fn parse_scopes(list: &str) -> Result<Vec<Scope>, KeyError> {
    let mut scopes = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Scope::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(KeyError::NoScope);
    }
    Ok(scopes)
}

fn join_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// What `create` needs.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub policy: Option<String>,
    /// Require `X-Exbrief-Signature` on this key's requests (a signing secret is made).
    pub signed: bool,
}

fn build(vault: &Vault, r: &Request) -> Result<(NewKey, Created), KeyError> {
    if r.name.trim().is_empty() || r.name.chars().count() > 64 {
        return Err(KeyError::BadName);
    }
    if r.scopes.is_empty() {
        return Err(KeyError::NoScope);
    }
    let id = new_id();
    let secret = format!("exb_{id}_{}", random_b64(32));
    let webhook = r.signed.then(|| format!("whsec_{}", random_b64(32)));
    let sealed = webhook
        .as_ref()
        .map(|w| vault.seal(id.as_bytes(), w.as_bytes()));
    let row = NewKey {
        id: id.clone(),
        name: r.name.trim().to_owned(),
        secret_sha256: secret_sha256(&secret),
        scopes: join_scopes(&r.scopes),
        policy: r.policy.clone(),
        webhook: sealed,
        created_at: crate::store::now(),
    };
    Ok((
        row,
        Created {
            id,
            secret: secret.into(),
            webhook_secret: webhook.map(Into::into),
        },
    ))
}

pub async fn create(store: &Store, vault: &Vault, r: &Request) -> Result<Created, KeyError> {
    let (row, created) = build(vault, r)?;
    store.insert_key(&row).await?;
    Ok(created)
}

/// On a first start with no keys, one admin key — made once even when replicas start together.
pub async fn bootstrap(store: &Store, vault: &Vault) -> Result<Option<Created>, KeyError> {
    let (row, created) = build(
        vault,
        &Request {
            name: "initial-admin".to_owned(),
            scopes: vec![Scope::Admin],
            policy: None,
            signed: false,
        },
    )?;
    Ok(store.bootstrap_key(&row).await?.then_some(created))
}

pub async fn revoke(store: &Store, id: &str) -> Result<(), KeyError> {
    if store.revoke_key(id, crate::store::now()).await? {
        Ok(())
    } else {
        Err(KeyError::NotFound(id.to_owned()))
    }
}

/// Why a presented key was refused (the HTTP layer says 401 for every one of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    Revoked,
}

/// What authentication needs of a key's row, kept for a moment so that a burst of requests from
/// one key costs one database read, not one each. Rows are cached by id only when they exist,
/// so the cache holds at most the keys table; a revocation (made by `exbrief keys revoke`, in
/// another process, or on another replica) is seen once the entry is older than `ttl`.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<Known>)>>,
}

/// A key's row as authentication uses it.
#[derive(Debug)]
struct Known {
    secret_sha256: String,
    revoked: bool,
    caller: Caller,
}

impl KeyCache {
    /// `ttl` zero reads the row on every request.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Default::default(),
        }
    }

    fn get(&self, id: &str) -> Option<Arc<Known>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, k)| Arc::clone(k))
    }

    fn put(&self, id: &str, known: &Arc<Known>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(id.to_owned(), (Instant::now(), Arc::clone(known)));
    }
}

/// Checks a presented secret: the row its id names (from `cache` while it is fresh), the hash
/// compared in constant time, not revoked.
pub async fn authenticate(
    store: &Store,
    vault: &Vault,
    cache: &KeyCache,
    secret: &str,
) -> Result<Result<Caller, Refused>, StoreError> {
    let Some(id) = id_of(secret) else {
        return Ok(Err(Refused::Malformed));
    };
    let known = match cache.get(id) {
        Some(known) => known,
        None => {
            let Some(row) = store.key(id).await? else {
                // Spend the same hash as a hit would, so timing does not tell ids apart.
                let _ = secret_sha256(secret)
                    .as_bytes()
                    .ct_eq(secret_sha256("").as_bytes());
                return Ok(Err(Refused::Unknown));
            };
            let known = Arc::new(Known {
                secret_sha256: row.secret_sha256.clone(),
                revoked: row.revoked_at.is_some(),
                caller: caller_of(vault, row),
            });
            cache.put(id, &known);
            known
        }
    };
    let presented = secret_sha256(secret);
    if !bool::from(presented.as_bytes().ct_eq(known.secret_sha256.as_bytes())) {
        return Ok(Err(Refused::Unknown));
    }
    if known.revoked {
        return Ok(Err(Refused::Revoked));
    }
    Ok(Ok(known.caller.clone()))
}

/// The signing secret of a key that is not revoked, for signing what exbrief sends on its
/// behalf (an asynchronous summary's callback).
pub async fn signing_secret(
    store: &Store,
    vault: &Vault,
    key_id: &str,
) -> Result<Option<SecretString>, StoreError> {
    let Some(row) = store.key(key_id).await? else {
        return Ok(None);
    };
    if row.revoked_at.is_some() {
        return Ok(None);
    }
    Ok(caller_of(vault, row)
        .webhook_secret
        .filter(|s| !s.expose_secret().is_empty()))
}

fn caller_of(vault: &Vault, row: KeyRow) -> Caller {
    let webhook_secret = match (
        row.webhook_key_id,
        row.webhook_nonce,
        row.webhook_ciphertext,
    ) {
        (Some(key_id), Some(nonce), Some(ciphertext)) => {
            let sealed = Sealed {
                key_id,
                nonce,
                ciphertext,
            };
            match vault.open(row.id.as_bytes(), &sealed) {
                Ok(plain) => String::from_utf8(plain).ok().map(SecretString::from),
                Err(e) => {
                    tracing::error!(key_id = %row.id, error = %e, "webhook secret does not open; the key's signed requests will be refused");
                    Some(SecretString::from(String::new()))
                }
            }
        }
        _ => None,
    };
    Caller {
        key_id: Some(row.id),
        name: row.name,
        scopes: parse_scopes(&row.scopes).unwrap_or_default(),
        policy: row.policy,
        webhook_secret,
    }
}

/// Shows a secret for the one time it is printed.
pub fn reveal_once(secret: &SecretString) -> &str {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached row spares the database read but never the hash check, and a revocation made
    /// elsewhere is seen once the entry is older than the cache's time to live.
    #[tokio::test]
    async fn cached_keys_still_check_the_secret_and_expire_into_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("k.db").display());
        let store = Store::connect(&url, 2, 0).await.unwrap();
        let vault = Vault::new(&[7u8; 32], &[]);
        let request = Request {
            name: "n8n".to_owned(),
            scopes: vec![Scope::Summarize],
            policy: None,
            signed: false,
        };
        let created = create(&store, &vault, &request).await.unwrap();
        let secret = created.secret.expose_secret();
        // The same id with another last character: a secret of the right shape, not the key's.
        let last = if secret.ends_with('A') { "B" } else { "A" };
        let wrong = format!("{}{last}", &secret[..secret.len() - 1]);
        let long = KeyCache::new(Duration::from_secs(600));
        let short = KeyCache::new(Duration::from_millis(50));
        let none = KeyCache::new(Duration::ZERO);
        for cache in [&long, &short, &none] {
            let caller = authenticate(&store, &vault, cache, secret).await.unwrap();
            assert_eq!(caller.unwrap().key_id.as_deref(), Some(created.id.as_str()));
        }
        revoke(&store, &created.id).await.unwrap();
        let auth = |cache, secret| authenticate(&store, &vault, cache, secret);
        // The long-lived entry is what spares the read: the row now says revoked.
        assert!(auth(&long, secret).await.unwrap().is_ok());
        assert_eq!(
            auth(&long, &wrong).await.unwrap().unwrap_err(),
            Refused::Unknown
        );
        assert_eq!(
            auth(&none, secret).await.unwrap().unwrap_err(),
            Refused::Revoked
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            auth(&short, secret).await.unwrap().unwrap_err(),
            Refused::Revoked
        );
        store.close().await;
    }

    #[test]
    fn secrets_have_the_shape_their_ids_are_read_from() {
        let vault = Vault::new(&[1u8; 32], &[]);
        let (row, created) = build(
            &vault,
            &Request {
                name: "n8n-prod".to_owned(),
                scopes: parse_scopes("summarize,review").unwrap(),
                policy: None,
                signed: true,
            },
        )
        .unwrap();
        let secret = created.secret.expose_secret();
        assert_eq!(id_of(secret), Some(created.id.as_str()));
        assert_eq!(row.secret_sha256, secret_sha256(secret));
        assert!(!row.secret_sha256.contains(&secret[4..16]));
        assert_eq!(row.scopes, "summarize,review");
        let webhook = created.webhook_secret.unwrap();
        let sealed = row.webhook.unwrap();
        assert_eq!(
            vault.open(created.id.as_bytes(), &sealed).unwrap(),
            webhook.expose_secret().as_bytes()
        );
        for bad in [
            "",
            "exb_",
            "Bearer x",
            "exb_short_abc",
            &secret[..secret.len() - 1],
        ] {
            assert_eq!(id_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn scopes_parse_strictly_and_admin_holds_all() {
        assert!(
            matches!(parse_scopes("summarize,everything"), Err(KeyError::UnknownScope(s)) if s == "everything")
        );
        assert!(matches!(parse_scopes(" , "), Err(KeyError::NoScope)));
        let admin = Caller {
            scopes: vec![Scope::Admin],
            ..Caller::anonymous()
        };
        assert!(Scope::ALL.iter().all(|s| admin.may(*s)));
        let reviewer = Caller {
            scopes: vec![Scope::Review],
            ..Caller::anonymous()
        };
        assert!(reviewer.may(Scope::Review) && !reviewer.may(Scope::Audit));
    }
}
