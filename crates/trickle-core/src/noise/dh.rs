//! The `25519` DH functions of Noise §12.1: X25519 key pairs and `DH()`.

use rand_core::CryptoRng;
use x25519_dalek::{PublicKey, StaticSecret, X25519_BASEPOINT_BYTES};
use zeroize::Zeroize;

use super::{DHLEN, Error};

/// A Curve25519 key pair (a static `s` or an ephemeral `e` in Noise terms).
///
/// The secret half is zeroized on drop (by `x25519-dalek`'s `StaticSecret`).
#[derive(Clone)]
pub struct Keypair {
    secret: StaticSecret,
    public: [u8; DHLEN],
}

impl Keypair {
    /// `GENERATE_KEYPAIR()`: a fresh key pair from a cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let kp = Self::from_secret(bytes);
        bytes.zeroize();
        kp
    }

    /// Rebuild a key pair from its 32 secret bytes (e.g. loaded from persistent storage).
    /// The bytes are clamped by X25519 itself, so any 32 bytes are a valid secret.
    pub fn from_secret(mut bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        bytes.zeroize();
        // X25519(k, 9) (RFC 7748 §6.1) on the Montgomery ladder, as `dh` computes, rather than
        // `PublicKey::from(&secret)`'s Edwards-form fixed-base multiplication: the same bytes,
        // but firmware then links no Edwards arithmetic (about 3 KiB of flash) and needs no
        // 1.3 KiB lookup table on the stack.
        let public = secret
            .diffie_hellman(&PublicKey::from(X25519_BASEPOINT_BYTES))
            .to_bytes();
        Keypair { secret, public }
    }

    /// The public key.
    pub fn public(&self) -> &[u8; DHLEN] {
        &self.public
    }

    /// The 32 secret bytes, for persistence. Zeroize the copy when done with it.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// `DH(key_pair, public_key)`: X25519 with `public_key`.
    ///
    /// Returns [`Error::InvalidPublicKey`] if the result is all zeros (the peer's public key is
    /// a low-order point), as Noise §12.1 allows and as we require.
    pub fn dh(&self, public_key: &[u8; DHLEN]) -> Result<[u8; DHLEN], Error> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*public_key));
        if !shared.was_contributory() {
            return Err(Error::InvalidPublicKey);
        }
        Ok(shared.to_bytes())
    }
}

// The secret half is a `StaticSecret`, which zeroizes itself on drop.
impl zeroize::ZeroizeOnDrop for Keypair {}

impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
