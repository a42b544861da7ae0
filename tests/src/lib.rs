//! Test harness helpers: a real Synapse ([`synapse::Synapse`]), a plain HTTP+JSON Matrix client
//! ([`matrix::MatrixUser`]), a simulated AT modem for `trickle-gprs` ([`modem_sim`]), a
//! byte-counting TCP relay ([`tap::ByteTap`]), and the demo of `cargo xtask demo` ([`demo`],
//! binary `trickle-demo`) and the bytes report of `cargo xtask bytes` ([`bytes_report`]).

use std::path::PathBuf;

pub mod bytes_report;
pub mod demo;
pub mod gateway_proc;
pub mod matrix;
pub mod modem_sim;
pub mod seen;
pub mod synapse;
pub mod tap;

/// The `trickle` binary (the gateway CLI) for tests that run it as a process.
///
/// `cargo xtask test` builds it with the workspace's feature set and names it in `TRICKLE_BIN`.
/// Without that variable (a plain `cargo test`), it is built here with `cargo build`, next to the
/// test executable.
pub fn trickle_bin() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    if let Some(path) = std::env::var_os("TRICKLE_BIN") {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.exists(),
            "TRICKLE_BIN={} does not exist",
            path.display()
        );
        return Ok(path);
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "trickle-cli", "--bin", "trickle"])
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "building the trickle binary failed");
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .context("test executable has no target directory")?;
    Ok(dir.join("trickle"))
}
