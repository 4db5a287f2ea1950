//! Project automation: `cargo xtask test` runs every test suite (Rust unit,
//! behavioural and end-to-end tests, then the Python and Node.js real-client
//! suites in both SQS protocols), so that one command means "all tests".

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
    eprintln!("\nall test suites passed");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        _ => {
            eprintln!("usage: cargo xtask test");
            bail!("unknown or missing task")
        }
    }
}
