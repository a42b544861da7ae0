//! Trickle gateway, homeserver side.
//!
//! Takes a decrypted compact CoAP request (endpoint code + parameters in `Uri-Path`, `Uri-Query`,
//! a CBOR body in table `trickle-v1` or `msc3079-v1`), performs the equivalent HTTP+JSON request
//! against an unmodified Matrix homeserver, and turns the answer into a compact CoAP response.
//! The Noise pipe and sessions are another layer: it hands [`Gateway::handle`] the request and
//! the access token it bound to the session.
//!
//! - [`client`]: the HTTP client ([`HomeserverClient`]).
//! - [`translate`]: the CoAP ↔ HTTP mapping (normative rules in `docs/PROTOCOL.md`, section
//!   "Gateway (homeserver side)").
//! - [`alias`]: per-device aliases of long IDs in SQLite ([`AliasStore`]).
//! - [`sync`]: the `/sync` filter for tiny devices.

#![deny(missing_docs)]

pub mod alias;
pub mod client;
pub mod device;
mod error;
pub mod session;
pub mod sync;
pub mod translate;

pub use alias::{AliasKind, AliasStore};
pub use client::{ClientConfig, HomeserverClient, HttpRequest, HttpResponse, Method};
pub use error::{AliasError, ConfigError, SyncError, UpstreamError};
pub use session::{Op, OpBytes, SessionConfig, SessionGateway, Transmit};
pub use translate::{CompactResponse, Dialect};

use tracing::{info, warn};
use trickle_core::wire::coap::Repr;

/// Translates and forwards compact requests to one homeserver.
#[derive(Debug, Clone)]
pub struct Gateway {
    client: HomeserverClient,
    session_dialect: Dialect,
}

impl Gateway {
    /// A gateway in front of `client`; requests without option 257 use `session_dialect`.
    pub fn new(client: HomeserverClient, session_dialect: Dialect) -> Self {
        Self {
            client,
            session_dialect,
        }
    }

    /// The homeserver client.
    pub fn client(&self) -> &HomeserverClient {
        &self.client
    }

    /// Handles one compact request. `access_token` comes from the session layer (the token bound
    /// to the Noise session, or [`translate::msc3079_access_token`] for MSC3079 clients); `None`
    /// sends the request unauthenticated (login, versions).
    pub fn handle(&self, request: &Repr<'_>, access_token: Option<&str>) -> CompactResponse {
        let dialect = match translate::request_dialect(request, self.session_dialect) {
            Ok(d) => d,
            Err(resp) => return resp,
        };
        let http = match translate::coap_to_http(request, dialect, access_token) {
            Ok(h) => h,
            Err(resp) => {
                info!(code = %resp.code, "compact request refused");
                return resp;
            }
        };
        let result = self.client.send(&http);
        if let Err(e) = &result {
            warn!(error = %e, target = %http.target, "homeserver request failed");
        }
        let resp = translate::http_to_coap(&http, result.as_ref(), dialect);
        info!(
            method = http.method.as_str(),
            target = %http.target,
            code = %resp.code,
            payload_len = resp.payload.len(),
            "compact request forwarded"
        );
        resp
    }
}
