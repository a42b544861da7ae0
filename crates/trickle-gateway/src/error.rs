//! Errors, split by whose fault they are.

use std::fmt;

/// The gateway was configured wrongly (operator's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The homeserver URL is neither `http://` nor `https://`.
    UnsupportedScheme,
    /// The homeserver URL has no host or carries a path.
    BadBaseUrl,
    /// The CA file holds no PEM certificate, or a malformed one.
    BadCaFile,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnsupportedScheme => {
                f.write_str("homeserver URL must start with http:// or https://")
            }
            ConfigError::BadBaseUrl => {
                f.write_str("homeserver URL must be scheme://host[:port] without a path")
            }
            ConfigError::BadCaFile => {
                f.write_str("CA file must hold at least one PEM CERTIFICATE block, all well formed")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The homeserver could not be reached or did not answer in time (neither the device's nor the
/// gateway's fault).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No answer within the configured timeout.
    Timeout,
    /// Connection, TLS or protocol failure; the text says which.
    Unreachable(String),
    /// The response body exceeded [`MAX_RESPONSE_BODY`](crate::client::MAX_RESPONSE_BODY).
    BodyTooLarge,
    /// The request target was not a valid URL path (caller's fault).
    BadTarget,
}

impl UpstreamError {
    pub(crate) fn from_ureq(e: ureq::Error) -> Self {
        match e {
            ureq::Error::Timeout(_) => UpstreamError::Timeout,
            ureq::Error::BodyExceedsLimit(_) => UpstreamError::BodyTooLarge,
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                UpstreamError::Timeout
            }
            other => UpstreamError::Unreachable(other.to_string()),
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Timeout => f.write_str("homeserver did not answer in time"),
            UpstreamError::Unreachable(why) => write!(f, "homeserver unreachable: {why}"),
            UpstreamError::BodyTooLarge => f.write_str("homeserver response body too large"),
            UpstreamError::BadTarget => f.write_str("request target is not a valid URL path"),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// The alias store failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AliasError {
    /// All 65 536 aliases of this device and kind are taken.
    Exhausted,
    /// The database failed (I/O, corruption, locked).
    Database(rusqlite::Error),
    /// The database file was written by a newer schema version.
    SchemaVersion(i64),
}

impl fmt::Display for AliasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AliasError::Exhausted => f.write_str("all 65536 aliases of this kind are in use"),
            AliasError::Database(e) => write!(f, "alias database: {e}"),
            AliasError::SchemaVersion(v) => {
                write!(f, "alias database has unknown schema version {v}")
            }
        }
    }
}

impl std::error::Error for AliasError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AliasError::Database(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for AliasError {
    fn from(e: rusqlite::Error) -> Self {
        AliasError::Database(e)
    }
}

/// A `/sync` with the tiny-device filter failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// The homeserver could not be reached.
    Upstream(UpstreamError),
    /// The homeserver answered with an error status; `errcode` from the body if any.
    Status {
        /// HTTP status.
        status: u16,
        /// Matrix `errcode`, if the body had one.
        errcode: Option<String>,
    },
    /// The homeserver's answer was not the JSON the spec describes.
    BadResponse(&'static str),
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Upstream(e) => e.fmt(f),
            SyncError::Status { status, errcode } => write!(
                f,
                "homeserver answered {status} {}",
                errcode.as_deref().unwrap_or("(no errcode)")
            ),
            SyncError::BadResponse(what) => write!(f, "unexpected homeserver response: {what}"),
        }
    }
}

impl std::error::Error for SyncError {}

impl From<UpstreamError> for SyncError {
    fn from(e: UpstreamError) -> Self {
        SyncError::Upstream(e)
    }
}
