//! AUTH exchanges as steps. A mechanism authspec implements becomes an `auth` step
//! (client role) and an `expect_auth` step or the recorded challenges (server role),
//! so a replay computes fresh responses for fresh challenges (CRAM-MD5, DIGEST-MD5 and
//! SCRAM nonces differ every run, RFC 2195 §2, RFC 2831 §2.1.1, RFC 5802 §5) and no
//! client payload is ever written. Other mechanisms (NTLM, GSSAPI) and AUTH lines the
//! reference parser refuses are written as they went, every payload withheld.

use super::events::ClientLine;
use super::exchange::{Exchange, WITHHELD_PAYLOAD, exchange};
use super::session::Builder;
use super::text::{Pieces, printable};
use crate::scenario::{
    Auth, Challenge, ChallengeOptions, CodeSpec, Expect, ExpectAuth, ExpectCommand, ExpectResponse,
    InitialResponse, Sasl, Send, Step,
};
use authspec_reference::sasl::{Mechanism, plain};

/// The password a replay uses where the recorded client failed with 535: the recorded
/// wrong password may be a near miss of the real one, so it is not kept.
const WRONG_PASSWORD: &str = "authspec-recorded-wrong-password";

impl Builder<'_> {
    /// An AUTH exchange. Returns the next event index.
    pub(super) fn auth(&mut self, i: usize) -> usize {
        self.auth_seen = true;
        let x = exchange(self.events, i);
        let next = x.next.max(i + 1);
        let outcome = x
            .last
            .as_ref()
            .map(|(r, _)| r.code.to_string())
            .unwrap_or_else(|| "unfinished".into());
        self.summarize(format!(
            "AUTH {} ({outcome})",
            printable(&x.mech_name.to_ascii_uppercase(), 24)
        ));
        for n in &x.notes {
            self.note(n);
        }
        match x.mechanism {
            Some(m) => {
                if !self.mechanisms.contains(&m.name().to_string()) {
                    self.mechanisms.push(m.name().to_string());
                }
                self.known_auth(m, &x);
            }
            None => self.raw_auth(&x, i),
        }
        next
    }

    fn known_auth(&mut self, m: Mechanism, x: &Exchange) {
        let Some((last, last_raw)) = &x.last else {
            self.note("the SASL exchange did not finish; the recording ends here");
            self.end_client("unfinished SASL exchange");
            self.end_server("unfinished SASL exchange");
            return;
        };
        let expect = self.expect_for(last, Some("AUTH"));
        let succeeded = last.code == 235;
        // RFC 4954 §4: 535 means the credentials were checked and refused. Other
        // failures (504, 534, 538, 454) do not depend on the password.
        let refused = last.code == 535 && (x.ir.is_some() || !x.rounds.is_empty());
        let token_mech = matches!(m, Mechanism::XOAuth2 | Mechanism::OAuthBearer);
        let password = if refused {
            self.vars
                .insert("wrong_password".into(), WRONG_PASSWORD.into());
            "${wrong_password}"
        } else {
            "${password}"
        };
        if x.cancelled {
            // The client gave up: what it sent before is a payload, not written.
            self.note("the client cancelled the exchange with `*`; its earlier responses are not recorded");
            self.client_step(Step::Send(Send::Line(format!("AUTH {}", m.name()))));
            self.client_step(Step::Expect(Expect::code(334)));
            self.client_step(Step::Sasl(Sasl {
                cancel: true,
                ..Sasl::default()
            }));
            self.client_step(Step::Expect(expect));
        } else if m == Mechanism::Login && x.ir.is_some() {
            // LOGIN with the user name on the AUTH line, as smtplib does. `auth`
            // sends LOGIN without it, so the exchange is written out with variables.
            self.client_step(Step::Send(Send::Line("AUTH LOGIN ${user|base64}".into())));
            self.client_step(Step::Expect(Expect::code(334)));
            self.client_step(Step::Sasl(Sasl {
                base64_of: Some(password.into()),
                ..Sasl::default()
            }));
            self.client_step(Step::Expect(expect));
        } else {
            let authzid = if m == Mechanism::Plain {
                self.plain_authzid(x)
            } else {
                None
            };
            let (user, pw, token) = match m {
                Mechanism::Anonymous | Mechanism::External => (None, None, None),
                _ if token_mech => (
                    Some("${user}".to_string()),
                    None,
                    Some(
                        if refused {
                            "${wrong_token}"
                        } else {
                            "${token}"
                        }
                        .to_string(),
                    ),
                ),
                _ => (
                    Some("${user}".to_string()),
                    Some(password.to_string()),
                    None,
                ),
            };
            if refused && token_mech {
                self.vars
                    .insert("wrong_token".into(), "authspec-recorded-wrong-token".into());
                self.vars.remove("wrong_password");
            }
            self.client_step(Step::Auth(Auth {
                mechanism: m.name().to_string(),
                user,
                password: pw,
                authzid,
                token,
                initial_response: if x.ir.is_some() {
                    InitialResponse::Always
                } else {
                    InitialResponse::Never
                },
                expect: Some(expect),
                channel_binding: None,
            }));
        }
        if succeeded && !x.cancelled {
            let (user, password) =
                if matches!(m, Mechanism::Anonymous | Mechanism::External) || token_mech {
                    (None, None)
                } else {
                    (Some("${user}".to_string()), Some("${password}".to_string()))
                };
            let reply = match self.reply_step(last, last_raw) {
                Step::Reply(r) => Some(r),
                _ => None,
            };
            self.server_step(Step::ExpectAuth(ExpectAuth {
                mechanism: m.name().to_string(),
                user,
                password,
                authzid: None,
                reply,
                level: None,
                quote: None,
            }));
        } else {
            self.server_rounds(x, Some(m.name()));
        }
    }

    /// The authzid a PLAIN client sent, if any, as the file writes it.
    fn plain_authzid(&self, x: &Exchange) -> Option<String> {
        let payload = x.first_payload()?;
        let m = plain::parse(&payload).ok()?;
        let p = self.rw.bytes(m.authzid.as_bytes());
        // An authzid with control characters cannot be written as plain text; the
        // replay then authenticates without one.
        (!m.authzid.is_empty() && p.is_plain_text()).then(|| p.plain())
    }

    /// The server's side of an exchange that is not replayed by `expect_auth`: the
    /// AUTH command, the recorded challenges, any response, the final reply.
    fn server_rounds(&mut self, x: &Exchange, mech: Option<&str>) {
        let valid_name = |n: &str| {
            (1..=20).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        let name = mech
            .map(str::to_string)
            .unwrap_or_else(|| x.mech_name.clone());
        let cmd = if valid_name(&name) {
            ExpectCommand {
                auth_mechanism: Some(name),
                ..ExpectCommand::default()
            }
        } else {
            ExpectCommand {
                verb: Some("AUTH".into()),
                args: Some(format!(
                    "{}*",
                    Pieces::literal(x.mech_name.as_bytes()).pattern()
                )),
                ..ExpectCommand::default()
            }
        };
        self.server_step(Step::ExpectCommand(cmd));
        for (r, raw, resp) in &x.rounds {
            let text = r
                .lines
                .first()
                .map(|l| String::from_utf8_lossy(&l.text).into_owned())
                .unwrap_or_default();
            let challenge = if r.is_bare_334() {
                Challenge::Options(ChallengeOptions {
                    bare: true,
                    ..ChallengeOptions::default()
                })
            } else if text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            {
                Challenge::Base64(text.replace('$', "$$"))
            } else {
                // Not base64: send the line as it was.
                let s = self.reply_step(r, raw);
                self.server_step(s);
                self.server_resp(resp.as_ref());
                continue;
            };
            self.server_step(Step::Challenge(challenge));
            self.server_resp(resp.as_ref());
        }
        if let Some((last, raw)) = &x.last {
            let s = self.reply_step(last, raw);
            self.server_step(s);
        }
    }

    fn server_resp(&mut self, resp: Option<&ClientLine>) {
        match resp {
            Some(r) if r.bytes == b"*" => self.server_step(Step::ExpectResponse(ExpectResponse {
                cancel: true,
                ..ExpectResponse::default()
            })),
            Some(_) => self.server_step(Step::ExpectResponse(ExpectResponse {
                base64: Some("*".into()),
                ..ExpectResponse::default()
            })),
            None => {}
        }
    }

    /// A mechanism authspec does not implement, or an AUTH line it cannot parse: the
    /// exchange as it went, with every payload withheld. authspec cannot tell which
    /// part of an unknown mechanism's messages derives from the password (NTLM's
    /// responses do), so none is written.
    fn raw_auth(&mut self, x: &Exchange, _i: usize) {
        let name = printable(&x.mech_name.to_ascii_uppercase(), 24);
        if x.malformed {
            self.non_portable.push(
                "an AUTH line without RFC 4954's shape was replaced; its arguments are withheld"
                    .into(),
            );
            self.client_step(Step::Send(Send::Line(format!("AUTH {WITHHELD_PAYLOAD}"))));
        } else {
            self.non_portable.push(format!(
                "{name} is not implemented by authspec; its exchange is replayed with every payload withheld"
            ));
            let line = match &x.ir {
                Some(_) => format!("AUTH {name} {WITHHELD_PAYLOAD}"),
                None => format!("AUTH {name}"),
            };
            self.client_step(Step::Send(Send::Line(line)));
        }
        for (r, _, resp) in &x.rounds {
            let e = self.expect_for(r, Some("AUTH"));
            self.client_step(Step::Expect(Expect {
                code: Some(CodeSpec::Exact(334)),
                bare_334: e.bare_334,
                ..Expect::default()
            }));
            match resp {
                Some(r) if r.bytes == b"*" => self.client_step(Step::Sasl(Sasl {
                    cancel: true,
                    ..Sasl::default()
                })),
                Some(_) => self.client_step(Step::Sasl(Sasl {
                    send: Some(WITHHELD_PAYLOAD.into()),
                    ..Sasl::default()
                })),
                None => {}
            }
        }
        match &x.last {
            Some((last, _)) => {
                let e = self.expect_for(last, Some("AUTH"));
                self.client_step(Step::Expect(e));
            }
            None => self.note("the SASL exchange did not finish"),
        }
        self.server_rounds(x, None);
    }
}
