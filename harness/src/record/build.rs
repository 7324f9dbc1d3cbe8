//! From a session's events to two scenarios: the client's side (replayed against a
//! server) and the server's side (replayed to judge a client), and their YAML text.
//!
//! The work is split by concern: [`super::exchange`] reads AUTH exchanges,
//! [`super::redact`] learns their credentials through the reference mechanism parsers
//! and rewrites recorded text, [`super::hosts`] learns host names, and
//! [`super::session`] with [`super::auth_steps`] writes the steps. This file puts the
//! pieces together and writes the file header.
//!
//! SASL exchanges of mechanisms authspec implements become `auth` / `expect_auth`
//! steps and credentials become `${user}` and `${password}`; other mechanisms (NTLM,
//! GSSAPI) are written as they went, payloads withheld, and the scenario is tagged
//! `non-portable`.

use super::events::Event;
use super::hosts::learn_hosts;
use super::redact::{Learned, Rewrites};
use super::session::Builder;
use super::text::printable;
use crate::scenario::{Clause, Role, ScenarioFile, Step};
use std::collections::BTreeMap;

/// What the recording is allowed to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Also replace user names and host names (`--redact`).
    pub redact: bool,
}

/// Where and when a session was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// 1 for the proxy's first session.
    pub number: u64,
    /// `20250113T101500Z`: part of the file names and ids, so recordings from several
    /// runs can live in one folder.
    pub stamp: String,
    /// The client's address, as the proxy saw it.
    pub client: String,
    pub target: String,
}

impl SessionInfo {
    /// `20250113T101500Z-001`.
    pub fn name(&self) -> String {
        format!("{}-{:03}", self.stamp, self.number)
    }
}

/// The two scenarios of one session, with their notes (written as comments).
#[derive(Clone)]
pub struct Recording {
    pub client: Option<ScenarioFile>,
    pub server: Option<ScenarioFile>,
    pub client_notes: Vec<String>,
    pub server_notes: Vec<String>,
    /// Passwords and tokens seen in the session; never written, kept to check that
    /// no recorded file contains them in any form.
    pub secrets: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("client", &self.client.as_ref().map(|c| &c.id))
            .field("server", &self.server.as_ref().map(|s| &s.id))
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

/// Builds both scenarios of a session.
pub fn build(events: &[Event], info: &SessionInfo, opts: &Options) -> Recording {
    let learned = Learned::from_events(events);
    let hosts = learn_hosts(events);
    let mut b = Builder::new(events, Rewrites::new(&learned, &hosts, opts.redact));
    b.run();
    if opts.redact && !learned.authzids.is_empty() {
        b.client_notes.push(
            "--redact: the authorization identity is `${authzid}`; supply it with --var".into(),
        );
    }
    let mut spec: Vec<Clause> = Vec::new();
    let clause = |s: &str| s.parse::<Clause>().ok();
    if !b.mechanisms.is_empty() || !b.non_portable.is_empty() {
        spec.extend(clause("RFC4954 §4"));
    }
    if b.starttls {
        spec.extend(clause("RFC3207 §4"));
    }
    if spec.is_empty() {
        spec.extend(clause("RFC5321 §4.1"));
    }
    let mut tags = vec!["recorded".to_string()];
    tags.extend(b.mechanisms.iter().map(|m| m.to_ascii_lowercase()));
    if b.starttls {
        tags.push("starttls".into());
    }
    if !b.non_portable.is_empty() {
        tags.push("non-portable".into());
    }
    for t in &b.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let client_steps = std::mem::take(&mut b.client);
    let server_steps = std::mem::take(&mut b.server);
    let file = |role: Role, steps: Vec<Step>| -> Option<ScenarioFile> {
        if steps.is_empty() {
            return None;
        }
        let suffix = match role {
            Role::Client => "client",
            Role::Server => "server",
        };
        Some(ScenarioFile {
            id: format!("recorded/{}-{suffix}", info.name()),
            title: b.title(role),
            spec: spec.clone(),
            tags: tags.clone(),
            requires: Default::default(),
            level: None,
            quote: None,
            profile: BTreeMap::new(),
            role,
            // Only the client role replays a refused exchange with a wrong password.
            vars: if role == Role::Client {
                b.vars.clone()
            } else {
                BTreeMap::new()
            },
            for_each_mechanism: Vec::new(),
            steps: Some(steps),
            transcript: None,
        })
    };
    let client = file(Role::Client, client_steps);
    let server = file(Role::Server, server_steps);
    let mut client_notes = std::mem::take(&mut b.client_notes);
    let mut server_notes = std::mem::take(&mut b.server_notes);
    for np in &b.non_portable {
        client_notes.push(format!("non-portable: {np}"));
        server_notes.push(format!("non-portable: {np}"));
    }
    Recording {
        client,
        server,
        client_notes,
        server_notes,
        secrets: learned.secrets,
    }
}

/// The YAML text of a recorded scenario: a comment header (how it was recorded, how
/// to replay it, the notes), then the scenario.
pub fn render(
    file: &ScenarioFile,
    info: &SessionInfo,
    notes: &[String],
    redact: bool,
) -> Result<String, serde_yaml::Error> {
    let yaml = serde_yaml::to_string(file)?;
    let mut out = String::new();
    let mut comment = |s: &str| {
        out.push_str("# ");
        out.push_str(&printable(s, 4000));
        out.push('\n');
    };
    comment(&format!(
        "Recorded by `authspec record`, session {} ({}).",
        info.number, info.stamp
    ));
    if !redact {
        comment(&format!(
            "Client {} -> target {}.",
            info.client, info.target
        ));
    }
    match file.role {
        Role::Client => comment(
            "Replay: authspec run THIS_FILE --target HOST:PORT --var user=USER --var password-env=VAR",
        ),
        Role::Server => comment(
            "Replay: authspec run THIS_FILE --client-command 'CLIENT {host} {port}' --var user=USER --var password-env=VAR",
        ),
    }
    if !notes.is_empty() {
        comment("Notes:");
        for n in notes {
            comment(&format!("- {n}"));
        }
    }
    out.push_str(&yaml);
    Ok(out)
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "build_hostile.rs"]
mod hostile;
