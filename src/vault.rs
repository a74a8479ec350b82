//! Pseudonym maps at rest: sealed with AES-256-GCM under the configured vault key, bound to
//! their summary id (as associated data), so a map copied onto another row does not open.
//! Older keys stay listed in `vault.previous_keys` until every map sealed under them has been
//! purged by retention; new maps are always sealed under `vault.key`.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::VaultConfig;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{what}: not base64 of 32 bytes (make one with `openssl rand -base64 32`)")]
    BadKey { what: String },
    #[error(
        "vault.key is required with PostgreSQL: every replica must seal and open with the same key"
    )]
    KeyRequired,
    #[error("vault key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sealed under key {0}, which is neither vault.key nor in vault.previous_keys")]
    UnknownKey(String),
    #[error("sealed data does not open: it was altered or belongs to another row")]
    Corrupt,
}

/// One sealed value as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

struct VaultKey {
    id: String,
    cipher: Aes256Gcm,
    /// Signs retention checkpoints (derived, so one secret is managed, not two).
    checkpoint_key: [u8; 32],
}

impl VaultKey {
    fn new(bytes: &[u8; 32]) -> Self {
        let id = hex::encode(
            &Sha256::digest([b"exbrief vault key id\n".as_slice(), bytes].concat())[..8],
        );
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(bytes).unwrap_or_else(|_| unreachable_mac());
        mac.update(b"exbrief audit checkpoint v1");
        let checkpoint_key: [u8; 32] = mac.finalize().into_bytes().into();
        Self {
            id,
            cipher: Aes256Gcm::new(bytes.into()),
            checkpoint_key,
        }
    }
}

// HMAC accepts keys of any length; this cannot happen.
fn unreachable_mac() -> Hmac<Sha256> {
    #[allow(clippy::expect_used)]
    <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).expect("HMAC takes any key length")
}

pub struct Vault {
    current: VaultKey,
    previous: Vec<VaultKey>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("key_id", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn decode_key(what: &str, text: &str) -> Result<[u8; 32], VaultError> {
    BASE64
        .decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| VaultError::BadKey {
            what: what.to_owned(),
        })
}

impl Vault {
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            current: VaultKey::new(current),
            previous: previous.iter().map(VaultKey::new).collect(),
        }
    }

    /// A vault with a fresh random key (tests, `sqlite::memory:`).
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(&key, &[])
    }

    /// The configured key; else, for a SQLite file, a key file beside the database, made on
    /// first start; PostgreSQL needs the key configured.
    pub fn from_config(config: &VaultConfig, database_url: &str) -> Result<Self, VaultError> {
        let previous = config
            .previous_keys
            .iter()
            .enumerate()
            .map(|(i, k)| decode_key(&format!("vault.previous_keys[{i}]"), k.expose_secret()))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(key) = &config.key {
            return Ok(Self::new(
                &decode_key("vault.key", key.expose_secret())?,
                &previous,
            ));
        }
        let path = match key_file_for(database_url) {
            KeyFile::Path(p) => p,
            KeyFile::Memory => return Ok(Self::ephemeral()),
            KeyFile::Required => return Err(VaultError::KeyRequired),
        };
        let key = read_or_create_key_file(&path)?;
        Ok(Self::new(&key, &previous))
    }

    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    pub fn seal(&self, associated: &[u8], plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            // AES-GCM fails only for plaintexts over 64 GiB.
            .unwrap_or_default();
        Sealed {
            key_id: self.current.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    pub fn open(&self, associated: &[u8], sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        let key = self
            .key(&sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.nonce.len() != 12 {
            return Err(VaultError::Corrupt);
        }
        key.cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| VaultError::Corrupt)
    }

    fn key(&self, id: &str) -> Option<&VaultKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }

    /// HMAC-SHA256 of `message` under the current key's checkpoint key: (key id, hex).
    pub fn sign_checkpoint(&self, message: &[u8]) -> (String, String) {
        (
            self.current.id.clone(),
            hex::encode(checkpoint_mac(&self.current, message)),
        )
    }

    /// Whether `signature` is the checkpoint signature of `message` under key `key_id`.
    pub fn checkpoint_signed(&self, key_id: &str, message: &[u8], signature: &str) -> bool {
        let (Some(key), Ok(sig)) = (self.key(key_id), hex::decode(signature)) else {
            return false;
        };
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key.checkpoint_key) else {
            return false;
        };
        mac.update(message);
        mac.verify_slice(&sig).is_ok()
    }
}

fn checkpoint_mac(key: &VaultKey, message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key.checkpoint_key)
        .unwrap_or_else(|_| unreachable_mac());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

enum KeyFile {
    Path(PathBuf),
    Memory,
    Required,
}

fn key_file_for(database_url: &str) -> KeyFile {
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        return KeyFile::Required;
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return KeyFile::Memory;
    }
    KeyFile::Path(PathBuf::from(format!("{path}.vault-key")))
}

/// Reads the key file, or creates it (mode 0600) when it does not exist yet. Two processes
/// starting at once agree: only one `create_new` succeeds, the other reads its key.
fn read_or_create_key_file(path: &Path) -> Result<[u8; 32], VaultError> {
    use std::io::Write;
    let err = |source| VaultError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut f) => {
            f.write_all(format!("{}\n", BASE64.encode(key)).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(err)?;
            tracing::warn!(path = %path.display(), "created a vault key file for pseudonym maps; set vault.key in production and keep it apart from the database");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // The creator may still be writing it.
            for _ in 0..50 {
                let text = std::fs::read_to_string(path).map_err(err)?;
                if text.ends_with('\n') {
                    return decode_key(&path.display().to_string(), &text);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            decode_key(
                &path.display().to_string(),
                &std::fs::read_to_string(path).map_err(err)?,
            )
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_row_and_a_known_key() {
        let old = Vault::new(&[7u8; 32], &[]);
        let sealed = old.seal(b"row-1", b"Anna M\xc3\xbcller");
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"Anna"));
        assert_eq!(old.open(b"row-1", &sealed).unwrap(), b"Anna M\xc3\xbcller");
        assert!(matches!(
            old.open(b"row-2", &sealed),
            Err(VaultError::Corrupt)
        ));
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(matches!(
            old.open(b"row-1", &flipped),
            Err(VaultError::Corrupt)
        ));
        // Rotation: the new vault seals under the new key and still opens the old maps.
        let rotated = Vault::new(&[9u8; 32], &[[7u8; 32]]);
        assert_ne!(rotated.key_id(), old.key_id());
        assert_eq!(
            rotated.open(b"row-1", &sealed).unwrap(),
            b"Anna M\xc3\xbcller"
        );
        assert_eq!(rotated.seal(b"row-1", b"x").key_id, rotated.key_id());
        let forgotten = Vault::new(&[9u8; 32], &[]);
        assert!(matches!(
            forgotten.open(b"row-1", &sealed),
            Err(VaultError::UnknownKey(_))
        ));
    }

    #[test]
    fn checkpoint_signatures_verify_only_unchanged() {
        let v = Vault::new(&[1u8; 32], &[]);
        let (id, sig) = v.sign_checkpoint(b"through 42");
        assert!(v.checkpoint_signed(&id, b"through 42", &sig));
        assert!(!v.checkpoint_signed(&id, b"through 43", &sig));
        assert!(!Vault::new(&[2u8; 32], &[]).checkpoint_signed(&id, b"through 42", &sig));
    }

    #[test]
    fn a_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let a = Vault::from_config(&VaultConfig::default(), &url).unwrap();
        let b = Vault::from_config(&VaultConfig::default(), &url).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        let sealed = a.seal(b"r", b"v");
        assert_eq!(b.open(b"r", &sealed).unwrap(), b"v");
        assert!(matches!(
            Vault::from_config(&VaultConfig::default(), "postgres://x/y"),
            Err(VaultError::KeyRequired)
        ));
    }
}
