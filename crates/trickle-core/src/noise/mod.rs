//! The Noise pipe: `Noise_XX`, `Noise_IK` and `Noise_XXfallback` over 25519, ChaChaPoly, BLAKE2s.
//!
//! This module is the protocol *engine* of the
//! [Noise Protocol Framework, revision 34](https://noiseprotocol.org/noise.html): the objects of
//! the spec's §5 ([`CipherState`], [`SymmetricState`], [`HandshakeState`]) and a [`Transport`]
//! that holds the two split keys with an explicit-nonce AEAD API for lossy, reordering links.
//!
//! - `no_std`, no allocation: every call writes into a caller-owned buffer and returns the number
//!   of bytes written.
//! - A failed step never leaves a half-updated state: [`HandshakeState::read_message`] and
//!   [`HandshakeState::write_message`] work on a copy and commit only on success.
//! - Secrets ([`Keypair`], [`CipherKey`], the chaining key) are zeroized on drop; tag comparisons
//!   are constant-time inside the AEAD and [`ct_eq`] is provided for key comparisons.
//!
//! The supported protocol names are [`Pattern::protocol_name`]:
//! `Noise_XX_25519_ChaChaPoly_BLAKE2s`, `Noise_IK_25519_ChaChaPoly_BLAKE2s` and
//! `Noise_XXfallback_25519_ChaChaPoly_BLAKE2s`.

mod cipher_state;
mod dh;
mod error;
mod handshake_state;
mod pattern;
mod symmetric_state;
mod transport;

pub mod frame;
pub mod pipe;
pub mod replay;
pub mod storage;

pub use cipher_state::{CipherKey, CipherState};
pub use dh::Keypair;
pub use error::Error;
pub use handshake_state::HandshakeState;
pub use pattern::{Pattern, Role};
pub use symmetric_state::SymmetricState;
pub use transport::Transport;

/// Length in bytes of a Curve25519 public key and of a DH output (Noise `DHLEN`).
pub const DHLEN: usize = 32;
/// Length in bytes of the ChaChaPoly authentication tag.
pub const TAGLEN: usize = 16;
/// Length in bytes of a BLAKE2s output (Noise `HASHLEN`).
pub const HASHLEN: usize = 32;
/// Noise's maximum message length (§3): no handshake or transport message may be longer.
pub const MAX_MESSAGE_LEN: usize = 65535;

/// Constant-time comparison of two byte strings.
///
/// Returns `false` at once if the lengths differ (lengths are not secret); otherwise the time
/// taken does not depend on where the contents differ. Use it for any comparison of keys, e.g.
/// a pinned remote static key against [`HandshakeState::remote_static`].
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut acc = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        acc |= x ^ y;
    }
    // Keep the optimiser from turning the loop into an early-exit comparison.
    core::hint::black_box(acc) == 0
}
