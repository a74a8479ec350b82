//! Reviewer sessions for the pages: a signed cookie (reviewer, expiry, HMAC-SHA256) and CSRF
//! tokens bound to it. Stateless, so any replica sharing `review.session_key` accepts it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const COOKIE: &str = "exbrief_review";

pub struct Sessions {
    key: Vec<u8>,
    ttl_secs: i64,
    secure: bool,
}

impl Sessions {
    pub fn new(key: Vec<u8>, ttl_minutes: u64, secure: bool) -> Self {
        Self {
            key,
            ttl_secs: i64::try_from(ttl_minutes.saturating_mul(60)).unwrap_or(i64::MAX),
            secure,
        }
    }

    fn sign(&self, message: &str) -> String {
        // A key of any length is accepted by HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, message: &str, signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature) else {
            return false;
        };
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(message.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig).is_ok()
    }

    /// The `Set-Cookie` value that signs `reviewer` in until now + ttl.
    pub fn issue(&self, reviewer: &str, now: i64) -> String {
        let exp = now.saturating_add(self.ttl_secs);
        let body = format!("v1.{}.{exp}", hex::encode(reviewer));
        let value = format!("{body}.{}", self.sign(&body));
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={value}; Path=/review; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.ttl_secs
        )
    }

    pub fn clear(&self) -> String {
        format!("{COOKIE}=; Path=/review; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// The reviewer of a valid, unexpired cookie value.
    pub fn reviewer(&self, cookie: &str, now: i64) -> Option<String> {
        let (body, sig) = cookie.rsplit_once('.')?;
        if !self.verify(body, sig) {
            return None;
        }
        let mut parts = body.split('.');
        let (Some("v1"), Some(name), Some(exp)) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        let exp: i64 = exp.parse().ok()?;
        if exp <= now {
            return None;
        }
        String::from_utf8(hex::decode(name).ok()?).ok()
    }

    /// The CSRF token of a session (its forms carry it; a POST must return it).
    pub fn csrf(&self, cookie: &str) -> String {
        self.sign(&format!("csrf|{cookie}"))
    }

    pub fn csrf_ok(&self, cookie: &str, token: &str) -> bool {
        self.verify(&format!("csrf|{cookie}"), token)
    }

    /// A token for the sign-in form, which has no session yet: proof the form came from us.
    pub fn signin_token(&self, nonce: &str) -> String {
        self.sign(&format!("signin|{nonce}"))
    }

    pub fn signin_ok(&self, nonce: &str, token: &str) -> bool {
        self.verify(&format!("signin|{nonce}"), token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(set_cookie: &str) -> String {
        set_cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("exbrief_review=")
            .to_owned()
    }

    #[test]
    fn cookies_are_signed_expire_and_bind_csrf_tokens() {
        let s = Sessions::new(b"k1".to_vec(), 10, false);
        let set = s.issue("anna@cs.example", 1_000);
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.contains("Max-Age=600")
        );
        let v = value(&set);
        assert_eq!(s.reviewer(&v, 1_001).as_deref(), Some("anna@cs.example"));
        assert_eq!(s.reviewer(&v, 1_600), None, "expired");
        let forged = v.replace(&hex::encode("anna@cs.example"), &hex::encode("admin"));
        assert_eq!(s.reviewer(&forged, 1_001), None);
        assert_eq!(
            Sessions::new(b"k2".to_vec(), 10, false).reviewer(&v, 1_001),
            None
        );
        let t = s.csrf(&v);
        assert!(s.csrf_ok(&v, &t));
        assert!(
            !s.csrf_ok(&value(&s.issue("bo", 1_000)), &t),
            "bound to its session"
        );
        assert!(!s.csrf_ok(&v, "00"));
    }
}
