//! Goal: two servers never share a data directory (their writes would
//! interleave and corrupt the log): the second refuses to start, naming the
//! first, and a directory left by a killed server starts normally.

use sluice_testkit::{Engine, TestServer};
use std::process::Command;

fn bin() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_sluice").as_ref()
}

#[test]
fn given_a_running_server_a_second_on_its_data_directory_should_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = TestServer::start(bin(), Engine::Durable(dir.path().to_path_buf()), &[]);
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run a second server");
    assert!(!out.status.success(), "the second server started");
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("is in use by another sluice process"), "{text}");
    assert!(text.contains(&format!("pid {}", first.pid().unwrap())), "names the holder: {text}");

    // kill -9 releases the lock with the process: a restart is not blocked.
    first.kill();
    first.restart();
    assert_eq!(sluice_testkit::http_get_status(first.addr, "/health"), Some(200));
}
