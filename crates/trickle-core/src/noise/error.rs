//! Errors of the Noise engine.

use core::fmt;

/// Everything that can go wrong in the Noise engine.
///
/// Grouped by whose fault it is: the peer (`Decrypt`, `Truncated`, `InvalidPublicKey`,
/// `MessageTooLong` on read), the caller (`NotMyTurn`, `HandshakeFinished`,
/// `HandshakeNotFinished`, `MissingKey`, `FallbackNotPossible`, `MessageTooLong` on write), a
/// buffer too small (`BufferTooSmall`), or the key's lifetime (`NonceExhausted`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The output buffer cannot hold the result; `required` bytes are needed.
    BufferTooSmall {
        /// Number of bytes the output buffer must have.
        required: usize,
    },
    /// Authenticated decryption failed: the message was forged, corrupted, or encrypted under
    /// another key, nonce or associated data.
    Decrypt,
    /// The message is shorter than the handshake pattern requires.
    Truncated,
    /// The message (or the message that would be written) exceeds
    /// [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN) bytes.
    MessageTooLong,
    /// The caller tried to write while it should read, or to read while it should write.
    NotMyTurn,
    /// The handshake is already complete; no more handshake messages can be processed.
    HandshakeFinished,
    /// The handshake is not complete yet; the transport keys are not available.
    HandshakeNotFinished,
    /// A key required by the pattern is missing (e.g. IK initiator without the responder's
    /// static key, or a fallback responder without its own ephemeral).
    MissingKey,
    /// A Diffie-Hellman result was all zeros: the peer sent a low-order public key.
    InvalidPublicKey,
    /// The nonce counter reached 2^64-1, which Noise reserves; the key must be replaced.
    NonceExhausted,
    /// Fallback was requested from a state it cannot start from (only an IK initiator that has
    /// sent its first message can fall back; only an IK first message can be answered with one).
    FallbackNotPossible,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BufferTooSmall { required } => {
                write!(f, "buffer too small: {required} bytes required")
            }
            Error::Decrypt => f.write_str("authenticated decryption failed"),
            Error::Truncated => f.write_str("handshake message truncated"),
            Error::MessageTooLong => f.write_str("Noise message longer than 65535 bytes"),
            Error::NotMyTurn => f.write_str("not this party's turn in the handshake"),
            Error::HandshakeFinished => f.write_str("handshake already finished"),
            Error::HandshakeNotFinished => f.write_str("handshake not finished"),
            Error::MissingKey => f.write_str("a key required by the handshake pattern is missing"),
            Error::InvalidPublicKey => {
                f.write_str("Diffie-Hellman output is all zeros (low-order public key)")
            }
            Error::NonceExhausted => f.write_str("nonce space exhausted; rekey required"),
            Error::FallbackNotPossible => {
                f.write_str("fallback is not possible from this handshake state")
            }
        }
    }
}

impl core::error::Error for Error {}
