//! Body skipping: takes the bytes after an HTTP head, pushed in pieces of any size, and gives how
//! many of them belong to the body, so the next head (or the WebSocket stream) can be found.
//!
//! Chunked coding (RFC 9112 §7.1) is followed line by line; chunk-size lines are parsed by
//! `httparse::parse_chunk_size`. Lines split across pushes are kept until complete.

use super::BodyFraming;

/// Longest chunk-size line (with extensions) or trailer line accepted; chunk extensions are
/// rare and short, so anything longer is far more likely garbage than a body.
const MAX_LINE: usize = 8 * 1024;

/// Skips a message body of the given framing, across as many pushes as needed.
#[derive(Clone, Debug)]
pub struct BodySkipper {
    state: State,
}

#[derive(Clone, Debug)]
enum State {
    /// The body is over.
    Done,
    /// This many body bytes are still to come.
    Length(u64),
    /// Everything until the connection closes.
    UntilClose,
    /// Reading a chunk-size line (kept until its LF arrives).
    ChunkSize(Vec<u8>),
    /// Inside chunk data, this many bytes left.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data; `true` once the CR has been seen.
    ChunkDataEnd(bool),
    /// Reading trailer lines after the last chunk, up to the empty line.
    Trailer(Vec<u8>),
}

impl BodySkipper {
    /// A skipper for one body.
    pub fn new(framing: BodyFraming) -> BodySkipper {
        let state = match framing {
            BodyFraming::None | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::ChunkSize(Vec::new()),
            BodyFraming::UntilClose => State::UntilClose,
        };
        BodySkipper { state }
    }

    /// Consumes body bytes from the start of `buf`; returns how many belonged to the body.
    /// `Err` when chunked coding is malformed.
    ///
    /// Until the body is done every byte pushed is consumed (partial lines are kept inside), so
    /// a return value below `buf.len()` means the body ended at that offset.
    pub fn push(&mut self, buf: &[u8]) -> Result<usize, String> {
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            match &mut self.state {
                State::Done => break,
                State::UntilClose => pos = buf.len(),
                State::Length(left) | State::ChunkData(left) => {
                    let take = rest.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    pos += take;
                    if *left == 0 {
                        self.state = match self.state {
                            State::ChunkData(_) => State::ChunkDataEnd(false),
                            _ => State::Done,
                        };
                    }
                }
                State::ChunkDataEnd(seen_cr) => {
                    // RFC 9112 §7.1: chunk-data is followed by CRLF; a bare LF is tolerated
                    // (§2.2).
                    match (rest[0], *seen_cr) {
                        (b'\r', false) => *seen_cr = true,
                        (b'\n', _) => self.state = State::ChunkSize(Vec::new()),
                        (b, _) => {
                            return Err(format!("chunk data not followed by CRLF (byte {b:#04x})"));
                        }
                    }
                    pos += 1;
                }
                State::ChunkSize(line) => {
                    let Some(line) = take_line(line, rest, &mut pos)? else {
                        continue;
                    };
                    self.state = match httparse::parse_chunk_size(&line) {
                        Ok(httparse::Status::Complete((_, 0))) => State::Trailer(Vec::new()),
                        Ok(httparse::Status::Complete((_, size))) => State::ChunkData(size),
                        // httparse needs CRLF; a bare LF inside an extension reads as Partial.
                        Ok(httparse::Status::Partial) | Err(httparse::InvalidChunkSize) => {
                            return Err(format!(
                                "invalid chunk-size line {:?}",
                                String::from_utf8_lossy(&line[..line.len().min(64)])
                            ));
                        }
                    };
                }
                State::Trailer(line) => {
                    let Some(line) = take_line(line, rest, &mut pos)? else {
                        continue;
                    };
                    // RFC 9112 §7.1.2: trailer fields end with an empty line.
                    self.state = if line == b"\r\n" || line == b"\n" {
                        State::Done
                    } else {
                        State::Trailer(Vec::new())
                    };
                }
            }
        }
        Ok(pos)
    }

    /// Whether the whole body has been consumed.
    pub fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

/// Appends `rest` up to and including its first LF to `line` and advances `pos` past what was
/// taken; gives the whole line once its LF has arrived.
fn take_line(line: &mut Vec<u8>, rest: &[u8], pos: &mut usize) -> Result<Option<Vec<u8>>, String> {
    let (piece, complete) = match memchr::memchr(b'\n', rest) {
        Some(i) => (&rest[..=i], true),
        None => (rest, false),
    };
    if line.len() + piece.len() > MAX_LINE {
        return Err(format!("chunked line longer than {MAX_LINE} bytes"));
    }
    line.extend_from_slice(piece);
    *pos += piece.len();
    Ok(complete.then(|| std::mem::take(line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `input` split at `cut` and returns the total consumed and whether it finished.
    fn run_split(framing: BodyFraming, input: &[u8], cut: usize) -> (usize, bool) {
        let mut s = BodySkipper::new(framing);
        let a = s.push(&input[..cut]).unwrap();
        if s.done() {
            return (a, true);
        }
        assert_eq!(a, cut, "an unfinished body consumes all it is given");
        let b = s.push(&input[cut..]).unwrap();
        (a + b, s.done())
    }

    #[test]
    fn chunked_split_at_every_byte() {
        let body: &[u8] =
            b"4\r\nWiki\r\n5;name=\"v\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
        let mut input = body.to_vec();
        input.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        for cut in 0..=input.len() {
            assert_eq!(
                run_split(BodyFraming::Chunked, &input, cut),
                (body.len(), true),
                "{cut}"
            );
        }
        // One byte at a time.
        let mut s = BodySkipper::new(BodyFraming::Chunked);
        let mut used = 0;
        for b in input.chunks(1) {
            used += s.push(b).unwrap();
            if s.done() {
                break;
            }
        }
        assert_eq!(used, body.len());
    }

    #[test]
    fn chunked_with_trailers_split_at_every_byte() {
        let body: &[u8] = b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n";
        let mut input = body.to_vec();
        input.extend_from_slice(b"\x81\x00");
        for cut in 0..=input.len() {
            assert_eq!(
                run_split(BodyFraming::Chunked, &input, cut),
                (body.len(), true),
                "{cut}"
            );
        }
    }

    #[test]
    fn length_and_none() {
        for cut in 0..=12 {
            assert_eq!(
                run_split(BodyFraming::Length(7), b"abcdefgHTTP/", cut),
                (7, true)
            );
        }
        let mut s = BodySkipper::new(BodyFraming::None);
        assert!(s.done());
        assert_eq!(s.push(b"GET"), Ok(0));
        let mut s = BodySkipper::new(BodyFraming::Length(0));
        assert!(s.done());
        assert_eq!(s.push(b"x"), Ok(0));
        let mut s = BodySkipper::new(BodyFraming::Length(u64::MAX));
        assert_eq!(s.push(b"abc"), Ok(3));
        assert!(!s.done());
    }

    #[test]
    fn until_close_never_ends() {
        let mut s = BodySkipper::new(BodyFraming::UntilClose);
        assert_eq!(s.push(b"anything at all"), Ok(15));
        assert_eq!(s.push(b""), Ok(0));
        assert!(!s.done());
    }

    #[test]
    fn malformed_chunked() {
        for bad in [
            &b"zz\r\n"[..],
            b"3\r\nabcX",
            b"3\r\nabc\rX",
            b"3\n",
            b"12345678901234567\r\n",
        ] {
            let mut s = BodySkipper::new(BodyFraming::Chunked);
            assert!(s.push(bad).is_err(), "{bad:?}");
        }
        let mut s = BodySkipper::new(BodyFraming::Chunked);
        assert!(s.push(&[b'1'; MAX_LINE + 1]).is_err());
    }

    #[test]
    fn bare_lf_after_chunk_data_is_tolerated() {
        let mut s = BodySkipper::new(BodyFraming::Chunked);
        assert_eq!(s.push(b"1\r\na\n0\r\n\n"), Ok(9));
        assert!(s.done());
    }
}
