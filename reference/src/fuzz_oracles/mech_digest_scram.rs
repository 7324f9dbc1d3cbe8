//! DIGEST-MD5 and SCRAM under hostile input, both sides.
//!
//! `data` is split at NUL octets into successive messages; neither mechanism allows a
//! NUL anywhere in its messages, so nothing the grammar permits is lost by the split.
//!
//! The password is 32 octets from a fixed seed that no input contains, so a fuzzer can
//! never compute a valid proof: the server must never report success, and the client
//! must never accept the server's proof.

use crate::sasl::channel_binding::{CbType, ChannelBindings, ClientBinding, ServerBinding};
use crate::sasl::credentials::{CredentialStore, StoredCredential};
use crate::sasl::digest_md5::{self, DigestMd5Client, DigestMd5Server};
use crate::sasl::random::{RandomSource, SeededRandom};
use crate::sasl::scram::{self, ScramClient, ScramHash, ScramServer};
use crate::sasl::{
    ClientCredentials, ClientMechanism, Secret, ServerContext, ServerMechanism, ServerStep,
};
use std::sync::Arc;

/// At most this many messages per input: every exchange here ends within three.
const MAX_MESSAGES: usize = 4;
/// What a hostile server may ask of the client; keeps each input fast.
const FUZZ_MAX_ITERATIONS: u32 = 16;

fn secret_password() -> Secret {
    let mut rng = SeededRandom::from_seed(0x0dd_c0ffee);
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    Secret::new(bytes.to_vec())
}

/// `user` has the password in plaintext; `keyed-sha1`/`keyed-sha256` have stored SCRAM
/// keys with one iteration, so the fuzzer reaches the proof check cheaply.
#[derive(Debug)]
struct Store;

impl CredentialStore for Store {
    fn lookup(&self, user: &str) -> Option<StoredCredential> {
        let password = secret_password();
        match user {
            "user" => Some(StoredCredential::Plain(password)),
            "keyed-sha1" => Some(scram::stored_credential(
                ScramHash::Sha1,
                password.expose(),
                b"salt",
                1,
            )),
            "keyed-sha256" => Some(scram::stored_credential(
                ScramHash::Sha256,
                password.expose(),
                b"salt",
                1,
            )),
            _ => None,
        }
    }
}

fn context() -> ServerContext {
    ServerContext {
        hostname: "smtp.fuzz.test".into(),
        realm: Some("fuzz.test".into()),
        external_identity: None,
        credentials: Arc::new(Store),
    }
}

fn credentials() -> ClientCredentials {
    ClientCredentials {
        authcid: "user".into(),
        password: secret_password(),
        authzid: None,
        host: "smtp.fuzz.test".into(),
        port: Some(587),
    }
}

fn messages(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == 0).take(MAX_MESSAGES)
}

fn drive_server(server: &mut dyn ServerMechanism, data: &[u8]) {
    for message in messages(data) {
        let step = server.step(Some(message));
        assert!(
            !matches!(step, ServerStep::Success { .. }),
            "{} server accepted a proof for a password the input cannot know",
            server.mechanism().name()
        );
    }
}

/// The DIGEST-MD5 server: the challenge is sent, then each message is a response.
pub fn server_digest_md5(data: &[u8]) {
    let mut rng = SeededRandom::from_seed(1);
    let mut server = DigestMd5Server::new(&context(), &mut rng);
    let _ = server.step(None);
    drive_server(&mut server, data);
}

/// Binding data the fuzzer's server holds; the input has to guess it for -PLUS.
fn fuzz_bindings() -> ChannelBindings {
    ChannelBindings::new()
        .with(CbType::TlsExporter, vec![0xA5; 32])
        .with(CbType::TlsServerEndPoint, vec![0x5A; 32])
}

/// The input's length picks the variant without shifting the committed corpus:
/// bit 0 -PLUS, bit 1 SHA-512 instead of the target's hash, bit 2 -PLUS advertised
/// (so `y` is a downgrade).
fn server_scram(hash: ScramHash, data: &[u8]) {
    let mut rng = SeededRandom::from_seed(2);
    let bits = data.len() % 8;
    let hash = if bits & 2 != 0 {
        ScramHash::Sha512
    } else {
        hash
    };
    let binding = ServerBinding {
        bindings: fuzz_bindings(),
        plus_advertised: bits & 4 != 0,
    };
    let mut server =
        ScramServer::new(hash, &context(), &mut rng).with_binding(bits & 1 != 0, binding);
    drive_server(&mut server, data);
}

/// The SCRAM-SHA-1 server: client-first, then client-final, then anything.
pub fn server_scram_sha1(data: &[u8]) {
    server_scram(ScramHash::Sha1, data);
}

/// The SCRAM-SHA-256 server.
pub fn server_scram_sha256(data: &[u8]) {
    server_scram(ScramHash::Sha256, data);
}

fn drive_client(client: &mut dyn ClientMechanism, data: &[u8]) {
    let _ = client.initial_response();
    let mut last: Option<&[u8]> = None;
    for challenge in messages(data) {
        let _ = client.step(challenge);
        last = Some(challenge);
    }
    // Whether or not the last message also rides on the 235, the server's proof
    // cannot have verified.
    assert!(
        client.verify_success(last).is_err(),
        "{} client accepted a server proof for a password the input cannot know",
        client.mechanism().name()
    );
}

/// The DIGEST-MD5 client against hostile challenges.
pub fn client_digest_md5(data: &[u8]) {
    let mut rng = SeededRandom::from_seed(3);
    let mut client = DigestMd5Client::new(&credentials(), &mut rng);
    drive_client(&mut client, data);
}

/// The SCRAM client against hostile server messages; the first octet picks the
/// variant: bit 0 SHA-256, bit 1 SHA-512, bit 2 -PLUS over `tls-exporter`, bit 3 the
/// `y` flag.
pub fn client_scram(data: &[u8]) {
    let (first, rest) = match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, data),
    };
    let hash = match (first & 1, first & 2) {
        (_, 2) => ScramHash::Sha512,
        (1, _) => ScramHash::Sha256,
        _ => ScramHash::Sha1,
    };
    let binding = ClientBinding {
        binding: Some((CbType::TlsExporter, vec![0xA5; 32])),
        supported: first & 8 != 0,
    };
    let mut rng = SeededRandom::from_seed(4);
    let mut client = ScramClient::new(hash, &credentials(), &mut rng)
        .max_iterations(FUZZ_MAX_ITERATIONS)
        .with_binding(first & 4 != 0, binding);
    drive_client(&mut client, rest);
}

/// The DIGEST-MD5 directive-list parser: whatever it accepts formats back to a list
/// that parses to the same directives, and formatting is then a fixed point.
pub fn digest_directives(data: &[u8]) {
    let Ok(list) = digest_md5::parse_directives(data) else {
        return;
    };
    let formatted = digest_md5::format_directives(&list);
    let again = digest_md5::parse_directives(&formatted);
    assert_eq!(
        again.as_ref(),
        Ok(&list),
        "parse(format(parse(x))) != parse(x)"
    );
    if let Ok(again) = again {
        assert_eq!(digest_md5::format_directives(&again), formatted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_accept_arbitrary_bytes() {
        let samples: &[&[u8]] = &[
            b"",
            b"\0\0\0",
            b"n,,n=user,r=abc\0c=biws,r=abc,p=AAAA",
            b"n,,n=keyed-sha1,r=abc\0c=biws,r=abcX,p=AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            b"username=\"user\",nonce=\"x\",cnonce=\"y\",nc=00000001,response=0",
            b"realm=\"a\",nonce=\"b\",qop=\"auth\",charset=utf-8,algorithm=md5-sess\0rspauth=00",
            b"r=abc,s=QQ==,i=4096\0v=AAAA",
            b"a=\"\\\r\",b=c",
            b"\xff\xfe\xfd",
        ];
        for s in samples {
            server_digest_md5(s);
            server_scram_sha1(s);
            server_scram_sha256(s);
            client_digest_md5(s);
            client_scram(s);
            digest_directives(s);
        }
    }
}
