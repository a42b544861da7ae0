//! `HandshakeState` (Noise §5.3) for XX, IK and XXfallback.
//!
//! One engine runs all three patterns: the message patterns are tables of tokens, and
//! turn-taking is checked at run time. Every `write_message` / `read_message` works on a copy of
//! the state and commits it only on success, so a failed step (bad tag, truncated message, buffer
//! too small, low-order key) leaves the state exactly as it was.

use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::symmetric_state::SymmetricState;
use super::{DHLEN, Error, HASHLEN, Keypair, MAX_MESSAGE_LEN, Pattern, Role, TAGLEN, Transport};

/// A token of a message pattern (Noise §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    E,
    S,
    Ee,
    Es,
    Se,
    Ss,
}

use Token::{E, Ee, Es, S, Se, Ss};

/// `XX`:  `-> e` / `<- e, ee, s, es` / `-> s, se`.
const XX: &[&[Token]] = &[&[E], &[E, Ee, S, Es], &[S, Se]];
/// `IK`:  `<- s` ... `-> e, es, s, ss` / `<- e, ee, se`.
const IK: &[&[Token]] = &[&[E, Es, S, Ss], &[E, Ee, Se]];
/// `XXfallback`: `-> e` ... `<- e, ee, s, es` / `-> s, se` (Bob sends the first message).
const XX_FALLBACK: &[&[Token]] = &[&[E, Ee, S, Es], &[S, Se]];

fn messages(pattern: Pattern) -> &'static [&'static [Token]] {
    match pattern {
        Pattern::XX => XX,
        Pattern::IK => IK,
        Pattern::XXfallback => XX_FALLBACK,
    }
}

/// The `HandshakeState` object of Noise §5.3.
///
/// Holds the local static and ephemeral key pairs (zeroized on drop by their own types), the
/// remote public keys and a [`SymmetricState`] (whose chaining key is zeroized on drop).
///
/// Deliberately not `Clone`: two copies writing different payloads would encrypt them under the
/// same key and nonce.
pub struct HandshakeState {
    symmetric: SymmetricState,
    pattern: Pattern,
    role: Role,
    s: Keypair,
    e: Option<Keypair>,
    rs: Option<[u8; DHLEN]>,
    re: Option<[u8; DHLEN]>,
    /// Index of the next message in the pattern.
    step: usize,
}

impl zeroize::ZeroizeOnDrop for HandshakeState {}

impl core::fmt::Debug for HandshakeState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HandshakeState")
            .field("pattern", &self.pattern)
            .field("role", &self.role)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl HandshakeState {
    /// Working copy for a step that commits only on success.
    fn duplicate(&self) -> Self {
        HandshakeState {
            symmetric: self.symmetric.duplicate(),
            pattern: self.pattern,
            role: self.role,
            s: self.s.clone(),
            e: self.e.clone(),
            rs: self.rs,
            re: self.re,
            step: self.step,
        }
    }

    fn init(
        pattern: Pattern,
        role: Role,
        prologue: &[u8],
        s: Keypair,
        e: Option<Keypair>,
        rs: Option<[u8; DHLEN]>,
        re: Option<[u8; DHLEN]>,
    ) -> Result<Self, Error> {
        let mut symmetric = SymmetricState::new(pattern.protocol_name().as_bytes());
        symmetric.mix_hash(prologue);
        // Pre-messages (the initiator's, i.e. Alice's, would come first; each pattern here has
        // at most one).
        match pattern {
            Pattern::XX => {}
            // `<- s`: the responder's static key.
            Pattern::IK => match role {
                Role::Initiator => symmetric.mix_hash(rs.as_ref().ok_or(Error::MissingKey)?),
                Role::Responder => symmetric.mix_hash(s.public()),
            },
            // `-> e`: Alice's ephemeral, i.e. the fallback *responder's* own `e`.
            Pattern::XXfallback => match role {
                Role::Initiator => symmetric.mix_hash(re.as_ref().ok_or(Error::MissingKey)?),
                Role::Responder => {
                    symmetric.mix_hash(e.as_ref().ok_or(Error::MissingKey)?.public())
                }
            },
        }
        Ok(HandshakeState {
            symmetric,
            pattern,
            role,
            s,
            e,
            rs,
            re,
            step: 0,
        })
    }

    /// `Initialize()`: start a handshake.
    ///
    /// `s` is the local static key pair; `rs` the remote static public key if known in advance.
    /// It is required for the IK initiator ([`Error::MissingKey`] without it) and ignored in
    /// every other case (XX learns it from the handshake; an IK responder learns it from
    /// message 1).
    ///
    /// [`Pattern::XXfallback`] needs a pre-known ephemeral and cannot be started here
    /// ([`Error::MissingKey`]): use [`HandshakeState::fallback_responder_side`] /
    /// [`HandshakeState::into_fallback`], or [`HandshakeState::new_xxfallback_initiator`] /
    /// [`HandshakeState::new_xxfallback_responder`].
    pub fn new(
        pattern: Pattern,
        role: Role,
        prologue: &[u8],
        s: Keypair,
        rs: Option<[u8; 32]>,
    ) -> Result<Self, Error> {
        let rs = match (pattern, role) {
            (Pattern::IK, Role::Initiator) => Some(rs.ok_or(Error::MissingKey)?),
            (Pattern::XXfallback, _) => return Err(Error::MissingKey),
            _ => None,
        };
        Self::init(pattern, role, prologue, s, None, rs, None)
    }

    /// Start `XXfallback` as its initiator (Bob, who sends the first fallback message) with the
    /// pre-known remote ephemeral `re` (Alice's `e`).
    pub fn new_xxfallback_initiator(
        s: Keypair,
        prologue: &[u8],
        re: [u8; DHLEN],
    ) -> Result<Self, Error> {
        Self::init(
            Pattern::XXfallback,
            Role::Initiator,
            prologue,
            s,
            None,
            None,
            Some(re),
        )
    }

    /// Start `XXfallback` as its responder (Alice) with her ephemeral `e`, the one she already
    /// sent in her IK message.
    pub fn new_xxfallback_responder(
        s: Keypair,
        e: Keypair,
        prologue: &[u8],
    ) -> Result<Self, Error> {
        Self::init(
            Pattern::XXfallback,
            Role::Responder,
            prologue,
            s,
            Some(e),
            None,
            None,
        )
    }

    /// Use this ephemeral key pair instead of generating one when the message that carries
    /// this party's `e` is written. Two uses: replaying test vectors (fixed keys), and a caller
    /// that generated a fresh random key itself because it must keep a copy (the Noise Pipes
    /// device keeps the `e` of `IK` message 1 to start `XXfallback` with it). In production the
    /// key MUST be fresh from a CSPRNG and used for one handshake only; replacing `e` after it
    /// was sent breaks the handshake.
    pub fn set_ephemeral(&mut self, e: Keypair) {
        self.e = Some(e);
    }

    /// The pattern being run.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this party is "Alice", the left-hand party of the pattern notation: the
    /// initiator of XX and IK, the *responder* of XXfallback. DH tokens are defined relative to
    /// Alice.
    fn is_alice(&self) -> bool {
        match self.pattern {
            Pattern::XXfallback => self.role == Role::Responder,
            _ => self.role == Role::Initiator,
        }
    }

    fn tokens(&self) -> Result<&'static [Token], Error> {
        messages(self.pattern)
            .get(self.step)
            .copied()
            .ok_or(Error::HandshakeFinished)
    }

    /// Whether all handshake messages have been processed.
    pub fn is_finished(&self) -> bool {
        self.step >= messages(self.pattern).len()
    }

    /// Whether the next call must be `write_message` (else `read_message`). `false` once the
    /// handshake is finished.
    pub fn is_my_turn(&self) -> bool {
        !self.is_finished() && (self.step.is_multiple_of(2) == (self.role == Role::Initiator))
    }

    /// The exact length of the next handshake message if it carries a `payload_len`-byte
    /// payload (the same whether this party writes or reads it).
    pub fn next_message_len(&self, payload_len: usize) -> Result<usize, Error> {
        let mut has_key = self.symmetric.has_key();
        let mut len = 0usize;
        for token in self.tokens()? {
            match token {
                E => len += DHLEN,
                S => len += DHLEN + if has_key { TAGLEN } else { 0 },
                Ee | Es | Se | Ss => has_key = true,
            }
        }
        Ok(len + payload_len + if has_key { TAGLEN } else { 0 })
    }

    /// The remote static public key, once known.
    pub fn remote_static(&self) -> Option<[u8; 32]> {
        self.rs
    }

    /// The remote ephemeral public key, once known.
    pub fn remote_ephemeral(&self) -> Option<[u8; 32]> {
        self.re
    }

    /// The current handshake hash `h` (after the handshake: the channel-binding value).
    pub fn handshake_hash(&self) -> [u8; HASHLEN] {
        self.symmetric.handshake_hash()
    }

    /// Perform the DH of `token` and `MixKey()` its output.
    fn mix_dh(&mut self, token: Token) -> Result<(), Error> {
        let alice = self.is_alice();
        let (local, remote) = match token {
            Ee => (self.e.as_ref(), self.re.as_ref()),
            Ss => (Some(&self.s), self.rs.as_ref()),
            // `es`: Alice's ephemeral with Bob's static.
            Es if alice => (self.e.as_ref(), self.rs.as_ref()),
            Es => (Some(&self.s), self.re.as_ref()),
            // `se`: Alice's static with Bob's ephemeral.
            Se if alice => (Some(&self.s), self.re.as_ref()),
            Se => (self.e.as_ref(), self.rs.as_ref()),
            E | S => return Ok(()),
        };
        let (Some(local), Some(remote)) = (local, remote) else {
            return Err(Error::MissingKey);
        };
        let mut shared = local.dh(remote)?;
        self.symmetric.mix_key(&shared);
        shared.zeroize();
        Ok(())
    }

    /// `WriteMessage(payload, message_buffer)`: write the next handshake message into `out` and
    /// return its length ([`HandshakeState::next_message_len`]).
    ///
    /// The ephemeral key is drawn from `rng` unless one was set with
    /// [`HandshakeState::set_ephemeral`]. On any error the state is unchanged.
    pub fn write_message<R: CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        out: &mut [u8],
        rng: &mut R,
    ) -> Result<usize, Error> {
        if self.is_finished() {
            return Err(Error::HandshakeFinished);
        }
        if !self.is_my_turn() {
            return Err(Error::NotMyTurn);
        }
        let required = self.next_message_len(payload.len())?;
        if required > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong);
        }
        if out.len() < required {
            return Err(Error::BufferTooSmall { required });
        }
        let mut st = self.duplicate();
        let mut off = 0usize;
        for &token in st.tokens()? {
            match token {
                E => {
                    if st.e.is_none() {
                        st.e = Some(Keypair::generate(rng));
                    }
                    let public = *st.e.as_ref().ok_or(Error::MissingKey)?.public();
                    out.get_mut(off..off + DHLEN)
                        .ok_or(Error::BufferTooSmall { required })?
                        .copy_from_slice(&public);
                    st.symmetric.mix_hash(&public);
                    off += DHLEN;
                }
                S => {
                    let public = *st.s.public();
                    let dst = out
                        .get_mut(off..)
                        .ok_or(Error::BufferTooSmall { required })?;
                    off += st.symmetric.encrypt_and_hash(&public, dst)?;
                }
                Ee | Es | Se | Ss => st.mix_dh(token)?,
            }
        }
        let dst = out
            .get_mut(off..)
            .ok_or(Error::BufferTooSmall { required })?;
        off += st.symmetric.encrypt_and_hash(payload, dst)?;
        st.step += 1;
        *self = st;
        Ok(off)
    }

    /// `ReadMessage(message, payload_buffer)`: process the next handshake message and write its
    /// payload into `payload_out`; returns the payload length.
    ///
    /// On any error (forged or corrupted message: [`Error::Decrypt`]; too short:
    /// [`Error::Truncated`]; low-order key: [`Error::InvalidPublicKey`]; `payload_out` too
    /// small) the state is unchanged, so the correct message can still be read afterwards.
    pub fn read_message(&mut self, message: &[u8], payload_out: &mut [u8]) -> Result<usize, Error> {
        if self.is_finished() {
            return Err(Error::HandshakeFinished);
        }
        if self.is_my_turn() {
            return Err(Error::NotMyTurn);
        }
        if message.len() > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong);
        }
        let mut st = self.duplicate();
        let mut rest = message;
        for &token in st.tokens()? {
            match token {
                E => {
                    let (key, tail) = rest.split_first_chunk::<DHLEN>().ok_or(Error::Truncated)?;
                    st.symmetric.mix_hash(key);
                    st.re = Some(*key);
                    rest = tail;
                }
                S => {
                    let len = DHLEN + if st.symmetric.has_key() { TAGLEN } else { 0 };
                    if rest.len() < len {
                        return Err(Error::Truncated);
                    }
                    let (ct, tail) = rest.split_at(len);
                    let mut key = [0u8; DHLEN];
                    st.symmetric.decrypt_and_hash(ct, &mut key)?;
                    st.rs = Some(key);
                    rest = tail;
                }
                Ee | Es | Se | Ss => st.mix_dh(token)?,
            }
        }
        let overhead = if st.symmetric.has_key() { TAGLEN } else { 0 };
        let Some(payload_len) = rest.len().checked_sub(overhead) else {
            return Err(Error::Truncated);
        };
        if payload_out.len() < payload_len {
            return Err(Error::BufferTooSmall {
                required: payload_len,
            });
        }
        let n = st.symmetric.decrypt_and_hash(rest, payload_out)?;
        st.step += 1;
        *self = st;
        Ok(n)
    }

    /// Finish: `Split()` into a [`Transport`]. Consumes the handshake, so a finished handshake
    /// cannot be used again. [`Error::HandshakeNotFinished`] before the last message.
    pub fn into_transport(self) -> Result<Transport, Error> {
        self.transport()
    }

    /// [`into_transport`](Self::into_transport) without consuming the state, for a caller that
    /// drops the state where it lies (a move would copy it).
    pub(crate) fn transport(&self) -> Result<Transport, Error> {
        if !self.is_finished() {
            return Err(Error::HandshakeNotFinished);
        }
        // `k1` protects what the *initiator* (the sender of the first handshake message) sends.
        // For XXfallback that is Bob, although DH tokens are read relative to Alice; noise-c's
        // fallback vectors fix this assignment.
        let (k1, k2) = self.symmetric.split();
        let (send, recv) = match self.role {
            Role::Initiator => (k1, k2),
            Role::Responder => (k2, k1),
        };
        Ok(Transport::from_parts(
            self.role,
            send,
            recv,
            self.symmetric.handshake_hash(),
            self.rs,
        ))
    }

    /// Noise Pipes (§10.2): the IK responder that could not decrypt IK message 1 starts
    /// `XXfallback` as *initiator*, with `re` = the ephemeral at the start of `ik_message`.
    ///
    /// Only the first 32 bytes of `ik_message` are used ([`Error::Truncated`] if shorter). The
    /// next call is [`HandshakeState::write_message`] (`e, ee, s, es` + payload).
    pub fn fallback_responder_side(
        s: Keypair,
        prologue: &[u8],
        ik_message: &[u8],
    ) -> Result<Self, Error> {
        let (re, _) = ik_message
            .split_first_chunk::<DHLEN>()
            .ok_or(Error::Truncated)?;
        Self::new_xxfallback_initiator(s, prologue, *re)
    }

    /// Noise Pipes (§10.2): the IK initiator whose first message was answered with
    /// `XXfallback` keeps its ephemeral and becomes the fallback *responder*.
    ///
    /// Only possible from an IK initiator that has written message 1 and not read message 2
    /// ([`Error::FallbackNotPossible`] otherwise). The next call is
    /// [`HandshakeState::read_message`] with Bob's fallback message.
    pub fn into_fallback(self, prologue: &[u8]) -> Result<HandshakeState, Error> {
        if self.pattern != Pattern::IK || self.role != Role::Initiator || self.step != 1 {
            return Err(Error::FallbackNotPossible);
        }
        let e = self.e.clone().ok_or(Error::FallbackNotPossible)?;
        Self::new_xxfallback_responder(self.s.clone(), e, prologue)
    }
}
