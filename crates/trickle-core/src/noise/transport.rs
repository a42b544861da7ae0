//! The transport phase: the two `Split()` keys with explicit nonces.

use super::cipher_state::CipherKey;
use super::{DHLEN, Error, HASHLEN, Role};

/// The keys of a finished handshake (Noise §5.2 `Split()`), for the transport phase.
///
/// Nonces are *explicit*: the caller (the pipe layer) chooses and transmits them and keeps the
/// replay window, which suits lossy links where frames arrive out of order. `send_key` is `k1`
/// for the initiator and `k2` for the responder; `recv_key` the other one.
#[derive(Clone, Debug)]
pub struct Transport {
    send: CipherKey,
    recv: CipherKey,
    role: Role,
    handshake_hash: [u8; HASHLEN],
    remote_static: Option<[u8; DHLEN]>,
}

impl Transport {
    /// Rebuild a transport from persisted parts (e.g. after a reboot).
    pub fn from_parts(
        role: Role,
        send: CipherKey,
        recv: CipherKey,
        handshake_hash: [u8; HASHLEN],
        remote_static: Option<[u8; DHLEN]>,
    ) -> Self {
        Transport {
            send,
            recv,
            role,
            handshake_hash,
            remote_static,
        }
    }

    /// The key that encrypts what this party sends.
    pub fn send_key(&self) -> &CipherKey {
        &self.send
    }

    /// The key that decrypts what this party receives.
    pub fn recv_key(&self) -> &CipherKey {
        &self.recv
    }

    /// Mutable access to the send key (e.g. to [`CipherKey::rekey`] it).
    pub fn send_key_mut(&mut self) -> &mut CipherKey {
        &mut self.send
    }

    /// Mutable access to the receive key (e.g. to [`CipherKey::rekey`] it).
    pub fn recv_key_mut(&mut self) -> &mut CipherKey {
        &mut self.recv
    }

    /// This party's handshake role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The handshake hash `h` (channel binding).
    pub fn handshake_hash(&self) -> &[u8; HASHLEN] {
        &self.handshake_hash
    }

    /// The peer's static public key, as learned or pre-known in the handshake.
    pub fn remote_static(&self) -> Option<[u8; DHLEN]> {
        self.remote_static
    }

    /// Encrypt `plaintext` under the send key with explicit `nonce` into `out` as
    /// `ciphertext || tag`; returns the written length `plaintext.len() + 16`.
    ///
    /// Never reuse a nonce with the same key; `u64::MAX` is reserved by Noise and refused.
    pub fn encrypt(
        &self,
        nonce: u64,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if nonce == u64::MAX {
            return Err(Error::NonceExhausted);
        }
        self.send.encrypt(nonce, ad, plaintext, out)
    }

    /// Decrypt `ciphertext || tag` under the receive key with explicit `nonce` into `out`;
    /// returns the plaintext length. On failure `out` is zeroed.
    pub fn decrypt(
        &self,
        nonce: u64,
        ad: &[u8],
        message: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if nonce == u64::MAX {
            return Err(Error::NonceExhausted);
        }
        self.recv.decrypt(nonce, ad, message, out)
    }
}
