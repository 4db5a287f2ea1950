//! Project automation: `cargo xtask test` runs every test suite (Rust unit,
//! behavioural and end-to-end tests, then the Python and Node.js real-client
//! suites in both SQS protocols, then a brief run of every fuzz target), so that
//! one command means "all tests"; `cargo xtask fuzz` builds and runs the fuzz
//! targets of `fuzz/` (cargo-fuzz, which it never installs).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root").to_path_buf()
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("\n==> {what}");
    let status = cmd.current_dir(root()).status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn test() -> Result<()> {
    // Read first, so a bad value fails before the long suites run.
    let fuzz_secs = fuzz_secs_from_env(FUZZ_SECS_TEST)?;
    // The binary the end-to-end suites start.
    run("build the sluice binary", cargo().args(["build", "--bin", "sluice"]))?;
    run("Rust tests (unit, behavioural suite, engine faults, SDK end-to-end)", cargo().args(["test", "--workspace"]))?;
    let bin = root().join("target/debug/sluice");
    // Each protocol against a different engine, so both engines meet real clients.
    for (kind, engine) in [("query", "memory"), ("json", "durable")] {
        run(
            &format!("Python real-client suite, SQS {kind} protocol, {engine} engine"),
            Command::new("bash")
                .arg("tests/clients/python/run.sh")
                .arg(kind)
                .env("SLUICE_BIN", &bin)
                .env("SLUICE_PY_ENGINE", engine),
        )?;
    }
    run(
        "Node.js real-client suite (JS SDK v3 over JSON 1.0, v2 2.1490.0 over query), durable engine",
        Command::new("bash")
            .arg("tests/clients/node/run.sh")
            .env("SLUICE_BIN", &bin)
            .env("SLUICE_NODE_ENGINE", "durable"),
    )?;
    if fuzz_secs == 0 {
        eprintln!("\n==> fuzz targets skipped (SLUICE_FUZZ_SECS=0)");
    } else {
        fuzz(fuzz_secs, &[])?;
    }
    eprintln!("\nall test suites passed");
    Ok(())
}

/// The fuzz targets of `fuzz/`, each with its `-max_len`: the protocol decoders get the
/// largest request SQS takes (1 MiB of message data) plus room for the rest of it;
/// the others what their input can meaningfully hold.
const FUZZ_TARGETS: &[(&str, usize)] = &[
    ("sqs_query", (1 << 20) + (64 << 10)),
    ("sqs_json", (1 << 20) + (64 << 10)),
    ("xml_escape", 64 << 10),
    ("receipt_handle", 256),
    ("engine_recovery", 256 << 10),
    // Four bytes per operation, 64 operations at most.
    ("engine_model", 256),
];

/// Seconds per target in `cargo xtask test` (CI); see README "Fuzzing" for why.
const FUZZ_SECS_TEST: u64 = 20;
/// Seconds per target of `cargo xtask fuzz` without `--secs` (RELIABILITY's per-change figure).
const FUZZ_SECS_DEFAULT: u64 = 60;

/// `SLUICE_FUZZ_SECS` if set, else `default`.
fn fuzz_secs_from_env(default: u64) -> Result<u64> {
    match std::env::var("SLUICE_FUZZ_SECS") {
        Ok(v) => v.trim().parse().with_context(|| format!("SLUICE_FUZZ_SECS={v:?} is not a number of seconds")),
        Err(_) => Ok(default),
    }
}

/// Builds every fuzz target once, then runs the chosen ones (all when `only` is empty)
/// one after another for `secs` seconds each, from the committed corpus
/// (`fuzz/corpus/<target>`, read only) into a scratch corpus under `fuzz/target/corpus/`.
/// Crashes land in `fuzz/artifacts/<target>/` and fail the task.
fn fuzz(secs: u64, only: &[String]) -> Result<()> {
    for t in only {
        if !FUZZ_TARGETS.iter().any(|(name, _)| name == t) {
            let names: Vec<&str> = FUZZ_TARGETS.iter().map(|(n, _)| *n).collect();
            bail!("unknown fuzz target {t}; targets: {}", names.join(", "));
        }
    }
    let probe = cargo().args(["fuzz", "--version"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        bail!(
            "cargo-fuzz is not installed: `cargo install --locked cargo-fuzz --version 0.13.2` \
             (or set SLUICE_FUZZ_SECS=0 to skip the fuzz targets in `cargo xtask test`)"
        );
    }
    let fuzz_dir = root().join("fuzz");
    // Only the stable toolchain exists on CI; cargo-fuzz's instrumentation flags are
    // nightly-only, so let stable rustc accept them. No sanitizer: the code is safe Rust
    // and ASan would halve the executions a short run gets; debug assertions and
    // overflow checks stay on, so an overflow is a finding, not a wrap.
    run(
        "build the fuzz targets (cargo fuzz build)",
        cargo()
            .args(["fuzz", "build", "--fuzz-dir", "fuzz", "--sanitizer", "none", "--debug-assertions"])
            .env("RUSTC_BOOTSTRAP", "1")
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    let bin_dir = fuzz_dir.join("target").join(host_triple()?).join("release");
    let mut failed = Vec::new();
    for (target, max_len) in FUZZ_TARGETS {
        if !only.is_empty() && !only.iter().any(|t| t == target) {
            continue;
        }
        let scratch = fuzz_dir.join("target/corpus").join(target);
        let artifacts = fuzz_dir.join("artifacts").join(target);
        std::fs::create_dir_all(&scratch)?;
        std::fs::create_dir_all(&artifacts)?;
        let mut cmd = Command::new(bin_dir.join(target));
        cmd.arg(format!("-max_total_time={secs}"))
            .arg("-rss_limit_mb=512")
            .arg("-timeout=2")
            .arg(format!("-max_len={max_len}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1");
        let dict = fuzz_dir.join("dicts").join(format!("{target}.dict"));
        if dict.exists() {
            cmd.arg(format!("-dict={}", dict.display()));
        }
        cmd.arg(&scratch).arg(fuzz_dir.join("corpus").join(target));
        if let Err(e) = run(&format!("fuzz {target} for {secs} s"), &mut cmd) {
            eprintln!("{e:#}: the input is in {}", artifacts.display());
            failed.push(*target);
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The host's target triple, where cargo-fuzz puts the binaries.
fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("no host line in rustc -vV")
}

/// `cargo xtask fuzz [--secs N] [target...]`.
fn fuzz_command(args: &[String]) -> Result<()> {
    let mut secs = fuzz_secs_from_env(FUZZ_SECS_DEFAULT)?;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                let v = it.next().context("--secs needs a number of seconds")?;
                secs = v.parse().with_context(|| format!("--secs {v}: not a number of seconds"))?;
            }
            _ if a.starts_with("--secs=") => {
                let v = &a["--secs=".len()..];
                secs = v.parse().with_context(|| format!("--secs={v}: not a number of seconds"))?;
            }
            _ if a.starts_with('-') => bail!("unknown option {a}"),
            _ => targets.push(a.clone()),
        }
    }
    fuzz(secs, &targets)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("fuzz") => fuzz_command(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask test | cargo xtask fuzz [--secs N] [target...]");
            bail!("unknown or missing task")
        }
    }
}
