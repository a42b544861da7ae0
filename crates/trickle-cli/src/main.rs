//! `trickle`: inspect and transcode what Trickle puts on the air.
//!
//! Every command reads its input from the argument, or from stdin when the argument is absent
//! or `-`; prints the result on stdout; exits 0 on success and 1 with a one-line error on
//! stderr otherwise.

mod coap;
mod gateway;
mod report;

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use trickle_core::cbor::{self, Limits};
use trickle_core::wire::paths::{self, ApiVersion, CoapPath};

#[derive(Parser)]
#[command(
    name = "trickle",
    version,
    about = "Matrix over 100 bps links: inspect and transcode Trickle's wire formats"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start; boxing the gateway's options would only add noise.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// JSON ↔ CBOR with a substitution table.
    Cbor {
        #[command(subcommand)]
        command: CborCommand,
    },
    /// Matrix HTTP paths ↔ compact CoAP paths (endpoint codes).
    Path {
        #[command(subcommand)]
        command: PathCommand,
    },
    /// CoAP messages.
    Coap {
        #[command(subcommand)]
        command: CoapCommand,
    },
    /// Runs the gateway: devices on UDP / serial / Unix socket / TCP stream / stdio, a Matrix
    /// homeserver over HTTP(S).
    Gateway(gateway::GatewayArgs),
    /// Reports measured from real frames.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Bytes on air and airtime of every Noise pipe flow (XX, IK 0-RTT, IK → XXfallback,
    /// established), measured by running a device and a gateway in memory.
    Noise {
        /// The request carried (plain CoAP, hex); default: CON POST, token 1 byte,
        /// `Uri-Path "r"`, payload `Hello`.
        #[arg(long)]
        request: Option<String>,
        /// The response (plain CoAP ACK, hex); default: an empty ACK.
        #[arg(long)]
        response: Option<String>,
        /// Bitrate for the airtime column, in bit/s.
        #[arg(long, default_value_t = 100.0)]
        bitrate: f64,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CborCommand {
    /// JSON (argument or stdin) → CBOR as hex on stdout.
    Encode {
        /// Substitution table.
        #[arg(long, value_enum, default_value_t = CborTable::TrickleV1)]
        table: CborTable,
        /// The JSON text; stdin when absent or `-`.
        json: Option<String>,
    },
    /// CBOR as hex (argument or stdin; whitespace ignored) → compact JSON on stdout.
    Decode {
        /// Substitution table.
        #[arg(long, value_enum, default_value_t = CborTable::TrickleV1)]
        table: CborTable,
        /// The hex; stdin when absent or `-`.
        hex: Option<String>,
    },
}

#[derive(Subcommand)]
enum PathCommand {
    /// An HTTP path (`/_matrix/client/v3/rooms/!r:hs/send/m.room.message/t1`) → the compact
    /// CoAP path in the text form MSC3079 writes (`/9/!r:hs/m.room.message/t1`).
    Compress {
        /// Endpoint-code table.
        #[arg(long, value_enum, default_value_t = PathTable::TrickleV1)]
        table: PathTable,
        /// The HTTP path (percent-encoded, query allowed); stdin when absent or `-`.
        path: Option<String>,
    },
    /// A compact CoAP path in text form → the HTTP path.
    Expand {
        /// Endpoint-code table.
        #[arg(long, value_enum, default_value_t = PathTable::TrickleV1)]
        table: PathTable,
        /// Version segment for client-server paths that have both.
        #[arg(long = "api", value_enum, default_value_t = Api::V3)]
        api: Api,
        /// The compact path; stdin when absent or `-`.
        path: Option<String>,
    },
}

#[derive(Subcommand)]
enum CoapCommand {
    /// A CoAP message as hex → every field and its bytes.
    Decode {
        /// The hex; stdin when absent or `-`.
        hex: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CborTable {
    /// No substitution (RFC 8949 §6.2).
    Plain,
    /// MSC3079 v1 integer keys.
    #[value(name = "msc3079-v1")]
    Msc3079V1,
    /// Trickle v1 keys and values.
    #[value(name = "trickle-v1")]
    TrickleV1,
}

impl CborTable {
    fn table(self) -> &'static cbor::Table {
        match self {
            CborTable::Plain => &cbor::Table::PLAIN,
            CborTable::Msc3079V1 => &cbor::Table::MSC3079_V1,
            CborTable::TrickleV1 => &cbor::Table::TRICKLE_V1,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PathTable {
    /// MSC3079 v1 path enums only.
    #[value(name = "msc3079-v1")]
    Msc3079V1,
    /// MSC3079 v1 plus Trickle's codes.
    #[value(name = "trickle-v1")]
    TrickleV1,
}

impl PathTable {
    fn table(self) -> paths::Table {
        match self {
            PathTable::Msc3079V1 => paths::Table::Msc3079V1,
            PathTable::TrickleV1 => paths::Table::TrickleV1,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Api {
    V3,
    R0,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // One line: the chain of causes joined.
            eprintln!("trickle: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<String> {
    match command {
        Command::Gateway(args) => {
            // Logs on stderr; level from RUST_LOG (a bare level: error, warn, info, debug,
            // trace), default info.
            let level = std::env::var("RUST_LOG")
                .ok()
                .and_then(|l| l.parse::<tracing::Level>().ok())
                .unwrap_or(tracing::Level::INFO);
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_max_level(level)
                .try_init();
            gateway::run(args)?;
            Ok(String::new())
        }
        Command::Cbor {
            command: CborCommand::Encode { table, json },
        } => {
            let json = input(json)?;
            let bytes = cbor_encode(json.trim().as_bytes(), table.table())?;
            Ok(format!("{}\n", to_hex(&bytes)))
        }
        Command::Cbor {
            command: CborCommand::Decode { table, hex },
        } => {
            let bytes = from_hex(&input(hex)?)?;
            Ok(format!("{}\n", cbor_decode(&bytes, table.table())?))
        }
        Command::Path {
            command: PathCommand::Compress { table, path },
        } => {
            let path = input(path)?;
            let path = single_line(&path)?;
            let mut scratch = vec![0u8; path.len()];
            let coap = CoapPath::from_http(path, table.table(), &mut scratch)
                .map_err(|e| anyhow::anyhow!("cannot compress {path:?}: {e}"))?;
            Ok(format!("{coap}\n"))
        }
        Command::Path {
            command: PathCommand::Expand { table, api, path },
        } => {
            let path = input(path)?;
            let path = single_line(&path)?;
            let mut scratch = vec![0u8; path.len()];
            let coap = CoapPath::from_text(path, &mut scratch)
                .map_err(|e| anyhow::anyhow!("cannot read {path:?}: {e}"))?;
            let version = match api {
                Api::V3 => ApiVersion::V3,
                Api::R0 => ApiVersion::R0,
            };
            let mut http = String::new();
            coap.write_http(table.table(), version, &mut http)
                .map_err(|e| anyhow::anyhow!("cannot expand {path:?}: {e}"))?;
            Ok(format!("{http}\n"))
        }
        Command::Report {
            command:
                ReportCommand::Noise {
                    request,
                    response,
                    bitrate,
                    json,
                },
        } => {
            let request = match request {
                Some(h) => from_hex(&h)?,
                None => report::DEFAULT_REQUEST.to_vec(),
            };
            let response = match response {
                Some(h) => from_hex(&h)?,
                None => report::DEFAULT_RESPONSE.to_vec(),
            };
            if !(bitrate > 0.0 && bitrate.is_finite()) {
                bail!("--bitrate must be a positive number of bits per second");
            }
            let r = report::noise(&request, &response)?;
            Ok(report::render(
                &r,
                request.len() + response.len(),
                bitrate,
                json,
            ))
        }
        Command::Coap {
            command: CoapCommand::Decode { hex },
        } => {
            let bytes = from_hex(&input(hex)?)?;
            coap::describe(&bytes)
        }
    }
}

/// The argument, or stdin when it is absent or `-`.
fn input(arg: Option<String>) -> Result<String> {
    match arg {
        Some(a) if a != "-" => Ok(a),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading stdin")?;
            Ok(s)
        }
    }
}

fn single_line(s: &str) -> Result<&str> {
    let s = s.trim();
    if s.is_empty() {
        bail!("empty input");
    }
    if s.contains('\n') {
        bail!("expected one path, got several lines");
    }
    Ok(s)
}

/// Transcodes JSON to CBOR, growing the output buffer until it fits.
fn cbor_encode(json: &[u8], table: &cbor::Table) -> Result<Vec<u8>> {
    let mut out = vec![0u8; json.len() + 16];
    loop {
        match cbor::json_to_cbor(json, table, &Limits::DEFAULT, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(cbor::Error::BufferTooSmall { required }) if required > out.len() => {
                out.resize(required, 0)
            }
            Err(cbor::Error::BufferTooSmall { .. }) if out.len() < MAX_OUTPUT => {
                out.resize(out.len() * 2, 0)
            }
            Err(e) => bail!("invalid JSON input: {e}"),
        }
    }
}

/// Transcodes CBOR to JSON, growing the output buffer until it fits.
fn cbor_decode(bytes: &[u8], table: &cbor::Table) -> Result<String> {
    // Shared-item references expand to at most a few dozen bytes each.
    let mut out = vec![0u8; bytes.len() * 8 + 64];
    loop {
        match cbor::cbor_to_json(bytes, table, &Limits::DEFAULT, &mut out) {
            Ok(n) => {
                out.truncate(n);
                return String::from_utf8(out).context("transcoder wrote invalid UTF-8");
            }
            Err(cbor::Error::BufferTooSmall { required }) if required > out.len() => {
                out.resize(required, 0)
            }
            Err(cbor::Error::BufferTooSmall { .. }) if out.len() < MAX_OUTPUT => {
                out.resize(out.len() * 2, 0)
            }
            Err(e) => bail!("invalid CBOR input: {e}"),
        }
    }
}

/// The largest output the transcoding commands produce.
const MAX_OUTPUT: usize = 64 << 20;

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let digits = digits.strip_prefix(b"0x").unwrap_or(&digits);
    if digits.is_empty() {
        bail!("empty input: expected hex bytes");
    }
    if !digits.len().is_multiple_of(2) {
        bail!("odd number of hex digits ({})", digits.len());
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let text = std::str::from_utf8(pair).unwrap_or("??");
            u8::from_str_radix(text, 16)
                .with_context(|| format!("not a hex byte at offset {}: {text:?}", i * 2))
        })
        .collect()
}
