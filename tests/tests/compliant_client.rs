//! The compliant-but-different client (src/bin/compliant-client.rs) against every
//! server-role scenario: in every combination of its legitimate choices it gets no fail
//! and no error, and each variant that breaks one MUST is caught, with the client's own
//! output in the report. Also: the README's `--listen` and `--client-command` examples
//! work as written.

use authspec::report::{RunReport, Verdict};
use authspec::runner::{self, ClientUnderTest, RunConfig};
use authspec::scenario::{self, Role};
use std::path::{Path, PathBuf};

const CLIENT: &str = env!("CARGO_BIN_EXE_compliant-client");

fn client_scenarios() -> Vec<scenario::Scenario> {
    scenario::load_bundled()
        .expect("bundled scenarios load")
        .into_iter()
        .filter(|s| s.role == Role::Server)
        .collect()
}

fn run_with(command: String) -> RunReport {
    let mut cfg = RunConfig::embedded();
    cfg.client = ClientUnderTest::Command(command);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(runner::run(client_scenarios(), &cfg))
        .expect("the run starts")
}

fn show(report: &RunReport) -> String {
    authspec::report::human::render(report, false)
}

#[test]
fn compliant_client_gets_no_fail_and_no_error_in_any_combination() {
    let mut combos = 0;
    for prefer in ["plain", "login"] {
        for ir in [false, true] {
            for after in ["quit", "close"] {
                for ehlo in ["[127.0.0.1]", "client.example.org"] {
                    let cmd = format!(
                        "{CLIENT} --prefer {prefer}{} --after-failure {after} --ehlo '{ehlo}' {{host}} {{port}}",
                        if ir { " --initial-response" } else { "" }
                    );
                    let report = run_with(cmd.clone());
                    let s = report.summary();
                    assert!(
                        s.failed == 0 && s.errors == 0,
                        "{cmd}: {s}\n{}",
                        show(&report)
                    );
                    // It implements PLAIN and LOGIN: discovery must find exactly those,
                    // and only scenarios for other mechanisms (or the reference client's
                    // own profile) may be skipped.
                    assert!(report.target.contains("PLAIN LOGIN)"), "{}", report.target);
                    for r in &report.results {
                        if let Verdict::Skip { reason } = &r.verdict {
                            assert!(
                                reason.contains("does not implement")
                                    || reason.contains("reference client's own configuration"),
                                "{}: skipped for {reason}",
                                r.id
                            );
                        }
                    }
                    assert!(s.passed >= 10, "{cmd}: {s}");
                    combos += 1;
                }
            }
        }
    }
    assert_eq!(combos, 16);
}

#[test]
fn each_broken_variant_is_caught_with_its_own_output() {
    for (rule, caught_by) in [
        ("answer-garbage", "client/cancels-bad-challenge/login"),
        ("close-on-garbage", "client/cancels-bad-challenge/login"),
        ("raw-response", "client/login-334-with-space"),
    ] {
        let cmd = format!("{CLIENT} --prefer login --break {rule} {{host}} {{port}}");
        let report = run_with(cmd);
        let r = report
            .results
            .iter()
            .find(|r| r.id == caught_by)
            .unwrap_or_else(|| panic!("{caught_by} did not run"));
        assert!(
            matches!(r.verdict, Verdict::Fail { .. }),
            "--break {rule}: {caught_by} is {}\n{}",
            r.verdict,
            show(&report)
        );
        let client = r.client.as_ref().expect("the client's output is kept");
        assert!(
            client.stderr.text.contains("C: EHLO"),
            "--break {rule}: the client's own log is in the report: {client:?}"
        );
        let text = show(&report);
        assert!(text.contains("client stderr:") && text.contains("| C: EHLO [127.0.0.1]"));
        assert!(report.exit_code() != 0);
    }
}

#[test]
fn a_missing_client_command_is_reported_as_such() {
    let report = run_with("authspec-no-such-client-xyz {host} {port}".into());
    let r = report
        .results
        .iter()
        .find(|r| r.id == "client/first-mutual-mechanism")
        .expect("a scenario that needs no mechanism");
    let reason = r.verdict.reason().unwrap_or("");
    assert!(
        reason.contains("ended before connecting") && reason.contains("command not found"),
        "{reason}"
    );
    let c = r.client.as_ref().expect("client output");
    assert!(c.stderr.text.contains("not found"), "{c:?}");
}

/// The workspace root, and the `authspec` binary that `cargo test --workspace` built.
fn root_and_binary() -> (PathBuf, Option<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let bin = Path::new(CLIENT).parent().map(|d| d.join("authspec"));
    (root, bin.filter(|b| b.exists()))
}

/// The lines of the README's "Against your client" block that run `authspec run`.
fn readme_examples() -> (String, String) {
    let (root, _) = root_and_binary();
    let text = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = text.find("## Against your client").expect("README section");
    let block = &text[start..];
    let code = block
        .split("```sh")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let joined = code.replace("\\\n", " ");
    let mut command = None;
    let mut listen = None;
    for line in joined.lines() {
        let line = line.split("   #").next().unwrap().trim();
        if line.contains("--client-command") {
            command = Some(line.to_owned());
        } else if line.contains("run scenarios/client --listen") {
            listen = Some(line.to_owned());
        }
    }
    (
        command.expect("a --client-command example"),
        listen.expect("a --listen example"),
    )
}

#[test]
fn readme_listen_example_works_as_written() {
    let (root, bin) = root_and_binary();
    let Some(bin) = bin else {
        eprintln!("skipped: the authspec binary is not built (cargo test --workspace builds it)");
        return;
    };
    let (_, listen) = readme_examples();
    let mut args: Vec<String> = listen
        .split_whitespace()
        .skip(1) // "authspec"
        .map(str::to_owned)
        .collect();
    let at = args.iter().position(|a| a == "--listen").unwrap() + 1;
    let mut addr = args[at].clone();
    if std::net::TcpListener::bind(&addr).is_err() {
        // The README's port is taken here (a Postfix peer of the interop run listens on
        // 2525): the same command on a free loopback port.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        addr = free.local_addr().unwrap().to_string();
        eprintln!("{} is in use; running the example on {addr}", args[at]);
        args[at] = addr.clone();
    }
    let mut child = std::process::Command::new(&bin)
        .args(&args)
        .current_dir(&root)
        .env_remove("AUTHSPEC_VAR_USER")
        .env_remove("AUTHSPEC_VAR_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut announced = Vec::new();
    use std::io::BufRead as _;
    // Each announcement names the credentials; the client uses what it is told.
    for line in std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
    {
        announced.push(line.clone());
        let Some(rest) = line.split("; user ").nth(1) else {
            continue;
        };
        let user = rest.split(',').next().unwrap().to_owned();
        let password = rest
            .split("password ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        let mut connected = false;
        for _ in 0..200 {
            let st = std::process::Command::new(CLIENT)
                .args([host, port])
                .env("AUTHSPEC_USER", &user)
                .env("AUTHSPEC_PASSWORD", &password)
                .output()
                .unwrap();
            if !String::from_utf8_lossy(&st.stderr).contains("connect:") {
                connected = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert!(connected, "could not reach {addr} after: {line}");
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", announced.join("\n"));
    assert!(announced.iter().any(|l| l.contains("one at a time on")));
    assert!(stdout.contains("clients connecting to"), "{stdout}");
    assert!(
        stdout.contains(" 0 failed") && stdout.contains(" 0 errors"),
        "{stdout}"
    );
}

#[test]
fn readme_client_command_example_works_as_written() {
    let (root, bin) = root_and_binary();
    let Some(bin) = bin else {
        eprintln!("skipped: the authspec binary is not built (cargo test --workspace builds it)");
        return;
    };
    let (command, _) = readme_examples();
    if std::process::Command::new("sh")
        .args(["-c", "command -v swaks"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!(
            "skipped: swaks is not installed (the interop run installs it and runs this example too)"
        );
        return;
    }
    let line = command.replacen("authspec", &bin.display().to_string(), 1);
    let out = std::process::Command::new("sh")
        .args(["-c", &line])
        .current_dir(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{line}\n{stdout}");
    assert!(
        stdout.contains(" 0 failed") && stdout.contains(" 0 errors"),
        "{stdout}"
    );
}
