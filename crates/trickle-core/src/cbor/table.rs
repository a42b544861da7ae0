//! Substitution tables: integer map keys and shared-item references for string values.

/// A substitution table: which map keys become integers and which string values become
/// shared-item references (see `docs/PROTOCOL.md`, "CBOR bodies and substitution tables").
///
/// Tables are versioned constants. Both ends must use the same one; it is chosen outside the
/// body (by the CoAP Content-Format), never guessed from the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    name: &'static str,
    /// Key numbers, in table order.
    key_numbers: &'static [i16],
    /// Key names in table order, each preceded by its length in one byte.
    key_names: &'static [u8],
    /// Shared-item values in index order, each preceded by its length in one byte.
    values: &'static [u8],
    value_count: usize,
}

// The tables are written below as readable `(number, name)` and name lists, and packed at
// compile time into length-prefixed byte strings and `i16` numbers: 2.7 KB less flash on a
// 32-bit MCU than slices of `(i64, &str)` and `&str` (16 and 8 bytes per entry).
const MSC3079_V1_NUMBERS: [i16; MSC3079_V1_KEYS.len()] = key_numbers(MSC3079_V1_KEYS);
const MSC3079_V1_NAMES: [u8; keys_packed_len(MSC3079_V1_KEYS)] = pack_keys(MSC3079_V1_KEYS);
const TRICKLE_V1_NUMBERS: [i16; TRICKLE_V1_KEYS.len()] = key_numbers(TRICKLE_V1_KEYS);
const TRICKLE_V1_NAMES: [u8; keys_packed_len(TRICKLE_V1_KEYS)] = pack_keys(TRICKLE_V1_KEYS);
const TRICKLE_V1_PACKED_VALUES: [u8; values_packed_len(TRICKLE_V1_VALUES)] =
    pack_values(TRICKLE_V1_VALUES);

impl Table {
    /// No substitution: the plain RFC 8949 §6.2 mapping.
    pub const PLAIN: Table = Table {
        name: "plain",
        key_numbers: &[],
        key_names: &[],
        values: &[],
        value_count: 0,
    };

    /// MSC3079 v1: integer keys 1..=104, no value substitution.
    pub const MSC3079_V1: Table = Table {
        name: "msc3079-v1",
        key_numbers: &MSC3079_V1_NUMBERS,
        key_names: &MSC3079_V1_NAMES,
        values: &[],
        value_count: 0,
    };

    /// Trickle v1: 48 one-byte integer keys (0..=23, -1..=-24), two-byte keys from 105, and
    /// shared-item references for common string values.
    pub const TRICKLE_V1: Table = Table {
        name: "trickle-v1",
        key_numbers: &TRICKLE_V1_NUMBERS,
        key_names: &TRICKLE_V1_NAMES,
        values: &TRICKLE_V1_PACKED_VALUES,
        value_count: TRICKLE_V1_VALUES.len(),
    };

    /// The table's versioned name, e.g. `"trickle-v1"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The integer that replaces map key `name`, if any.
    pub fn key_number(&self, name: &str) -> Option<i64> {
        self.key_number_bytes(name.as_bytes())
    }

    pub(crate) fn key_number_bytes(&self, name: &[u8]) -> Option<i64> {
        let i = Packed(self.key_names).position(|n| n == name)?;
        self.key_numbers.get(i).map(|&k| i64::from(k))
    }

    /// The map key that integer `number` stands for, if any.
    pub fn key_name(&self, number: i64) -> Option<&'static str> {
        let i = self
            .key_numbers
            .iter()
            .position(|&k| i64::from(k) == number)?;
        Packed(self.key_names).nth(i).and_then(as_str)
    }

    /// The shared-item index that replaces string value `value`, if any.
    pub fn value_index(&self, value: &str) -> Option<usize> {
        self.value_index_bytes(value.as_bytes())
    }

    pub(crate) fn value_index_bytes(&self, value: &[u8]) -> Option<usize> {
        Packed(self.values).position(|v| v == value)
    }

    /// The string value that shared item `index` stands for, if any.
    pub fn value(&self, index: u64) -> Option<&'static str> {
        let i = usize::try_from(index).ok()?;
        Packed(self.values).nth(i).and_then(as_str)
    }

    /// All integer keys with their names, in table order.
    pub fn keys(&self) -> Keys {
        Keys {
            numbers: self.key_numbers.iter(),
            names: Packed(self.key_names),
        }
    }

    /// All shared-item values in index order (the position is the shared-item index).
    pub fn values(&self) -> Values {
        Values {
            names: Packed(self.values),
            left: self.value_count,
        }
    }

    pub(crate) fn has_values(&self) -> bool {
        self.value_count != 0
    }
}

/// Iterator over a table's keys: `(number, name)` in table order ([`Table::keys`]).
#[derive(Debug, Clone)]
pub struct Keys {
    numbers: core::slice::Iter<'static, i16>,
    names: Packed,
}

impl Iterator for Keys {
    type Item = (i64, &'static str);

    fn next(&mut self) -> Option<Self::Item> {
        let number = i64::from(*self.numbers.next()?);
        Some((number, as_str(self.names.next()?)?))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.numbers.size_hint()
    }
}

impl ExactSizeIterator for Keys {}

/// Iterator over a table's shared-item values in index order ([`Table::values`]).
#[derive(Debug, Clone)]
pub struct Values {
    names: Packed,
    left: usize,
}

impl Iterator for Values {
    type Item = &'static str;

    fn next(&mut self) -> Option<Self::Item> {
        let v = as_str(self.names.next()?)?;
        self.left = self.left.saturating_sub(1);
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Values {}

/// Length-prefixed byte strings, as packed by [`pack_keys`] and [`pack_values`].
#[derive(Debug, Clone)]
struct Packed(&'static [u8]);

impl Iterator for Packed {
    type Item = &'static [u8];

    fn next(&mut self) -> Option<&'static [u8]> {
        let (&len, rest) = self.0.split_first()?;
        let item = rest.get(..usize::from(len))?;
        self.0 = rest.get(usize::from(len)..).unwrap_or(&[]);
        Some(item)
    }
}

/// Every packed item was a `&str` before packing, so this never fails in practice.
fn as_str(bytes: &'static [u8]) -> Option<&'static str> {
    core::str::from_utf8(bytes).ok()
}

const fn keys_packed_len(keys: &[(i64, &str)]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < keys.len() {
        n += 1 + keys[i].1.len();
        i += 1;
    }
    n
}

const fn values_packed_len(values: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < values.len() {
        n += 1 + values[i].len();
        i += 1;
    }
    n
}

/// Appends `s` with its length byte at `at`; fails the build if `s` is 256 bytes or longer.
const fn put<const N: usize>(mut out: [u8; N], at: usize, s: &str) -> [u8; N] {
    let b = s.as_bytes();
    assert!(b.len() < 256, "table entries are shorter than 256 bytes");
    out[at] = b.len() as u8;
    let mut j = 0;
    while j < b.len() {
        out[at + 1 + j] = b[j];
        j += 1;
    }
    out
}

const fn pack_keys<const N: usize>(keys: &[(i64, &str)]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < keys.len() {
        out = put(out, at, keys[i].1);
        at += 1 + keys[i].1.len();
        i += 1;
    }
    out
}

const fn pack_values<const N: usize>(values: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < values.len() {
        out = put(out, at, values[i]);
        at += 1 + values[i].len();
        i += 1;
    }
    out
}

const fn key_numbers<const N: usize>(keys: &[(i64, &str)]) -> [i16; N] {
    let mut out = [0i16; N];
    let mut i = 0;
    while i < N {
        let k = keys[i].0;
        assert!(
            k >= i16::MIN as i64 && k <= i16::MAX as i64,
            "key numbers fit in i16"
        );
        out[i] = k as i16;
        i += 1;
    }
    out
}

/// How shared item `index` is referenced: a simple value (0..=15, one byte), or tag 6 around
/// an integer (`16 + 2n` ↦ `6(n)`, `16 + 2n + 1` ↦ `6(-1-n)`), as in draft-ietf-cbor-packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reference {
    Simple(u8),
    Tagged(i128),
}

pub(crate) fn reference_for(index: usize) -> Reference {
    if index < 16 {
        Reference::Simple(index as u8)
    } else {
        let j = (index - 16) as i128;
        if j % 2 == 0 {
            Reference::Tagged(j / 2)
        } else {
            Reference::Tagged(-1 - j / 2)
        }
    }
}

/// Shared-item index for tag 6 around integer `n` (`n` in -2^64..2^64).
pub(crate) fn index_for_tagged(n: i128) -> u64 {
    let idx = if n >= 0 {
        16 + 2 * n
    } else {
        16 + 2 * (-1 - n) + 1
    };
    u64::try_from(idx).unwrap_or(u64::MAX)
}

const MSC3079_V1_KEYS: &[(i64, &str)] = &[
    (1, "event_id"),
    (2, "type"),
    (3, "content"),
    (4, "state_key"),
    (5, "room_id"),
    (6, "sender"),
    (7, "user_id"),
    (8, "origin_server_ts"),
    (9, "unsigned"),
    (10, "prev_content"),
    (11, "state"),
    (12, "timeline"),
    (13, "events"),
    (14, "limited"),
    (15, "prev_batch"),
    (16, "transaction_id"),
    (17, "age"),
    (18, "redacted_because"),
    (19, "next_batch"),
    (20, "presence"),
    (21, "avatar_url"),
    (22, "account_data"),
    (23, "rooms"),
    (24, "join"),
    (25, "membership"),
    (26, "displayname"),
    (27, "body"),
    (28, "msgtype"),
    (29, "format"),
    (30, "formatted_body"),
    (31, "ephemeral"),
    (32, "invite_state"),
    (33, "leave"),
    (34, "third_party_invite"),
    (35, "is_direct"),
    (36, "hashes"),
    (37, "signatures"),
    (38, "depth"),
    (39, "prev_events"),
    (40, "prev_state"),
    (41, "auth_events"),
    (42, "origin"),
    (43, "creator"),
    (44, "join_rule"),
    (45, "history_visibility"),
    (46, "ban"),
    (47, "events_default"),
    (48, "kick"),
    (49, "redact"),
    (50, "state_default"),
    (51, "users"),
    (52, "users_default"),
    (53, "reason"),
    (54, "visibility"),
    (55, "room_alias_name"),
    (56, "name"),
    (57, "topic"),
    (58, "invite"),
    (59, "invite_3pid"),
    (60, "room_version"),
    (61, "creation_content"),
    (62, "initial_state"),
    (63, "preset"),
    (64, "servers"),
    (65, "identifier"),
    (66, "user"),
    (67, "medium"),
    (68, "address"),
    (69, "password"),
    (70, "token"),
    (71, "device_id"),
    (72, "initial_device_display_name"),
    (73, "access_token"),
    (74, "home_server"),
    (75, "well_known"),
    (76, "base_url"),
    (77, "device_lists"),
    (78, "to_device"),
    (79, "peek"),
    (80, "last_seen_ip"),
    (81, "display_name"),
    (82, "typing"),
    (83, "last_seen_ts"),
    (84, "algorithm"),
    (85, "sender_key"),
    (86, "session_id"),
    (87, "ciphertext"),
    (88, "one_time_keys"),
    (89, "timeout"),
    (90, "recent_rooms"),
    (91, "chunk"),
    (92, "m.fully_read"),
    (93, "device_keys"),
    (94, "failures"),
    (95, "device_display_name"),
    (96, "prev_sender"),
    (97, "replaces_state"),
    (98, "changed"),
    (99, "unstable_features"),
    (100, "versions"),
    (101, "devices"),
    (102, "errcode"),
    (103, "error"),
    (104, "room_alias"),
];
/// trickle-v1 keys (see docs/PROTOCOL.md for the evidence behind the order).
const TRICKLE_V1_KEYS: &[(i64, &str)] = &[
    // One byte, major type 0: the event envelope and message content.
    (0, "type"),
    (1, "content"),
    (2, "sender"),
    (3, "event_id"),
    (4, "room_id"),
    (5, "origin_server_ts"),
    (6, "unsigned"),
    (7, "state_key"),
    (8, "body"),
    (9, "msgtype"),
    (10, "membership"),
    (11, "displayname"),
    (12, "avatar_url"),
    (13, "age"),
    (14, "transaction_id"),
    (15, "events"),
    (16, "timeline"),
    (17, "state"),
    (18, "errcode"),
    (19, "error"),
    (20, "format"),
    (21, "formatted_body"),
    (22, "m.relates_to"),
    (23, "rel_type"),
    // One byte, major type 1: sync response structure and common content.
    (-1, "next_batch"),
    (-2, "rooms"),
    (-3, "join"),
    (-4, "invite"),
    (-5, "leave"),
    (-6, "limited"),
    (-7, "prev_batch"),
    (-8, "ephemeral"),
    (-9, "account_data"),
    (-10, "presence"),
    (-11, "to_device"),
    (-12, "device_lists"),
    (-13, "unread_notifications"),
    (-14, "notification_count"),
    (-15, "highlight_count"),
    (-16, "summary"),
    (-17, "prev_content"),
    (-18, "redacted_because"),
    (-19, "redacts"),
    (-20, "url"),
    (-21, "info"),
    (-22, "m.in_reply_to"),
    (-23, "name"),
    (-24, "topic"),
    // Two bytes (0x18 nn), from 105: 24..=104 stay unassigned so that an msc3079-v1 body
    // decoded with this table fails at its first key >= 24 instead of being misread.
    // Login, media, power levels, receipts, presence, E2EE, federation.
    (105, "user_id"),
    (106, "device_id"),
    (107, "access_token"),
    (108, "home_server"),
    (109, "well_known"),
    (110, "identifier"),
    (111, "user"),
    (112, "password"),
    (113, "initial_device_display_name"),
    (114, "refresh_token"),
    (115, "expires_in_ms"),
    (116, "retry_after_ms"),
    (117, "chunk"),
    (118, "start"),
    (119, "end"),
    (120, "timeout"),
    (121, "m.heroes"),
    (122, "m.joined_member_count"),
    (123, "m.invited_member_count"),
    (124, "mimetype"),
    (125, "size"),
    (126, "w"),
    (127, "h"),
    (128, "thumbnail_url"),
    (129, "thumbnail_info"),
    (130, "key"),
    (131, "m.new_content"),
    (132, "reason"),
    (133, "is_direct"),
    (134, "join_rule"),
    (135, "history_visibility"),
    (136, "users"),
    (137, "users_default"),
    (138, "events_default"),
    (139, "state_default"),
    (140, "ban"),
    (141, "kick"),
    (142, "redact"),
    (143, "creator"),
    (144, "room_version"),
    (145, "m.read"),
    (146, "ts"),
    (147, "user_ids"),
    (148, "event_ids"),
    (149, "m.fully_read"),
    (150, "knock"),
    (151, "invite_state"),
    (152, "knock_state"),
    (153, "joined_rooms"),
    (154, "room_alias"),
    (155, "room_alias_name"),
    (156, "servers"),
    (157, "visibility"),
    (158, "preset"),
    (159, "creation_content"),
    (160, "initial_state"),
    (161, "flows"),
    (162, "stages"),
    (163, "session"),
    (164, "completed"),
    (165, "params"),
    (166, "versions"),
    (167, "unstable_features"),
    (168, "currently_active"),
    (169, "last_active_ago"),
    (170, "status_msg"),
    (171, "changed"),
    (172, "left"),
    (173, "device_one_time_keys_count"),
    (174, "algorithm"),
    (175, "sender_key"),
    (176, "session_id"),
    (177, "ciphertext"),
    (178, "device_keys"),
    (179, "one_time_keys"),
    (180, "devices"),
    (181, "display_name"),
    (182, "last_seen_ip"),
    (183, "last_seen_ts"),
    (184, "medium"),
    (185, "address"),
    (186, "origin"),
    (187, "depth"),
    (188, "prev_events"),
    (189, "auth_events"),
    (190, "hashes"),
    (191, "signatures"),
    (192, "m.mentions"),
    (193, "room"),
    (194, "alias"),
    (195, "alt_aliases"),
    (196, "guest_access"),
    (197, "replacement_room"),
    (198, "predecessor"),
];
/// trickle-v1 shared-item values; the position is the shared-item index.
const TRICKLE_V1_VALUES: &[&str] = &[
    // 0..=15: one byte (simple value 0..=15, 0xe0..=0xef).
    "m.room.message",         // 0
    "m.text",                 // 1
    "m.room.member",          // 2
    "join",                   // 3
    "invite",                 // 4
    "leave",                  // 5
    "m.notice",               // 6
    "m.emote",                // 7
    "m.image",                // 8
    "m.file",                 // 9
    "org.matrix.custom.html", // 10
    "m.reaction",             // 11
    "m.annotation",           // 12
    "m.replace",              // 13
    "m.typing",               // 14
    "m.receipt",              // 15
    // 16..=63: two bytes (0xc6 then 0x00..=0x17 or 0x20..=0x37).
    "ban",                       // 16
    "knock",                     // 17
    "m.room.encrypted",          // 18
    "m.room.name",               // 19
    "m.room.topic",              // 20
    "m.room.create",             // 21
    "m.room.power_levels",       // 22
    "m.room.join_rules",         // 23
    "m.room.history_visibility", // 24
    "m.room.canonical_alias",    // 25
    "m.room.avatar",             // 26
    "m.room.redaction",          // 27
    "m.room.guest_access",       // 28
    "m.room.encryption",         // 29
    "m.room.third_party_invite", // 30
    "m.room.tombstone",          // 31
    "m.room.pinned_events",      // 32
    "m.room.aliases",            // 33
    "m.presence",                // 34
    "m.fully_read",              // 35
    "m.direct",                  // 36
    "m.tag",                     // 37
    "m.thread",                  // 38
    "m.reference",               // 39
    "m.audio",                   // 40
    "m.video",                   // 41
    "m.location",                // 42
    "m.server_notice",           // 43
    "m.login.password",          // 44
    "m.login.token",             // 45
    "m.id.user",                 // 46
    "m.id.thirdparty",           // 47
    "m.id.phone",                // 48
    "online",                    // 49
    "offline",                   // 50
    "unavailable",               // 51
    "public",                    // 52
    "private",                   // 53
    "shared",                    // 54
    "world_readable",            // 55
    "joined",                    // 56
    "m.read",                    // 57
    "m.read.private",            // 58
    "M_FORBIDDEN",               // 59
    "M_UNKNOWN_TOKEN",           // 60
    "M_MISSING_TOKEN",           // 61
    "M_NOT_FOUND",               // 62
    "M_LIMIT_EXCEEDED",          // 63
    // 64..: three bytes (0xc6 then 0x18 nn or 0x38 nn).
    "M_UNKNOWN",                         // 64
    "M_BAD_JSON",                        // 65
    "M_NOT_JSON",                        // 66
    "M_TOO_LARGE",                       // 67
    "M_UNRECOGNIZED",                    // 68
    "M_USER_IN_USE",                     // 69
    "M_INVALID_USERNAME",                // 70
    "M_ROOM_IN_USE",                     // 71
    "M_INVALID_ROOM_STATE",              // 72
    "M_THREEPID_IN_USE",                 // 73
    "M_THREEPID_NOT_FOUND",              // 74
    "M_THREEPID_AUTH_FAILED",            // 75
    "M_THREEPID_DENIED",                 // 76
    "M_SERVER_NOT_TRUSTED",              // 77
    "M_UNSUPPORTED_ROOM_VERSION",        // 78
    "M_INCOMPATIBLE_ROOM_VERSION",       // 79
    "M_BAD_STATE",                       // 80
    "M_GUEST_ACCESS_FORBIDDEN",          // 81
    "M_CAPTCHA_NEEDED",                  // 82
    "M_CAPTCHA_INVALID",                 // 83
    "M_MISSING_PARAM",                   // 84
    "M_INVALID_PARAM",                   // 85
    "M_EXCLUSIVE",                       // 86
    "M_RESOURCE_LIMIT_EXCEEDED",         // 87
    "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM", // 88
    "M_WEAK_PASSWORD",                   // 89
    "M_CONSENT_NOT_GIVEN",               // 90
    "M_USER_DEACTIVATED",                // 91
    "M_UNAUTHORIZED",                    // 92
    "m.call.invite",                     // 93
    "m.call.candidates",                 // 94
    "m.call.answer",                     // 95
    "m.call.hangup",                     // 96
    "m.sticker",                         // 97
    "m.room.server_acl",                 // 98
    "m.space.child",                     // 99
    "m.space.parent",                    // 100
    "m.login.sso",                       // 101
    "m.login.dummy",                     // 102
    "m.login.recaptcha",                 // 103
    "m.login.email.identity",            // 104
    "m.megolm.v1.aes-sha2",              // 105
    "m.olm.v1.curve25519-aes-sha2",      // 106
    "m.room_key",                        // 107
    "m.forwarded_room_key",              // 108
    "m.room_key_request",                // 109
    "m.key.verification.request",        // 110
    "m.push_rules",                      // 111
    "m.ignored_user_list",               // 112
    "restricted",                        // 113
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_tables_are_the_source_lists() {
        for (table, keys) in [
            (Table::MSC3079_V1, MSC3079_V1_KEYS),
            (Table::TRICKLE_V1, TRICKLE_V1_KEYS),
            (Table::PLAIN, &[][..]),
        ] {
            assert_eq!(table.keys().len(), keys.len());
            assert!(table.keys().eq(keys.iter().copied()), "{}", table.name());
        }
        assert_eq!(Table::TRICKLE_V1.values().len(), TRICKLE_V1_VALUES.len());
        assert!(
            Table::TRICKLE_V1
                .values()
                .eq(TRICKLE_V1_VALUES.iter().copied())
        );
        assert_eq!(Table::MSC3079_V1.values().len(), 0);
        let last = TRICKLE_V1_VALUES.len() as u64;
        assert_eq!(Table::TRICKLE_V1.value(last - 1), Some("restricted"));
        assert_eq!(Table::TRICKLE_V1.value(last), None);
        assert_eq!(Table::TRICKLE_V1.value(u64::MAX), None);
        assert_eq!(Table::TRICKLE_V1.key_name(i64::MAX), None);
    }
}
