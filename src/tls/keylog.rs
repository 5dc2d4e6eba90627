//! NSS key log files (the `SSLKEYLOGFILE` format written by browsers, Node's `--tls-keylog`,
//! Python's `SSLContext.keylog_filename`, and carried in pcapng Decryption Secrets Blocks): takes
//! the file's text and gives, per client random, the secrets that decrypt that TLS session.
//!
//! Lines are `LABEL <client_random hex> <secret hex>`; comments (`#`) and labels this tool does
//! not use (`EXPORTER_SECRET`, early traffic) are skipped. Secrets are never shown: `Debug` prints
//! only how many sessions are known.

use std::collections::HashMap;
use std::fmt;

/// The secrets of one TLS session.
#[derive(Clone, Default)]
pub struct Secrets {
    /// TLS 1.2 (and earlier) master secret (`CLIENT_RANDOM`).
    pub master: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub client_handshake: Option<Vec<u8>>,
    /// TLS 1.3 `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_handshake: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_TRAFFIC_SECRET_0`.
    pub client_traffic: Option<Vec<u8>>,
    /// TLS 1.3 `SERVER_TRAFFIC_SECRET_0`.
    pub server_traffic: Option<Vec<u8>>,
}

/// Secrets by client random.
#[derive(Clone, Default)]
pub struct KeyLog {
    sessions: HashMap<[u8; 32], Secrets>,
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLog")
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl KeyLog {
    /// Adds the lines of a key log; returns how many were usable.
    pub fn add(&mut self, text: &[u8]) -> usize {
        let mut used = 0;
        for line in text.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let mut it = line.split_ascii_whitespace();
            let (Some(label), Some(random), Some(secret), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            let Ok(random) = <[u8; 32]>::try_from(hex::decode(random).unwrap_or_default()) else {
                continue;
            };
            let Ok(secret) = hex::decode(secret) else {
                continue;
            };
            if !matches!(secret.len(), 32 | 48) {
                continue;
            }
            let entry = self.sessions.entry(random).or_default();
            let slot = match label {
                "CLIENT_RANDOM" => &mut entry.master,
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.client_handshake,
                "SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.server_handshake,
                "CLIENT_TRAFFIC_SECRET_0" => &mut entry.client_traffic,
                "SERVER_TRAFFIC_SECRET_0" => &mut entry.server_traffic,
                _ => continue,
            };
            *slot = Some(secret);
            used += 1;
        }
        self.sessions.retain(|_, s| {
            s.master.is_some()
                || s.client_handshake.is_some()
                || s.server_handshake.is_some()
                || s.client_traffic.is_some()
                || s.server_traffic.is_some()
        });
        used
    }

    /// The secrets of the session that began with this client random.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.sessions.get(client_random)
    }

    /// Whether no secrets were given at all.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Sessions known.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_skips_the_rest() {
        let r = "ab".repeat(32);
        let s32 = "01".repeat(32);
        let s48 = "02".repeat(48);
        let text = format!(
            "# comment\nCLIENT_RANDOM {r} {s48}\nCLIENT_TRAFFIC_SECRET_0 {r} {s32}\n\
             EXPORTER_SECRET {r} {s32}\nCLIENT_RANDOM zz {s48}\nCLIENT_RANDOM {r} 0102\n"
        );
        let mut log = KeyLog::default();
        assert_eq!(log.add(text.as_bytes()), 2);
        let s = log.get(&[0xab; 32]).cloned().unwrap_or_default();
        assert_eq!(s.master.as_deref(), Some(&[2u8; 48][..]));
        assert_eq!(s.client_traffic.as_deref(), Some(&[1u8; 32][..]));
        assert!(s.server_traffic.is_none());
        assert!(log.get(&[0; 32]).is_none());
        // Debug never shows a secret.
        assert_eq!(format!("{log:?}"), "KeyLog { sessions: 1 }");
    }
}
