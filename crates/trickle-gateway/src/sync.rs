//! `/sync` for tiny devices: a server-side filter that keeps only what a device shows.

use serde_json::{Value, json};

use crate::client::{HomeserverClient, Method, encode_segment};
use crate::error::SyncError;

/// The event fields a device needs (`event_fields` of the filter).
pub const TINY_EVENT_FIELDS: [&str; 6] = [
    "type",
    "content.body",
    "content.msgtype",
    "sender",
    "event_id",
    "origin_server_ts",
];

/// Knobs of [`tiny_filter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinyFilterOptions {
    /// Most timeline events per room per sync.
    pub timeline_limit: u32,
    /// Include ephemeral events (typing, receipts).
    pub ephemeral: bool,
}

impl Default for TinyFilterOptions {
    /// 10 events per room, no ephemeral events.
    fn default() -> Self {
        Self {
            timeline_limit: 10,
            ephemeral: false,
        }
    }
}

/// The filter JSON (client-server API "Filtering"): only `m.room.message` timeline events,
/// trimmed to [`TINY_EVENT_FIELDS`]; no presence, no account data, no room state, no ephemeral
/// events unless asked, no left rooms.
pub fn tiny_filter(opts: TinyFilterOptions) -> Value {
    let none = json!({ "not_types": ["*"] });
    let ephemeral = if opts.ephemeral {
        json!({ "types": ["m.typing", "m.receipt"] })
    } else {
        none.clone()
    };
    json!({
        "event_format": "client",
        "event_fields": TINY_EVENT_FIELDS,
        "presence": none,
        "account_data": none,
        "room": {
            "include_leave": false,
            "account_data": none,
            "state": none,
            "ephemeral": ephemeral,
            "timeline": { "types": ["m.room.message"], "limit": opts.timeline_limit },
        },
    })
}

/// Uploads `filter` for `user_id`; returns the `filter_id`.
pub fn upload_filter(
    client: &HomeserverClient,
    access_token: &str,
    user_id: &str,
    filter: &Value,
) -> Result<String, SyncError> {
    let target = format!("/_matrix/client/v3/user/{}/filter", encode_segment(user_id));
    let resp = client.json(Method::Post, &target, Some(access_token), Some(filter))?;
    let body = check(&resp)?;
    body.get("filter_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(SyncError::BadResponse("no filter_id"))
}

/// One timeline event as a device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyEvent {
    /// Room the event is in.
    pub room_id: String,
    /// The event as the filter trimmed it (only [`TINY_EVENT_FIELDS`] can appear).
    pub event: Value,
}

/// The result of one [`sync_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncBatch {
    /// Token for the next sync.
    pub next_batch: String,
    /// New timeline events of joined rooms, in room order then timeline order.
    pub events: Vec<TinyEvent>,
    /// Rooms the user is invited to.
    pub invites: Vec<String>,
}

/// Runs one `/sync` with `filter_id` (from [`upload_filter`]) since `since`, long-polling up to
/// `timeout_ms`.
pub fn sync_once(
    client: &HomeserverClient,
    access_token: &str,
    filter_id: &str,
    since: Option<&str>,
    timeout_ms: u32,
) -> Result<SyncBatch, SyncError> {
    let mut target = format!(
        "/_matrix/client/v3/sync?filter={}&timeout={timeout_ms}",
        encode_segment(filter_id)
    );
    if let Some(since) = since {
        target.push_str("&since=");
        target.push_str(&encode_segment(since));
    }
    let resp = client.json(Method::Get, &target, Some(access_token), None)?;
    let body = check(&resp)?;
    parse_sync(&body)
}

fn check(resp: &crate::client::HttpResponse) -> Result<Value, SyncError> {
    let body = resp.json();
    if !(200..300).contains(&resp.status) {
        return Err(SyncError::Status {
            status: resp.status,
            errcode: body
                .as_ref()
                .and_then(|b| b.get("errcode"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    body.ok_or(SyncError::BadResponse("body is not JSON"))
}

/// Extracts a [`SyncBatch`] from a `/sync` response body.
pub fn parse_sync(body: &Value) -> Result<SyncBatch, SyncError> {
    let next_batch = body
        .get("next_batch")
        .and_then(Value::as_str)
        .ok_or(SyncError::BadResponse("no next_batch"))?
        .to_owned();
    let mut events = Vec::new();
    let rooms = body.get("rooms");
    if let Some(join) = rooms.and_then(|r| r.get("join")).and_then(Value::as_object) {
        for (room_id, room) in join {
            let timeline = room
                .get("timeline")
                .and_then(|t| t.get("events"))
                .and_then(Value::as_array);
            for event in timeline.into_iter().flatten() {
                events.push(TinyEvent {
                    room_id: room_id.clone(),
                    event: event.clone(),
                });
            }
        }
    }
    let invites = rooms
        .and_then(|r| r.get("invite"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    Ok(SyncBatch {
        next_batch,
        events,
        invites,
    })
}
