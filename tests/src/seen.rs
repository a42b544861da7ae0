//! The device client's events as owned values ([`trickle_core::client::Event`] borrows the
//! client until the next `poll_event`), for tests and the demo to collect and compare.

use trickle_core::client::{Event, Peer};

/// What the device reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Logged in as this user ID.
    LoggedIn(String),
    /// Joined: the room's alias number and its room ID.
    Joined(u16, String),
    /// A send was acknowledged.
    Delivered,
    /// Registered for notifications.
    Subscribed,
    /// An operation failed, with the reason's text.
    Failed(String),
    /// A message; a room or sender not introduced shows as `alias N`.
    Message {
        /// Room ID.
        room: String,
        /// Sender's user ID.
        sender: String,
        /// Text.
        body: String,
    },
}

impl Seen {
    /// The owned form of `event`; `None` for events these tests don't follow.
    pub fn from_event(event: &Event<'_>) -> Option<Seen> {
        let peer = |p: &Peer<'_>| match p {
            Peer::Id(id) => (*id).to_owned(),
            Peer::Alias(a) => format!("alias {a}"),
        };
        Some(match event {
            Event::LoggedIn { user_id, .. } => Seen::LoggedIn((*user_id).to_owned()),
            Event::Joined { alias, room_id, .. } => Seen::Joined(*alias, (*room_id).to_owned()),
            Event::Delivered { .. } => Seen::Delivered,
            Event::Subscribed { .. } => Seen::Subscribed,
            Event::Failed { reason, .. } => Seen::Failed(reason.to_string()),
            Event::Message {
                room, sender, body, ..
            } => Seen::Message {
                room: peer(room),
                sender: peer(sender),
                body: (*body).to_owned(),
            },
            _ => return None,
        })
    }
}
