//! What a session reveals and how recorded text hides it: the passwords, tokens and
//! names each SASL exchange carries, read by the reference mechanism parsers (one
//! grammar per mechanism, shared with the reference server), and the replacements
//! that turn them into `${password}`, `${user}` and `${authzid}` everywhere else.
//!
//! A secret missed here is a secret written: [`Rewrites`] is what replaces it and
//! [`super::text::contains_secret`] the last check before writing, and both know only
//! what was learned. So a message its parser refuses is still searched, loosely, for
//! what may be a password or a token.

use super::events::Event;
use super::exchange::{Exchange, Payload, exchange};
use super::hosts::{self, Hosts};
use super::text::{Piece, Pieces, base64_cores};
use authspec_reference::sasl::{
    Mechanism, cram_md5, digest_md5, oauthbearer, plain, scram, xoauth2,
};

/// What an exchange reveals: passwords and tokens (never to be written) and the
/// names used (replaced under `--redact`). No `Debug`: it holds passwords.
#[derive(Default)]
pub(super) struct Learned {
    pub(super) secrets: Vec<Vec<u8>>,
    pub(super) users: Vec<Vec<u8>>,
    pub(super) authzids: Vec<Vec<u8>>,
}

impl Learned {
    /// Learns from every AUTH exchange of a session.
    pub(super) fn from_events(events: &[Event]) -> Learned {
        let mut learned = Learned::default();
        let mut i = 0;
        while i < events.len() {
            if let Event::Client(l) = &events[i] {
                if l.verb() == "AUTH" {
                    let x = exchange(events, i);
                    learned.learn(&x);
                    i = x.next.max(i + 1);
                    continue;
                }
            }
            i += 1;
        }
        learned
    }

    fn secret(&mut self, s: &[u8]) {
        if !s.is_empty() && !self.secrets.iter().any(|x| x == s) {
            self.secrets.push(s.to_vec());
        }
    }

    fn user(&mut self, s: &[u8]) {
        if !s.is_empty() && !self.users.iter().any(|x| x == s) {
            self.users.push(s.to_vec());
        }
    }

    fn learn(&mut self, x: &Exchange) {
        let payloads = x.payloads();
        let Some(m) = x.mechanism else { return };
        match m {
            Mechanism::Plain => payloads.iter().for_each(|p| self.plain(&p.data)),
            Mechanism::Login => payloads.iter().for_each(|p| self.login(p)),
            Mechanism::XOAuth2 => {
                for p in &payloads {
                    match xoauth2::parse(&p.data) {
                        Ok((user, token)) => {
                            self.secret(token.expose());
                            self.user(user.as_bytes());
                        }
                        Err(_) => self.unparsed_token_message(&p.data),
                    }
                }
            }
            Mechanism::OAuthBearer => {
                for p in &payloads {
                    match oauthbearer::parse_client_response(&p.data) {
                        Ok(r) => {
                            self.secret(r.token.expose());
                            if let Some(a) = &r.authzid {
                                self.user(a.as_bytes());
                            }
                        }
                        Err(_) => self.unparsed_token_message(&p.data),
                    }
                }
            }
            Mechanism::CramMd5 => {
                for p in &payloads {
                    if let Ok((user, _)) = cram_md5::split_response(&p.data) {
                        self.user(user.as_bytes());
                    }
                }
            }
            Mechanism::DigestMd5 => {
                for p in &payloads {
                    let Ok(list) = digest_md5::parse_directives(&p.data) else {
                        continue;
                    };
                    for d in &list {
                        let name = d.name.as_str();
                        if name.eq_ignore_ascii_case("username")
                            || name.eq_ignore_ascii_case("authzid")
                        {
                            self.user(&d.value);
                        }
                    }
                }
            }
            m if scram::family(m).is_some() => {
                let first = payloads.first().filter(|p| p.position == 0);
                if let Some(Ok((authzid, user))) = first.map(|p| scram::client_first_names(&p.data))
                {
                    // RFC 5802 §5.1: the wire form escapes `,` and `=`; the name itself
                    // (in MAIL FROM, in text) is the unescaped one, and both must be
                    // redacted.
                    for name in authzid.iter().chain([&user]) {
                        self.user(name.as_bytes());
                        self.user(scram::escape_saslname(name).as_bytes());
                    }
                }
            }
            _ => {}
        }
    }

    /// PLAIN (RFC 4616) through its parser.
    fn plain(&mut self, p: &[u8]) {
        match plain::parse(p) {
            Ok(m) => {
                self.secret(m.password.expose());
                self.user(m.authcid.as_bytes());
                if !m.authzid.is_empty() {
                    self.authzids.push(m.authzid.into_bytes());
                }
            }
            // Not well-formed: everything after the last NUL may be the password, and
            // the whole payload is kept out anyway.
            Err(_) => {
                let last = p.rsplit(|b| *b == 0).next().unwrap_or(p);
                self.secret(last);
            }
        }
    }

    /// LOGIN has no grammar, only prompts: the draft's prompts name the field; without
    /// them the order does (user name first).
    fn login(&mut self, p: &Payload) {
        let prompt = p
            .challenge
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).to_ascii_lowercase())
            .unwrap_or_default();
        if prompt.contains("pass") || (p.position > 0 && !prompt.contains("user")) {
            self.secret(&p.data);
        } else {
            self.user(&p.data);
        }
    }

    /// An XOAUTH2 or OAUTHBEARER message its parser refused still carries a token, and
    /// a server may echo it. Both formats name it `auth=` and end it with 0x01, so
    /// whatever follows an `auth=` is taken for a secret, and so is what follows its
    /// scheme word (`Bearer`, RFC 6750 §2.1).
    fn unparsed_token_message(&mut self, p: &[u8]) {
        const KEY: &[u8] = b"auth=";
        let Some(at) = p.windows(KEY.len()).position(|w| w == KEY) else {
            return;
        };
        let rest = &p[at + KEY.len()..];
        let value = rest.split(|b| *b == 0x01).next().unwrap_or(rest);
        self.secret(value);
        if let Some(sp) = value.iter().position(|b| *b == b' ') {
            self.secret(value[sp + 1..].trim_ascii_start());
        }
    }
}

/// Builds the text replacements that apply to everything recorded. No `Debug`: its
/// rules hold passwords.
#[derive(Default)]
pub(super) struct Rewrites {
    /// (needle, replacement, whole word), longest needles first.
    rules: Vec<(Vec<u8>, Piece, bool)>,
    /// base64 forms of secrets: a line holding one is withheld.
    cores: Vec<String>,
}

impl Rewrites {
    pub(super) fn new(learned: &Learned, hosts: &Hosts, redact: bool) -> Rewrites {
        let mut rules = Vec::new();
        for s in &learned.secrets {
            rules.push((s.clone(), Piece::Var("password"), false));
        }
        if redact {
            for u in &learned.users {
                rules.push((u.clone(), Piece::Var("user"), true));
            }
            for z in &learned.authzids {
                rules.push((z.clone(), Piece::Var("authzid"), true));
            }
            if let Some(h) = &hosts.server {
                rules.push((
                    h.clone(),
                    Piece::Placeholder(hosts::SERVER_PLACEHOLDER),
                    true,
                ));
            }
            if let Some(h) = &hosts.client {
                rules.push((
                    h.clone(),
                    Piece::Placeholder(hosts::CLIENT_PLACEHOLDER),
                    true,
                ));
            }
        }
        // Longest first, so a password that contains the user name is replaced whole.
        rules.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        let cores = learned
            .secrets
            .iter()
            .flat_map(|s| base64_cores(s))
            .collect();
        Rewrites { rules, cores }
    }

    pub(super) fn apply(&self, mut p: Pieces) -> Pieces {
        for (needle, with, word) in &self.rules {
            p.replace(needle, with, *word);
        }
        p
    }

    pub(super) fn bytes(&self, b: &[u8]) -> Pieces {
        self.apply(Pieces::literal(b))
    }

    /// Whether the literals still hold a secret's base64.
    pub(super) fn leaks(&self, p: &Pieces) -> bool {
        p.0.iter().any(|piece| match piece {
            Piece::Lit(b) => {
                let s = String::from_utf8_lossy(b);
                self.cores.iter().any(|c| s.contains(c.as_str()))
            }
            _ => false,
        })
    }
}
