//! `authspec coverage`: the RFC requirements the scenarios check, and the gaps.

use super::common::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, ScenariosError};
use crate::coverage::{self, Catalog, Coverage};
use crate::input::Unreadable;
use crate::scenario::{self, Scenario};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// The table for scenarios/README.md.
    Markdown,
    Json,
    /// One line: scenario count and totals, for the top-level README.
    Summary,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 done (or the table is up to date), 1 --check found \
the table stale, 2 bad arguments, a bad catalog or scenario file, or a catalog entry naming \
a scenario that does not exist (unless --allow-unknown).\n\n\
Examples:\n  authspec coverage                         # the table, bundled catalog and scenarios\n  \
authspec coverage --check scenarios/README.md\n  \
authspec coverage --write scenarios/README.md\n  \
authspec coverage --format summary"
)]
pub struct CoverageArgs {
    /// Scenario files or folders; by default the bundled library.
    pub paths: Vec<PathBuf>,
    /// The requirement catalog; by default the bundled scenarios/coverage.yaml.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Verify that the table between the coverage markers in FILE is up to date.
    #[arg(long, value_name = "FILE", conflicts_with = "write")]
    pub check: Option<PathBuf>,
    /// Rewrite the table between the coverage markers in FILE (appended if absent).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Report catalog patterns that match no scenario as warnings, not errors.
    #[arg(long)]
    pub allow_unknown: bool,
}

/// Loads the scenarios. Folders given together may hold the same scenario twice (two
/// checkouts of one library); coverage only needs ids and clauses, so the first copy
/// of an id wins and the others are named on stderr.
fn load(paths: &[PathBuf]) -> Result<Vec<Scenario>, ScenariosError> {
    if paths.is_empty() {
        return scenario::load_bundled().map_err(ScenariosError::Invalid);
    }
    let mut all = Vec::new();
    for p in paths {
        if p.is_dir() {
            all.extend(scenario::load_dir(p).map_err(ScenariosError::Invalid)?);
        } else {
            all.push(super::common::load_scenario_file(p)?);
        }
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    all.retain(|s| match seen.get(&s.id) {
        Some(first) => {
            eprintln!(
                "authspec coverage: note: {} repeats id {} of {first}; using the first",
                s.path, s.id
            );
            false
        }
        None => {
            seen.insert(s.id.clone(), s.path.clone());
            true
        }
    });
    Ok(all)
}

/// Why the clause catalog does not load.
#[derive(Debug)]
enum CatalogLoadError {
    Unreadable(Unreadable),
    /// Every broken entry, each named with the catalog's file.
    Invalid {
        name: String,
        errors: Vec<coverage::CatalogError>,
    },
}

impl std::fmt::Display for CatalogLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogLoadError::Unreadable(e) => e.fmt(f),
            CatalogLoadError::Invalid { name, errors } => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{name}: {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CatalogLoadError {}

fn catalog(path: Option<&PathBuf>) -> Result<Catalog, CatalogLoadError> {
    let (name, parsed) = match path {
        None => (
            "scenarios/coverage.yaml (bundled)".to_owned(),
            Catalog::bundled(),
        ),
        Some(p) => {
            let text = crate::input::read_named(p).map_err(CatalogLoadError::Unreadable)?;
            (p.display().to_string(), Catalog::parse(&text))
        }
    };
    parsed.map_err(|errors| CatalogLoadError::Invalid { name, errors })
}

pub fn run(args: CoverageArgs) -> u8 {
    let scenarios = match load(&args.paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("authspec coverage: {e}");
            return EXIT_USAGE;
        }
    };
    let catalog = match catalog(args.catalog.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authspec coverage: {e}");
            return EXIT_USAGE;
        }
    };
    let cov = coverage::resolve(&catalog, &scenarios);
    let mut errors = 0;
    for f in &cov.findings {
        if f.is_error() && !args.allow_unknown {
            errors += 1;
        }
        eprintln!("authspec coverage: {f}");
    }
    if errors > 0 {
        eprintln!(
            "authspec coverage: {errors} catalog pattern(s) match no scenario; fix the \
             catalog, or pass --allow-unknown"
        );
        return EXIT_USAGE;
    }
    if let Some(file) = &args.check {
        return check(file, &cov);
    }
    if let Some(file) = &args.write {
        return write(file, &cov);
    }
    match args.format {
        Format::Markdown => print!("{}", cov.markdown()),
        Format::Summary => println!("{}", cov.summary()),
        Format::Json => match serde_json::to_string_pretty(&cov.json()) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("authspec coverage: {e}");
                return EXIT_USAGE;
            }
        },
    }
    EXIT_OK
}

fn check(file: &PathBuf, cov: &Coverage) -> u8 {
    let doc = match std::fs::read_to_string(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("authspec coverage: {}: cannot read: {e}", file.display());
            return EXIT_USAGE;
        }
    };
    match coverage::check(&doc, &cov.markdown()) {
        Ok(()) => {
            println!("{}", cov.summary());
            EXIT_OK
        }
        Err(e) => {
            eprintln!(
                "authspec coverage: {}: {e}\nRun `authspec coverage --write {}` (with the \
                 same scenario paths) and commit the result.",
                file.display(),
                file.display()
            );
            EXIT_FAILED
        }
    }
}

fn write(file: &PathBuf, cov: &Coverage) -> u8 {
    let doc = match std::fs::read_to_string(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("authspec coverage: {}: cannot read: {e}", file.display());
            return EXIT_USAGE;
        }
    };
    let new = coverage::splice(&doc, &cov.markdown());
    if new != doc {
        if let Err(e) = std::fs::write(file, &new) {
            eprintln!("authspec coverage: {}: cannot write: {e}", file.display());
            return EXIT_USAGE;
        }
    }
    println!("{}", cov.summary());
    EXIT_OK
}
