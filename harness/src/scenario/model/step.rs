//! `Step`: one step of a scenario, the YAML key that names it and the role it
//! belongs to, generated once by `steps!` for every kind.

use super::*;

// ---------------------------------------------------------------------------------------
// Steps

/// Which role a step kind belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRole {
    Client,
    Server,
    Either,
}

/// How a string field is expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Plain,
    Pattern,
    Raw,
}

macro_rules! steps {
    ($( $(#[$doc:meta])* $variant:ident($ty:ty) = $key:literal, $role:ident; )*) => {
        /// One step of a scenario. In YAML a step is a map with exactly one key, the kind.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Step {
            $( $(#[$doc])* $variant($ty), )*
        }

        /// Every step kind, as written in YAML.
        pub const STEP_KINDS: &[&str] = &[$($key),*];

        impl Step {
            /// The kind as written in YAML (`send`, `expect`, …).
            pub fn kind(&self) -> &'static str {
                match self { $( Step::$variant(_) => $key, )* }
            }

            /// Which role may use this step.
            pub fn role(&self) -> StepRole {
                match self { $( Step::$variant(_) => StepRole::$role, )* }
            }
        }

        impl Serialize for Step {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                match self { $( Step::$variant(v) => map.serialize_entry($key, v)?, )* }
                map.end()
            }
        }

        impl<'de> Deserialize<'de> for Step {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Step, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Step;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a step: a map with one key naming the kind, e.g. `send: EHLO x`")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
                        let Some(key) = map.next_key::<String>()? else {
                            return Err(de::Error::custom(
                                "empty step: expected one key naming the kind",
                            ));
                        };
                        let step = match key.as_str() {
                            $( $key => Step::$variant(map.next_value()?), )*
                            other => return Err(de::Error::unknown_variant(other, STEP_KINDS)),
                        };
                        if let Some(extra) = map.next_key::<String>()? {
                            return Err(de::Error::custom(format!(
                                "a step has exactly one key, but `{key}` is followed by `{extra}`; \
                                 put options inside the step, e.g. `{key}: {{ … }}`"
                            )));
                        }
                        Ok(step)
                    }
                }
                d.deserialize_map(V)
            }
        }

        impl JsonSchema for Step {
            fn schema_name() -> String {
                "Step".to_owned()
            }
            fn json_schema(g: &mut SchemaGenerator) -> Schema {
                let variants = vec![ $( single_key($key, subschema::<$ty>(g)), )* ];
                Schema::Object(schemars::schema::SchemaObject {
                    subschemas: Some(Box::new(schemars::schema::SubschemaValidation {
                        one_of: Some(variants),
                        ..Default::default()
                    })),
                    ..Default::default()
                })
            }
        }
    };
}

steps! {
    /// Send a line (both roles: raw bytes to the peer).
    Send(Send) = "send", Either;
    /// Send bytes written as hex.
    SendBytes(SendBytes) = "send_bytes", Either;
    /// Send several command lines in one write (RFC 2920).
    Pipeline(Vec<String>) = "pipeline", Client;
    /// Check the next reply.
    Expect(Expect) = "expect", Client;
    /// The server closes the connection.
    ExpectClose(ExpectClose) = "expect_close", Client;
    /// A SASL exchange computed from the server's challenges.
    Auth(Auth) = "auth", Client;
    /// A hand-written SASL response line.
    Sasl(Sasl) = "sasl", Client;
    /// STARTTLS and the TLS handshake.
    Starttls(Starttls) = "starttls", Client;
    /// Judge the answer to a smuggling payload: safe or vulnerable.
    ExpectSmuggling(ExpectSmuggling) = "expect_smuggling", Client;
    /// Pause.
    Wait(WaitDuration) = "wait", Either;
    /// QUIT, 221, close.
    Quit(Quit) = "quit", Client;
    /// Send a reply (server role).
    Reply(Reply) = "reply", Server;
    /// Check the client's next line (server role).
    ExpectCommand(ExpectCommand) = "expect_command", Server;
    /// Send a 334 challenge (server role).
    Challenge(Challenge) = "challenge", Server;
    /// Check the client's SASL response (server role).
    ExpectResponse(ExpectResponse) = "expect_response", Server;
    /// Run the server side of a SASL exchange and check the credentials (server role).
    ExpectAuth(ExpectAuth) = "expect_auth", Server;
    /// The client closes the connection (server role).
    ExpectClientClose(ExpectClientClose) = "expect_client_close", Server;
    /// Read STARTTLS, answer 220 and run the TLS handshake as the server (server role).
    AcceptStarttls(AcceptStarttls) = "accept_starttls", Server;
    /// The client sends nothing for this long (server role).
    ExpectNoCommand(WaitDuration) = "expect_no_command", Server;
    /// The client command's exit status (server role, `--client-command`).
    ExpectExit(ExpectExit) = "expect_exit", Server;
}

impl Step {
    /// The level and quote this step names for its own check, if it names one.
    pub fn own_level(&self) -> (Option<Requirement>, Option<&str>) {
        fn pick<'a>(
            l: &Option<Requirement>,
            q: &'a Option<String>,
        ) -> (Option<Requirement>, Option<&'a str>) {
            (*l, q.as_deref())
        }
        match self {
            Step::Expect(e) => pick(&e.level, &e.quote),
            Step::ExpectClose(c) => pick(&c.level, &c.quote),
            Step::ExpectSmuggling(c) => pick(&c.level, &c.quote),
            Step::Auth(a) => a
                .expect
                .as_ref()
                .map_or((None, None), |e| pick(&e.level, &e.quote)),
            Step::Starttls(s) => s
                .expect
                .as_ref()
                .map_or((None, None), |e| pick(&e.level, &e.quote)),
            Step::ExpectCommand(c) => pick(&c.level, &c.quote),
            Step::ExpectResponse(r) => pick(&r.level, &r.quote),
            Step::ExpectAuth(a) => pick(&a.level, &a.quote),
            Step::ExpectClientClose(c) => pick(&c.level, &c.quote),
            Step::ExpectExit(x) => pick(&x.level, &x.quote),
            _ => (None, None),
        }
    }

    /// Visits every string that may hold `${…}`, with how it is to be expanded.
    pub(crate) fn strings_mut(&mut self, f: &mut dyn FnMut(&mut String, Slot)) {
        match self {
            Step::Send(s) => {
                let slot = if s.raw() { Slot::Raw } else { Slot::Plain };
                f(s.line_mut(), slot);
            }
            Step::SendBytes(_)
            | Step::ExpectSmuggling(_)
            | Step::ExpectClose(_)
            | Step::Wait(_)
            | Step::Quit(_)
            | Step::ExpectExit(_)
            | Step::AcceptStarttls(_)
            | Step::ExpectNoCommand(_) => {}
            Step::ExpectClientClose(c) => {
                if let Some(r) = &mut c.reply_to_others {
                    r.strings_mut(f);
                }
            }
            Step::Pipeline(lines) => lines.iter_mut().for_each(|l| f(l, Slot::Plain)),
            Step::Expect(e) => e.strings_mut(f),
            Step::Auth(a) => {
                f(&mut a.mechanism, Slot::Plain);
                for s in [&mut a.user, &mut a.password, &mut a.authzid, &mut a.token]
                    .into_iter()
                    .flatten()
                {
                    f(s, Slot::Plain);
                }
                if let Some(e) = &mut a.expect {
                    e.strings_mut(f);
                }
            }
            Step::Sasl(s) => {
                for v in [&mut s.send, &mut s.base64_of].into_iter().flatten() {
                    f(v, Slot::Raw);
                }
            }
            Step::Starttls(s) => {
                if let Some(e) = &mut s.expect {
                    e.strings_mut(f);
                }
            }
            Step::Reply(r) => r.strings_mut(f),
            Step::ExpectCommand(c) => {
                for v in [&mut c.verb, &mut c.auth_mechanism].into_iter().flatten() {
                    f(v, Slot::Plain);
                }
                for v in [&mut c.args, &mut c.line].into_iter().flatten() {
                    f(v, Slot::Pattern);
                }
            }
            Step::Challenge(c) => match c {
                Challenge::Base64(b) => f(b, Slot::Plain),
                Challenge::Options(o) => {
                    for v in [&mut o.base64, &mut o.encode].into_iter().flatten() {
                        f(v, Slot::Plain);
                    }
                }
            },
            Step::ExpectResponse(r) => {
                for v in [&mut r.decoded, &mut r.base64].into_iter().flatten() {
                    f(v, Slot::Pattern);
                }
            }
            Step::ExpectAuth(a) => {
                f(&mut a.mechanism, Slot::Plain);
                for s in [&mut a.user, &mut a.password, &mut a.authzid]
                    .into_iter()
                    .flatten()
                {
                    f(s, Slot::Plain);
                }
                if let Some(r) = &mut a.reply {
                    r.strings_mut(f);
                }
            }
        }
    }

    /// The step with every `${…}` replaced by its value: plainly in text that is sent,
    /// glob-escaped in patterns, backslash-escaped in raw strings. Credentials left out
    /// of `auth`/`expect_auth` are filled from `user`, `password` and `token` when set.
    pub fn expand(&self, vars: &crate::scenario::Vars) -> Result<Step, crate::scenario::VarError> {
        let mut step = self.clone();
        match &mut step {
            Step::Auth(a) => {
                fill_default(&mut a.user, "user", vars);
                fill_default(&mut a.password, "password", vars);
                fill_default(&mut a.token, "token", vars);
            }
            Step::ExpectAuth(a) => {
                fill_default(&mut a.user, "user", vars);
                fill_default(&mut a.password, "password", vars);
            }
            _ => {}
        }
        let mut result = Ok(());
        step.strings_mut(&mut |s, slot| {
            if result.is_err() {
                return;
            }
            let context = match slot {
                Slot::Plain => crate::scenario::vars::Context::Plain,
                Slot::Pattern => crate::scenario::vars::Context::Pattern,
                Slot::Raw => crate::scenario::vars::Context::Raw,
            };
            match vars.expand_in(s, context) {
                Ok(v) => *s = v,
                Err(e) => result = Err(e),
            }
        });
        result.map(|()| step)
    }
}

fn fill_default(field: &mut Option<String>, name: &str, vars: &crate::scenario::Vars) {
    if field.is_none() && vars.get(name).is_some() {
        *field = Some(format!("${{{name}}}"));
    }
}
