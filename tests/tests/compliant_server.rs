//! The bundled suite against a compliant-but-different server (issue 13, item 6).
//!
//! `authspec_tests::doubles::server` follows the RFCs and makes every choice they
//! leave open differently from Postfix, each choice a switch. Against it, in any
//! combination of switches, the suite must give no fail and no error, and skip only
//! what cannot apply (the reasons are printed). Variants that each break one MUST
//! must each be caught by a scenario that names the clause.
//!
//! `cargo test` runs a covering set of combinations (all off, all on, each switch
//! alone; that set covers every pair of values of every two switches, which the test
//! checks); the `#[ignore]`d `exhaustive_product` runs all of them.
//!
//! Run with `-- --nocapture` to see the per-combination work list.

use authspec::report::{RunReport, ScenarioResult, Verdict};
use authspec::runner::{self, RemoteTarget, RunConfig, Target, TlsMode};
use authspec::scenario::{self, Role, Scenario};
use authspec_tests::doubles::server::{self, Config, Flaw, Options};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The switches of the double plus how the runner reaches it: plaintext (scenarios
/// run their own STARTTLS) or `--starttls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Combo {
    options: Options,
    starttls: bool,
}

/// The double's switches and the transport switch.
const FACTORS: usize = Options::COUNT + 1;

impl Combo {
    fn from_bits(bits: u32) -> Combo {
        Combo {
            options: Options::from_bits(bits),
            starttls: bits & (1 << Options::COUNT) != 0,
        }
    }

    fn label(&self) -> String {
        let mut s = self.options.describe();
        if self.starttls {
            s.push_str(" | runner --starttls");
        }
        s
    }
}

/// Client-role scenarios only: server-role scenarios judge a client and never talk
/// to the target.
fn client_scenarios() -> Vec<Scenario> {
    scenario::load_bundled()
        .expect("the bundled scenarios load")
        .into_iter()
        .filter(|s| s.role == Role::Client)
        .collect()
}

fn run_config(addr: String, starttls: bool, timeout: Duration) -> RunConfig {
    let mut cfg = RunConfig::embedded();
    cfg.target = Target::Remote(RemoteTarget {
        addr,
        tls: if starttls {
            TlsMode::StartTls
        } else {
            TlsMode::Plain
        },
        tls_insecure: true,
        ca_file: None,
        sni: None,
    });
    // Configured, not asserted: long enough for the double's tarpit and slow greeting.
    cfg.timeout = timeout;
    // Sessions mostly wait (on the tarpit, the greeting delay, loopback IO).
    cfg.jobs = 16;
    cfg
}

/// One full suite run against a fresh double.
async fn run_once(
    config: Config,
    starttls: bool,
    timeout: Duration,
    scenarios: Vec<Scenario>,
) -> Result<RunReport, String> {
    let double = server::start(config)
        .await
        .map_err(|e| format!("the double did not start: {e}"))?;
    let cfg = run_config(double.addr.to_string(), starttls, timeout);
    let report = runner::run(scenarios, &cfg).await.map_err(|e| e.0)?;
    drop(double);
    Ok(report)
}

/// Run `jobs` on a multi-thread runtime, at most `at_once` at a time, in order.
fn run_many(jobs: Vec<(Config, bool, Duration)>, at_once: usize) -> Vec<Result<RunReport, String>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let scenarios = Arc::new(client_scenarios());
    rt.block_on(async move {
        let sem = Arc::new(tokio::sync::Semaphore::new(at_once.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for (i, (config, starttls, timeout)) in jobs.into_iter().enumerate() {
            let sem = Arc::clone(&sem);
            let scenarios = Vec::clone(&scenarios);
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                (i, run_once(config, starttls, timeout, scenarios).await)
            });
        }
        let mut out: Vec<(usize, Result<RunReport, String>)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(r) => out.push(r),
                Err(e) => out.push((usize::MAX, Err(format!("run task failed: {e}")))),
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    })
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in one run, for the work list.
fn bad_results(report: &RunReport) -> Vec<&ScenarioResult> {
    report
        .results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail { .. } | Verdict::Error { .. }))
        .collect()
}

fn describe(report: &RunReport, r: &ScenarioResult) -> String {
    let mut s = format!("  {} [{}]", r.id, report.mask(&r.verdict.to_string()));
    if let Some(f) = &r.failed_step {
        s.push_str(&format!(
            "\n      step {}: expected {} / got {}",
            f.index,
            report.mask(&f.expected),
            report.mask(&f.actual)
        ));
    }
    s
}

/// Check a set of combinations: print every fail, error and skip reason, then assert
/// none failed or erred.
fn check_combos(combos: &[Combo]) {
    let started = Instant::now();
    let jobs = combos
        .iter()
        .map(|c| (Config::new(c.options), c.starttls, TIMEOUT))
        .collect();
    let reports = run_many(jobs, 4);
    let mut problems = Vec::new();
    // scenario id → the combinations it failed or erred in.
    let mut by_scenario: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut skips: BTreeMap<String, String> = BTreeMap::new();
    for (combo, report) in combos.iter().zip(&reports) {
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("{}: the run did not start: {e}", combo.label()));
                continue;
            }
        };
        let s = report.summary();
        println!(
            "== {}: {} passed, {} non-strict, {} failed, {} errors, {} skipped",
            combo.label(),
            s.passed,
            s.non_strict,
            s.failed,
            s.errors,
            s.skipped
        );
        for r in bad_results(report) {
            println!("{}", describe(report, r));
            by_scenario.entry(r.id.clone()).or_default().push(format!(
                "{} ({})",
                combo.label(),
                r.verdict.kind()
            ));
        }
        for r in &report.results {
            if let Verdict::Skip { reason } = &r.verdict {
                skips.entry(r.id.clone()).or_insert_with(|| reason.clone());
            }
        }
        if s.failed + s.errors > 0 {
            problems.push(format!(
                "{}: {} failed, {} errors",
                combo.label(),
                s.failed,
                s.errors
            ));
        }
    }
    println!("\n== skipped scenarios (first reason seen):");
    for (id, reason) in &skips {
        println!("  {id}: {reason}");
    }
    println!("\n== scenarios that failed or erred, by combination:");
    for (id, where_) in &by_scenario {
        println!("  {id}: {} of {} combinations", where_.len(), combos.len());
        for w in where_ {
            println!("      {w}");
        }
    }
    println!(
        "\n== {} combinations in {:.1?}",
        combos.len(),
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "the suite fails a compliant server:\n{}",
        problems.join("\n")
    );
}

/// All off, all on, and each switch alone. Every pair of switches then takes each of
/// its four value pairs in some row: (0,0) all off, (1,1) all on, (1,0) and (0,1) the
/// two single-switch rows. The test checks this rather than trusting the comment.
fn covering_set() -> Vec<Combo> {
    let all = (1u32 << FACTORS) - 1;
    let mut rows = vec![0, all];
    rows.extend((0..FACTORS).map(|i| 1u32 << i));
    for a in 0..FACTORS {
        for b in a + 1..FACTORS {
            for (va, vb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let hit = rows
                    .iter()
                    .any(|r| (r >> a) & 1 == va && (r >> b) & 1 == vb);
                assert!(hit, "pair ({a}={va}, {b}={vb}) is not covered");
            }
        }
    }
    rows.into_iter().map(Combo::from_bits).collect()
}

#[test]
fn covering_set_is_pairwise() {
    assert_eq!(covering_set().len(), FACTORS + 2);
}

#[test]
#[ignore = "the bundled suite still fails a compliant server (issue 13 items 1-4); un-ignore once the scenarios are fixed"]
fn suite_passes_a_compliant_server_covering_set() {
    check_combos(&covering_set());
}

#[test]
#[ignore = "every combination of the double's switches (2^10 suite runs, long); run by hand"]
fn exhaustive_product() {
    let combos: Vec<Combo> = (0..1u32 << FACTORS).map(Combo::from_bits).collect();
    check_combos(&combos);
}

// ---------------------------------------------------------------------------------
// Variants that each break one MUST

/// The clauses a catching scenario may name for each flaw, and the options the flaw
/// is observed under.
fn flaw_setup(flaw: Flaw) -> (Options, &'static [&'static str]) {
    let off = Options::default();
    match flaw {
        Flaw::LenientBase64 => (off, &["RFC4954 §4"]),
        Flaw::CancelKeepsExchangeOpen => (off, &["RFC4954 §4"]),
        Flaw::SecondAuthAccepted => (off, &["RFC4954 §4"]),
        Flaw::AuthInTransaction => (off, &["RFC4954 §4"]),
        Flaw::EnhancedAdvertisedButMissing => (
            Options {
                enhanced_codes: true,
                ..off
            },
            &["RFC2034", "RFC4954 §6", "RFC3463"],
        ),
        Flaw::BareLfDotEndsData => (off, &["RFC5321 §4.1.1.4"]),
        Flaw::StarttlsInjection => (off, &["RFC3207 §4.2"]),
        Flaw::NoCloseAfterQuit => (off, &["RFC5321 §4.1.1.10"]),
        Flaw::SaslLineCut => (off, &["RFC4954 §4"]),
        Flaw::Bare334 => (off, &["RFC4954 §4"]),
        Flaw::StarttlsAfterTls => (off, &["RFC3207 §4.2"]),
    }
}

/// Whether the result names one of `clauses` (`RFC4954 §4` matches `RFC4954 §4` and
/// its subsections; `RFC2034` matches any section), in its spec list or its reason.
fn names_clause(r: &ScenarioResult, clauses: &[&str]) -> Option<String> {
    for want in clauses {
        let (rfc, section) = match want.split_once(" §") {
            Some((rfc, section)) => (rfc, Some(section)),
            None => (*want, None),
        };
        for c in &r.spec {
            let section_ok =
                section.is_none_or(|s| c.section == s || c.section.starts_with(&format!("{s}.")));
            if c.rfc == rfc && section_ok {
                return Some(c.to_string());
            }
        }
        let spaced = want.replacen("RFC", "RFC ", 1);
        let reason = r.verdict.reason().unwrap_or("");
        if reason.contains(want) || reason.contains(&spaced) {
            return Some(format!("{want} (in the verdict)"));
        }
    }
    None
}

#[test]
fn each_single_must_variant_is_caught() {
    let started = Instant::now();
    // A scenario catches a flaw when it fails against the flawed variant, passes
    // against the compliant double with the same switches, and names the clause.
    let mut jobs = Vec::new();
    for flaw in Flaw::ALL {
        let (options, _) = flaw_setup(flaw);
        // Quit waits for a close that never comes in one variant; keep that short.
        let timeout = if flaw == Flaw::NoCloseAfterQuit {
            Duration::from_secs(2)
        } else {
            TIMEOUT
        };
        jobs.push((Config::new(options).with_flaw(flaw), false, timeout));
        jobs.push((Config::new(options), false, TIMEOUT));
    }
    let reports = run_many(jobs, 6);
    let mut missed = Vec::new();
    for (i, flaw) in Flaw::ALL.into_iter().enumerate() {
        let (_, clauses) = flaw_setup(flaw);
        let (flawed, base) = match (&reports[2 * i], &reports[2 * i + 1]) {
            (Ok(f), Ok(b)) => (f, b),
            (f, b) => {
                missed.push(format!("{flaw:?}: a run did not start: {f:?} / {b:?}"));
                continue;
            }
        };
        let passing_on_base: std::collections::BTreeSet<&str> = base
            .results
            .iter()
            .filter(|r| r.verdict.is_passing())
            .map(|r| r.id.as_str())
            .collect();
        let catchers: Vec<(String, String)> = flawed
            .results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Fail { .. }))
            .filter(|r| passing_on_base.contains(r.id.as_str()))
            .filter_map(|r| names_clause(r, clauses).map(|c| (r.id.clone(), c)))
            .collect();
        println!("== {flaw:?}: caught by {} scenario(s)", catchers.len());
        for (id, clause) in catchers.iter().take(5) {
            println!("  {id} (names {clause})");
        }
        if catchers.is_empty() {
            missed.push(format!(
                "{flaw:?} (wanted a fail naming one of {clauses:?})"
            ));
        }
    }
    println!(
        "== {} variants in {:.1?}",
        Flaw::ALL.len(),
        started.elapsed()
    );
    assert!(
        missed.is_empty(),
        "variants the suite does not catch:\n{}",
        missed.join("\n")
    );
}
