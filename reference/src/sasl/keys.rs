//! Key derivation shared by stored credentials and the mechanisms: one function per
//! derivation, so a password hashes the same whether it arrives through PLAIN, LOGIN,
//! CRAM-MD5 or SCRAM, or is turned into a `{SCHEME}` entry.
//!
//! - SCRAM (RFC 5802 §3): `scram_keys` (SaltedPassword, ClientKey, StoredKey,
//!   ServerKey), after SASLprep (`prepare_password`). The stored `{SCRAM-SHA-*}`
//!   credentials, the server mechanism and the client mechanism all call it.
//! - CRAM-MD5 (RFC 2195 §2, RFC 2104 §4): [`cram_md5_context`], the HMAC-MD5 state
//!   Dovecot's `{CRAM-MD5}` stores, and `cram_md5_digest`.
//! - SASLprep (RFC 4013) from the `stringprep` crate: mapping, NFKC, prohibited
//!   output, the bidirectional check, and unassigned code points refused.
//!
//! This module imports no other mechanism and no credential type, so `credentials`,
//! `cram_md5` and `scram` depend on it and not on each other.

use super::Secret;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use std::borrow::Cow;
use zeroize::Zeroizing;

/// The hash function `H()` of a SCRAM family member: SCRAM-SHA-1 (RFC 5802),
/// SCRAM-SHA-256 (RFC 7677) and SCRAM-SHA-512 (draft-melnikov-scram-sha-512).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    /// SHA-1: SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SHA-256: SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SHA-512: SCRAM-SHA-512 (draft-melnikov-scram-sha-512).
    Sha512,
}

impl ScramHash {
    /// Octets of `H()` output, which is also the length of ClientProof and
    /// ServerSignature.
    pub(crate) fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }

    /// The name after `SCRAM-` and before any `-PLUS`, and Dovecot's scheme name
    /// after `SCRAM-`.
    pub fn name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SHA-1",
            ScramHash::Sha256 => "SHA-256",
            ScramHash::Sha512 => "SHA-512",
        }
    }

    /// RFC 5802 §2.2 `H(str)`.
    pub fn h(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802 §2.2 `HMAC(key, str)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length, so this cannot fail; an empty result
            // would only make a proof comparison fail.
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            ScramHash::Sha1 => run::<Hmac<Sha1>>(key, data),
            ScramHash::Sha256 => run::<Hmac<Sha256>>(key, data),
            ScramHash::Sha512 => run::<Hmac<Sha512>>(key, data),
        }
    }

    /// RFC 5802 §2.2 `Hi(str, salt, i)`, which is PBKDF2 with HMAC as the PRF.
    fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Secret {
        let mut out = vec![0u8; self.output_len()];
        match self {
            ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
            ScramHash::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
            }
        }
        Secret::new(out)
    }
}

/// RFC 5802 §3's keys for one password, salt and iteration count. `Debug` prints no
/// key.
#[derive(Clone, Debug)]
pub(crate) struct ScramKeys {
    pub client_key: Secret,
    pub stored_key: Secret,
    pub server_key: Secret,
}

/// RFC 5802 §3, the one place authspec derives SCRAM keys:
///
/// ```text
/// SaltedPassword  := Hi(Normalize(password), salt, i)
/// ClientKey       := HMAC(SaltedPassword, "Client Key")
/// StoredKey       := H(ClientKey)
/// ServerKey       := HMAC(SaltedPassword, "Server Key")
/// ```
///
/// `Normalize` is SASLprep where the password prepares ([`prepare_password`]).
pub(crate) fn scram_keys(
    hash: ScramHash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> ScramKeys {
    let prepared = prepare_password(password);
    let salted = hash.hi(prepared.expose(), salt, iterations);
    let client_key = Secret::new(hash.hmac(salted.expose(), b"Client Key"));
    let stored_key = Secret::new(hash.h(client_key.expose()));
    let server_key = Secret::new(hash.hmac(salted.expose(), b"Server Key"));
    ScramKeys {
        client_key,
        stored_key,
        server_key,
    }
}

/// RFC 4013 SASLprep, as RFC 5802 §5.1 asks for user names and passwords: non-ASCII
/// spaces become SPACE, the "commonly mapped to nothing" characters go, NFKC, then the
/// prohibited characters, the bidirectional rule and unassigned code points are
/// refused (the `stringprep` crate's `saslprep`, which treats every string as a stored
/// string; RFC 4013 lets queries keep unassigned code points, which only matters for
/// characters newer than Unicode 3.2).
pub fn saslprep(input: &str) -> Result<Cow<'_, str>, SaslPrepError> {
    stringprep::saslprep(input).map_err(|_| SaslPrepError)
}

/// A string SASLprep refuses (RFC 4013 §2.3–2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslPrepError;

/// The octets a password is hashed as: SASLprep'd if it is UTF-8 and prepares, else as
/// given (an unpreparable password can still match a peer that does the same, which is
/// what Cyrus and Dovecot do).
pub(crate) fn prepare_password(password: &[u8]) -> Secret {
    match std::str::from_utf8(password).ok().map(saslprep) {
        Some(Ok(Cow::Borrowed(_))) | None | Some(Err(_)) => Secret::new(password.to_vec()),
        Some(Ok(Cow::Owned(p))) => Secret::new(p.into_bytes()),
    }
}

// ---------------------------------------------------------------------------------
// MD5 from a saved state (RFC 1321 §3.4) and the HMAC-MD5 context (RFC 2104 §4).

/// RFC 1321 §3.3: the initial state A, B, C, D.
pub(crate) const MD5_INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// RFC 1321 §3.4: T[i] = floor(2^32 * abs(sin(i + 1))).
const MD5_T: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// RFC 1321 §3.4: the per-round rotation amounts.
const MD5_S: [[u32; 4]; 4] = [
    [7, 12, 17, 22],
    [5, 9, 14, 20],
    [4, 11, 16, 23],
    [6, 10, 15, 21],
];

/// One application of MD5's compression function to a 64-octet block.
pub(crate) fn md5_compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let mut x = [0u32; 16];
    for (word, bytes) in x.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    for i in 0..64 {
        let round = i / 16;
        let (f, k) = match round {
            0 => ((b & c) | (!b & d), i),
            1 => ((b & d) | (c & !d), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let sum = a.wrapping_add(f).wrapping_add(MD5_T[i]).wrapping_add(x[k]);
        let rotated = sum.rotate_left(MD5_S[round][i % 4]);
        a = d;
        d = c;
        c = b;
        b = b.wrapping_add(rotated);
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// Finish an MD5 computation whose first 64 octets are already folded into `state`.
pub(crate) fn md5_resume(mut state: [u32; 4], data: &[u8]) -> [u8; 16] {
    let mut blocks = data.chunks_exact(64);
    for block in blocks.by_ref() {
        let mut b = [0u8; 64];
        b.copy_from_slice(block);
        md5_compress(&mut state, &b);
    }
    let rest = blocks.remainder();
    // RFC 1321 §3.1–3.2: a 1 bit, zeros to 56 mod 64, then the bit length (mod 2^64).
    let total_bits = (64u64.wrapping_add(data.len() as u64)).wrapping_mul(8);
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_len = if rest.len() < 56 { 64 } else { 128 };
    tail[tail_len - 8..tail_len].copy_from_slice(&total_bits.to_le_bytes());
    for chunk in tail[..tail_len].chunks_exact(64) {
        let mut b = [0u8; 64];
        b.copy_from_slice(chunk);
        md5_compress(&mut state, &b);
    }
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn words_le(bytes: &[u8]) -> [u32; 4] {
    let mut w = [0u32; 4];
    for (word, b) in w.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    w
}

/// Dovecot's `{CRAM-MD5}` context for `password`: the outer MD5 state (after
/// `K XOR opad`) then the inner one (after `K XOR ipad`), each as four little-endian
/// 32-bit words, 32 octets in all. This is the order of Dovecot's
/// `hmac_md5_get_cram_context()`; `doveadm pw -s CRAM-MD5` prints it in hex.
pub fn cram_md5_context(password: &[u8]) -> [u8; 32] {
    // RFC 2104 §2: keys longer than the block are hashed first.
    let mut key = Zeroizing::new([0u8; 64]);
    if password.len() > 64 {
        key[..16].copy_from_slice(&Md5::digest(password));
    } else {
        key[..password.len()].copy_from_slice(password);
    }
    let mut ipad = Zeroizing::new([0u8; 64]);
    let mut opad = Zeroizing::new([0u8; 64]);
    for i in 0..64 {
        ipad[i] = key[i] ^ 0x36;
        opad[i] = key[i] ^ 0x5c;
    }
    let mut inner = MD5_INIT;
    md5_compress(&mut inner, &ipad);
    let mut outer = MD5_INIT;
    md5_compress(&mut outer, &opad);
    let mut out = [0u8; 32];
    for (o, w) in out
        .chunks_exact_mut(4)
        .zip(outer.iter().chain(inner.iter()))
    {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// HMAC-MD5 of `message` from a 32-octet context made by [`cram_md5_context`].
pub fn hmac_md5_from_context(context: &[u8; 32], message: &[u8]) -> [u8; 16] {
    let outer = words_le(&context[..16]);
    let inner = words_le(&context[16..]);
    let inner_digest = md5_resume(inner, message);
    md5_resume(outer, &inner_digest)
}

/// HMAC-MD5(password, challenge) as RFC 2195 §2 uses it.
pub(crate) fn cram_md5_digest(password: &[u8], challenge: &[u8]) -> [u8; 16] {
    let context = Zeroizing::new(cram_md5_context(password));
    hmac_md5_from_context(&context, challenge)
}
