//! Record decryption: takes one direction's AEAD key, IV and record sequence number and gives
//! the plaintext of each protected record, or an authentication failure. AES-128-GCM,
//! AES-256-GCM and ChaCha20-Poly1305 (the `aes-gcm` and `chacha20poly1305` crates); the nonce
//! and additional-data layouts of TLS 1.3 (RFC 8446 §5.2–5.3) and TLS 1.2 (RFC 5288 §3,
//! RFC 7905 §2) are built here.

use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;

const TAG: usize = 16;

/// The AEAD algorithm of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl Algorithm {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::Aes128Gcm => 16,
            Algorithm::Aes256Gcm | Algorithm::ChaCha20Poly1305 => 32,
        }
    }

    /// TLS 1.2 IV bytes taken from the key block: a 4-byte salt for GCM (the other 8 travel in
    /// each record), the whole 12-byte IV for ChaCha20.
    pub fn tls12_iv_len(self) -> usize {
        match self {
            Algorithm::Aes128Gcm | Algorithm::Aes256Gcm => 4,
            Algorithm::ChaCha20Poly1305 => 12,
        }
    }
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// Why a record gave no plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecryptError {
    /// Shorter than the tag (and explicit nonce): not a protected record.
    TooShort,
    /// The tag does not match: wrong keys, or bytes damaged.
    Authentication,
}

/// One direction's record protection state.
pub struct DirKeys {
    cipher: Cipher,
    iv: [u8; 12],
    /// Length of the IV part from the key schedule (12, or 4 for TLS 1.2 GCM).
    fixed_iv: usize,
    tls13: bool,
    /// Sequence number of the next record.
    pub seq: u64,
}

impl DirKeys {
    /// Keys for one direction; `None` when the lengths do not fit the algorithm.
    pub fn new(alg: Algorithm, key: &[u8], iv: &[u8], tls13: bool) -> Option<DirKeys> {
        let cipher = match alg {
            Algorithm::Aes128Gcm => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(key).ok()?)),
            Algorithm::Aes256Gcm => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(key).ok()?)),
            Algorithm::ChaCha20Poly1305 => {
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(key).ok()?))
            }
        };
        let mut full = [0u8; 12];
        full.get_mut(..iv.len())?.copy_from_slice(iv);
        if !(iv.len() == 12 || (!tls13 && iv.len() == 4 && alg != Algorithm::ChaCha20Poly1305)) {
            return None;
        }
        Some(DirKeys {
            cipher,
            iv: full,
            fixed_iv: iv.len(),
            tls13,
            seq: 0,
        })
    }

    /// Decrypts one record's fragment (`content_type` and `version` from its header). In TLS 1.3
    /// the result is the inner plaintext, content type and padding still at the end.
    pub fn decrypt(
        &mut self,
        content_type: u8,
        version: u16,
        fragment: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let mut nonce = self.iv;
        let body = if self.fixed_iv == 4 {
            // TLS 1.2 GCM: salt from the key block, then the record's 8-byte explicit nonce.
            let explicit = fragment.get(..8).ok_or(DecryptError::TooShort)?;
            nonce[4..].copy_from_slice(explicit);
            &fragment[8..]
        } else {
            for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
                *n ^= s;
            }
            fragment
        };
        let plain_len = body.len().checked_sub(TAG).ok_or(DecryptError::TooShort)?;
        let aad: Vec<u8> = if self.tls13 {
            let len = u16::try_from(fragment.len()).map_err(|_| DecryptError::TooShort)?;
            let mut a = vec![content_type];
            a.extend_from_slice(&version.to_be_bytes());
            a.extend_from_slice(&len.to_be_bytes());
            a
        } else {
            let len = u16::try_from(plain_len).map_err(|_| DecryptError::TooShort)?;
            let mut a = self.seq.to_be_bytes().to_vec();
            a.push(content_type);
            a.extend_from_slice(&version.to_be_bytes());
            a.extend_from_slice(&len.to_be_bytes());
            a
        };
        let (ct, tag) = body.split_at(plain_len);
        let mut buf = ct.to_vec();
        let ok = match &self.cipher {
            Cipher::Aes128(c) => open_in_place(&**c, &nonce, &aad, &mut buf, tag),
            Cipher::Aes256(c) => open_in_place(&**c, &nonce, &aad, &mut buf, tag),
            Cipher::ChaCha(c) => open_in_place(&**c, &nonce, &aad, &mut buf, tag),
        };
        if !ok {
            return Err(DecryptError::Authentication);
        }
        self.seq = self.seq.wrapping_add(1);
        Ok(buf)
    }
}

/// Checks the tag and decrypts `buf` in place; false when the record does not authenticate.
/// All three AEADs take a 12-byte nonce and a 16-byte tag.
fn open_in_place<A>(aead: &A, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8]) -> bool
where
    A: AeadInOut<NonceSize = U12, TagSize = U16>,
{
    let Ok(tag) = <[u8; 16]>::try_from(tag) else {
        return false;
    };
    aead.decrypt_inout_detached(&(*nonce).into(), aad, buf.into(), &tag.into())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls13_record_from_rfc_8448_decrypts_and_a_flipped_bit_fails() {
        // RFC 8448 §3: the server's first application-data-protected record (EncryptedExtensions
        // onward is long; this is the client's Finished, 53 bytes), under the client handshake
        // key and IV.
        let key = hex::decode("dbfaa693d1762c5b666af5d950258d01").unwrap_or_default();
        let iv = hex::decode("5bd3c71b836e0b76bb73265f").unwrap_or_default();
        let record = hex::decode(
            "1703030035 75ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546".replace(' ', ""),
        )
        .unwrap_or_default();
        let Some(mut keys) = DirKeys::new(Algorithm::Aes128Gcm, &key, &iv, true) else {
            panic!("keys rejected");
        };
        let plain = keys.decrypt(23, 0x0303, &record[5..]);
        let plain = plain.unwrap_or_default();
        // Finished (type 20, 32-byte verify_data), then the inner content type 22.
        assert_eq!(plain.len(), 37);
        assert_eq!(&plain[..4], &[20, 0, 0, 32]);
        assert_eq!(plain.last(), Some(&22));
        assert_eq!(keys.seq, 1);

        let mut bad = record[5..].to_vec();
        bad[3] ^= 1;
        let Some(mut keys) = DirKeys::new(Algorithm::Aes128Gcm, &key, &iv, true) else {
            panic!("keys rejected");
        };
        assert_eq!(
            keys.decrypt(23, 0x0303, &bad),
            Err(DecryptError::Authentication)
        );
        assert_eq!(keys.seq, 0);
    }
}
