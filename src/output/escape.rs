//! A writer for JSON output that escapes the C1 control characters (U+0080..U+009F).
//!
//! serde_json escapes only what JSON requires (C0 controls, `"` and `\`), so a captured string
//! holding U+009B (a one-character CSI on many terminals) would reach a terminal that shows
//! NDJSON raw. Outside strings JSON is ASCII, so every UTF-8 C1 sequence in the byte stream is
//! inside a string and `\u0080`..`\u009f` is the same string.

use std::io::{self, Write};

/// Escapes C1 characters in the JSON text written through it.
pub struct C1Escaping<W: Write> {
    inner: W,
    /// A 0xC2 lead byte at the end of the last write, waiting for its second byte.
    pending_lead: bool,
}

impl<W: Write> C1Escaping<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> C1Escaping<W> {
        C1Escaping {
            inner,
            pending_lead: false,
        }
    }

    fn second_byte(&mut self, b: u8) -> io::Result<()> {
        if (0x80..=0x9f).contains(&b) {
            write!(self.inner, "\\u{:04x}", b)
        } else {
            self.inner.write_all(&[0xc2, b])
        }
    }
}

impl<W: Write> Write for C1Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if self.pending_lead {
            let Some((&b, tail)) = rest.split_first() else {
                return Ok(0);
            };
            self.pending_lead = false;
            self.second_byte(b)?;
            rest = tail;
        }
        while let Some(at) = memchr::memchr(0xc2, rest) {
            self.inner.write_all(&rest[..at])?;
            match rest.get(at + 1) {
                Some(&b) => {
                    self.second_byte(b)?;
                    rest = &rest[at + 2..];
                }
                None => {
                    self.pending_lead = true;
                    return Ok(buf.len());
                }
            }
        }
        self.inner.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending_lead {
            // A lone lead byte cannot come from serde_json (it writes whole UTF-8 strings);
            // pass it on rather than lose it.
            self.pending_lead = false;
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(chunks: &[&[u8]]) -> Vec<u8> {
        let mut w = C1Escaping::new(Vec::new());
        for c in chunks {
            w.write_all(c).expect("write");
        }
        w.flush().expect("flush");
        w.inner
    }

    #[test]
    fn c1_becomes_an_escape_wherever_the_writes_split() {
        let json = serde_json::to_vec(&"a\u{9b}31m é \u{85}\u{a0}z").expect("json");
        let want = br#""a\u009b31m \xc3\xa9 \u0085\xc2\xa0z""#.to_vec();
        let want: Vec<u8> = String::from_utf8_lossy(&want)
            .replace("\\xc3\\xa9", "é")
            .replace("\\xc2\\xa0", "\u{a0}")
            .into_bytes();
        assert_eq!(through(&[&json]), want);
        for cut in 0..json.len() {
            assert_eq!(through(&[&json[..cut], &json[cut..]]), want, "cut at {cut}");
        }
        let back: String = serde_json::from_slice(&want).expect("still JSON");
        assert_eq!(back, "a\u{9b}31m é \u{85}\u{a0}z");
    }
}
