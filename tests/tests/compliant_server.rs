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

/// The clauses a catching scenario may name for each flaw.
fn flaw_clauses(flaw: Flaw) -> &'static [&'static str] {
    match flaw {
        Flaw::LenientBase64
        | Flaw::CancelKeepsExchangeOpen
        | Flaw::SecondAuthAccepted
        | Flaw::AuthInTransaction
        | Flaw::SaslLineCut
        | Flaw::Bare334 => &["RFC4954 §4"],
        Flaw::EnhancedAdvertisedButMissing => &["RFC2034", "RFC4954 §6", "RFC3463"],
        Flaw::BareLfDotEndsData => &["RFC5321 §4.1.1.4"],
        Flaw::StarttlsInjection | Flaw::StarttlsAfterTls => &["RFC3207 §4.2"],
        Flaw::NoCloseAfterQuit => &["RFC5321 §4.1.1.10"],
    }
}

/// The switches the variants run under: enhanced codes on (so a flaw is not hidden
/// behind a scenario that already fails for want of codes), everything else off
/// (MAIL works before AUTH, so AUTH inside a transaction can be tried).
fn flaw_options() -> Options {
    Options {
        enhanced_codes: true,
        ..Options::default()
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

/// A scenario catches a flaw when it fails against the flawed variant, passes against
/// the compliant double with the same switches, and names the clause.
fn check_caught(flaw: Flaw) {
    let started = Instant::now();
    let options = flaw_options();
    // Quit waits for a close that never comes in one variant; keep that wait short.
    let timeout = if flaw == Flaw::NoCloseAfterQuit {
        Duration::from_secs(2)
    } else {
        TIMEOUT
    };
    let jobs = vec![
        (Config::new(options).with_flaw(flaw), false, timeout),
        (Config::new(options), false, TIMEOUT),
    ];
    let mut reports = run_many(jobs, 2).into_iter();
    let (flawed, base) = match (reports.next(), reports.next()) {
        (Some(Ok(f)), Some(Ok(b))) => (f, b),
        (f, b) => panic!("{flaw:?}: a run did not start: {f:?} / {b:?}"),
    };
    let clauses = flaw_clauses(flaw);
    let passing_on_base: std::collections::BTreeSet<&str> = base
        .results
        .iter()
        .filter(|r| r.verdict.is_passing())
        .map(|r| r.id.as_str())
        .collect();
    let failing: Vec<&ScenarioResult> = flawed
        .results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail { .. }))
        .filter(|r| passing_on_base.contains(r.id.as_str()))
        .collect();
    let catchers: Vec<(String, String)> = failing
        .iter()
        .filter_map(|r| names_clause(r, clauses).map(|c| (r.id.clone(), c)))
        .collect();
    println!(
        "== {flaw:?}: caught by {} scenario(s), {} new fail(s) in all, in {:.1?}",
        catchers.len(),
        failing.len(),
        started.elapsed()
    );
    for (id, clause) in &catchers {
        println!("  {id} (names {clause})");
    }
    for r in failing
        .iter()
        .filter(|r| names_clause(r, clauses).is_none())
    {
        println!(
            "  (also fails, naming another clause) {}",
            describe(&flawed, r)
        );
    }
    assert!(
        !catchers.is_empty(),
        "{flaw:?} is not caught: no scenario that passes against the compliant double \
         fails against the variant naming one of {clauses:?}"
    );
}

macro_rules! caught {
    ($($(#[$attr:meta])* $name:ident => $flaw:expr;)*) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                check_caught($flaw);
            }
        )*
    };
}

caught! {
    lenient_base64_is_caught => Flaw::LenientBase64;
    cancel_keeping_the_exchange_open_is_caught => Flaw::CancelKeepsExchangeOpen;
    second_auth_accepted_is_caught => Flaw::SecondAuthAccepted;
    auth_in_transaction_is_caught => Flaw::AuthInTransaction;
    enhanced_advertised_but_missing_is_caught => Flaw::EnhancedAdvertisedButMissing;
    #[ignore = "the smuggling scenarios still fail a safe server that keeps the smuggled text as body (issue 13 item 4); un-ignore once they accept it"]
    bare_lf_dot_ending_data_is_caught => Flaw::BareLfDotEndsData;
    starttls_injection_is_caught => Flaw::StarttlsInjection;
    no_close_after_quit_is_caught => Flaw::NoCloseAfterQuit;
    sasl_line_cut_is_caught => Flaw::SaslLineCut;
    bare_334_is_caught => Flaw::Bare334;
    starttls_after_tls_is_caught => Flaw::StarttlsAfterTls;
}

#[test]
fn every_flaw_has_a_test() {
    // The macro above lists each flaw once; this keeps the list and the enum in step.
    assert_eq!(Flaw::ALL.len(), 11);
}
