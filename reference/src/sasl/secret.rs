//! A secret that never prints and is wiped on drop.

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Password, token or derived key. `Debug` and `Display` print no part of it.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wrap `bytes`; they are wiped when the secret is dropped.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(Zeroizing::new(bytes.into()))
    }

    /// The octets, for the computation that needs them; never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// True for a zero-length secret (an empty password).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison; the length is not secret.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.as_slice().ct_eq(other).into()
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret::new(s.into_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Constant-time equality of two byte strings of possibly different lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let s = Secret::from("tanstaaftanstaaf");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(s.ct_eq(b"tanstaaftanstaaf"));
        assert!(!s.ct_eq(b"tanstaaftanstaaX"));
        assert!(!s.ct_eq(b"short"));
    }
}
