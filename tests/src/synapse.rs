//! A real Synapse homeserver in a temporary directory, for end-to-end tests and the demo.
//!
//! Contract with `cargo xtask test`: the Python interpreter of a venv holding the packages of
//! `tests/peers/requirements.txt` (including `matrix-synapse`) is named by `TRICKLE_PYTHON`;
//! without it `<repo>/.venv/bin/python` is used. [`Synapse::start`] fails (it never skips) when
//! Synapse cannot be started, with the tail of Synapse's log in the error.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long [`Synapse::start`] waits for `/_matrix/client/versions` to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Drop`] waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The server name of every test homeserver.
pub const SERVER_NAME: &str = "localhost";

/// Rewrites the generated config: a plain-HTTP client listener on 127.0.0.1:`port` and an
/// HTTPS one on 127.0.0.1:`tls_port`, no key servers, no presence, rate limits far out of
/// reach, SQLite (as generated).
///
/// The HTTPS listener serves a chain shaped like a public homeserver's (Let's Encrypt's ECDSA
/// chain): an ECDSA P-256 leaf for `localhost` and 127.0.0.1, signed by an ECDSA P-384
/// intermediate, signed by a P-384 root that is not sent (`ca.pem`, the client's trust anchor).
/// Real certificates also carry CT timestamps and revocation URLs, so these are smaller.
const PATCH_CONFIG: &str = r#"
import sys, os, yaml, datetime, ipaddress
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
path, port, tls_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = os.path.dirname(os.path.abspath(path))
now = datetime.datetime.now(datetime.timezone.utc)
def cert(subject, key, issuer, issuer_key, ca, sans=None, hash_=hashes.SHA384()):
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=90))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
             key_encipherment=False, data_encipherment=False, key_agreement=False,
             key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return b.sign(issuer_key, hash_)
root_key = ec.generate_private_key(ec.SECP384R1())
inter_key = ec.generate_private_key(ec.SECP384R1())
leaf_key = ec.generate_private_key(ec.SECP256R1())
root = cert("Trickle Test Root", root_key, "Trickle Test Root", root_key, True)
inter = cert("Trickle Test E1", inter_key, "Trickle Test Root", root_key, True)
leaf = cert("localhost", leaf_key, "Trickle Test E1", inter_key, False,
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
with open(os.path.join(d, "tls.crt"), "wb") as f:
    f.write(pem(leaf) + pem(inter))
with open(os.path.join(d, "tls.key"), "wb") as f:
    f.write(leaf_key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
with open(os.path.join(d, "ca.pem"), "wb") as f:
    f.write(pem(root))
with open(path) as f:
    c = yaml.safe_load(f)
res = [{"names": ["client"], "compress": False}]
c["listeners"] = [
    {"port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
     "x_forwarded": False, "resources": res},
    {"port": tls_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": True,
     "x_forwarded": False, "resources": res},
]
c["tls_certificate_path"] = os.path.join(d, "tls.crt")
c["tls_private_key_path"] = os.path.join(d, "tls.key")
c["trusted_key_servers"] = []
c["suppress_key_server_warning"] = True
c["presence"] = {"enabled": False}
c["enable_registration"] = False
c["enable_metrics"] = False
c["report_stats"] = False
assert c["database"]["name"] == "sqlite3"
big = {"per_second": 100000, "burst_count": 100000}
for k in ["rc_message", "rc_registration", "rc_admin_redaction", "rc_3pid_validation",
          "rc_joins_per_room", "rc_registration_token_validity", "rc_media_create",
          "rc_room_creation", "rc_reports", "rc_delayed_event_mgmt", "rc_send_to_device"]:
    c[k] = big
c["rc_login"] = {"address": big, "account": big, "failed_attempts": big}
c["rc_joins"] = {"local": big, "remote": big}
c["rc_invites"] = {"per_room": big, "per_user": big, "per_issuer": big}
c["rc_presence"] = {"per_user": big}
with open(path, "w") as f:
    yaml.safe_dump(c, f)
"#;

/// The Python interpreter of the test venv.
pub fn python() -> Result<PathBuf> {
    let path = match std::env::var_os("TRICKLE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    };
    if !path.exists() {
        bail!(
            "Python venv not found at {} (set TRICKLE_PYTHON, or create it: python3 -m venv .venv \
             && .venv/bin/pip install -r tests/peers/requirements.txt)",
            path.display()
        );
    }
    Ok(path)
}

/// A running Synapse; stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
#[derive(Debug)]
pub struct Synapse {
    child: Child,
    port: u16,
    tls_port: u16,
    python: PathBuf,
    // Dropped after the child is stopped (field order).
    dir: tempfile::TempDir,
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(l.local_addr()?.port())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Synapse {
    /// Generates a config in a fresh temporary directory, starts Synapse and waits (at most
    /// [`START_TIMEOUT`]) until it answers `GET /_matrix/client/versions`.
    pub fn start() -> Result<Self> {
        let python = python()?;
        let dir = tempfile::Builder::new()
            .prefix("trickle-synapse-")
            .tempdir()
            .context("creating the Synapse directory")?;
        let config = dir.path().join("homeserver.yaml");
        let out = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "--server-name", SERVER_NAME])
            .arg("--config-path")
            .arg(&config)
            .arg("--data-directory")
            .arg(dir.path())
            .args(["--generate-config", "--report-stats=no"])
            .current_dir(dir.path())
            .output()
            .context("running Synapse --generate-config")?;
        if !out.status.success() {
            bail!(
                "Synapse --generate-config failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port()?;
        let mut tls_port = free_port()?;
        while tls_port == port {
            tls_port = free_port()?;
        }
        let out = Command::new(&python)
            .args(["-c", PATCH_CONFIG])
            .arg(&config)
            .arg(port.to_string())
            .arg(tls_port.to_string())
            .output()
            .context("patching homeserver.yaml")?;
        if !out.status.success() {
            bail!(
                "patching homeserver.yaml failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let console = fs::File::create(dir.path().join("console.log"))?;
        let child = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .spawn()
            .context("spawning Synapse")?;
        let mut synapse = Synapse {
            child,
            port,
            tls_port,
            python,
            dir,
        };
        synapse.wait_ready()?;
        Ok(synapse)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let url = format!("{}/_matrix/client/versions", self.base_url());
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "Synapse exited during start-up ({status}); log tail:\n{}",
                    self.log_tail(40)
                );
            }
            if agent.get(&url).call().is_ok_and(|r| r.status() == 200) {
                tracing::info!(port = self.port, elapsed = ?started.elapsed(), "Synapse ready");
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "Synapse did not answer {url} within {START_TIMEOUT:?}; log tail:\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last `lines` lines of Synapse's console output and log file.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- console ---\n{}\n--- homeserver.log ---\n{}",
            tail(&self.dir.path().join("console.log"), lines),
            tail(&self.dir.path().join("homeserver.log"), lines)
        )
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The plain-HTTP listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HTTPS listening port (see [`ca_pem`](Self::ca_pem) for its trust anchor).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// PEM of the root CA the HTTPS listener's chain leads to.
    pub fn ca_pem(&self) -> Result<Vec<u8>> {
        fs::read(self.dir.path().join("ca.pem")).context("reading the test CA")
    }

    /// The server's directory (config, database, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Registers a non-admin user with `register_new_matrix_user` (shared-secret admin API).
    /// Returns the full user ID.
    pub fn register_user(&self, name: &str, password: &str) -> Result<String> {
        let out = Command::new(&self.python)
            .args(["-m", "synapse._scripts.register_new_matrix_user", "-c"])
            .arg(self.dir.path().join("homeserver.yaml"))
            .args(["--no-admin", "-u", name, "-p", password])
            .arg(self.base_url())
            .stdin(Stdio::null())
            .output()
            .context("running register_new_matrix_user")?;
        if !out.status.success() {
            bail!(
                "register_new_matrix_user {name} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(format!("@{name}:{SERVER_NAME}"))
    }

    /// Registers `name` and logs it in over plain HTTP.
    pub fn user(&self, name: &str, password: &str) -> Result<crate::matrix::MatrixUser> {
        self.register_user(name, password)?;
        crate::matrix::MatrixUser::login(&self.base_url(), name, password)
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
