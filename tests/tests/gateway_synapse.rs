//! The gateway's homeserver half against a real Synapse: compact CoAP requests in, HTTP+JSON to
//! Synapse, compact CoAP responses out. Fails (never skips) when Synapse cannot start.
//!
//! Every compact operation also records the bytes the gateway exchanged with Synapse over TCP
//! (counted by a relay, so request line + headers + body in both directions, exactly) beside
//! the compact CoAP bytes (request message + response message, without the Noise framing).

use serde_json::{Value, json};
use trickle_core::cbor::Table as CborTable;
use trickle_core::wire::coap::{CoapOption, Code, Kind, OptionNumber, Repr};
use trickle_gateway::alias::{AliasKind, AliasStore};
use trickle_gateway::sync::{
    TINY_EVENT_FIELDS, TinyFilterOptions, sync_once, tiny_filter, upload_filter,
};
use trickle_gateway::translate::{cbor_bytes_to_json, json_bytes_to_cbor};
use trickle_gateway::{ClientConfig, CompactResponse, Dialect, Gateway, HomeserverClient};
use trickle_tests::matrix::MatrixUser;
use trickle_tests::synapse::Synapse;
use trickle_tests::tap::{ByteTap, Bytes};

const ALICE_PW: &str = "alice-secret-pw";
const BOB_PW: &str = "bob-secret-pw";

/// One measured operation.
struct Row {
    name: &'static str,
    http: Bytes,
    coap_req: usize,
    coap_resp: usize,
}

struct Harness {
    gw: Gateway,
    tap: ByteTap,
    rows: Vec<Row>,
    mid: u16,
}

/// What a compact request returned: the response and its body as JSON (`{}` when empty).
struct Answer {
    resp: CompactResponse,
    json: Value,
    request_bytes: Vec<u8>,
}

impl Harness {
    /// Builds the compact request, emits it, parses the bytes back (as the session layer will
    /// hand them over), lets the gateway handle it, and records the bytes on both sides.
    fn exchange(
        &mut self,
        name: &'static str,
        code: Code,
        segments: &[&str],
        queries: &[&str],
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Answer {
        self.mid += 1;
        let token_bytes = [self.mid as u8];
        let cbor = body
            .map(|b| json_bytes_to_cbor(b.to_string().as_bytes(), &CborTable::TRICKLE_V1).unwrap());
        let request_bytes = {
            let mut repr = Repr::new(Kind::Confirmable, code, self.mid, &token_bytes);
            for s in segments {
                repr.push_option(CoapOption::str(OptionNumber::URI_PATH, s))
                    .unwrap();
            }
            for q in queries {
                repr.push_option(CoapOption::str(OptionNumber::URI_QUERY, q))
                    .unwrap();
            }
            repr.payload = cbor.as_deref().unwrap_or(&[]);
            let mut buf = vec![0u8; repr.buffer_len()];
            let n = repr.emit(&mut buf).unwrap();
            buf.truncate(n);
            buf
        };

        let (resp, http, response_bytes) = {
            let parsed = Repr::parse_bytes(&request_bytes).unwrap();
            self.tap.take();
            let resp = self.gw.handle(&parsed, token);
            let http = self.tap.take();
            let response_bytes = resp.to_bytes(&parsed, 0);
            (resp, http, response_bytes)
        };
        // The response message parses and carries the same code, token and payload.
        let back = Repr::parse_bytes(&response_bytes).unwrap();
        assert_eq!(
            (back.kind, back.code, back.token, back.payload),
            (
                Kind::Acknowledgement,
                resp.code,
                &token_bytes[..],
                &resp.payload[..]
            )
        );

        let json = if resp.payload.is_empty() {
            json!({})
        } else {
            let text = cbor_bytes_to_json(&resp.payload, &CborTable::TRICKLE_V1)
                .expect("response body decodes with trickle-v1");
            serde_json::from_slice(&text).unwrap()
        };
        println!(
            "{name}: compact {} + {} bytes, HTTP {} + {} bytes; code {}; body {json}",
            request_bytes.len(),
            response_bytes.len(),
            http.up,
            http.down,
            resp.code
        );
        self.rows.push(Row {
            name,
            http,
            coap_req: request_bytes.len(),
            coap_resp: response_bytes.len(),
        });
        Answer {
            resp,
            json,
            request_bytes,
        }
    }
}

#[test]
fn gateway_against_real_synapse() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let synapse = Synapse::start().expect("Synapse must start for this test");
    let alice_id = synapse.register_user("alice", ALICE_PW).unwrap();
    assert_eq!(alice_id, "@alice:localhost");

    // Bob is the second user, on plain HTTP+JSON straight to Synapse.
    let bob: MatrixUser = synapse.user("bob", BOB_PW).unwrap();
    assert_eq!(bob.user_id, "@bob:localhost");
    let lobby = bob
        .create_room(&json!({"room_alias_name": "lobby", "preset": "public_chat"}))
        .unwrap();
    let private = bob.create_room(&json!({"preset": "private_chat"})).unwrap();

    // A third user joins Bob's private room by invitation (plain HTTP helpers).
    let carol = synapse.user("carol", "carol-pw").unwrap();
    bob.invite(&private, &carol.user_id).unwrap();
    assert_eq!(carol.join(&private).unwrap(), private);

    let tap = ByteTap::start(([127, 0, 0, 1], synapse.port()).into()).unwrap();
    let client = HomeserverClient::new(&tap.base_url(), ClientConfig::default()).unwrap();
    let mut h = Harness {
        gw: Gateway::new(client, Dialect::TrickleV1),
        tap,
        rows: Vec::new(),
        mid: 0,
    };

    // --- Login: POST code `1`, CBOR trickle-v1 body, no token.
    let login_body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": ALICE_PW,
    });
    let a = h.exchange("login", Code::POST, &["1"], &[], Some(&login_body), None);
    assert_eq!(a.resp.code, Code::CHANGED);
    assert_eq!(a.resp.content_format, None);
    assert_eq!(a.json["user_id"], alice_id);
    let token = a.json["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    assert!(token.starts_with("syt_"), "{token}");
    // Header 4 + token 1 + Uri-Path `1` 2 + marker 1 + CBOR body.
    let login_cbor =
        json_bytes_to_cbor(login_body.to_string().as_bytes(), &CborTable::TRICKLE_V1).unwrap();
    assert_eq!(a.request_bytes.len(), 4 + 1 + 2 + 1 + login_cbor.len());
    assert_eq!(login_cbor.len(), 36);

    // --- Join by alias: POST code `L`.
    let a = h.exchange(
        "join #lobby",
        Code::POST,
        &["L", "#lobby:localhost"],
        &[],
        None,
        Some(&token),
    );
    assert_eq!(a.resp.code, Code::CHANGED);
    assert_eq!(a.json["room_id"], lobby.as_str());
    // 5 + Uri-Path "L" 2 + Uri-Path "#lobby:localhost" 2+16.
    assert_eq!(a.request_bytes.len(), 25);

    // --- Send "Hello": PUT code `9` room / event type / txn.
    let a = h.exchange(
        "send Hello",
        Code::PUT,
        &["9", &lobby, "m.room.message", "t1"],
        &[],
        Some(&json!({"msgtype": "m.text", "body": "Hello"})),
        Some(&token),
    );
    assert_eq!(a.resp.code, Code::CHANGED);
    let event_id = a.json["event_id"].as_str().expect("event_id").to_owned();
    assert!(event_id.starts_with('$'));
    // Room version 12 (Synapse's default) IDs are `!` + 43 base64 characters, no server name.
    assert_eq!(lobby.len(), 44);
    assert_eq!(
        a.request_bytes.len(),
        5 + 2 + (2 + 44) + (2 + 14) + (1 + 2) + 1 + 10
    );

    // Bob sees it over plain HTTP.
    let seen = bob.messages(&lobby, 5).unwrap();
    let ev = seen
        .iter()
        .find(|e| e["event_id"] == event_id.as_str())
        .expect("Bob sees Alice's event");
    assert_eq!(ev["sender"], alice_id);
    assert_eq!(ev["content"]["body"], "Hello");

    // --- Tiny-device sync: filter upload, then Bob replies and Alice's sync returns only it.
    let direct = HomeserverClient::new(&synapse.base_url(), ClientConfig::default()).unwrap();
    let filter = tiny_filter(TinyFilterOptions::default());
    let filter_id = upload_filter(&direct, &token, &alice_id, &filter).unwrap();
    let first = sync_once(&direct, &token, &filter_id, None, 0).unwrap();
    assert!(
        first
            .events
            .iter()
            .any(|e| e.event["event_id"] == event_id.as_str())
    );
    let reply_id = bob.send_text(&lobby, "r1", "Hi Alice").unwrap();
    let batch = sync_once(&direct, &token, &filter_id, Some(&first.next_batch), 10_000).unwrap();
    assert_eq!(batch.events.len(), 1, "{:?}", batch.events);
    let reply = &batch.events[0];
    assert_eq!(reply.room_id, lobby);
    let expected = json!({
        "type": "m.room.message",
        "sender": "@bob:localhost",
        "event_id": reply_id,
        "content": {"body": "Hi Alice", "msgtype": "m.text"},
        "origin_server_ts": reply.event["origin_server_ts"].clone(),
    });
    assert!(reply.event["origin_server_ts"].as_u64().is_some());
    assert_eq!(reply.event, expected, "only the trimmed fields");
    assert_eq!(TINY_EVENT_FIELDS.len(), 6);

    // The same sync, compact: GET code `7` with the filter and since as Uri-Query.
    let reply2 = bob.send_text(&lobby, "r2", "Still there?").unwrap();
    let filter_q = format!("filter={filter_id}");
    let since_q = format!("since={}", batch.next_batch);
    let a = h.exchange(
        "sync (tiny filter)",
        Code::GET,
        &["7"],
        &[&filter_q, &since_q, "timeout=10000"],
        None,
        Some(&token),
    );
    assert_eq!(a.resp.code, Code::CONTENT);
    let events = a.json["rooms"]["join"][&lobby]["timeline"]["events"]
        .as_array()
        .expect("timeline");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], reply2.as_str());
    assert_eq!(
        events[0]["content"],
        json!({"body": "Still there?", "msgtype": "m.text"})
    );

    // For comparison: the same incremental sync as a plain client does it, without a filter.
    let since_q = format!("since={}", batch.next_batch);
    h.tap.take();
    let plain =
        h.gw.client()
            .json(
                trickle_gateway::Method::Get,
                &format!("/_matrix/client/v3/sync?{since_q}&timeout=0"),
                Some(&token),
                None,
            )
            .unwrap();
    assert_eq!(plain.status, 200);
    let unfiltered = h.tap.take();
    println!(
        "plain HTTP sync without a filter, same since: HTTP {} + {} bytes",
        unfiltered.up, unfiltered.down
    );

    // --- Errors keep the homeserver's errcode.
    let a = h.exchange(
        "join unknown alias",
        Code::POST,
        &["L", "#nope:localhost"],
        &[],
        None,
        Some(&token),
    );
    assert_eq!(a.resp.code, Code::NOT_FOUND);
    assert_eq!(a.json["errcode"], "M_NOT_FOUND");
    assert_eq!(
        &a.resp.payload[..4],
        b"\xa2\x12\xc6\x17",
        "errcode as value reference 6(23)"
    );

    let a = h.exchange(
        "send to a room not joined",
        Code::PUT,
        &["9", &private, "m.room.message", "t2"],
        &[],
        Some(&json!({"msgtype": "m.text", "body": "let me in"})),
        Some(&token),
    );
    assert_eq!(a.resp.code, Code::FORBIDDEN);
    assert_eq!(a.json["errcode"], "M_FORBIDDEN");

    let a = h.exchange(
        "sync with a bad token",
        Code::GET,
        &["7"],
        &[],
        None,
        Some("syt_not_a_token"),
    );
    assert_eq!(a.resp.code, Code::UNAUTHORIZED);
    assert_eq!(a.json["errcode"], "M_UNKNOWN_TOKEN");

    // An unknown endpoint code never reaches Synapse.
    let a = h.exchange(
        "unknown code",
        Code::GET,
        &["\x7f"],
        &[],
        None,
        Some(&token),
    );
    assert_eq!(a.resp.code, Code::NOT_FOUND);
    assert_eq!(h.rows.last().unwrap().http, Bytes::default());

    // --- A plain MSC3079 client: token in option 256, option 257 = 1, msc3079-v1 bodies.
    let body = json_bytes_to_cbor(
        br#"{"msgtype":"m.text","body":"from MSC3079"}"#,
        &CborTable::MSC3079_V1,
    )
    .unwrap();
    let mut repr = Repr::new(Kind::Confirmable, Code::PUT, 900, b"\x09");
    for o in [
        CoapOption::str(OptionNumber::URI_PATH, "9"),
        CoapOption::str(OptionNumber::URI_PATH, &lobby),
        CoapOption::str(OptionNumber::URI_PATH, "m.room.message"),
        CoapOption::str(OptionNumber::URI_PATH, "m1"),
        CoapOption::uint(OptionNumber::CONTENT_FORMAT, 60),
        CoapOption::str(OptionNumber::AUTHORIZATION, &token),
        CoapOption::uint(OptionNumber::CBOR_ENUM_VERSION, 1),
    ] {
        repr.push_option(o).unwrap();
    }
    repr.payload = &body;
    let mut wire = vec![0u8; repr.buffer_len()];
    let n = repr.emit(&mut wire).unwrap();
    let parsed = Repr::parse_bytes(&wire[..n]).unwrap();
    let token_opt = trickle_gateway::translate::msc3079_access_token(&parsed);
    assert_eq!(token_opt, Some(token.as_str()));
    let resp = h.gw.handle(&parsed, token_opt);
    assert_eq!(resp.code, Code::CHANGED);
    assert_eq!(resp.content_format, Some(60));
    let json: Value = serde_json::from_slice(
        &cbor_bytes_to_json(&resp.payload, &CborTable::MSC3079_V1).expect("msc3079-v1 body"),
    )
    .unwrap();
    let msc_event = json["event_id"].as_str().expect("event_id").to_owned();
    let seen = bob.messages(&lobby, 3).unwrap();
    let ev = seen
        .iter()
        .find(|e| e["event_id"] == msc_event.as_str())
        .expect("Bob sees the MSC3079 client's message");
    assert_eq!(ev["content"]["body"], "from MSC3079");
    println!(
        "MSC3079 send: compact {} + {} bytes (token on air: {} bytes)",
        n,
        resp.to_bytes(&parsed, 0).len(),
        token.len()
    );

    // --- Aliases of the real IDs survive a reopen.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("aliases.sqlite");
    {
        let mut store = AliasStore::open(&db).unwrap();
        assert_eq!(
            store
                .alias_for("alice-dev", AliasKind::Room, &lobby)
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .alias_for("alice-dev", AliasKind::Event, &event_id)
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .alias_for("alice-dev", AliasKind::Event, &reply_id)
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .alias_for("alice-dev", AliasKind::User, "@bob:localhost")
                .unwrap(),
            0
        );
    }
    let mut store = AliasStore::open(&db).unwrap();
    assert_eq!(
        store.resolve("alice-dev", AliasKind::Room, 0).unwrap(),
        Some(lobby.clone())
    );
    assert_eq!(
        store.resolve("alice-dev", AliasKind::Event, 1).unwrap(),
        Some(reply_id.clone())
    );
    assert_eq!(
        store
            .alias_for("alice-dev", AliasKind::Room, &lobby)
            .unwrap(),
        0
    );

    // --- Byte report.
    println!(
        "\n| operation | HTTP up | HTTP down | HTTP total | CoAP req | CoAP resp | CoAP total | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &h.rows {
        let coap = r.coap_req + r.coap_resp;
        let ratio = if r.http.total() == 0 {
            0.0
        } else {
            r.http.total() as f64 / coap as f64
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {ratio:.1}x |",
            r.name,
            r.http.up,
            r.http.down,
            r.http.total(),
            r.coap_req,
            r.coap_resp,
            coap
        );
        if r.http.total() > 0 {
            assert!(
                r.http.total() > coap as u64,
                "{}: compact must be smaller",
                r.name
            );
        }
    }
}

#[test]
fn start_fails_loudly_without_python() {
    // The other test reads TRICKLE_PYTHON too, so the variable is changed only in a child
    // process that runs just this test.
    let exe = std::env::current_exe().unwrap();
    if std::env::var_os("TRICKLE_SYNAPSE_NEGATIVE_CHILD").is_some() {
        let err = Synapse::start().expect_err("a missing interpreter must be an error");
        let msg = format!("{err:#}");
        assert!(msg.contains("Python venv not found"), "{msg}");
        return;
    }
    let status = std::process::Command::new(exe)
        .args([
            "--exact",
            "start_fails_loudly_without_python",
            "--nocapture",
        ])
        .env("TRICKLE_SYNAPSE_NEGATIVE_CHILD", "1")
        .env("TRICKLE_PYTHON", "/nonexistent/python")
        .status()
        .unwrap();
    assert!(status.success());
}
