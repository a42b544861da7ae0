//! `SymmetricState` (Noise §5.2) with the BLAKE2s hash functions of §12.8 and HMAC/HKDF of §4.3.

use blake2::{Blake2s256, Digest};
use zeroize::Zeroize;

use super::cipher_state::{CipherKey, CipherState};
use super::{Error, HASHLEN};

/// BLAKE2s block length (`BLOCKLEN` of Noise §4.3), used by HMAC.
const BLOCKLEN: usize = 64;

/// `HASH(a || b || ...)` with BLAKE2s-256.
fn hash(parts: &[&[u8]]) -> [u8; HASHLEN] {
    let mut h = Blake2s256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `HMAC-HASH(key, data)` per RFC 2104 with BLAKE2s (block length 64). `key` is at most
/// `HASHLEN` bytes here, so it never needs hashing down.
fn hmac(key: &[u8; HASHLEN], data: &[&[u8]]) -> [u8; HASHLEN] {
    let mut ipad = [0x36u8; BLOCKLEN];
    let mut opad = [0x5cu8; BLOCKLEN];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Blake2s256::new();
    inner.update(ipad);
    for d in data {
        inner.update(d);
    }
    let mut inner_hash: [u8; HASHLEN] = inner.finalize().into();
    let out = hash(&[&opad, &inner_hash]);
    ipad.zeroize();
    opad.zeroize();
    inner_hash.zeroize();
    out
}

/// `HKDF(chaining_key, input_key_material, 3)` of Noise §4.3 (all three outputs; callers that
/// need two ignore the third).
fn hkdf3(ck: &[u8; HASHLEN], ikm: &[u8]) -> ([u8; HASHLEN], [u8; HASHLEN], [u8; HASHLEN]) {
    let mut temp_key = hmac(ck, &[ikm]);
    let o1 = hmac(&temp_key, &[&[0x01]]);
    let o2 = hmac(&temp_key, &[&o1, &[0x02]]);
    let o3 = hmac(&temp_key, &[&o2, &[0x03]]);
    temp_key.zeroize();
    (o1, o2, o3)
}

/// `HKDF(chaining_key, input_key_material, 2)`.
fn hkdf2(ck: &[u8; HASHLEN], ikm: &[u8]) -> ([u8; HASHLEN], [u8; HASHLEN]) {
    let mut temp_key = hmac(ck, &[ikm]);
    let o1 = hmac(&temp_key, &[&[0x01]]);
    let o2 = hmac(&temp_key, &[&o1, &[0x02]]);
    temp_key.zeroize();
    (o1, o2)
}

/// The `SymmetricState` object of Noise §5.2: chaining key `ck`, handshake hash `h` and a
/// [`CipherState`]. The chaining key is zeroized on drop. Deliberately not `Clone` (a copy
/// would reuse the cipher's implicit nonces).
pub struct SymmetricState {
    ck: [u8; HASHLEN],
    h: [u8; HASHLEN],
    cipher: CipherState,
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`.
    pub fn new(protocol_name: &[u8]) -> Self {
        let mut h = [0u8; HASHLEN];
        if protocol_name.len() <= HASHLEN {
            h[..protocol_name.len()].copy_from_slice(protocol_name);
        } else {
            h = hash(&[protocol_name]);
        }
        SymmetricState {
            ck: h,
            h,
            cipher: CipherState::empty(),
        }
    }

    /// Copy for checkpoint/restore inside the engine only.
    pub(crate) fn duplicate(&self) -> Self {
        SymmetricState {
            ck: self.ck,
            h: self.h,
            cipher: self.cipher.duplicate(),
        }
    }

    /// `MixKey(input_key_material)`.
    pub fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, mut temp_k) = hkdf2(&self.ck, ikm);
        self.ck.zeroize();
        self.ck = ck;
        self.cipher = CipherState::new(CipherKey::from_bytes(temp_k));
        temp_k.zeroize();
    }

    /// `MixHash(data)`.
    pub fn mix_hash(&mut self, data: &[u8]) {
        self.h = hash(&[&self.h, data]);
    }

    /// `MixKeyAndHash(input_key_material)` (used by PSK patterns; provided for completeness).
    pub fn mix_key_and_hash(&mut self, ikm: &[u8]) {
        let (ck, mut temp_h, mut temp_k) = hkdf3(&self.ck, ikm);
        self.ck.zeroize();
        self.ck = ck;
        self.mix_hash(&temp_h);
        self.cipher = CipherState::new(CipherKey::from_bytes(temp_k));
        temp_h.zeroize();
        temp_k.zeroize();
    }

    /// `GetHandshakeHash()`.
    pub fn handshake_hash(&self) -> [u8; HASHLEN] {
        self.h
    }

    /// Whether the inner cipher state has a key.
    pub fn has_key(&self) -> bool {
        self.cipher.has_key()
    }

    /// `EncryptAndHash(plaintext)` into `out`; returns the written length.
    pub fn encrypt_and_hash(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let h = self.h;
        let len = self.cipher.encrypt_with_ad(&h, plaintext, out)?;
        // `encrypt_with_ad` returned `len` bytes written into `out`, so this slice exists.
        self.mix_hash(
            out.get(..len)
                .ok_or(Error::BufferTooSmall { required: len })?,
        );
        Ok(len)
    }

    /// `DecryptAndHash(ciphertext)` into `out`; returns the plaintext length. On failure the
    /// state is unchanged.
    pub fn decrypt_and_hash(&mut self, ciphertext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let h = self.h;
        let len = self.cipher.decrypt_with_ad(&h, ciphertext, out)?;
        self.mix_hash(ciphertext);
        Ok(len)
    }

    /// `Split()`: the two transport keys `(k1, k2)`; `k1` encrypts initiator→responder.
    pub fn split(&self) -> (CipherKey, CipherKey) {
        let (mut k1, mut k2) = hkdf2(&self.ck, &[]);
        let out = (CipherKey::from_bytes(k1), CipherKey::from_bytes(k2));
        k1.zeroize();
        k2.zeroize();
        out
    }
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        self.ck.zeroize();
        self.h.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for SymmetricState {}

impl core::fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SymmetricState")
            .field("h", &self.h)
            .finish_non_exhaustive()
    }
}
