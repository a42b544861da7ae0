//! Handshake patterns (Noise §7) and roles.

/// A handshake pattern supported by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Pattern {
    /// `XX`: mutual authentication, both statics transmitted (3 messages).
    XX,
    /// `IK`: the initiator knows the responder's static key in advance (2 messages).
    IK,
    /// `XXfallback` (Noise Pipes, §10.2): the IK responder that could not decrypt an IK first
    /// message answers with XX's second message, reusing the initiator's ephemeral.
    XXfallback,
}

/// Which side of the handshake this party plays.
///
/// For [`Pattern::XXfallback`] the *initiator* is the party that sends the first fallback
/// message (the original IK responder, "Bob"), the *responder* is the original IK initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Sends the first handshake message.
    Initiator,
    /// Receives the first handshake message.
    Responder,
}

impl Pattern {
    /// The full Noise protocol name, which is hashed into the initial handshake state.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Pattern::XX => "Noise_XX_25519_ChaChaPoly_BLAKE2s",
            Pattern::IK => "Noise_IK_25519_ChaChaPoly_BLAKE2s",
            Pattern::XXfallback => "Noise_XXfallback_25519_ChaChaPoly_BLAKE2s",
        }
    }

    /// Number of handshake messages (excluding pre-messages).
    pub const fn message_count(self) -> usize {
        match self {
            Pattern::XX => 3,
            Pattern::IK => 2,
            Pattern::XXfallback => 2,
        }
    }
}
