//! A plain HTTP+JSON Matrix client for tests: the "second user" that talks to the homeserver
//! directly, without Trickle.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use trickle_gateway::client::encode_segment;
use trickle_gateway::{ClientConfig, HomeserverClient, Method};

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct MatrixUser {
    /// HTTP client to the homeserver.
    pub client: HomeserverClient,
    /// `@name:server`.
    pub user_id: String,
    /// Access token.
    pub access_token: String,
}

/// Sends a request and fails unless the status is 2xx; returns the JSON body.
pub fn call(
    client: &HomeserverClient,
    method: Method,
    target: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Value> {
    let resp = client
        .json(method, target, token, body)
        .with_context(|| format!("{} {target}", method.as_str()))?;
    let json = resp.json().unwrap_or(Value::Null);
    if !(200..300).contains(&resp.status) {
        bail!("{} {target} → {}: {json}", method.as_str(), resp.status);
    }
    Ok(json)
}

impl MatrixUser {
    /// Logs in with a password.
    pub fn login(base_url: &str, user: &str, password: &str) -> Result<Self> {
        let client = HomeserverClient::new(base_url, ClientConfig::default())?;
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
        });
        let resp = call(
            &client,
            Method::Post,
            "/_matrix/client/v3/login",
            None,
            Some(&body),
        )?;
        Ok(Self {
            client,
            user_id: resp["user_id"].as_str().context("no user_id")?.to_owned(),
            access_token: resp["access_token"]
                .as_str()
                .context("no access_token")?
                .to_owned(),
        })
    }

    /// A request with this user's token.
    pub fn call(&self, method: Method, target: &str, body: Option<&Value>) -> Result<Value> {
        call(&self.client, method, target, Some(&self.access_token), body)
    }

    /// Creates a room with `body` (e.g. `{"room_alias_name":"x","preset":"public_chat"}`);
    /// returns its room ID.
    pub fn create_room(&self, body: &Value) -> Result<String> {
        let resp = self.call(Method::Post, "/_matrix/client/v3/createRoom", Some(body))?;
        Ok(resp["room_id"].as_str().context("no room_id")?.to_owned())
    }

    /// Sends an `m.text` message; returns the event ID.
    pub fn send_text(&self, room_id: &str, txn_id: &str, text: &str) -> Result<String> {
        let target = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            encode_segment(room_id),
            encode_segment(txn_id)
        );
        let body = json!({"msgtype": "m.text", "body": text});
        let resp = self.call(Method::Put, &target, Some(&body))?;
        Ok(resp["event_id"].as_str().context("no event_id")?.to_owned())
    }

    /// The last `limit` events of a room's timeline, oldest first.
    pub fn messages(&self, room_id: &str, limit: u32) -> Result<Vec<Value>> {
        let target = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit={limit}",
            encode_segment(room_id)
        );
        let resp = self.call(Method::Get, &target, None)?;
        let mut chunk = resp["chunk"].as_array().cloned().unwrap_or_default();
        chunk.reverse();
        Ok(chunk)
    }

    /// Invites `user_id` to a room.
    pub fn invite(&self, room_id: &str, user_id: &str) -> Result<()> {
        let target = format!(
            "/_matrix/client/v3/rooms/{}/invite",
            encode_segment(room_id)
        );
        self.call(Method::Post, &target, Some(&json!({"user_id": user_id})))?;
        Ok(())
    }

    /// Joins a room by ID or alias; returns the room ID.
    pub fn join(&self, room_id_or_alias: &str) -> Result<String> {
        let target = format!(
            "/_matrix/client/v3/join/{}",
            encode_segment(room_id_or_alias)
        );
        let resp = self.call(Method::Post, &target, Some(&json!({})))?;
        Ok(resp["room_id"].as_str().context("no room_id")?.to_owned())
    }
}
