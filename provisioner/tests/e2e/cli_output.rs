//! The binary as a filter: output piped into a reader that has already gone away.

use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_ends_the_command_quietly_not_with_a_panic() {
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../vpc-templates/dev.yaml");
    // The read end is closed before the process starts, so its first write fails with EPIPE
    // (the test process ignores SIGPIPE, as Rust programs do, and so does the child).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["graph", "-f", template])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("running provisioner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "it panicked:\n{stderr}");
    assert_eq!(out.status.code(), Some(141), "stderr:\n{stderr}");
}
