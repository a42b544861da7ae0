//! The real `trickle gateway` binary as a child process, for end-to-end tests: a config file in
//! a test directory, the link flags of the test, and SIGTERM (then a wait) when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

/// A running `trickle gateway`, stopped by PID (SIGTERM, then reaped) when dropped.
#[derive(Debug)]
pub struct GatewayProcess(Child);

impl GatewayProcess {
    /// Starts `trickle gateway` with `<dir>/gateway.toml` (homeserver, `data_dir = <dir>/data`,
    /// the link bit rate, a 1 s `/sync` long poll) and the link flags in `links`
    /// (e.g. `["--udp", "127.0.0.1:5684"]`).
    pub fn spawn(dir: &Path, homeserver: &str, bitrate: u32, links: &[String]) -> Result<Self> {
        let config = dir.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                "homeserver = \"{homeserver}\"\ndata_dir = \"{}\"\nbitrate = {bitrate}\n\
                 sync_timeout_ms = 1000\n",
                dir.join("data").display()
            ),
        )
        .context("writing gateway.toml")?;
        let child = Command::new(crate::trickle_bin()?)
            .arg("gateway")
            .arg("--config")
            .arg(&config)
            .args(links)
            .stdin(Stdio::null())
            .spawn()
            .context("starting trickle gateway")?;
        Ok(Self(child))
    }

    /// The process ID.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Whether the process has exited (and how).
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.0.try_wait()?)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}
