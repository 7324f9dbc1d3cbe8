//! Hiding secrets in everything a report prints.
//!
//! A password appears on the wire as itself (LOGIN after decoding, `--var` echoes) and
//! inside base64: alone (LOGIN), or in the middle of a PLAIN response
//! `base64(authzid \0 user \0 password)` (RFC 4616 §2), where it starts at any of the three
//! byte offsets modulo 3. For each offset the base64 characters that depend only on the
//! secret's bytes are the same whatever surrounds it, so masking those three "cores"
//! hides the secret inside any base64 text.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// The text that replaces a secret.
pub const MASK: &str = "***";

/// Cores shorter than this are not masked on their own: two or three base64 characters
/// occur by chance in any text, and masking them would garble reports without hiding
/// anything (such a short secret is visible in its plain form anyway).
const MIN_CORE: usize = 4;

/// The forms of `secret` to hide, longest first.
fn forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut out = vec![secret.to_owned(), STANDARD.encode(bytes)];
    for offset in 0..3usize {
        let mut prefixed = vec![0u8; offset];
        prefixed.extend_from_slice(bytes);
        let encoded = STANDARD_NO_PAD.encode(&prefixed);
        // Character i covers bits [6i, 6i+6); keep those entirely inside the secret.
        let start = (8 * offset).div_ceil(6);
        let end = (8 * (offset + bytes.len())) / 6;
        if let Some(core) = encoded.get(start..end) {
            if core.len() >= MIN_CORE {
                out.push(core.to_owned());
            }
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.len()));
    out.dedup();
    out
}

/// Replaces every secret, and every base64 form of it, with `***`.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut all: Vec<String> = secrets
        .iter()
        .filter(|s| !s.is_empty())
        .flat_map(|s| forms(s))
        .collect();
    all.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_owned();
    for form in &all {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_offset_independent() {
        let secret = "wonderland";
        for prefix in ["", "a", "ab", "abc", "\0alice\0", "x\0alice\0"] {
            let encoded = STANDARD.encode(format!("{prefix}{secret}"));
            let masked = mask(&encoded, &[secret.to_owned()]);
            assert!(masked.contains(MASK), "{prefix:?}: {encoded} -> {masked}");
        }
    }
}
