//! Compact CoAP request → HTTP+JSON request, and HTTP response → compact CoAP response.
//!
//! The on-air rules implemented here are specified in `docs/PROTOCOL.md`, section
//! "Gateway (homeserver side)". In short:
//!
//! - **Method**: CoAP GET/POST/PUT/DELETE become the same HTTP method; other codes are answered
//!   with 4.05 Method Not Allowed.
//! - **Target**: the `Uri-Path` options (endpoint code + parameters) and `Uri-Query` options are
//!   expanded with [`CoapPath::write_http`] to a `v3` path. Only `/_matrix/client/…` and
//!   `/_matrix/media/…` targets are forwarded; anything else is 4.04.
//! - **Body**: CBOR → JSON with the [`Dialect`]'s table.
//! - **Dialect**: a request carrying option 257 (CBOR-enum-version) = 1 is a plain MSC3079
//!   client: endpoint table and CBOR table `msc3079-v1`, and the answer carries Content-Format
//!   60. Without option 257 the session's dialect applies (default `trickle-v1`, no
//!   Content-Format on the answer: the session fixes the table).
//! - **Response**: status → CoAP code by [`status_to_code`]; JSON body → CBOR with the same
//!   table; an empty object `{}` is sent as no payload.

use trickle_core::cbor::{self, Limits, cbor_to_json, json_to_cbor};
use trickle_core::wire::coap::{CoapOption, Code, Kind, OptionNumber, Repr};
use trickle_core::wire::paths::{self, ApiVersion, CoapPath};
use trickle_core::wire::{Error as WireError, Malformed};

use crate::client::{HttpRequest, HttpResponse, Method};
use crate::error::UpstreamError;

/// CoAP Content-Format `application/cbor` (RFC 7049 registry), used by MSC3079.
pub const CONTENT_FORMAT_CBOR: u16 = 60;

/// Value of option 257 (CBOR-enum-version) that selects MSC3079 v1.
pub const CBOR_ENUM_VERSION_MSC3079_V1: u32 = 1;

/// Which tables a request's path and body use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Endpoint table and CBOR table `trickle-v1` (Trickle devices; the session fixes it).
    #[default]
    TrickleV1,
    /// Endpoint table and CBOR table `msc3079-v1` (plain MSC3079 clients, option 257 = 1).
    Msc3079V1,
}

impl Dialect {
    /// The CBOR substitution table.
    pub fn cbor_table(self) -> &'static cbor::Table {
        match self {
            Dialect::TrickleV1 => &cbor::Table::TRICKLE_V1,
            Dialect::Msc3079V1 => &cbor::Table::MSC3079_V1,
        }
    }

    /// The endpoint-code table.
    pub fn path_table(self) -> paths::Table {
        match self {
            Dialect::TrickleV1 => paths::Table::TrickleV1,
            Dialect::Msc3079V1 => paths::Table::Msc3079V1,
        }
    }
}

/// A compact CoAP response, ready to be put into a CoAP message by the session layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactResponse {
    /// Response code.
    pub code: Code,
    /// Max-Age option in seconds (only for 4.29 and 5.03 with a known retry delay).
    pub max_age: Option<u32>,
    /// Content-Format option (only set for MSC3079 clients).
    pub content_format: Option<u16>,
    /// CBOR body, empty for none.
    pub payload: Vec<u8>,
}

impl CompactResponse {
    /// A response with only a code.
    pub fn bare(code: Code) -> Self {
        Self {
            code,
            max_age: None,
            content_format: None,
            payload: Vec::new(),
        }
    }

    /// A gateway-generated error with the CBOR body `{"errcode": errcode}`.
    pub fn gateway_error(code: Code, errcode: &str, dialect: Dialect) -> Self {
        let json = serde_json::json!({ "errcode": errcode }).to_string();
        let payload = json_bytes_to_cbor(json.as_bytes(), dialect.cbor_table()).unwrap_or_default();
        Self {
            code,
            max_age: None,
            content_format: content_format_for(dialect),
            payload,
        }
    }

    /// Builds the CoAP message answering `request` (piggybacked ACK for CON, NON for NON;
    /// same token, same Message ID for the ACK, `message_id` otherwise).
    pub fn to_repr<'a>(&'a self, request: &Repr<'a>, message_id: u16) -> Repr<'a> {
        let (kind, mid) = match request.kind {
            Kind::Confirmable => (Kind::Acknowledgement, request.message_id),
            _ => (Kind::NonConfirmable, message_id),
        };
        let mut repr = Repr::new(kind, self.code, mid, request.token);
        // At most two options: pushing cannot overflow MAX_OPTIONS.
        if let Some(cf) = self.content_format {
            let _ = repr.push_option(CoapOption::uint(
                OptionNumber::CONTENT_FORMAT,
                u32::from(cf),
            ));
        }
        if let Some(age) = self.max_age {
            let _ = repr.push_option(CoapOption::uint(OptionNumber::MAX_AGE, age));
        }
        repr.payload = &self.payload;
        repr
    }

    /// The emitted CoAP bytes of [`to_repr`](Self::to_repr).
    pub fn to_bytes(&self, request: &Repr<'_>, message_id: u16) -> Vec<u8> {
        let repr = self.to_repr(request, message_id);
        let mut buf = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut buf).unwrap_or(0);
        buf.truncate(n);
        buf
    }
}

fn content_format_for(dialect: Dialect) -> Option<u16> {
    match dialect {
        Dialect::TrickleV1 => None,
        Dialect::Msc3079V1 => Some(CONTENT_FORMAT_CBOR),
    }
}

/// Options a request may carry that this layer understands (Block1/Block2 are reassembled by
/// the session layer before a request gets here, so they are accepted and ignored).
const KNOWN_CRITICAL: [OptionNumber; 5] = [
    OptionNumber::URI_PATH,
    OptionNumber::URI_QUERY,
    OptionNumber::CBOR_ENUM_VERSION,
    OptionNumber::BLOCK1,
    OptionNumber::BLOCK2,
];

/// The dialect of a request: option 257 = 1 selects MSC3079 v1, absence selects `session`.
/// Any other value of option 257, or a Content-Format other than 60, is a 4.15 response.
pub fn request_dialect(repr: &Repr<'_>, session: Dialect) -> Result<Dialect, CompactResponse> {
    let cf = repr.option(OptionNumber::CONTENT_FORMAT);
    if cf.is_some_and(|cf| cf.value_uint() != Ok(u32::from(CONTENT_FORMAT_CBOR))) {
        return Err(CompactResponse::bare(Code::UNSUPPORTED_CONTENT_FORMAT));
    }
    match repr.option(OptionNumber::CBOR_ENUM_VERSION) {
        None => Ok(session),
        Some(o) if o.value_uint() == Ok(CBOR_ENUM_VERSION_MSC3079_V1) => Ok(Dialect::Msc3079V1),
        Some(_) => Err(CompactResponse::bare(Code::UNSUPPORTED_CONTENT_FORMAT)),
    }
}

/// The MSC3079 access token from option 256 (Authorization), if present and UTF-8.
pub fn msc3079_access_token<'a>(repr: &'a Repr<'_>) -> Option<&'a str> {
    repr.option(OptionNumber::AUTHORIZATION)
        .and_then(|o| core::str::from_utf8(o.value()).ok())
}

fn method_of(code: Code) -> Option<Method> {
    match code {
        Code::GET => Some(Method::Get),
        Code::POST => Some(Method::Post),
        Code::PUT => Some(Method::Put),
        Code::DELETE => Some(Method::Delete),
        _ => None,
    }
}

/// Translates a compact request into an HTTP request. `access_token` is supplied by the session
/// layer (bound to the Noise session, or [`msc3079_access_token`] for MSC3079 clients).
/// On failure the error is the CoAP response to send back.
pub fn coap_to_http(
    repr: &Repr<'_>,
    dialect: Dialect,
    access_token: Option<&str>,
) -> Result<HttpRequest, CompactResponse> {
    let err = |code: Code, errcode: &str| CompactResponse::gateway_error(code, errcode, dialect);
    if repr.first_unrecognized_critical(&KNOWN_CRITICAL).is_some() {
        return Err(CompactResponse::bare(Code::BAD_OPTION));
    }
    let method =
        method_of(repr.code).ok_or_else(|| CompactResponse::bare(Code::METHOD_NOT_ALLOWED))?;
    // Path options that are not UTF-8, or more of them than a path can have.
    let path = CoapPath::from_repr(repr).map_err(|_| err(Code::BAD_REQUEST, "M_UNRECOGNIZED"))?;
    let mut target = String::new();
    path.write_http(dialect.path_table(), ApiVersion::V3, &mut target)
        .map_err(|e| match e {
            WireError::Malformed(Malformed::UnknownPathCode(_)) => {
                err(Code::NOT_FOUND, "M_UNRECOGNIZED")
            }
            _ => err(Code::BAD_REQUEST, "M_UNRECOGNIZED"),
        })?;
    if !(target.starts_with("/_matrix/client/") || target.starts_with("/_matrix/media/")) {
        return Err(err(Code::NOT_FOUND, "M_UNRECOGNIZED"));
    }
    let body = if repr.payload.is_empty() {
        // POST and PUT always carry a JSON object in the client-server API.
        matches!(method, Method::Post | Method::Put).then(|| b"{}".to_vec())
    } else {
        Some(
            cbor_bytes_to_json(repr.payload, dialect.cbor_table())
                .ok_or_else(|| err(Code::BAD_REQUEST, "M_NOT_JSON"))?,
        )
    };
    Ok(HttpRequest {
        method,
        target,
        access_token: access_token.map(str::to_owned),
        body,
    })
}

/// The CoAP code for an HTTP status of a response to `method`.
///
/// | HTTP | CoAP |
/// |---|---|
/// | 2xx to GET | 2.05 Content |
/// | 2xx to POST, PUT | 2.04 Changed |
/// | 2xx to DELETE | 2.02 Deleted |
/// | 400, 401, 403, 404, 405, 406, 409, 412, 413, 415, 429 | 4.00, 4.01, 4.03, 4.04, 4.05, 4.06, 4.09, 4.12, 4.13, 4.15, 4.29 |
/// | other 4xx | 4.00 |
/// | 503 | 5.03 |
/// | 504 | 5.04 |
/// | 1xx, 3xx, other 5xx | 5.02 Bad Gateway |
pub fn status_to_code(method: Method, status: u16) -> Code {
    match status {
        200..=299 => match method {
            Method::Get => Code::CONTENT,
            Method::Post | Method::Put => Code::CHANGED,
            Method::Delete => Code::DELETED,
        },
        400 => Code::BAD_REQUEST,
        401 => Code::UNAUTHORIZED,
        403 => Code::FORBIDDEN,
        404 => Code::NOT_FOUND,
        405 => Code::METHOD_NOT_ALLOWED,
        406 => Code::NOT_ACCEPTABLE,
        409 => Code::CONFLICT,
        412 => Code::PRECONDITION_FAILED,
        413 => Code::REQUEST_ENTITY_TOO_LARGE,
        415 => Code::UNSUPPORTED_CONTENT_FORMAT,
        429 => Code::TOO_MANY_REQUESTS,
        _ if (400..500).contains(&status) => Code::BAD_REQUEST,
        503 => Code::SERVICE_UNAVAILABLE,
        504 => Code::GATEWAY_TIMEOUT,
        _ => Code::BAD_GATEWAY,
    }
}

/// Translates the homeserver's answer (or failure) to the request `req` into a compact response.
pub fn http_to_coap(
    req: &HttpRequest,
    result: Result<&HttpResponse, &UpstreamError>,
    dialect: Dialect,
) -> CompactResponse {
    let resp = match result {
        Ok(r) => r,
        Err(UpstreamError::Timeout) => return CompactResponse::bare(Code::GATEWAY_TIMEOUT),
        Err(_) => return CompactResponse::bare(Code::BAD_GATEWAY),
    };
    let code = status_to_code(req.method, resp.status);
    if code == Code::BAD_GATEWAY {
        return CompactResponse::bare(code);
    }
    let json = if resp.body.is_empty() {
        None
    } else {
        resp.json()
    };
    let max_age = match code {
        Code::TOO_MANY_REQUESTS | Code::SERVICE_UNAVAILABLE => json
            .as_ref()
            .and_then(|j| j.get("retry_after_ms"))
            .and_then(serde_json::Value::as_u64)
            .map(|ms| u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX))
            .or(resp.retry_after_secs),
        _ => None,
    };
    // `/sync` answers lose their empty containers; other bodies are transcoded as sent.
    let mut json = json;
    let pruned = match json.as_mut() {
        Some(j) if code.class() == 2 && is_sync(&req.target) => {
            prune_empty(j);
            Some(j.to_string())
        }
        _ => None,
    };
    let body = pruned.as_deref().map_or(&resp.body[..], str::as_bytes);
    let payload = match &json {
        // `{}` (most PUT/POST answers) costs nothing on air: no payload at all.
        Some(serde_json::Value::Object(m)) if m.is_empty() => Vec::new(),
        Some(_) => match json_bytes_to_cbor(body, dialect.cbor_table()) {
            Some(p) => p,
            None => return CompactResponse::bare(Code::BAD_GATEWAY),
        },
        // A non-JSON body (an HTML error page of a reverse proxy) is not forwarded.
        None if code.class() == 2 && !resp.body.is_empty() => {
            return CompactResponse::bare(Code::BAD_GATEWAY);
        }
        None => Vec::new(),
    };
    CompactResponse {
        code,
        max_age,
        content_format: if payload.is_empty() {
            None
        } else {
            content_format_for(dialect)
        },
        payload,
    }
}

fn is_sync(target: &str) -> bool {
    let path = target.split('?').next().unwrap_or("");
    path == "/_matrix/client/v3/sync" || path == "/_matrix/client/r0/sync"
}

/// Removes empty objects and arrays from a `/sync` response, bottom up (every container in a
/// `/sync` response is optional and absent means empty, so nothing is lost). A top-level `{}`
/// stays `{}`.
pub fn prune_empty(value: &mut serde_json::Value) {
    fn empty(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => m.is_empty(),
            serde_json::Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    match value {
        serde_json::Value::Object(m) => {
            for v in m.values_mut() {
                prune_empty(v);
            }
            m.retain(|_, v| !empty(v));
        }
        serde_json::Value::Array(a) => {
            // Array elements keep their positions: only their insides are pruned.
            for v in a.iter_mut() {
                prune_empty(v);
            }
        }
        _ => {}
    }
}

/// JSON text → CBOR with `table`; `None` if the JSON cannot be carried.
pub fn json_bytes_to_cbor(json: &[u8], table: &cbor::Table) -> Option<Vec<u8>> {
    let mut out = vec![0u8; json.len() + 16];
    match json_to_cbor(json, table, &Limits::DEFAULT, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Some(out)
        }
        Err(cbor::Error::BufferTooSmall { required }) => {
            out.resize(required, 0);
            let n = json_to_cbor(json, table, &Limits::DEFAULT, &mut out).ok()?;
            out.truncate(n);
            Some(out)
        }
        Err(_) => None,
    }
}

/// CBOR → JSON text with `table`; `None` if the CBOR is malformed or outside the table.
pub fn cbor_bytes_to_json(cbor_bytes: &[u8], table: &cbor::Table) -> Option<Vec<u8>> {
    let mut out = vec![0u8; cbor_bytes.len() * 8 + 64];
    match cbor_to_json(cbor_bytes, table, &Limits::DEFAULT, &mut out) {
        Ok(n) => {
            out.truncate(n);
            Some(out)
        }
        Err(cbor::Error::BufferTooSmall { required }) => {
            out.resize(required, 0);
            let n = cbor_to_json(cbor_bytes, table, &Limits::DEFAULT, &mut out).ok()?;
            out.truncate(n);
            Some(out)
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests;
