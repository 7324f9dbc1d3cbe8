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

/// Replaces every secret with `***`, and not only the secret: the whole token it sits
/// in (a whitespace-delimited word, or a run of base64), so no bit of it survives —
/// neither the characters around a base64 boundary nor its length. Also masked,
/// because they allow an offline dictionary attack on the password once shown next to
/// their challenge: CRAM-MD5 and DIGEST-MD5 digests (32 hex digits) and SCRAM client
/// proofs (`p=`), in clear or inside base64.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    // The secret itself is widened to its whitespace-delimited word; its base64 forms
    // to the run of base64 they sit in.
    let mut all: Vec<(String, bool)> = secrets
        .iter()
        .flat_map(|s| {
            forms(s)
                .into_iter()
                .map(|f| {
                    let plain = f == **s;
                    (f, plain)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
    all.dedup();
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // 1. Every occurrence of a form, widened to its token.
    for (form, plain) in &all {
        let base64_form = !plain;
        let mut from = 0;
        while let Some(i) = text[from..].find(form.as_str()) {
            let (s, e) = (from + i, from + i + form.len());
            spans.push(if base64_form {
                widen(bytes, s, e, is_base64_char)
            } else {
                // A word, not the brackets or quotes around it.
                widen(bytes, s, e, |b| {
                    !b.is_ascii_whitespace() && !is_enclosing(b)
                })
            });
            from = e;
        }
    }
    // 2. Base64 runs that decode to a secret or to a proof.
    let mut i = 0;
    while i < bytes.len() {
        if !is_base64_char(bytes[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < bytes.len() && is_base64_char(bytes[i]) {
            i += 1;
        }
        if i - s >= 4 {
            if let Some(decoded) = decode_loose(&text[s..i]) {
                let holds_secret = secrets.iter().any(|sec| contains(&decoded, sec.as_bytes()));
                if holds_secret || is_proof(&String::from_utf8_lossy(&decoded)) {
                    spans.push((s, i));
                }
            }
        }
    }
    // 3. Proofs in clear (decoded transcripts).
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let (mut s, mut e) = (i, i);
        while e < bytes.len() && !bytes[e].is_ascii_whitespace() {
            e += 1;
        }
        i = e;
        // The brackets and quotes around a token are the transcript's, not the proof's:
        // masking them would leave `[decoded: ***` without its closing bracket.
        while s < e && is_enclosing(bytes[s]) {
            s += 1;
        }
        while e > s && is_enclosing(bytes[e - 1]) {
            e -= 1;
        }
        if is_proof(&text[s..e]) {
            spans.push((s, e));
        }
    }
    if spans.is_empty() {
        return text.to_owned();
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (s, e) in spans {
        // Spans end on ASCII (whitespace or base64 boundaries), so they are char
        // boundaries; an overlapping span only extends the one before it.
        if e <= pos {
            continue;
        }
        if s >= pos {
            out.push_str(&text[pos..s]);
            out.push_str(MASK);
        }
        pos = e;
    }
    out.push_str(&text[pos..]);
    out
}

/// Punctuation that surrounds a token in a transcript or a message.
fn is_enclosing(b: u8) -> bool {
    b"()[]<>\"',;".contains(&b)
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='
}

/// Grows `[s, e)` while `inside` holds on both sides.
fn widen(bytes: &[u8], mut s: usize, mut e: usize, inside: impl Fn(u8) -> bool) -> (usize, usize) {
    while s > 0 && inside(bytes[s - 1]) {
        s -= 1;
    }
    while e < bytes.len() && inside(bytes[e]) {
        e += 1;
    }
    (s, e)
}

/// Base64 with or without padding; `None` when the run is not base64.
fn decode_loose(run: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(run)
        .ok()
        .or_else(|| STANDARD_NO_PAD.decode(run.trim_end_matches('=')).ok())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A CRAM-MD5 or DIGEST-MD5 digest (a run of exactly 32 hex digits) or a SCRAM client
/// proof (`,p=`).
fn is_proof(text: &str) -> bool {
    if text.contains(",p=") && text.contains("r=") {
        return true;
    }
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_hexdigit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            let digits = &b[s..i];
            // Lower-case hex as HMAC-MD5 is printed, with at least one letter and one digit
            // (a 32-digit number or word is not a digest).
            if i - s == 32
                && digits.iter().all(|c| !c.is_ascii_uppercase())
                && digits.iter().any(u8::is_ascii_digit)
                && digits.iter().any(u8::is_ascii_alphabetic)
            {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
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

    #[test]
    fn whole_tokens_are_masked() {
        let masked = mask(
            "C: AUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=",
            &["wonderland".into()],
        );
        assert_eq!(masked, "C: AUTH PLAIN ***");
        let masked = mask("password=wonderland rest", &["wonderland".into()]);
        assert_eq!(masked, "*** rest");
    }

    #[test]
    fn cram_md5_digests_are_masked() {
        // base64("alice 143e94a268d2d6c6d29a44cb056c6753")
        let wire = "C: YWxpY2UgMTQzZTk0YTI2OGQyZDZjNmQyOWE0NGNiMDU2YzY3NTM=";
        assert_eq!(mask(wire, &[]), "C: ***");
        let decoded = "C: [alice 143e94a268d2d6c6d29a44cb056c6753]";
        assert_eq!(mask(decoded, &[]), "C: [alice ***]");
    }

    proptest::proptest! {
        /// The masked text is the same whatever the password was: nothing of it (no
        /// character, no bit at a base64 boundary, not its length) survives.
        #[test]
        fn masked_output_keeps_no_bit_of_the_password(
            a in "[A-Z0-9!#%&@:. _-]{4,40}",
            b in "[A-Z0-9!#%&@:. _-]{4,40}",
            user in "[a-z]{1,12}",
        ) {
            let render = |pw: &str| {
                let plain = STANDARD.encode(format!("\0{user}\0{pw}"));
                let login = STANDARD.encode(pw);
                let plain_authz = STANDARD.encode(format!("{user}\0{user}\0{pw}"));
                format!(
                    "C: AUTH PLAIN {plain}\nC: {login}\nC: AUTH PLAIN {plain_authz}\n\
                     note: --var password={pw}\nC: [{user}] [{pw}]\n"
                )
            };
            let ma = mask(&render(&a), std::slice::from_ref(&a));
            let mb = mask(&render(&b), std::slice::from_ref(&b));
            proptest::prop_assert_eq!(ma, mb);
        }
    }
}
