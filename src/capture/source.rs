//! Byte sources for the capture reader: takes any `Read` and gives a pcap-parser streaming reader
//! over it, after sniffing the magic numbers (gzip, then pcap or pcapng). A gzip stream is
//! decompressed on a thread of its own, a few chunks ahead.
//!
//! pcap-parser turns every read error into a bare `ReadError`, so the wrappers here keep the real
//! `io::Error` on the side, and tell a failing source (an error for the caller) from a corrupt or
//! cut gzip stream (a truncated capture).

use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapError, PcapNGReader};

use super::Format;
use crate::error::Error;

/// Starting size of the parser's buffer: four of the largest packets libpcap writes (262144
/// bytes), so refills (a read of up to 1 MiB) are rare next to the work per packet. It is
/// resident for the whole run, so it is not larger than that.
pub(super) const INITIAL_BUFFER: usize = 1 << 20;

/// Decompressed bytes per hand-over from the decompressing thread.
const INFLATED_CHUNK: usize = 128 << 10;
/// Chunks decompressed ahead of the reader: enough that neither side waits on the other for
/// long, few enough to be a small part of the run's memory.
const INFLATED_AHEAD: usize = 4;

/// What the wrappers learnt about the stream while pcap-parser was driving them.
#[derive(Default)]
pub(super) struct Shared {
    io_error: Mutex<Option<io::Error>>,
    corrupt: AtomicBool,
}

impl Shared {
    fn set_io_error(&self, e: io::Error) {
        if let Ok(mut slot) = self.io_error.lock() {
            *slot = Some(e);
        }
    }

    fn has_io_error(&self) -> bool {
        self.io_error.lock().map(|s| s.is_some()).unwrap_or(true)
    }

    /// The source's read error, or a generic one when it was already taken.
    pub(super) fn take_io_error(&self) -> Error {
        let e = self.io_error.lock().ok().and_then(|mut s| s.take());
        Error::Io(e.unwrap_or_else(|| io::Error::other("read error")))
    }

    /// Whether the decompressor hit corrupt or cut-off gzip data.
    pub(super) fn corrupt(&self) -> bool {
        self.corrupt.load(Ordering::Relaxed)
    }
}

/// The raw file or stdin: retries interrupted reads and records real failures.
struct SourceRead {
    inner: Box<dyn Read + Send>,
    shared: Arc<Shared>,
}

impl Read for SourceRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    self.shared.set_io_error(e);
                    return Err(io::Error::new(kind, "source read failed"));
                }
                ok => return ok,
            }
        }
    }
}

/// What pcap-parser reads from: the source, possibly decompressed.
struct StreamRead {
    inner: Box<dyn Read + Send>,
    shared: Arc<Shared>,
    /// pcap-parser parses the file header from its very first read, so that one must be full.
    first: bool,
}

impl StreamRead {
    fn read_once(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.shared.has_io_error() => return Err(e),
                Err(_) => {
                    // Only the decompressor fails without the source failing: the gzip data is
                    // corrupt or cut, which ends the capture like a truncated file.
                    self.shared.corrupt.store(true, Ordering::Relaxed);
                    return Ok(0);
                }
                ok => return ok,
            }
        }
    }
}

impl Read for StreamRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.first {
            return self.read_once(buf);
        }
        self.first = false;
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..) {
            if rest.is_empty() {
                break;
            }
            match self.read_once(rest) {
                Ok(0) => break,
                Ok(n) => filled += n,
                // Hand over what arrived; the failure repeats on the next read.
                Err(_) if filled > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

/// A gzip stream decompressed on a thread of its own, a few chunks ahead of the reader.
///
/// Decompression is a third of the work on a gzipped capture and otherwise runs on the thread
/// that also parses packets and, with `--threads`, hands them out, which the workers then wait
/// for. Bytes and errors arrive in the order the decompressor gave them.
struct InflateAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Emptied chunks, back to the decompressing thread for reuse.
    spent: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    /// The decompressor's error, repeated on every read after it.
    failed: Option<(io::ErrorKind, String)>,
}

impl InflateAhead {
    /// Starts the thread; gives `dec` back when no thread can be started.
    fn start<R: Read + Send + 'static>(dec: R) -> Result<InflateAhead, R> {
        let (tx, chunks) = sync_channel(INFLATED_AHEAD);
        let (spent, back) = sync_channel::<Vec<u8>>(INFLATED_AHEAD + 2);
        // The decompressor moves into the thread only once it is known to exist.
        let (give, take) = sync_channel::<R>(1);
        let started = std::thread::Builder::new()
            .name("wsinspect-gunzip".into())
            .spawn(move || {
                if let Ok(dec) = take.recv() {
                    inflate_ahead(dec, &tx, &back);
                }
            });
        if started.is_err() {
            return Err(dec);
        }
        if let Err(e) = give.send(dec) {
            return Err(e.0);
        }
        Ok(InflateAhead {
            chunks,
            spent,
            cur: Vec::new(),
            pos: 0,
            failed: None,
        })
    }
}

/// The decompressing thread: fills chunks until the end, an error, or the reader going away.
fn inflate_ahead<R: Read>(
    mut dec: R,
    tx: &SyncSender<io::Result<Vec<u8>>>,
    back: &Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = back.try_recv().unwrap_or_default();
        buf.resize(INFLATED_CHUNK, 0);
        let mut filled = 0;
        let mut failure = None;
        while filled < buf.len() {
            match dec.read(buf.get_mut(filled..).unwrap_or_default()) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        buf.truncate(filled);
        let end = filled == 0 || failure.is_some();
        if filled > 0 && tx.send(Ok(buf)).is_err() {
            return;
        }
        if let Some(e) = failure {
            let _ = tx.send(Err(e));
        }
        if end {
            return;
        }
    }
}

impl Read for InflateAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.cur.get(self.pos..)
                && !rest.is_empty()
            {
                let n = rest.len().min(out.len());
                out.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(rest.get(..n).unwrap_or_default());
                self.pos += n;
                return Ok(n);
            }
            if let Some((kind, msg)) = &self.failed {
                return Err(io::Error::new(*kind, msg.clone()));
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    let spent = std::mem::replace(&mut self.cur, chunk);
                    self.pos = 0;
                    let _ = self.spent.try_send(spent);
                }
                Ok(Err(e)) => {
                    self.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
                // The thread ended after the last chunk: the end of the stream.
                Err(_) => return Ok(0),
            }
        }
    }
}

/// An opened capture stream, ready for its first block.
pub(super) struct Opened {
    pub(super) reader: Box<dyn PcapReaderIterator + Send>,
    pub(super) format: Format,
    pub(super) gzipped: bool,
    pub(super) shared: Arc<Shared>,
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the stream.
fn read_prefix(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..) {
        if rest.is_empty() {
            break;
        }
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn not_capture(why: &str) -> Error {
    Error::NotACapture(why.to_owned())
}

/// Sniffs the stream and builds the matching pcap-parser reader.
pub(super) fn open_stream(r: Box<dyn Read + Send>, gzip_thread: bool) -> Result<Opened, Error> {
    let shared = Arc::new(Shared::default());
    let mut src = SourceRead {
        inner: r,
        shared: Arc::clone(&shared),
    };
    let mut magic = [0u8; 4];
    let n = read_prefix(&mut src, &mut magic).map_err(|_| shared.take_io_error())?;
    if n == 0 {
        return Err(not_capture("the input is empty"));
    }
    let gzipped = n >= 2 && magic[..2] == [0x1f, 0x8b];
    let (stream, n): (Box<dyn Read + Send>, usize) = if gzipped {
        let mut dec = MultiGzDecoder::new(Read::take(Cursor::new(magic), n as u64).chain(src));
        let m = match read_prefix(&mut dec, &mut magic) {
            Ok(m) => m,
            Err(_) if shared.has_io_error() => return Err(shared.take_io_error()),
            Err(_) => return Err(not_capture("gzip data is corrupt")),
        };
        if m == 0 {
            return Err(not_capture("the gzip stream is empty"));
        }
        if !gzip_thread {
            (Box::new(dec), m)
        } else {
            match InflateAhead::start(dec) {
                Ok(ahead) => (Box::new(ahead), m),
                Err(dec) => (Box::new(dec), m),
            }
        }
    } else {
        (Box::new(src), n)
    };
    if n < magic.len() {
        return Err(not_capture("too short to be a capture"));
    }
    let format = match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => Format::PcapNg,
        // µs and ns pcap in either byte order, and Alexey Kuznetsov's modified pcap (which
        // pcap-parser reads in little-endian only).
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0x34, 0xcd, 0xb2, 0xa1] => Format::Pcap,
        [0xa1, 0xb2, 0xcd, 0x34] => {
            return Err(not_capture("big-endian modified pcap is not supported"));
        }
        _ => {
            return Err(Error::NotACapture(format!(
                "unknown magic number {:02x}{:02x}{:02x}{:02x}",
                magic[0], magic[1], magic[2], magic[3]
            )));
        }
    };
    let stream = StreamRead {
        inner: Box::new(Cursor::new(magic).chain(stream)),
        shared: Arc::clone(&shared),
        first: true,
    };
    let reader: Result<Box<dyn PcapReaderIterator + Send>, _> = match format {
        Format::Pcap => LegacyPcapReader::new(INITIAL_BUFFER, stream).map(|r| Box::new(r) as _),
        Format::PcapNg => PcapNGReader::new(INITIAL_BUFFER, stream).map(|r| Box::new(r) as _),
    };
    let reader = reader.map_err(|e| match e {
        PcapError::ReadError => shared.take_io_error(),
        PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
            not_capture("the file header is cut short")
        }
        _ => match format {
            Format::Pcap => not_capture("invalid pcap file header"),
            Format::PcapNg => not_capture("invalid pcapng section header"),
        },
    })?;
    Ok(Opened {
        reader,
        format,
        gzipped,
        shared,
    })
}
