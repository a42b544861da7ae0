//! The homeserver client: plain HTTP+JSON requests against the client-server API.
//!
//! Blocking [`ureq`] with rustls (ring) instead of `reqwest` + `tokio`: the gateway forwards a
//! handful of requests per second at most (every device is limited by a ~100 bit/s radio), so one
//! thread per in-flight request costs nothing, and the dependency tree is a fraction of an async
//! stack. `http://` and `https://` homeservers both work; no system OpenSSL is involved.

use std::time::Duration;

use tracing::debug;

use crate::error::{ConfigError, UpstreamError};

/// Upper bound on a homeserver response body the gateway will read (a device could never
/// receive more over its link anyway).
pub const MAX_RESPONSE_BODY: u64 = 4 * 1024 * 1024;

/// HTTP methods the client-server API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method token as HTTP writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// One HTTP request to the homeserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Percent-encoded request target: path and optional `?query`, starting with `/`.
    pub target: String,
    /// Access token sent as `Authorization: Bearer …`, if any.
    pub access_token: Option<String>,
    /// JSON body (sent with `Content-Type: application/json`), if any.
    pub body: Option<Vec<u8>>,
}

/// The homeserver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Retry-After` header in seconds, if present and numeric.
    pub retry_after_secs: Option<u32>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Whether the body is declared as JSON.
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|c| c.trim_start().starts_with("application/json"))
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Client settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Bound on one whole request (connect, send, receive). A long-polling `/sync` needs more
    /// than its `timeout` parameter.
    pub timeout: Duration,
    /// Bound on establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
}

impl Default for ClientConfig {
    /// 60 s per request, 10 s to connect.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A connection pool to one homeserver.
#[derive(Debug, Clone)]
pub struct HomeserverClient {
    agent: ureq::Agent,
    base: String,
}

impl HomeserverClient {
    /// A client for the homeserver at `base_url` (`http://…` or `https://…`, no path).
    ///
    /// `https://` servers are verified against the Mozilla root store (webpki-roots).
    pub fn new(base_url: &str, config: ClientConfig) -> Result<Self, ConfigError> {
        Self::build(base_url, config, None)
    }

    /// Like [`new`](Self::new), but `https://` servers are verified against the certificates in
    /// `ca_pem` (one or more PEM `CERTIFICATE` blocks) instead of the public roots: a private
    /// homeserver with its own CA.
    pub fn with_trust_anchors(
        base_url: &str,
        config: ClientConfig,
        ca_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(ca_pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(_) => return Err(ConfigError::BadCaFile),
            }
        }
        if certs.is_empty() {
            return Err(ConfigError::BadCaFile);
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build();
        Self::build(base_url, config, Some(tls))
    }

    fn build(
        base_url: &str,
        config: ClientConfig,
        tls: Option<ureq::tls::TlsConfig>,
    ) -> Result<Self, ConfigError> {
        let (scheme, rest) = base_url
            .split_once("://")
            .filter(|(s, _)| matches!(*s, "http" | "https"))
            .ok_or(ConfigError::UnsupportedScheme)?;
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
            return Err(ConfigError::BadBaseUrl);
        }
        let base = format!("{scheme}://{host}");
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.connect_timeout))
            .http_status_as_error(false)
            .max_redirects(0);
        if let Some(tls) = tls {
            builder = builder.tls_config(tls);
        }
        let agent = builder.build().into();
        Ok(Self { agent, base })
    }

    /// The base URL without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one request and reads the whole response.
    pub fn send(&self, req: &HttpRequest) -> Result<HttpResponse, UpstreamError> {
        if !req.target.starts_with('/') {
            return Err(UpstreamError::BadTarget);
        }
        let url = format!("{}{}", self.base, req.target);
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(&url);
        if let Some(token) = &req.access_token {
            builder = builder.header("Authorization", format!("Bearer {token}"));
        }
        let result = match &req.body {
            Some(body) => {
                let request = builder
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .map_err(|_| UpstreamError::BadTarget)?;
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(|_| UpstreamError::BadTarget)?;
                self.agent.run(request)
            }
        };
        let mut resp = result.map_err(UpstreamError::from_ureq)?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let retry_after_secs = header("retry-after").and_then(|v| v.trim().parse().ok());
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BODY)
            .read_to_vec()
            .map_err(UpstreamError::from_ureq)?;
        debug!(
            method = req.method.as_str(),
            target = %req.target,
            status,
            response_len = body.len(),
            "homeserver request"
        );
        Ok(HttpResponse {
            status,
            content_type,
            retry_after_secs,
            body,
        })
    }

    /// Sends a JSON request; convenience for tests and the `/sync` helper.
    pub fn json(
        &self,
        method: Method,
        target: &str,
        access_token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<HttpResponse, UpstreamError> {
        self.send(&HttpRequest {
            method,
            target: target.to_owned(),
            access_token: access_token.map(str::to_owned),
            body: body.map(|b| b.to_string().into_bytes()),
        })
    }
}

/// Percent-encodes one path segment (RFC 3986 `pchar` minus `/`), for building targets by hand.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        for ok in [
            "http://127.0.0.1:8008",
            "https://matrix.example.org/",
            "https://[::1]:443",
        ] {
            assert!(
                HomeserverClient::new(ok, ClientConfig::default()).is_ok(),
                "{ok}"
            );
        }
        assert_eq!(
            HomeserverClient::new("https://example.org/", ClientConfig::default())
                .unwrap()
                .base_url(),
            "https://example.org"
        );
        assert_eq!(
            HomeserverClient::new("ftp://x", ClientConfig::default()).unwrap_err(),
            ConfigError::UnsupportedScheme
        );
        assert_eq!(
            HomeserverClient::new("https://x/matrix", ClientConfig::default()).unwrap_err(),
            ConfigError::BadBaseUrl
        );
        assert_eq!(
            HomeserverClient::new("http://", ClientConfig::default()).unwrap_err(),
            ConfigError::BadBaseUrl
        );
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let url = "https://127.0.0.1:8448";
        let cfg = ClientConfig::default();
        for bad in [
            &b""[..],
            b"not pem at all",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        ] {
            assert_eq!(
                HomeserverClient::with_trust_anchors(url, cfg, bad).unwrap_err(),
                ConfigError::BadCaFile,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn unreachable_and_timeout() {
        // A listener that accepts and never answers: the request times out.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let cfg = ClientConfig {
            timeout: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(300),
        };
        let c = HomeserverClient::new(&format!("http://{addr}"), cfg).unwrap();
        let req = HttpRequest {
            method: Method::Get,
            target: "/_matrix/client/versions".into(),
            access_token: None,
            body: None,
        };
        assert_eq!(c.send(&req), Err(UpstreamError::Timeout));
        drop(silent);
        // Nothing listens any more: connection refused.
        assert!(matches!(c.send(&req), Err(UpstreamError::Unreachable(_))));
        let bad = HttpRequest {
            target: "no-slash".into(),
            ..req
        };
        assert_eq!(c.send(&bad), Err(UpstreamError::BadTarget));
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("#room:x"), "%23room:x");
        assert_eq!(encode_segment("a b/c?"), "a%20b%2Fc%3F");
        assert_eq!(encode_segment("!r$e@u"), "!r$e@u");
    }

    #[test]
    fn https_speaks_tls() {
        use std::io::Read;
        // A TCP listener that records the first bytes the client sends and hangs up.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut head = [0u8; 3];
            s.read_exact(&mut head).unwrap();
            head
        });
        let c = HomeserverClient::new(
            &format!("https://localhost:{port}"),
            ClientConfig::default(),
        )
        .unwrap();
        let r = c.json(Method::Get, "/_matrix/client/versions", None, None);
        assert!(matches!(r, Err(UpstreamError::Unreachable(_))), "{r:?}");
        // A TLS handshake record (content type 22, version 3.x): a ClientHello from rustls.
        let head = seen.join().unwrap();
        assert_eq!(head[0], 0x16);
        assert_eq!(head[1], 0x03);
    }
}
