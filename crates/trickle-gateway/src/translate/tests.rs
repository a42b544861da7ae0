use super::*;
use trickle_core::wire::coap::Kind;

fn req<'a>(code: Code, opts: &[CoapOption<'a>], payload: &'a [u8]) -> Repr<'a> {
    let mut r = Repr::new(Kind::Confirmable, code, 7, b"\x01");
    for o in opts {
        r.push_option(*o).unwrap();
    }
    r.payload = payload;
    r
}

fn path(s: &str) -> CoapOption<'_> {
    CoapOption::str(OptionNumber::URI_PATH, s)
}

fn cbor(json: &str) -> Vec<u8> {
    json_bytes_to_cbor(json.as_bytes(), &cbor::Table::TRICKLE_V1).unwrap()
}

fn resp(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        content_type: Some("application/json".into()),
        retry_after_secs: None,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn send_message_expands_to_v3_put() {
    let body = cbor(r#"{"msgtype":"m.text","body":"Hello"}"#);
    let r = req(
        Code::PUT,
        &[
            path("9"),
            path("!r:localhost"),
            path("m.room.message"),
            path("t1"),
        ],
        &body,
    );
    let h = coap_to_http(&r, Dialect::TrickleV1, Some("tok")).unwrap();
    assert_eq!(h.method, Method::Put);
    assert_eq!(
        h.target,
        "/_matrix/client/v3/rooms/!r:localhost/send/m.room.message/t1"
    );
    assert_eq!(h.access_token.as_deref(), Some("tok"));
    assert_eq!(
        h.body.as_deref(),
        Some(&br#"{"body":"Hello","msgtype":"m.text"}"#[..])
    );
}

#[test]
fn join_by_alias_is_percent_encoded_and_query_kept() {
    let r = req(
        Code::POST,
        &[
            path("L"),
            path("#room:localhost"),
            CoapOption::str(OptionNumber::URI_QUERY, "server_name=localhost"),
        ],
        &[],
    );
    let h = coap_to_http(&r, Dialect::TrickleV1, None).unwrap();
    assert_eq!(
        h.target,
        "/_matrix/client/v3/join/%23room:localhost?server_name=localhost"
    );
    // POST without a payload sends an empty object.
    assert_eq!(h.body.as_deref(), Some(&b"{}"[..]));
    assert_eq!(h.access_token, None);
}

#[test]
fn get_sync_has_no_body() {
    let r = req(Code::GET, &[path("7")], &[]);
    let h = coap_to_http(&r, Dialect::TrickleV1, Some("t")).unwrap();
    assert_eq!(
        (h.method, h.target.as_str(), h.body),
        (Method::Get, "/_matrix/client/v3/sync", None)
    );
}

#[test]
fn refusals() {
    // Unknown endpoint code.
    let e = coap_to_http(
        &req(Code::GET, &[path("\x7f")], &[]),
        Dialect::TrickleV1,
        None,
    )
    .unwrap_err();
    assert_eq!(e.code, Code::NOT_FOUND);
    assert_eq!(e.payload, cbor(r#"{"errcode":"M_UNRECOGNIZED"}"#));
    assert_eq!(e.payload, b"\xa1\x12\xc6\x18\x1a");
    // Wrong parameter count.
    let e = coap_to_http(
        &req(Code::PUT, &[path("9"), path("!r:x")], &[]),
        Dialect::TrickleV1,
        None,
    )
    .unwrap_err();
    assert_eq!(e.code, Code::BAD_REQUEST);
    // FETCH is not a Matrix method.
    let e = coap_to_http(
        &req(Code::FETCH, &[path("7")], &[]),
        Dialect::TrickleV1,
        None,
    )
    .unwrap_err();
    assert_eq!(e, CompactResponse::bare(Code::METHOD_NOT_ALLOWED));
    // Unknown critical option.
    let e = coap_to_http(
        &req(
            Code::GET,
            &[path("7"), CoapOption::new(OptionNumber::PROXY_URI, b"x")],
            &[],
        ),
        Dialect::TrickleV1,
        None,
    )
    .unwrap_err();
    assert_eq!(e, CompactResponse::bare(Code::BAD_OPTION));
    // Not CBOR of the table (a msc3079-v1 `body` key is unassigned in trickle-v1).
    let e = coap_to_http(
        &req(Code::PUT, &[path("B")], b"\xa1\x18\x1c\x61x"),
        Dialect::TrickleV1,
        None,
    )
    .unwrap_err();
    assert_eq!(e.code, Code::BAD_REQUEST);
    // Uncompressed paths outside the client-server API are not forwarded.
    let e = coap_to_http(
        &req(
            Code::GET,
            &[path("_synapse"), path("admin"), path("v1"), path("users")],
            &[],
        ),
        Dialect::TrickleV1,
        None,
    )
    .unwrap_err();
    assert_eq!(e.code, Code::NOT_FOUND);
}

#[test]
fn uncompressed_client_path_is_forwarded() {
    let r = req(
        Code::GET,
        &[
            path("_matrix"),
            path("client"),
            path("v3"),
            path("capabilities"),
        ],
        &[],
    );
    let h = coap_to_http(&r, Dialect::TrickleV1, None).unwrap();
    assert_eq!(h.target, "/_matrix/client/v3/capabilities");
}

#[test]
fn dialect_selection() {
    let plain = req(Code::GET, &[path("7")], &[]);
    assert_eq!(
        request_dialect(&plain, Dialect::TrickleV1),
        Ok(Dialect::TrickleV1)
    );
    let msc = req(
        Code::GET,
        &[
            path("7"),
            CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60),
            CoapOption::uint(OptionNumber::CBOR_ENUM_VERSION, 1),
        ],
        &[],
    );
    assert_eq!(
        request_dialect(&msc, Dialect::TrickleV1),
        Ok(Dialect::Msc3079V1)
    );
    let v2 = req(
        Code::GET,
        &[
            path("7"),
            CoapOption::uint(OptionNumber::CBOR_ENUM_VERSION, 2),
        ],
        &[],
    );
    assert_eq!(
        request_dialect(&v2, Dialect::TrickleV1),
        Err(CompactResponse::bare(Code::UNSUPPORTED_CONTENT_FORMAT))
    );
    let json_cf = req(
        Code::GET,
        &[
            path("7"),
            CoapOption::uint(OptionNumber::CONTENT_FORMAT, 50),
        ],
        &[],
    );
    assert_eq!(
        request_dialect(&json_cf, Dialect::TrickleV1),
        Err(CompactResponse::bare(Code::UNSUPPORTED_CONTENT_FORMAT))
    );
}

#[test]
fn msc3079_body_and_token() {
    let body = json_bytes_to_cbor(
        br#"{"body":"hi","msgtype":"m.text"}"#,
        &cbor::Table::MSC3079_V1,
    )
    .unwrap();
    let r = req(
        Code::PUT,
        &[
            path("9"),
            path("!r:x"),
            path("m.room.message"),
            path("t"),
            CoapOption::str(OptionNumber::AUTHORIZATION, "syt_abc"),
            CoapOption::uint(OptionNumber::CBOR_ENUM_VERSION, 1),
        ],
        &body,
    );
    assert_eq!(msc3079_access_token(&r), Some("syt_abc"));
    let h = coap_to_http(&r, Dialect::Msc3079V1, msc3079_access_token(&r)).unwrap();
    assert_eq!(
        h.body.as_deref(),
        Some(&br#"{"body":"hi","msgtype":"m.text"}"#[..])
    );
    let out = http_to_coap(
        &h,
        Ok(&resp(200, r#"{"event_id":"$e"}"#)),
        Dialect::Msc3079V1,
    );
    assert_eq!(out.code, Code::CHANGED);
    assert_eq!(out.content_format, Some(60));
    assert_eq!(
        cbor_bytes_to_json(&out.payload, &cbor::Table::MSC3079_V1).unwrap(),
        br#"{"event_id":"$e"}"#
    );
}

fn http(method: Method) -> HttpRequest {
    HttpRequest {
        method,
        target: "/_matrix/client/v3/x".into(),
        access_token: None,
        body: None,
    }
}

#[test]
fn status_mapping() {
    assert_eq!(status_to_code(Method::Get, 200), Code::CONTENT);
    assert_eq!(status_to_code(Method::Post, 200), Code::CHANGED);
    assert_eq!(status_to_code(Method::Put, 200), Code::CHANGED);
    assert_eq!(status_to_code(Method::Delete, 200), Code::DELETED);
    for (s, c) in [
        (400, Code::BAD_REQUEST),
        (401, Code::UNAUTHORIZED),
        (403, Code::FORBIDDEN),
        (404, Code::NOT_FOUND),
        (413, Code::REQUEST_ENTITY_TOO_LARGE),
        (429, Code::TOO_MANY_REQUESTS),
        (418, Code::BAD_REQUEST),
        (500, Code::BAD_GATEWAY),
        (502, Code::BAD_GATEWAY),
        (503, Code::SERVICE_UNAVAILABLE),
        (504, Code::GATEWAY_TIMEOUT),
        (302, Code::BAD_GATEWAY),
    ] {
        assert_eq!(status_to_code(Method::Get, s), c, "status {s}");
    }
}

#[test]
fn response_bodies() {
    // `{}` → no payload.
    let out = http_to_coap(&http(Method::Put), Ok(&resp(200, "{}")), Dialect::TrickleV1);
    assert_eq!(out, CompactResponse::bare(Code::CHANGED));
    // Errors keep their errcode as a value reference.
    let out = http_to_coap(
        &http(Method::Post),
        Ok(&resp(404, r#"{"errcode":"M_NOT_FOUND","error":"No room"}"#)),
        Dialect::TrickleV1,
    );
    assert_eq!(out.code, Code::NOT_FOUND);
    assert_eq!(out.payload, b"\xa2\x12\xc6\x17\x13\x67No room");
    assert_eq!(out.content_format, None);
    // 429: Max-Age from retry_after_ms, rounded up.
    let out = http_to_coap(
        &http(Method::Get),
        Ok(&resp(
            429,
            r#"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1001}"#,
        )),
        Dialect::TrickleV1,
    );
    assert_eq!((out.code, out.max_age), (Code::TOO_MANY_REQUESTS, Some(2)));
    let out = http_to_coap(
        &http(Method::Get),
        Ok(&resp(
            429,
            r#"{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":3000}"#,
        )),
        Dialect::TrickleV1,
    );
    assert_eq!(out.max_age, Some(3));
    // …or from Retry-After when the body has none.
    let mut r = resp(429, r#"{"errcode":"M_LIMIT_EXCEEDED"}"#);
    r.retry_after_secs = Some(5);
    assert_eq!(
        http_to_coap(&http(Method::Get), Ok(&r), Dialect::TrickleV1).max_age,
        Some(5)
    );
    // Non-JSON success body, or an origin 500 → 5.02 without body.
    let mut html = resp(200, "<html></html>");
    html.content_type = Some("text/html".into());
    assert_eq!(
        http_to_coap(&http(Method::Get), Ok(&html), Dialect::TrickleV1),
        CompactResponse::bare(Code::BAD_GATEWAY)
    );
    assert_eq!(
        http_to_coap(
            &http(Method::Get),
            Ok(&resp(500, r#"{"errcode":"M_UNKNOWN"}"#)),
            Dialect::TrickleV1
        ),
        CompactResponse::bare(Code::BAD_GATEWAY)
    );
    // Upstream failures.
    assert_eq!(
        http_to_coap(
            &http(Method::Get),
            Err(&UpstreamError::Timeout),
            Dialect::TrickleV1
        ),
        CompactResponse::bare(Code::GATEWAY_TIMEOUT)
    );
    assert_eq!(
        http_to_coap(
            &http(Method::Get),
            Err(&UpstreamError::Unreachable("x".into())),
            Dialect::TrickleV1
        ),
        CompactResponse::bare(Code::BAD_GATEWAY)
    );
}

#[test]
fn response_message_bytes() {
    let request = req(Code::PUT, &[path("9")], &[]);
    let r = CompactResponse {
        code: Code::TOO_MANY_REQUESTS,
        max_age: Some(2),
        content_format: None,
        payload: vec![0xa0],
    };
    // ACK, TKL 1, 4.29, MID 7, token 01, Max-Age (14) = 2 (delta 14 = 13 + `01`), payload.
    assert_eq!(
        r.to_bytes(&request, 99),
        b"\x61\x9d\x00\x07\x01\xd1\x01\x02\xff\xa0"
    );
    let mut non = request.clone();
    non.kind = Kind::NonConfirmable;
    assert_eq!(
        CompactResponse::bare(Code::CHANGED).to_bytes(&non, 0x1234),
        b"\x51\x44\x12\x34\x01"
    );
}

#[test]
fn sync_responses_lose_empty_containers() {
    let body = r#"{"next_batch":"s1","account_data":{"events":[]},"rooms":{"join":{"!r":{"state":{"events":[]},"summary":{},"timeline":{"events":[{"content":{},"type":"x"}],"limited":false}}},"leave":{}},"device_unused_fallback_key_types":[]}"#;
    let mut req = http(Method::Get);
    req.target = "/_matrix/client/v3/sync?filter=0&since=s0".into();
    let out = http_to_coap(&req, Ok(&resp(200, body)), Dialect::TrickleV1);
    assert_eq!(out.code, Code::CONTENT);
    assert_eq!(
        cbor_bytes_to_json(&out.payload, &cbor::Table::TRICKLE_V1).unwrap(),
        br#"{"next_batch":"s1","rooms":{"join":{"!r":{"timeline":{"events":[{"type":"x"}],"limited":false}}}}}"#
    );
    // Other endpoints keep empty containers (`chunk: []` is required by /messages).
    req.target = "/_matrix/client/v3/rooms/!r/messages".into();
    let out = http_to_coap(&req, Ok(&resp(200, r#"{"chunk":[]}"#)), Dialect::TrickleV1);
    assert_eq!(
        cbor_bytes_to_json(&out.payload, &cbor::Table::TRICKLE_V1).unwrap(),
        br#"{"chunk":[]}"#
    );
}

#[test]
fn non_utf8_path_is_bad_request() {
    let r = req(
        Code::GET,
        &[CoapOption::new(OptionNumber::URI_PATH, b"\xff\xfe")],
        &[],
    );
    let e = coap_to_http(&r, Dialect::TrickleV1, None).unwrap_err();
    assert_eq!(e.code, Code::BAD_REQUEST);
    assert_eq!(e.payload, b"\xa1\x12\xc6\x18\x1a");
}
