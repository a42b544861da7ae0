//! The firmware's configuration: `key=value` lines read from the host at start, so no account
//! or seed is compiled in.
//!
//! ```text
//! user=alice
//! password=...
//! room=#lobby:localhost
//! message=Hello
//! seed=<64 hex digits: 32 bytes of entropy for the ChaCha20 generator>
//! ```

/// What the firmware does, borrowed from the file's bytes.
pub struct Config<'a> {
    /// Matrix user name (localpart).
    pub user: &'a str,
    /// Matrix password (crosses the air inside the Noise XX handshake, once).
    pub password: &'a str,
    /// Room ID or alias to join.
    pub room: &'a str,
    /// Text to send once joined.
    pub message: &'a str,
    /// Seed of the random number generator.
    pub seed: [u8; 32],
}

/// Why the configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Not UTF-8.
    NotText,
    /// A line without `=`, or an unknown key.
    BadLine,
    /// A key is missing.
    Missing(&'static str),
    /// `seed` is not 64 hex digits.
    BadSeed,
}

impl ConfigError {
    /// A one-line description.
    pub fn text(&self) -> &'static str {
        match self {
            ConfigError::NotText => "config: not UTF-8",
            ConfigError::BadLine => "config: a line is not key=value with a known key",
            ConfigError::Missing(k) => k,
            ConfigError::BadSeed => "config: seed must be 64 hex digits",
        }
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl<'a> Config<'a> {
    /// Parses the file's bytes.
    #[inline(never)]
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ConfigError> {
        let text = core::str::from_utf8(bytes).map_err(|_| ConfigError::NotText)?;
        let (mut user, mut password, mut room, mut message, mut seed) =
            (None, None, None, None, None);
        for line in text.lines() {
            let line = line.trim_ascii();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Split at the first `=` byte (`str::split_once(char)` links a char searcher).
            let eq = line
                .bytes()
                .position(|b| b == b'=')
                .ok_or(ConfigError::BadLine)?;
            let (key, value) = (
                line.get(..eq).unwrap_or(""),
                line.get(eq + 1..).unwrap_or(""),
            );
            let value = value.trim_ascii();
            match key.trim_ascii() {
                "user" => user = Some(value),
                "password" => password = Some(value),
                "room" => room = Some(value),
                "message" => message = Some(value),
                "seed" => {
                    let hex = value.as_bytes();
                    if hex.len() != 64 {
                        return Err(ConfigError::BadSeed);
                    }
                    let mut s = [0u8; 32];
                    for (out, pair) in s.iter_mut().zip(hex.chunks_exact(2)) {
                        let (Some(hi), Some(lo)) = (hex_digit(pair[0]), hex_digit(pair[1])) else {
                            return Err(ConfigError::BadSeed);
                        };
                        *out = hi << 4 | lo;
                    }
                    seed = Some(s);
                }
                _ => return Err(ConfigError::BadLine),
            }
        }
        Ok(Config {
            user: user.ok_or(ConfigError::Missing("config: `user` missing"))?,
            password: password.ok_or(ConfigError::Missing("config: `password` missing"))?,
            room: room.ok_or(ConfigError::Missing("config: `room` missing"))?,
            message: message.ok_or(ConfigError::Missing("config: `message` missing"))?,
            seed: seed.ok_or(ConfigError::Missing("config: `seed` missing"))?,
        })
    }
}
