//! Key derivation: takes a session's secrets and randoms and gives record-protection keys and
//! IVs. TLS 1.3 uses HKDF-Expand-Label (RFC 8446 §7.1, §7.3) and the KeyUpdate chain (§7.2);
//! TLS 1.2 the PRF P_SHA256 / P_SHA384 (RFC 5246 §5, §6.3). Built from the `hkdf` and `hmac`
//! crates; only the label and seed layout is written here.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha384};

/// The hash of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl Hash {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// HKDF-Expand-Label(secret, label, context, len); `None` when the secret does not fit the hash.
pub fn expand_label(
    hash: Hash,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let full_label = [b"tls13 ", label.as_bytes()].concat();
    let mut info = Vec::with_capacity(4 + full_label.len() + context.len());
    info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(full_label.len()).ok()?);
    info.extend_from_slice(&full_label);
    info.push(u8::try_from(context.len()).ok()?);
    info.extend_from_slice(context);
    let mut out = vec![0; len];
    match hash {
        Hash::Sha256 => Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        Hash::Sha384 => Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

/// A TLS 1.3 traffic secret's write key and IV.
pub fn tls13_key_iv(hash: Hash, secret: &[u8], key_len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((
        expand_label(hash, secret, "key", &[], key_len)?,
        expand_label(hash, secret, "iv", &[], 12)?,
    ))
}

/// The traffic secret after a KeyUpdate.
pub fn tls13_next_secret(hash: Hash, secret: &[u8]) -> Option<Vec<u8>> {
    expand_label(hash, secret, "traffic upd", &[], hash.output_len())
}

/// P_hash(secret, seed) cut to `len` bytes (RFC 5246 §5).
fn p_hash<M: Mac + KeyInit + Clone>(secret: &[u8], seed: &[u8], len: usize) -> Option<Vec<u8>> {
    let base = <M as KeyInit>::new_from_slice(secret).ok()?;
    let mut out = Vec::with_capacity(len);
    // A(1) = HMAC(secret, seed); A(i) = HMAC(secret, A(i-1)).
    let mut a = {
        let mut m = base.clone();
        m.update(seed);
        m.finalize().into_bytes().to_vec()
    };
    while out.len() < len {
        let mut m = base.clone();
        m.update(&a);
        m.update(seed);
        out.extend_from_slice(&m.finalize().into_bytes());
        let mut m = base.clone();
        m.update(&a);
        a = m.finalize().into_bytes().to_vec();
    }
    out.truncate(len);
    Some(out)
}

/// The TLS 1.2 PRF with the suite's hash.
pub fn tls12_prf(
    hash: Hash,
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    len: usize,
) -> Option<Vec<u8>> {
    let seed = [label, seed].concat();
    match hash {
        Hash::Sha256 => p_hash::<Hmac<Sha256>>(secret, &seed, len),
        Hash::Sha384 => p_hash::<Hmac<Sha384>>(secret, &seed, len),
    }
}

/// TLS 1.2 AEAD keys from the master secret: (client key, server key, client IV, server IV).
pub fn tls12_keys(
    hash: Hash,
    master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
    key_len: usize,
    iv_len: usize,
) -> Option<[Vec<u8>; 4]> {
    // The key expansion seed is server random first (RFC 5246 §6.3); AEAD suites have no MAC keys.
    let seed = [&server_random[..], &client_random[..]].concat();
    let block = tls12_prf(
        hash,
        master,
        b"key expansion",
        &seed,
        2 * key_len + 2 * iv_len,
    )?;
    let (ck, rest) = block.split_at(key_len);
    let (sk, rest) = rest.split_at(key_len);
    let (civ, siv) = rest.split_at(iv_len);
    Some([ck.to_vec(), sk.to_vec(), civ.to_vec(), siv.to_vec()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls13_traffic_keys_match_rfc_8448() {
        // RFC 8448 §3 (simple 1-RTT handshake): the server handshake traffic secret and the
        // write key and IV derived from it.
        let secret =
            hex::decode("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
                .unwrap_or_default();
        let (key, iv) = tls13_key_iv(Hash::Sha256, &secret, 16).unwrap_or_default();
        assert_eq!(hex::encode(key), "3fce516009c21727d0f2e4e86ee403bc");
        assert_eq!(hex::encode(iv), "5d313eb2671276ee13000b30");
    }

    #[test]
    fn tls12_prf_matches_a_known_vector() {
        // The P_SHA256 test vector published with the TLS 1.2 PRF (IETF TLS mailing list,
        // "TLS 1.2 PRF test vectors"): 100 bytes of output.
        let secret = hex::decode("9bbe436ba940f017b17652849a71db35").unwrap_or_default();
        let seed = hex::decode("a0ba9f936cda311827a6f796ffd5198c").unwrap_or_default();
        let out = tls12_prf(Hash::Sha256, &secret, b"test label", &seed, 100).unwrap_or_default();
        assert_eq!(
            hex::encode(out),
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"
        );
    }
}
