//! Coverage: which normative statements of the RFCs the scenario library checks, and
//! which it does not.
//!
//! The data path: the catalog (`scenarios/coverage.yaml`, one entry per MUST / SHOULD /
//! MAY, each naming the scenarios that check it by id or glob) → [`Catalog::parse`]
//! (typed, validated on its own) → [`resolve`] against a set of loaded scenarios (globs
//! become ids; typos and scenarios that do not cite the clause are reported as
//! [`Finding`]s) → [`Coverage`], rendered as the Markdown table in `scenarios/README.md`
//! ([`Coverage::markdown`]) or as JSON ([`Coverage::json`]).
//!
//! An entry with an empty `scenarios` list is a known gap, shown as such in the table;
//! its `note` says why (not written yet, or not observable from outside the server).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::scenario::pattern::glob_match;
use crate::scenario::{Clause, Scenario};

/// The catalog's file name at the top of a scenario library. The loaders skip it: it is
/// not a scenario.
pub const CATALOG_FILE: &str = "coverage.yaml";

/// The bundled catalog, `scenarios/coverage.yaml`.
pub const BUNDLED_CATALOG: &str = include_str!("../scenarios/coverage.yaml");

/// The generated table sits between these two lines of a Markdown file.
pub const START_MARKER: &str = "<!-- coverage:start -->";
/// See [`START_MARKER`].
pub const END_MARKER: &str = "<!-- coverage:end -->";

/// Longest accepted catalog, against a runaway file.
pub const MAX_CATALOG_SIZE: usize = 1 << 20;

// ---------------------------------------------------------------------------------------
// The catalog

/// An RFC the catalog draws from, in the order the table lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rfc {
    /// `RFC4954`, as clauses write it.
    pub rfc: String,
    /// `SMTP Service Extension for Authentication`.
    pub title: String,
    /// Which sections the catalog covers, for the reader: `§4–§9, §14`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// One normative statement and the scenarios that check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Stable id: lower-case letters, digits, `-` and `.`, such as `rfc4954-4-cancel-501`.
    pub id: String,
    /// Where the statement is and its level: `RFC4954 §4 MUST`.
    pub clause: Clause,
    /// The statement, quoted short or paraphrased.
    pub text: String,
    /// Scenario ids or globs (`mechanisms/*/cancel`); empty for a gap.
    #[serde(default)]
    pub scenarios: Vec<String>,
    /// Why this is a gap, or what the scenarios do and do not show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    rfcs: Vec<Rfc>,
    entries: Vec<Entry>,
}

/// A parsed and validated catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub rfcs: Vec<Rfc>,
    pub entries: Vec<Entry>,
}

/// Why a catalog does not load. Every variant but `Io`/`Yaml` names the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// The file could not be read, or is too large.
    Io(String),
    /// YAML syntax, a misspelt key, a wrong type or a malformed clause, with the line.
    Yaml {
        line: Option<usize>,
        message: String,
    },
    /// An id that is not lower-case letters, digits, `-` and `.`.
    BadId { id: String },
    /// Two entries with the same id.
    DuplicateId { id: String },
    /// Two `rfcs` items for the same RFC.
    DuplicateRfc { rfc: String },
    /// An entry's clause names an RFC missing from `rfcs`.
    UnlistedRfc { id: String, rfc: String },
    /// An entry without its statement.
    EmptyText { id: String },
    /// An empty string in `scenarios`.
    EmptyPattern { id: String },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::Io(m) => f.write_str(m),
            CatalogError::Yaml { line, message } => match line {
                Some(l) => write!(f, "line {l}: {message}"),
                None => f.write_str(message),
            },
            CatalogError::BadId { id } => write!(
                f,
                "entry {id:?}: an id is lower-case letters, digits, '-' and '.' (rfc4954-4-cancel-501)"
            ),
            CatalogError::DuplicateId { id } => write!(f, "entry {id:?} appears twice"),
            CatalogError::DuplicateRfc { rfc } => write!(f, "{rfc} is listed twice in rfcs"),
            CatalogError::UnlistedRfc { id, rfc } => {
                write!(f, "entry {id:?}: {rfc} is not listed in rfcs")
            }
            CatalogError::EmptyText { id } => write!(f, "entry {id:?}: text is empty"),
            CatalogError::EmptyPattern { id } => {
                write!(f, "entry {id:?}: an empty string in scenarios")
            }
        }
    }
}

impl std::error::Error for CatalogError {}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

impl Catalog {
    /// Parses and validates a catalog; all errors are reported, not only the first.
    pub fn parse(text: &str) -> Result<Catalog, Vec<CatalogError>> {
        if text.len() > MAX_CATALOG_SIZE {
            return Err(vec![CatalogError::Io(format!(
                "larger than {MAX_CATALOG_SIZE} bytes"
            ))]);
        }
        let file: CatalogFile = serde_yaml::from_str(text).map_err(|e| {
            vec![CatalogError::Yaml {
                line: e.location().map(|l| l.line()),
                message: e.to_string(),
            }]
        })?;
        let mut errors = Vec::new();
        let mut rfcs = BTreeSet::new();
        for r in &file.rfcs {
            if !rfcs.insert(r.rfc.as_str()) {
                errors.push(CatalogError::DuplicateRfc { rfc: r.rfc.clone() });
            }
        }
        let mut ids = BTreeSet::new();
        for e in &file.entries {
            if !id_ok(&e.id) {
                errors.push(CatalogError::BadId { id: e.id.clone() });
            }
            if !ids.insert(e.id.as_str()) {
                errors.push(CatalogError::DuplicateId { id: e.id.clone() });
            }
            if !rfcs.contains(e.clause.rfc.as_str()) {
                errors.push(CatalogError::UnlistedRfc {
                    id: e.id.clone(),
                    rfc: e.clause.rfc.clone(),
                });
            }
            if e.text.trim().is_empty() {
                errors.push(CatalogError::EmptyText { id: e.id.clone() });
            }
            if e.scenarios.iter().any(|p| p.trim().is_empty()) {
                errors.push(CatalogError::EmptyPattern { id: e.id.clone() });
            }
        }
        if errors.is_empty() {
            Ok(Catalog {
                rfcs: file.rfcs,
                entries: file.entries,
            })
        } else {
            Err(errors)
        }
    }

    /// The bundled catalog.
    pub fn bundled() -> Result<Catalog, Vec<CatalogError>> {
        Catalog::parse(BUNDLED_CATALOG)
    }
}

// ---------------------------------------------------------------------------------------
// Resolving against scenarios

/// Something [`resolve`] noticed about the catalog and the scenario set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Error: a pattern matches no scenario id (a typo, or a scenario not written yet).
    /// The entry still counts what its other patterns match.
    UnknownScenario { entry: String, pattern: String },
    /// Warning: a matched scenario does not cite the entry's RFC and section in `spec:`,
    /// so its report would group it elsewhere.
    ClauseNotCited {
        entry: String,
        scenario: String,
        clause: String,
    },
}

impl Finding {
    /// Whether this finding makes the catalog wrong (rather than worth a look).
    pub fn is_error(&self) -> bool {
        matches!(self, Finding::UnknownScenario { .. })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::UnknownScenario { entry, pattern } => {
                write!(f, "error: entry {entry:?}: {pattern:?} matches no scenario")
            }
            Finding::ClauseNotCited {
                entry,
                scenario,
                clause,
            } => write!(
                f,
                "warning: entry {entry:?}: scenario {scenario} does not cite {clause} in its spec"
            ),
        }
    }
}

/// One catalog entry with the scenario ids its patterns matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub entry: Entry,
    /// Matched scenario ids, sorted, without repeats.
    pub matched: Vec<String>,
}

impl Row {
    /// Some scenario checks the statement.
    pub fn covered(&self) -> bool {
        !self.matched.is_empty()
    }
}

/// Counts for a group or the whole table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub requirements: usize,
    pub covered: usize,
    pub gaps: usize,
}

impl Totals {
    fn add(&mut self, covered: bool) {
        self.requirements += 1;
        if covered {
            self.covered += 1;
        } else {
            self.gaps += 1;
        }
    }
}

/// The rows of one RFC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    #[serde(flatten)]
    pub rfc: Rfc,
    pub totals: Totals,
    pub rows: Vec<Row>,
}

/// The catalog resolved against a scenario set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// How many scenarios the set holds.
    pub scenario_count: usize,
    /// One group per RFC with entries, in the catalog's `rfcs` order.
    pub groups: Vec<Group>,
    pub totals: Totals,
    pub findings: Vec<Finding>,
}

/// Whether clause sections `a` and `b` are the same or one contains the other
/// (`4` and `4.1`), so a scenario citing `§4.1` counts for an entry on `§4`.
fn sections_related(a: &str, b: &str) -> bool {
    let nested = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.'))
    };
    a == b || nested(a, b) || nested(b, a)
}

fn cites(scenario: &Scenario, clause: &Clause) -> bool {
    scenario
        .spec
        .iter()
        .any(|c| c.rfc == clause.rfc && sections_related(&c.section, &clause.section))
}

/// Resolves every entry's patterns against `scenarios`.
pub fn resolve(catalog: &Catalog, scenarios: &[Scenario]) -> Coverage {
    let mut findings = Vec::new();
    let mut groups: Vec<Group> = catalog
        .rfcs
        .iter()
        .map(|r| Group {
            rfc: r.clone(),
            totals: Totals::default(),
            rows: Vec::new(),
        })
        .collect();
    let mut totals = Totals::default();
    for entry in &catalog.entries {
        let mut matched = BTreeSet::new();
        for pattern in &entry.scenarios {
            let mut any = false;
            for s in scenarios.iter().filter(|s| glob_match(pattern, &s.id)) {
                any = true;
                if matched.insert(s.id.clone()) && !cites(s, &entry.clause) {
                    findings.push(Finding::ClauseNotCited {
                        entry: entry.id.clone(),
                        scenario: s.id.clone(),
                        clause: format!("{} §{}", entry.clause.rfc, entry.clause.section),
                    });
                }
            }
            if !any {
                findings.push(Finding::UnknownScenario {
                    entry: entry.id.clone(),
                    pattern: pattern.clone(),
                });
            }
        }
        let row = Row {
            entry: entry.clone(),
            matched: matched.into_iter().collect(),
        };
        totals.add(row.covered());
        // Catalog::parse checked that every clause's RFC is listed.
        if let Some(g) = groups.iter_mut().find(|g| g.rfc.rfc == entry.clause.rfc) {
            g.totals.add(row.covered());
            g.rows.push(row);
        }
    }
    groups.retain(|g| !g.rows.is_empty());
    Coverage {
        scenario_count: scenarios.len(),
        groups,
        totals,
        findings,
    }
}

// ---------------------------------------------------------------------------------------
// Rendering

/// `RFC4954` → `RFC 4954`, as prose writes it.
fn spaced(rfc: &str) -> String {
    match rfc.strip_prefix("RFC") {
        Some(n) => format!("RFC {n}"),
        None => rfc.to_owned(),
    }
}

/// Text for a Markdown table cell: one line, and the characters Markdown would take
/// as markup escaped, so `"*"` stays a star and `<host>` is not read as an HTML tag.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, word) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in word.chars() {
            if matches!(c, '\\' | '|' | '*' | '_' | '<' | '`') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

impl Coverage {
    /// One line for the top-level README: scenario count and totals.
    pub fn summary(&self) -> String {
        let rfcs: Vec<String> = self.groups.iter().map(|g| spaced(&g.rfc.rfc)).collect();
        format!(
            "{} scenarios; {} requirements from {}: {} covered, {} {}",
            self.scenario_count,
            self.totals.requirements,
            rfcs.join(", "),
            self.totals.covered,
            self.totals.gaps,
            if self.totals.gaps == 1 { "gap" } else { "gaps" },
        )
    }

    /// The Markdown that goes between the markers: totals, then one table per RFC.
    /// Deterministic: the same catalog and scenario ids give the same bytes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "_Generated by `authspec coverage --write scenarios/README.md` from \
             `scenarios/coverage.yaml` and the scenarios' ids; edit those, not this \
             table. A **gap** is a requirement no scenario checks yet, or one that cannot \
             be observed from outside (the note says which)._\n\n",
        );
        out.push_str(&format!("**{}.**\n\n", self.summary()));
        out.push_str("| RFC | sections | requirements | covered | gaps |\n");
        out.push_str("|---|---|--:|--:|--:|\n");
        for g in &self.groups {
            out.push_str(&format!(
                "| {} {} | {} | {} | {} | {} |\n",
                spaced(&g.rfc.rfc),
                cell(&g.rfc.title),
                cell(g.rfc.scope.as_deref().unwrap_or("")),
                g.totals.requirements,
                g.totals.covered,
                g.totals.gaps,
            ));
        }
        out.push_str(&format!(
            "| **all** | | **{}** | **{}** | **{}** |\n",
            self.totals.requirements, self.totals.covered, self.totals.gaps
        ));
        for g in &self.groups {
            out.push_str(&format!(
                "\n### {}: {}\n\n{} requirements, {} covered, {} {}.\n\n",
                spaced(&g.rfc.rfc),
                g.rfc.title,
                g.totals.requirements,
                g.totals.covered,
                g.totals.gaps,
                if g.totals.gaps == 1 { "gap" } else { "gaps" },
            ));
            out.push_str("| clause | requirement | scenarios | status |\n");
            out.push_str("|---|---|---|---|\n");
            for r in &g.rows {
                let mut clause = format!("§{}", r.entry.clause.section);
                if let Some(level) = r.entry.clause.level {
                    clause.push(' ');
                    clause.push_str(level.as_str());
                }
                let mut text = cell(&r.entry.text);
                if let Some(note) = &r.entry.note {
                    text.push_str(&format!(" — _{}_", cell(note)));
                }
                let ids: Vec<String> = r.matched.iter().map(|id| format!("`{id}`")).collect();
                let status = if r.covered() { "covered" } else { "**gap**" };
                out.push_str(&format!(
                    "| {clause} | {text} | {} | {status} |\n",
                    ids.join(", ")
                ));
            }
        }
        out
    }

    /// The same content as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "scenarios": self.scenario_count,
            "totals": self.totals,
            "summary": self.summary(),
            "rfcs": self.groups,
            "findings": self.findings.iter().map(|f| serde_json::json!({
                "severity": if f.is_error() { "error" } else { "warning" },
                "message": f.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// The table inside a Markdown file

/// The text between the markers (without them), if both are present in order.
pub fn extract(doc: &str) -> Option<&str> {
    span(doc).map(|(start, end)| &doc[start..end])
}

/// Byte offsets of the text between the markers.
fn span(doc: &str) -> Option<(usize, usize)> {
    let start = doc.find(START_MARKER)? + START_MARKER.len();
    let end = doc[start..].find(END_MARKER)? + start;
    Some((start, end))
}

/// `doc` with the text between the markers replaced by `table`. Without markers, a
/// "Coverage" section holding them is appended.
pub fn splice(doc: &str, table: &str) -> String {
    let body = format!("\n{}\n", table.trim_end());
    if let Some((start, end)) = span(doc) {
        return format!("{}{}{}", &doc[..start], body, &doc[end..]);
    }
    let mut out = doc.trim_end().to_owned();
    out.push_str(&format!(
        "\n\n## Coverage\n\n{START_MARKER}{body}{END_MARKER}\n"
    ));
    out
}

/// Whether the table in `doc` is `table` (ignoring surrounding blank lines); on a
/// mismatch, the first differing line numbers within the table and both texts.
pub fn check(doc: &str, table: &str) -> Result<(), CheckError> {
    let Some(found) = extract(doc) else {
        return Err(CheckError::NoMarkers);
    };
    let (a, b) = (found.trim(), table.trim());
    if a == b {
        return Ok(());
    }
    let mut found_lines = a.lines();
    let mut want_lines = b.lines();
    let mut n = 0;
    loop {
        n += 1;
        match (found_lines.next(), want_lines.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => return Ok(()),
            (x, y) => {
                return Err(CheckError::Stale {
                    line: n,
                    found: x.unwrap_or("").to_owned(),
                    expected: y.unwrap_or("").to_owned(),
                });
            }
        }
    }
}

/// Why `--check` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The file lacks the `<!-- coverage:start -->` / `<!-- coverage:end -->` pair.
    NoMarkers,
    /// The table differs from a fresh rendering, first at `line` (1-based, within the table).
    Stale {
        line: usize,
        found: String,
        expected: String,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::NoMarkers => write!(f, "no {START_MARKER} … {END_MARKER} section"),
            CheckError::Stale {
                line,
                found,
                expected,
            } => write!(
                f,
                "the coverage table is stale; first difference at table line {line}:\n  \
                 found:    {found}\n  expected: {expected}"
            ),
        }
    }
}

impl std::error::Error for CheckError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_nest_only_at_dots() {
        assert!(sections_related("4", "4"));
        assert!(sections_related("4", "4.1"));
        assert!(sections_related("2.1.2", "2.1"));
        assert!(!sections_related("4", "41"));
        assert!(!sections_related("4.1", "4.2"));
    }

    #[test]
    fn ids_are_lower_case_words() {
        assert!(id_ok("rfc4954-4-cancel-501"));
        assert!(!id_ok("RFC4954-4"));
        assert!(!id_ok("a b"));
        assert!(!id_ok("-a"));
        assert!(!id_ok(""));
    }

    #[test]
    fn splice_appends_then_replaces() {
        let doc = "# Scenarios\n\ntext\n";
        let once = splice(doc, "table one\n");
        assert_eq!(
            once,
            "# Scenarios\n\ntext\n\n## Coverage\n\n<!-- coverage:start -->\ntable one\n<!-- coverage:end -->\n"
        );
        let twice = splice(&once, "table two");
        assert_eq!(twice, once.replace("table one", "table two"));
        assert_eq!(extract(&twice).map(str::trim), Some("table two"));
        assert_eq!(check(&twice, "table two\n"), Ok(()));
        assert_eq!(
            check(&twice, "table three"),
            Err(CheckError::Stale {
                line: 1,
                found: "table two".into(),
                expected: "table three".into()
            })
        );
        assert_eq!(check(doc, "x"), Err(CheckError::NoMarkers));
    }

    #[test]
    fn cells_escape_markup_and_fold_lines() {
        assert_eq!(cell("a | b\n  c"), "a \\| b c");
        assert_eq!(
            cell(r#"a "*" <host> x_y `z` \"#),
            r#"a "\*" \<host> x\_y \`z\` \\"#
        );
    }
}
