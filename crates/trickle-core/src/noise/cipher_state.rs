//! `CipherState` (Noise §5.1) and the ChaChaPoly cipher functions (§12.3).

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use zeroize::Zeroize;

use super::{Error, MAX_MESSAGE_LEN, TAGLEN};

/// A 32-byte ChaChaPoly key with the explicit-nonce AEAD of Noise §12.3.
///
/// The nonce is 4 zero bytes followed by the 64-bit counter `n` little-endian. Zeroized on drop.
#[derive(Clone)]
pub struct CipherKey {
    key: [u8; 32],
}

impl CipherKey {
    /// Wrap 32 key bytes (e.g. loaded from persistent storage).
    pub fn from_bytes(k: [u8; 32]) -> Self {
        CipherKey { key: k }
    }

    /// The 32 key bytes, for persistence. Zeroize the copy when done with it.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key
    }

    fn aead(&self) -> ChaCha20Poly1305 {
        let key: &Key = (&self.key).into();
        ChaCha20Poly1305::new(key)
    }

    fn nonce(n: u64) -> Nonce {
        let mut nonce = Nonce::default();
        nonce[4..].copy_from_slice(&n.to_le_bytes());
        nonce
    }

    /// `ENCRYPT(k, n, ad, plaintext)` in place: `buf` holds the plaintext on entry and the
    /// ciphertext on return; the 16-byte tag is returned separately (on the wire it follows the
    /// ciphertext).
    pub fn encrypt_in_place(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAGLEN] {
        let cipher = self.aead();
        match cipher.encrypt_inout_detached(&Self::nonce(nonce), ad, buf.into()) {
            Ok(tag) => tag.into(),
            // ChaCha20Poly1305 only refuses plaintexts longer than 256 GiB, which no slice on
            // our targets can reach; keep the contract "never panic" anyway.
            Err(_) => [0u8; TAGLEN],
        }
    }

    /// `DECRYPT(k, n, ad, ciphertext)` in place with a detached tag.
    ///
    /// On success `buf` holds the plaintext. On failure ([`Error::Decrypt`]) `buf` is left
    /// holding the unchanged ciphertext: the tag is verified before any byte is decrypted.
    pub fn decrypt_in_place(
        &self,
        nonce: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAGLEN],
    ) -> Result<(), Error> {
        let cipher = self.aead();
        let tag = Tag::from(*tag);
        cipher
            .decrypt_inout_detached(&Self::nonce(nonce), ad, buf.into(), &tag)
            .map_err(|_| Error::Decrypt)
    }

    /// `REKEY(k)` of Noise §4.2 / §11.3: `k` becomes the first 32 bytes of
    /// `ENCRYPT(k, 2^64-1, zerolen, zeros)`.
    pub fn rekey(&mut self) {
        let mut buf = [0u8; 32];
        let _tag = self.encrypt_in_place(u64::MAX, &[], &mut buf);
        self.key.zeroize();
        self.key = buf;
        buf.zeroize();
    }

    /// Encrypt `plaintext` with explicit nonce `nonce` into `out` as `ciphertext || tag`.
    /// Returns the written length, `plaintext.len() + 16`.
    pub fn encrypt(
        &self,
        nonce: u64,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let required = plaintext.len() + TAGLEN;
        if required > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong);
        }
        let Some(out) = out.get_mut(..required) else {
            return Err(Error::BufferTooSmall { required });
        };
        let (body, tag_out) = out.split_at_mut(plaintext.len());
        body.copy_from_slice(plaintext);
        let tag = self.encrypt_in_place(nonce, ad, body);
        tag_out.copy_from_slice(&tag);
        Ok(required)
    }

    /// Decrypt `ciphertext || tag` with explicit nonce `nonce` into `out`.
    /// Returns the plaintext length, `message.len() - 16`. On failure `out` is zeroed.
    pub fn decrypt(
        &self,
        nonce: u64,
        ad: &[u8],
        message: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(Error::MessageTooLong);
        }
        let Some(body_len) = message.len().checked_sub(TAGLEN) else {
            return Err(Error::Truncated);
        };
        let (body, tag) = message.split_at(body_len);
        let mut tag_arr = [0u8; TAGLEN];
        tag_arr.copy_from_slice(tag);
        let Some(out) = out.get_mut(..body_len) else {
            return Err(Error::BufferTooSmall { required: body_len });
        };
        out.copy_from_slice(body);
        let res = self.decrypt_in_place(nonce, ad, out, &tag_arr);
        if res.is_err() {
            out.zeroize();
        }
        res.map(|()| body_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noise §12.3: 32 bits of zeros followed by the little-endian encoding of `n`.
    #[test]
    fn nonce_layout() {
        let nonce = CipherKey::nonce(0x0102_0304_0506_0708);
        assert_eq!(
            nonce.as_slice(),
            &[0, 0, 0, 0, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]
        );
    }

    /// REKEY is ENCRYPT(k, 2^64-1, "", zeros) truncated to 32 bytes.
    #[test]
    fn rekey_definition() {
        let k = CipherKey::from_bytes([0x11; 32]);
        let mut expected = [0u8; 32];
        let _tag = k.encrypt_in_place(u64::MAX, &[], &mut expected);
        let mut r = k.clone();
        r.rekey();
        assert_eq!(r.to_bytes(), expected);
    }
}

impl Drop for CipherKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl zeroize::ZeroizeOnDrop for CipherKey {}

impl core::fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CipherKey(..)")
    }
}

/// The `CipherState` object of Noise §5.1: an optional key `k` and an implicit nonce `n`.
///
/// Deliberately not `Clone`: two copies would reuse the same (key, nonce) pairs.
#[derive(Debug, Default)]
pub struct CipherState {
    k: Option<CipherKey>,
    n: u64,
}

impl CipherState {
    /// `InitializeKey(empty)`: a state without key.
    pub const fn empty() -> Self {
        CipherState { k: None, n: 0 }
    }

    /// Copy for checkpoint/restore inside the engine only.
    pub(crate) fn duplicate(&self) -> Self {
        CipherState {
            k: self.k.clone(),
            n: self.n,
        }
    }

    /// `InitializeKey(key)`: sets `k = key`, `n = 0`.
    pub fn new(key: CipherKey) -> Self {
        CipherState { k: Some(key), n: 0 }
    }

    /// `HasKey()`.
    pub fn has_key(&self) -> bool {
        self.k.is_some()
    }

    /// The key, if any.
    pub fn key(&self) -> Option<&CipherKey> {
        self.k.as_ref()
    }

    /// Take the key out (leaving the state empty).
    pub fn take_key(&mut self) -> Option<CipherKey> {
        self.k.take()
    }

    /// The next nonce `n`.
    pub fn nonce(&self) -> u64 {
        self.n
    }

    /// `SetNonce(nonce)`.
    pub fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }

    /// Bytes `EncryptWithAd` adds to a plaintext in the current state: 16 with a key, 0 without.
    pub fn overhead(&self) -> usize {
        if self.has_key() { TAGLEN } else { 0 }
    }

    /// `EncryptWithAd(ad, plaintext)` into `out`; returns the written length
    /// (`plaintext.len() + 16` with a key, `plaintext.len()` without). Increments `n`.
    pub fn encrypt_with_ad(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        match &self.k {
            None => {
                let Some(out) = out.get_mut(..plaintext.len()) else {
                    return Err(Error::BufferTooSmall {
                        required: plaintext.len(),
                    });
                };
                out.copy_from_slice(plaintext);
                Ok(plaintext.len())
            }
            Some(k) => {
                if self.n == u64::MAX {
                    return Err(Error::NonceExhausted);
                }
                let len = k.encrypt(self.n, ad, plaintext, out)?;
                self.n += 1;
                Ok(len)
            }
        }
    }

    /// `DecryptWithAd(ad, ciphertext)` into `out`; returns the plaintext length. Increments `n`
    /// only on success; on failure the state is unchanged.
    pub fn decrypt_with_ad(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        match &self.k {
            None => {
                let Some(out) = out.get_mut(..ciphertext.len()) else {
                    return Err(Error::BufferTooSmall {
                        required: ciphertext.len(),
                    });
                };
                out.copy_from_slice(ciphertext);
                Ok(ciphertext.len())
            }
            Some(k) => {
                if self.n == u64::MAX {
                    return Err(Error::NonceExhausted);
                }
                let len = k.decrypt(self.n, ad, ciphertext, out)?;
                self.n += 1;
                Ok(len)
            }
        }
    }

    /// `Rekey()`: replaces `k` by `REKEY(k)`; `n` is unchanged. No effect without a key.
    pub fn rekey(&mut self) {
        if let Some(k) = &mut self.k {
            k.rekey();
        }
    }
}
