//! `HandshakeState` (Noise §5.3) for XX, IK and XXfallback.

use rand_core::CryptoRng;

use super::symmetric_state::SymmetricState;
use super::{DHLEN, Error, HASHLEN, Keypair, Pattern, Role, Transport};

/// The `HandshakeState` object of Noise §5.3.
pub struct HandshakeState {
    symmetric: SymmetricState,
    pattern: Pattern,
    role: Role,
    s: Keypair,
    e: Option<Keypair>,
    rs: Option<[u8; DHLEN]>,
    re: Option<[u8; DHLEN]>,
    step: usize,
}

impl HandshakeState {
    /// `Initialize()`: start a handshake.
    ///
    /// `s` is the local static key pair; `rs` the remote static public key if known in advance
    /// (required for the IK initiator, ignored otherwise).
    pub fn new(
        pattern: Pattern,
        role: Role,
        prologue: &[u8],
        s: Keypair,
        rs: Option<[u8; 32]>,
    ) -> Result<Self, Error> {
        let _ = (pattern, role, prologue, s, rs);
        todo!()
    }

    /// Use a fixed ephemeral key pair instead of generating one (test vectors only).
    pub fn set_ephemeral(&mut self, e: Keypair) {
        self.e = Some(e);
    }

    /// `WriteMessage(payload, message_buffer)`: write the next handshake message into `out`.
    pub fn write_message<R: CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, Error> {
        let _ = (payload, out, rng);
        todo!()
    }

    /// `ReadMessage(message, payload_buffer)`: read the next handshake message.
    pub fn read_message(&mut self, message: &[u8], payload_out: &mut [u8]) -> Result<usize, Error> {
        let _ = (message, payload_out);
        todo!()
    }

    /// Whether all handshake messages have been processed.
    pub fn is_finished(&self) -> bool {
        self.step >= self.pattern.message_count()
    }

    /// Whether the next call must be `write_message` (else `read_message`).
    pub fn is_my_turn(&self) -> bool {
        todo!()
    }

    /// The remote static public key, once known.
    pub fn remote_static(&self) -> Option<[u8; 32]> {
        self.rs
    }

    /// The current handshake hash `h`.
    pub fn handshake_hash(&self) -> [u8; HASHLEN] {
        self.symmetric.handshake_hash()
    }

    /// Finish: `Split()` into a [`Transport`]. Consumes the handshake.
    pub fn into_transport(self) -> Result<Transport, Error> {
        todo!()
    }

    /// Noise Pipes (§10.2): the IK responder that could not decrypt IK message 1 starts
    /// `XXfallback` as *initiator*, with `re` = the ephemeral at the start of `ik_message`.
    pub fn fallback_responder_side(
        s: Keypair,
        prologue: &[u8],
        ik_message: &[u8],
    ) -> Result<Self, Error> {
        let _ = (s, prologue, ik_message);
        todo!()
    }

    /// Noise Pipes (§10.2): the IK initiator whose first message was answered with
    /// `XXfallback` keeps its ephemeral and becomes the fallback *responder*.
    pub fn into_fallback(self, prologue: &[u8]) -> Result<HandshakeState, Error> {
        let _ = prologue;
        todo!()
    }
}
