//! A scratch file for bytes that must wait: takes byte strings appended to chains (one per
//! owner), gives them back in order, lets a few bytes already written be patched, and frees a
//! chain's room when its owner is done with it.
//!
//! The JSON document nests a connection's messages, frames, pings and anomalies inside the
//! connection's object, so none of them can be written before the connection ends; a connection
//! open for the whole capture would keep everything in memory. `output::json` moves them here
//! past its memory cap.
//!
//! One anonymous temporary file in the system's temporary directory (`TMPDIR`), created on first
//! use and gone when the spool is dropped (it never has a name on Linux, so not even a crash
//! leaves it behind), carved into blocks of [`BLOCK`] bytes. A [`Chain`] is one owner's bytes:
//! the list of its blocks, in memory (4 bytes per block), and its length. Blocks of released
//! chains go to a free list and are taken first, and the file is emptied whenever no chain holds
//! a block, so disk use follows the data spooled at the moment, not the capture.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes per block. Large enough that reads and writes are block-sized I/O, small enough that
/// the unused end of each chain's last block, on disk, stays small beside what a chain holds.
pub const BLOCK: usize = 32 << 10;

const BLOCK_U64: u64 = BLOCK as u64;

/// The blocks of one owner's bytes, in order.
#[derive(Debug, Default)]
pub struct Chain {
    blocks: Vec<u32>,
    len: u64,
}

impl Chain {
    /// Bytes appended so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The temporary file and its free blocks.
#[derive(Debug, Default)]
pub struct Spool {
    /// Created on first use: most runs never spool.
    file: Option<File>,
    /// Blocks the file holds, in use or free.
    blocks: u32,
    free: Vec<u32>,
}

impl Spool {
    /// An empty spool; no file yet.
    pub fn new() -> Spool {
        Spool::default()
    }

    /// Bytes of the file in use or free: what the spool takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        u64::from(self.blocks) * BLOCK_U64
    }

    /// Appends `bytes` to the end of `chain`, taking blocks as needed.
    pub fn append(&mut self, chain: &mut Chain, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            // Every block of the chain is full: it needs one more.
            if chain.len == chain.blocks.len() as u64 * BLOCK_U64 {
                let block = self.take_block()?;
                chain.blocks.push(block);
            }
            let (index, within) = split(chain.len);
            let n = bytes.len().min(BLOCK - within);
            let at = offset(chain.blocks[index], within);
            self.write_at(at, &bytes[..n])?;
            chain.len += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Overwrites `bytes.len()` bytes of `chain` from position `at`; they must have been
    /// appended already.
    pub fn patch(&mut self, chain: &Chain, mut at: u64, mut bytes: &[u8]) -> io::Result<()> {
        if at.saturating_add(bytes.len() as u64) > chain.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "JSON spool: a patch past the end of what was spooled",
            ));
        }
        while !bytes.is_empty() {
            let (index, within) = split(at);
            let n = bytes.len().min(BLOCK - within);
            self.write_at(offset(chain.blocks[index], within), &bytes[..n])?;
            at += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Reads `chain` from its start.
    pub fn reader<'a>(&'a self, chain: &'a Chain) -> ChainReader<'a> {
        ChainReader {
            file: self.file.as_ref(),
            chain,
            pos: 0,
            buf: Vec::new(),
            cached: None,
        }
    }

    /// Gives `chain`'s blocks back. When no chain holds a block any more, the file is emptied.
    pub fn release(&mut self, chain: Chain) -> io::Result<()> {
        if chain.blocks.is_empty() {
            return Ok(());
        }
        self.free.extend(chain.blocks);
        if self.free.len() == self.blocks as usize {
            self.free.clear();
            self.blocks = 0;
            if let Some(file) = &self.file {
                file.set_len(0).map_err(|e| failed("empty", e))?;
            }
        }
        Ok(())
    }

    fn take_block(&mut self) -> io::Result<u32> {
        if let Some(block) = self.free.pop() {
            return Ok(block);
        }
        let block = self.blocks;
        self.blocks = block.checked_add(1).ok_or_else(|| {
            io::Error::new(io::ErrorKind::StorageFull, "JSON spool: file too large")
        })?;
        Ok(block)
    }

    fn write_at(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        let mut file: &File = match &mut self.file {
            Some(file) => file,
            None => self
                .file
                .insert(tempfile::tempfile().map_err(|e| failed("create", e))?),
        };
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.write_all(bytes))
            .map_err(|e| failed("write", e))
    }
}

/// Reads a chain back, in order; reads whole blocks and skips without reading.
pub struct ChainReader<'a> {
    file: Option<&'a File>,
    chain: &'a Chain,
    pos: u64,
    /// The valid bytes of one block of the chain...
    buf: Vec<u8>,
    /// ... which one.
    cached: Option<usize>,
}

impl ChainReader<'_> {
    /// Bytes of the chain not read or skipped yet.
    pub fn remaining(&self) -> u64 {
        self.chain.len - self.pos
    }

    /// Fills `out` with the chain's next bytes.
    pub fn read_exact(&mut self, mut out: &mut [u8]) -> io::Result<()> {
        if out.len() as u64 > self.remaining() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "JSON spool: a read past the end of what was spooled",
            ));
        }
        while !out.is_empty() {
            let (index, within) = split(self.pos);
            self.load(index)?;
            let n = out.len().min(self.buf.len() - within);
            let (head, tail) = out.split_at_mut(n);
            head.copy_from_slice(&self.buf[within..within + n]);
            out = tail;
            self.pos += n as u64;
        }
        Ok(())
    }

    /// Moves `n` bytes on without reading them.
    pub fn skip(&mut self, n: u64) -> io::Result<()> {
        if n > self.remaining() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "JSON spool: a skip past the end of what was spooled",
            ));
        }
        self.pos += n;
        Ok(())
    }

    /// Makes `buf` hold block `index` of the chain (only its bytes in use: the file may end
    /// inside the last block).
    fn load(&mut self, index: usize) -> io::Result<()> {
        if self.cached == Some(index) {
            return Ok(());
        }
        let Some(mut file) = self.file else {
            return Err(failed(
                "read",
                io::Error::new(io::ErrorKind::NotFound, "no file"),
            ));
        };
        let start = index as u64 * BLOCK_U64;
        let valid = (self.chain.len - start).min(BLOCK_U64) as usize;
        self.buf.resize(valid, 0);
        self.cached = None;
        file.seek(SeekFrom::Start(offset(self.chain.blocks[index], 0)))
            .and_then(|_| file.read_exact(&mut self.buf))
            .map_err(|e| failed("read", e))?;
        self.cached = Some(index);
        Ok(())
    }
}

/// Which block of a chain a position falls in, and where in it.
fn split(pos: u64) -> (usize, usize) {
    ((pos / BLOCK_U64) as usize, (pos % BLOCK_U64) as usize)
}

/// Where in the file `within` bytes into `block` is.
fn offset(block: u32, within: usize) -> u64 {
    u64::from(block) * BLOCK_U64 + within as u64
}

/// An I/O error with what the spool was doing and where its file lives.
fn failed(what: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "cannot {what} the JSON document's temporary file (in {}): {e}",
            std::env::temp_dir().display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(spool: &Spool, chain: &Chain) -> Vec<u8> {
        let mut r = spool.reader(chain);
        let mut out = vec![0; r.remaining() as usize];
        r.read_exact(&mut out).unwrap();
        out
    }

    /// Bytes that tell their position, so a misplaced block shows.
    fn pattern(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn chains_read_back_in_order_across_blocks() {
        let mut spool = Spool::new();
        let (mut a, mut b) = (Chain::default(), Chain::default());
        let (mut want_a, mut want_b) = (Vec::new(), Vec::new());
        // Interleaved appends of odd sizes, so the two chains' blocks alternate in the file.
        for (i, len) in [1, BLOCK - 1, 7, BLOCK + 5, 3 * BLOCK, 0, 11]
            .into_iter()
            .enumerate()
        {
            let bytes = pattern(i as u8, len);
            spool.append(&mut a, &bytes).unwrap();
            want_a.extend_from_slice(&bytes);
            let bytes = pattern(100 + i as u8, len / 2 + 1);
            spool.append(&mut b, &bytes).unwrap();
            want_b.extend_from_slice(&bytes);
        }
        assert_eq!(a.len(), want_a.len() as u64);
        assert_eq!(read_all(&spool, &a), want_a);
        assert_eq!(read_all(&spool, &b), want_b);
    }

    #[test]
    fn skip_then_read_and_reads_past_the_end_fail() {
        let mut spool = Spool::new();
        let mut chain = Chain::default();
        let bytes = pattern(3, 2 * BLOCK + 100);
        spool.append(&mut chain, &bytes).unwrap();
        let mut r = spool.reader(&chain);
        r.skip(BLOCK as u64 + 10).unwrap();
        let mut got = vec![0; BLOCK];
        r.read_exact(&mut got).unwrap();
        assert_eq!(got, bytes[BLOCK + 10..2 * BLOCK + 10]);
        assert_eq!(r.remaining(), 90);
        assert!(r.read_exact(&mut [0; 91]).is_err());
        assert!(r.skip(91).is_err());
    }

    #[test]
    fn patches_land_in_place_across_a_block_boundary() {
        let mut spool = Spool::new();
        let mut chain = Chain::default();
        let mut want = pattern(9, BLOCK + 40);
        spool.append(&mut chain, &want).unwrap();
        let at = BLOCK - 5;
        spool.patch(&chain, at as u64, &[0xaa; 12]).unwrap();
        want[at..at + 12].fill(0xaa);
        assert_eq!(read_all(&spool, &chain), want);
        assert!(spool.patch(&chain, chain.len() - 3, &[0; 4]).is_err());
    }

    #[test]
    fn released_blocks_are_reused_and_an_unused_file_is_emptied() {
        let mut spool = Spool::new();
        let (mut a, mut b) = (Chain::default(), Chain::default());
        spool.append(&mut a, &pattern(1, 3 * BLOCK)).unwrap();
        spool.append(&mut b, &pattern(2, BLOCK)).unwrap();
        assert_eq!(spool.disk_bytes(), 4 * BLOCK as u64);
        spool.release(a).unwrap();
        // Three free blocks take the next chain without growing the file.
        let mut c = Chain::default();
        let want = pattern(5, 2 * BLOCK + 1);
        spool.append(&mut c, &want).unwrap();
        assert_eq!(spool.disk_bytes(), 4 * BLOCK as u64);
        assert_eq!(read_all(&spool, &c), want);
        assert_eq!(read_all(&spool, &b), pattern(2, BLOCK));
        spool.release(b).unwrap();
        spool.release(c).unwrap();
        assert_eq!(spool.disk_bytes(), 0);
        let file_len = spool.file.as_ref().map(|f| f.metadata().unwrap().len());
        assert_eq!(file_len, Some(0));
    }
}
