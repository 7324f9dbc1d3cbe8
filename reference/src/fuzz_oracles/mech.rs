//! Fuzz entry points for the simple SASL mechanisms and the passwd-file parser.
//!
//! Each `server_*` target splits its input into client messages and feeds them to a
//! server whose store holds one user, `user@example.org` (realm `example.org`, so
//! `user` works too) with password `pencil`. The first byte's low bit chooses whether
//! the exchange starts with no initial response (`None`); the rest is split on 0xFF
//! (never valid UTF-8, so it costs the fuzzer nothing) into at most 8 messages.
//!
//! Invariants: nothing panics; a server reports `Success` only when the message(s)
//! carried the right password for the right user, checked here by an oracle written
//! independently of the mechanism's parser; after `Success` or `Failure` every further
//! message gets `ExchangeOver`.

use crate::sasl::cram_md5::{cram_md5_digest, hex_lower};
use crate::sasl::credentials::MemoryStore;
use crate::sasl::random::SeededRandom;
use crate::sasl::{
    self, ClientCredentials, ClientMechanism, Mechanism, SaslError, Secret, ServerContext,
    ServerMechanism, ServerStep,
};
use std::sync::Arc;

const STORED_USER: &str = "user@example.org";
const SHORT_USER: &str = "user";
const REALM: &str = "example.org";
const PASSWORD: &[u8] = b"pencil";
const CERT_IDENTITY: &str = "cert-user";
const MAX_MESSAGES: usize = 8;

fn context() -> ServerContext {
    let mut store = MemoryStore::new();
    store.insert_plain(STORED_USER, Secret::new(PASSWORD.to_vec()));
    ServerContext {
        hostname: "mx.example.org".into(),
        realm: Some(REALM.into()),
        external_identity: Some(CERT_IDENTITY.into()),
        credentials: Arc::new(store),
    }
}

fn is_known_user(name: &[u8]) -> bool {
    name == STORED_USER.as_bytes() || name == SHORT_USER.as_bytes()
}

/// The inputs to feed: `None` first if the low bit of the first byte is set.
fn inputs(data: &[u8]) -> Vec<Option<&[u8]>> {
    let Some((&first, rest)) = data.split_first() else {
        return vec![None];
    };
    let mut out = Vec::new();
    if first & 1 == 1 {
        out.push(None);
    }
    out.extend(rest.split(|&b| b == 0xFF).take(MAX_MESSAGES).map(Some));
    out
}

/// Feed every input and return what happened; checks the after-the-end invariant.
fn drive<'a>(
    server: &mut dyn ServerMechanism,
    data: &'a [u8],
) -> Vec<(Option<&'a [u8]>, ServerStep)> {
    let mut log: Vec<(Option<&'a [u8]>, ServerStep)> = Vec::new();
    let mut over = false;
    for input in inputs(data) {
        let step = server.step(input);
        if over {
            assert_eq!(step, ServerStep::Failure(SaslError::ExchangeOver));
        }
        if matches!(step, ServerStep::Success { .. } | ServerStep::Failure(_)) {
            over = true;
        }
        log.push((input, step));
    }
    log
}

fn success_index(log: &[(Option<&[u8]>, ServerStep)]) -> Option<usize> {
    log.iter()
        .position(|(_, s)| matches!(s, ServerStep::Success { .. }))
}

pub fn server_plain(data: &[u8]) {
    let ctx = context();
    let mut server = sasl::server(Mechanism::Plain, &ctx, &mut SeededRandom::from_seed(1));
    let log = drive(server.as_mut(), data);
    if let Some(i) = success_index(&log) {
        let msg = log[i].0.unwrap_or_default();
        let fields: Vec<&[u8]> = msg.split(|&b| b == 0).collect();
        assert_eq!(fields.len(), 3, "PLAIN success without two NULs");
        assert!(is_known_user(fields[1]), "PLAIN success for another user");
        assert_eq!(fields[2], PASSWORD, "PLAIN success with a wrong password");
        assert!(
            fields[0].is_empty() || fields[0] == fields[1] || fields[0] == STORED_USER.as_bytes()
        );
    }
}

pub fn server_login(data: &[u8]) {
    let ctx = context();
    let mut server = sasl::server(Mechanism::Login, &ctx, &mut SeededRandom::from_seed(1));
    let log = drive(server.as_mut(), data);
    if let Some(i) = success_index(&log) {
        let messages: Vec<&[u8]> = log[..=i].iter().filter_map(|(m, _)| *m).collect();
        assert_eq!(messages.len(), 2, "LOGIN success without user and password");
        assert!(is_known_user(messages[0]), "LOGIN success for another user");
        assert_eq!(messages[1], PASSWORD, "LOGIN success with a wrong password");
    }
}

pub fn server_cram_md5(data: &[u8]) {
    let ctx = context();
    let mut server = sasl::server(Mechanism::CramMd5, &ctx, &mut SeededRandom::from_seed(1));
    let log = drive(server.as_mut(), data);
    if let Some(i) = success_index(&log) {
        let challenge = log
            .iter()
            .find_map(|(_, s)| match s {
                ServerStep::Challenge(c) => Some(c.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let expected = hex_lower(&cram_md5_digest(PASSWORD, &challenge));
        let msg = log[i].0.unwrap_or_default();
        let ok = [STORED_USER, SHORT_USER]
            .iter()
            .any(|u| msg == format!("{u} {expected}").as_bytes());
        assert!(ok, "CRAM-MD5 success without the right digest");
    }
}

pub fn server_xoauth2(data: &[u8]) {
    let ctx = context();
    let mut server = sasl::server(Mechanism::XOAuth2, &ctx, &mut SeededRandom::from_seed(1));
    let log = drive(server.as_mut(), data);
    if let Some(i) = success_index(&log) {
        let msg = log[i].0.unwrap_or_default();
        let user_ok = [STORED_USER, SHORT_USER]
            .iter()
            .any(|u| msg.starts_with(format!("user={u}\x01auth=").as_bytes()));
        let mut tail = b" ".to_vec();
        tail.extend_from_slice(PASSWORD);
        tail.extend_from_slice(b"\x01\x01");
        assert!(user_ok, "XOAUTH2 success for another user");
        assert!(msg.ends_with(&tail), "XOAUTH2 success with a wrong token");
    }
}

pub fn server_oauthbearer(data: &[u8]) {
    let ctx = context();
    let mut server = sasl::server(
        Mechanism::OAuthBearer,
        &ctx,
        &mut SeededRandom::from_seed(1),
    );
    let log = drive(server.as_mut(), data);
    if let Some(i) = success_index(&log) {
        let msg = log[i].0.unwrap_or_default();
        let user_ok = [STORED_USER, SHORT_USER].iter().any(|u| {
            msg.starts_with(format!("n,a={u},").as_bytes())
                || msg.starts_with(format!("y,a={u},").as_bytes())
        });
        assert!(user_ok, "OAUTHBEARER success for another user");
        // RFC 7628 §3.1: `kvpairs = *kvpair`, in any order, so `auth` need not be the
        // last pair (the parser refuses a repeated key); its token must be the
        // password, whatever other pairs follow.
        let mut token = b" ".to_vec();
        token.extend_from_slice(PASSWORD);
        let auth = msg
            .split(|&b| b == 0x01)
            .find(|pair| pair.starts_with(b"auth="))
            .expect("OAUTHBEARER success without an auth pair");
        assert!(
            auth.ends_with(&token),
            "OAUTHBEARER success with a wrong token"
        );
    }
}

pub fn server_anonymous(data: &[u8]) {
    let ctx = context();
    let mut server = sasl::server(Mechanism::Anonymous, &ctx, &mut SeededRandom::from_seed(1));
    let log = drive(server.as_mut(), data);
    if let Some(i) = success_index(&log) {
        let msg = log[i].0.unwrap_or_default();
        let text = std::str::from_utf8(msg).expect("ANONYMOUS success with invalid UTF-8");
        assert!(text.chars().count() <= 255);
        assert!(!text.chars().any(char::is_control));
        if let ServerStep::Success { identity, .. } = &log[i].1 {
            assert_eq!(identity.authcid, "anonymous");
            assert_eq!(identity.authzid, None);
        }
    }
}

pub fn server_external(data: &[u8]) {
    let ctx = context();
    let mut server = sasl::server(Mechanism::External, &ctx, &mut SeededRandom::from_seed(1));
    let log = drive(server.as_mut(), data);
    if let Some(i) = success_index(&log) {
        let msg = log[i].0.unwrap_or_default();
        assert!(msg.is_empty() || msg == CERT_IDENTITY.as_bytes());
        if let ServerStep::Success { identity, .. } = &log[i].1 {
            assert_eq!(identity.authcid, CERT_IDENTITY);
        }
    }
    // Without an identity EXTERNAL never succeeds.
    let mut no_cert = context();
    no_cert.external_identity = None;
    let mut server = sasl::server(
        Mechanism::External,
        &no_cert,
        &mut SeededRandom::from_seed(1),
    );
    assert!(success_index(&drive(server.as_mut(), data)).is_none());
}

fn client_credentials() -> ClientCredentials {
    ClientCredentials {
        authcid: STORED_USER.into(),
        password: Secret::new(PASSWORD.to_vec()),
        authzid: None,
        host: "mx.example.org".into(),
        port: Some(587),
    }
}

/// Hostile challenges to a client: every piece is a challenge; never panics.
fn hostile_server(mut client: Box<dyn ClientMechanism>, data: &[u8]) {
    let _ = client.initial_response();
    for challenge in data.split(|&b| b == 0xFF).take(MAX_MESSAGES) {
        let _ = client.step(challenge);
    }
    let _ = client.verify_success(data.get(..data.len().min(16)));
}

pub fn client_xoauth2(data: &[u8]) {
    let creds = client_credentials();
    hostile_server(
        sasl::client(Mechanism::XOAuth2, &creds, &mut SeededRandom::from_seed(1)),
        data,
    );
}

pub fn client_oauthbearer(data: &[u8]) {
    let creds = client_credentials();
    hostile_server(
        sasl::client(
            Mechanism::OAuthBearer,
            &creds,
            &mut SeededRandom::from_seed(1),
        ),
        data,
    );
}

/// The passwd-file parser: never panics; every user it returns can be looked up, and
/// `Debug` shows no password field.
pub fn passwd_file(data: &[u8]) {
    use crate::sasl::CredentialStore;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = sasl::passwd_file::parse(text, "fuzz") else {
        return;
    };
    assert!(file.len() <= text.split('\n').count());
    for user in file.users() {
        assert!(file.lookup(user).is_some());
    }
    // Debug must not depend on the secrets: the same file with every password field
    // replaced by `x` prints the same. (Searching Debug for each password field
    // found "leaks" of fields that were also user names or Debug's own punctuation.)
    let redacted: Vec<String> = text
        .split('\n')
        .map(|raw| {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            match line.split_once(':') {
                Some((user, rest)) => match rest.split_once(':') {
                    Some((_, tail)) => format!("{user}:x:{tail}"),
                    None => format!("{user}:x"),
                },
                None => line.to_owned(),
            }
        })
        .collect();
    let redacted = sasl::passwd_file::parse(&redacted.join("\n"), "fuzz")
        .expect("a passwd-file stays valid with its passwords replaced by x");
    assert_eq!(
        format!("{file:?}"),
        format!("{redacted:?}"),
        "Debug shows a secret"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_entry_points_accept_valid_and_junk_input() {
        server_plain(b"\x00\x00user\x00pencil");
        server_plain(b"\x01\xff\x00user@example.org\x00pencil\xffagain");
        server_login(b"\x01\xffuser\xffpencil");
        server_cram_md5(b"\x01\xffuser 0123");
        server_xoauth2(b"\x00user=user\x01auth=Bearer pencil\x01\x01");
        server_xoauth2(b"\x00user=user\x01auth=Bearer wrong\x01\x01\xff\xff");
        server_oauthbearer(b"\x00n,a=user,\x01auth=Bearer pencil\x01\x01");
        server_oauthbearer(b"\x00n,a=user,\x01auth=Bearer nope\x01\x01\xff\x01");
        server_anonymous(b"\x00trace@example.com");
        server_external(b"\x01\xff");
        client_xoauth2(b"{\"status\":\"401\"}\xff\xff{");
        client_oauthbearer(b"\xff{\"status\":\"invalid_token\"}\xffjunk");
        passwd_file(b"alice:{PLAIN}wonderland-long-secret\nbob:{CRAM-MD5}00");
        passwd_file(b"alice:{PLAIN}wonderland-long-secret\n");
    }
}
