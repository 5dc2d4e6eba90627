//! Live capture (cargo feature `live`): takes packets from a network interface through libpcap
//! and gives them, as [`Packet`]s, to the same pipeline a file goes through; between packets it
//! gives the pipeline the wall clock, so connections still end on time when traffic stops.
//!
//! Two threads: one only reads packets out of libpcap (and writes the `-w` copy), the other
//! analyses them; a queue bounded in bytes lies between, so a burst the analysis takes a while
//! over waits there rather than overflowing the kernel's buffer, and what the queue cannot take
//! is counted as the queue's drops, next to libpcap's.
//!
//! Also here: the interface list, the optional `-w` copy of what was captured (libpcap's own
//! savefile, so it is exactly what was captured), stopping on SIGINT/SIGTERM, and dropping root
//! once the capture handle is open (as tcpdump `-Z` does).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{fmt, io};

use pcap::{Active, Capture, Device, Savefile};

use crate::analysis::{AnalysisOptions, AnalysisSink};
use crate::capture::{Packet, linktype};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::sink::{CaptureSummary, EventSink, LiveStats};
use crate::types::Ts;

/// Under a steady stream of packets, output is still flushed this often.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// How long the loop waits for a packet before it looks at the clock, the stop flag and the
/// counters again. Short enough that `--duration`, Ctrl-C and stats are on time.
const WAIT_MS: u16 = 100;

/// Bytes kept of each packet: whole packets, even the 64 KiB ones that segmentation offload
/// makes on loopback and GRO makes on a NIC.
pub const DEFAULT_SNAPLEN: i32 = 262_144;

/// Kernel ring size: 128 slots of [`DEFAULT_SNAPLEN`] (see [`LiveOptions::buffer_size`]).
pub const DEFAULT_BUFFER_SIZE: i32 = 32 << 20;

/// Packet bytes the analysis may fall behind the capture by, by default ([`LiveRun::queue_size`]).
/// The loopback burst of bench/live-load.sh (64 connections of 64-byte messages, NDJSON out)
/// overflowed 64 MiB in some runs and never 128 MiB; the memory is only used while behind.
pub const DEFAULT_QUEUE_SIZE: usize = 128 << 20;

/// A batch goes to the analysis once it holds this many packet bytes or this many packets, or
/// as soon as libpcap has nothing more waiting: few hand-offs under load, no delay otherwise.
const BATCH_BYTES: usize = 256 << 10;
const BATCH_PACKETS: usize = 512;
/// A batch's buffer is allocated once at this size, which holds one more packet of the largest
/// snaplen libpcap allows past [`BATCH_BYTES`]: grown by doubling instead, the buffers of a full
/// queue took about twice the memory of the packets in it.
const BATCH_CAPACITY: usize = BATCH_BYTES + 262_144;

/// Emptied batches kept for reuse; more are freed.
const SPARE_BATCHES: usize = 8;

/// Why a live capture could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The interface does not exist.
    #[error("no interface named {0:?} (wsinspect --list-interfaces shows them)")]
    NoSuchInterface(String),
    /// Capturing needs privileges this process lacks.
    #[error(
        "no permission to capture on {interface}: run as root, or give the binary the capability \
         (setcap cap_net_raw,cap_net_admin=eip PATH) ({reason})"
    )]
    PermissionDenied {
        /// The interface asked for.
        interface: String,
        /// libpcap's words.
        reason: String,
    },
    /// The BPF filter does not compile.
    #[error("bad BPF filter {filter:?}: {reason}")]
    BadFilter {
        /// The filter as given.
        filter: String,
        /// libpcap's words.
        reason: String,
    },
    /// The interface's link layer is not one wsinspect decodes.
    #[error(
        "cannot capture on {interface}: unsupported link type {linktype} (supported: Ethernet, Linux SLL/SLL2, raw IP, BSD loopback)"
    )]
    UnsupportedLink {
        /// The interface asked for.
        interface: String,
        /// Its link type (tcpdump.org number).
        linktype: u32,
    },
    /// `--user` could not be honoured; the capture does not go on with root privileges.
    #[error("cannot drop privileges to user {user:?}: {reason}")]
    Privileges {
        /// The user asked for.
        user: String,
        /// What failed.
        reason: String,
    },
    /// The `-w` file could not be written.
    #[error("cannot write {path}: {reason}")]
    Savefile {
        /// The path as given.
        path: String,
        /// libpcap's or the system's words.
        reason: String,
    },
    /// Any other libpcap failure.
    #[error("{context}")]
    Pcap {
        /// What was being done.
        context: String,
        /// libpcap's error.
        source: pcap::Error,
    },
    /// Waiting for packets failed.
    #[error("waiting for packets failed")]
    Wait(#[source] io::Error),
    /// The thread that reads packets could not be started.
    #[error("cannot start the capture thread")]
    Thread(#[source] io::Error),
    /// Writing the output failed.
    #[error("write error")]
    Output(#[from] io::Error),
}

/// How to open the interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Interface name (`any` for all of them on Linux).
    pub interface: String,
    /// A BPF filter (tcpdump syntax), compiled and run by the kernel.
    pub bpf: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: i32,
    /// Kernel buffer size in bytes.
    ///
    /// In immediate mode libpcap gives the kernel a ring of fixed-size slots, each as large as
    /// the snaplen (or the interface's MTU when smaller): the buffer divided by that is how many
    /// packets the kernel holds while wsinspect is busy. libpcap's default, 2 MiB, is 8 slots
    /// on `any` with a 256 KiB snaplen, which a burst overflows; the default here is 128.
    pub buffer_size: i32,
    /// Put the interface in promiscuous mode (tcpdump's default).
    pub promisc: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            interface: "any".to_owned(),
            bpf: None,
            snaplen: DEFAULT_SNAPLEN,
            buffer_size: DEFAULT_BUFFER_SIZE,
            promisc: true,
        }
    }
}

/// An interface as libpcap lists it.
#[derive(Clone, Debug)]
pub struct Interface {
    /// Name to pass to `-i`.
    pub name: String,
    /// libpcap's description, if any.
    pub description: Option<String>,
    /// Its IP addresses.
    pub addresses: Vec<std::net::IpAddr>,
    /// Whether it is a loopback interface.
    pub loopback: bool,
    /// Whether it is up.
    pub up: bool,
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        let mut flags = Vec::new();
        if self.loopback {
            flags.push("loopback");
        }
        flags.push(if self.up { "up" } else { "down" });
        write!(f, " [{}]", flags.join(", "))?;
        for a in &self.addresses {
            write!(f, " {a}")?;
        }
        if let Some(d) = &self.description {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

/// Every interface libpcap can capture on.
pub fn interfaces() -> Result<Vec<Interface>, LiveError> {
    let devices = Device::list().map_err(|source| LiveError::Pcap {
        context: "cannot list interfaces".to_owned(),
        source,
    })?;
    Ok(devices
        .into_iter()
        .map(|d| Interface {
            loopback: d.flags.is_loopback(),
            up: d.flags.is_up(),
            addresses: d.addresses.iter().map(|a| a.addr).collect(),
            name: d.name,
            description: d.desc,
        })
        .collect())
}

/// Adds 32-bit libpcap counters into 64-bit totals, so a long run survives their wrap.
#[derive(Clone, Copy, Debug, Default)]
struct Counter {
    last: u32,
    total: u64,
}

impl Counter {
    fn update(&mut self, now: u32) -> u64 {
        self.total += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.total
    }
}

/// An open capture handle on one interface.
pub struct LiveCapture {
    cap: Capture<Active>,
    interface: String,
    linktype: u32,
    number: u64,
    /// The last read found nothing: wait before the next one.
    idle: bool,
    save: Option<Savefile>,
    received: Counter,
    dropped: Counter,
    if_dropped: Counter,
}

impl LiveCapture {
    /// Opens the interface in immediate mode (each packet handed over as it arrives), sets the
    /// filter, and makes reads non-blocking.
    ///
    /// libpcap's read timeout cannot bound a read: with TPACKET_V3 its timer only runs once a
    /// packet has arrived, so an idle interface would block a read forever. Reads are therefore
    /// non-blocking, and [`LiveCapture::next_packet`] waits with poll(2) on the handle instead.
    pub fn open(opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let iface = &opts.interface;
        let pcap_err = |context: &str, source| LiveError::Pcap {
            context: format!("{context} {iface}"),
            source,
        };
        let inactive = Capture::from_device(iface.as_str())
            .map_err(|e| pcap_err("cannot capture on", e))?
            .immediate_mode(true)
            .timeout(i32::from(WAIT_MS))
            .snaplen(opts.snaplen)
            .promisc(opts.promisc)
            .buffer_size(opts.buffer_size);
        let mut cap = inactive
            .open()
            .map_err(|e| open_error(iface, e, interfaces()))?;
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        if !linktype::is_supported(linktype) {
            return Err(LiveError::UnsupportedLink {
                interface: iface.clone(),
                linktype,
            });
        }
        if let Some(filter) = &opts.bpf {
            cap.filter(filter, true).map_err(|e| LiveError::BadFilter {
                filter: filter.clone(),
                reason: e.to_string(),
            })?;
        }
        let cap = cap
            .setnonblock()
            .map_err(|e| pcap_err("cannot set non-blocking mode on", e))?;
        Ok(LiveCapture {
            cap,
            idle: false,
            interface: iface.clone(),
            linktype,
            number: 0,
            save: None,
            received: Counter::default(),
            dropped: Counter::default(),
            if_dropped: Counter::default(),
        })
    }

    /// The interface's link type (tcpdump.org number).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Also writes every captured packet to `path` (pcap format, as `tcpdump -w`).
    pub fn write_to(&mut self, path: &Path) -> Result<(), LiveError> {
        let shown = path.display().to_string();
        // libpcap takes a C string; refuse what it cannot name rather than let the binding panic.
        if path.to_str().is_none() {
            return Err(LiveError::Savefile {
                path: shown,
                reason: "the path is not valid UTF-8".to_owned(),
            });
        }
        let save = self.cap.savefile(path).map_err(|e| LiveError::Savefile {
            path: shown,
            reason: e.to_string(),
        })?;
        self.save = Some(save);
        Ok(())
    }

    /// The next packet, or `None` when none came within a short wait (100 ms).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        if self.idle {
            self.idle = false;
            self.wait()?;
        }
        match self.cap.next_packet() {
            Ok(p) => {
                if let Some(save) = &mut self.save {
                    save.write(&p);
                }
                self.number += 1;
                let ts = pcap_ts(&p.header.ts);
                Ok(Some(Packet {
                    number: self.number,
                    ts,
                    linktype: self.linktype,
                    data: p.data,
                    origlen: p.header.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.idle = true;
                Ok(None)
            }
            Err(source) => Err(LiveError::Pcap {
                context: format!("capture on {} failed", self.interface),
                source,
            }),
        }
    }

    /// Waits until the handle is readable or a short time passed; a signal ends the wait too.
    fn wait(&self) -> Result<(), LiveError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.cap.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(WAIT_MS)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(LiveError::Wait(io::Error::from(e))),
        }
    }

    /// libpcap's counters since the capture started: passed the filter, dropped by the kernel,
    /// dropped by the interface.
    pub fn counters(&mut self) -> Result<(u64, u64, u64), LiveError> {
        let s = self.cap.stats().map_err(|source| LiveError::Pcap {
            context: format!("cannot read the counters of {}", self.interface),
            source,
        })?;
        Ok((
            self.received.update(s.received),
            self.dropped.update(s.dropped),
            self.if_dropped.update(s.if_dropped),
        ))
    }

    /// The counters as last read by [`LiveCapture::counters`].
    fn totals(&self) -> (u64, u64, u64) {
        (
            self.received.total,
            self.dropped.total,
            self.if_dropped.total,
        )
    }

    /// Writes out what the `-w` file still buffers.
    fn flush_savefile(&mut self) -> Result<(), LiveError> {
        if let Some(save) = &mut self.save {
            save.flush().map_err(|e| LiveError::Savefile {
                path: "the -w file".to_owned(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// Turns libpcap's activation failure into the error a person can act on.
fn open_error(
    iface: &str,
    source: pcap::Error,
    known: Result<Vec<Interface>, LiveError>,
) -> LiveError {
    let reason = source.to_string();
    let lower = reason.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        return LiveError::PermissionDenied {
            interface: iface.to_owned(),
            reason,
        };
    }
    let listed = known.is_ok_and(|list| list.iter().any(|i| i.name == iface));
    if !listed || lower.contains("no such device") {
        return LiveError::NoSuchInterface(iface.to_owned());
    }
    LiveError::Pcap {
        context: format!("cannot capture on {iface}"),
        source,
    }
}

/// Sets a flag on SIGINT and SIGTERM, which stops [`run`] cleanly; a second signal while the
/// first is being handled exits at once (status 130).
pub fn stop_on_signals() -> io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so the first signal finds the flag still clear and only sets it.
        flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
        flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// Drops root for `user`: supplementary groups, group, then user, as tcpdump `-Z` does. Fails
/// (so that the caller stops) when any step fails or root could be regained.
pub fn drop_privileges(user: &str) -> Result<(), LiveError> {
    use nix::unistd::{Uid, User, geteuid, initgroups, setgid, setuid};
    let err = |reason: String| LiveError::Privileges {
        user: user.to_owned(),
        reason,
    };
    let u = User::from_name(user)
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("no such user".to_owned()))?;
    if !geteuid().is_root() {
        if geteuid() == u.uid {
            return Ok(());
        }
        return Err(err("only root can change user".to_owned()));
    }
    let name = std::ffi::CString::new(user).map_err(|e| err(e.to_string()))?;
    initgroups(&name, u.gid).map_err(|e| err(format!("initgroups: {e}")))?;
    setgid(u.gid).map_err(|e| err(format!("setgid: {e}")))?;
    setuid(u.uid).map_err(|e| err(format!("setuid: {e}")))?;
    if !u.uid.is_root() && (setuid(Uid::from_raw(0)).is_ok() || geteuid().is_root()) {
        return Err(err("root privileges could be regained".to_owned()));
    }
    Ok(())
}

/// When a live run stops on its own, and how far the analysis may fall behind the capture.
#[derive(Clone, Debug)]
pub struct LiveRun {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many packets captured (analysed, or dropped by the queue).
    pub count: Option<u64>,
    /// Hand the sink the counters this often.
    pub stats_interval: Option<Duration>,
    /// Stop when this becomes true (see [`stop_on_signals`]).
    pub stop: Arc<AtomicBool>,
    /// Bytes of captured packets waiting for the analysis at most; a packet that would go
    /// beyond is dropped and counted (`dropped_queue`).
    pub queue_size: usize,
}

impl Default for LiveRun {
    fn default() -> Self {
        LiveRun {
            duration: None,
            count: None,
            stats_interval: None,
            stop: Arc::default(),
            queue_size: DEFAULT_QUEUE_SIZE,
        }
    }
}

/// A packet's timestamp, at libpcap's default precision (microseconds).
// `time_t` and `suseconds_t` are i64 here but 32 bits on some targets.
#[allow(clippy::useless_conversion)]
fn pcap_ts(tv: &nix::libc::timeval) -> Ts {
    let micros = u32::try_from(i64::from(tv.tv_usec))
        .unwrap_or(0)
        .min(999_999);
    Ts::from_parts(i64::from(tv.tv_sec), micros * 1_000)
}

fn wall_clock() -> Ts {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ts::from_parts(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        d.subsec_nanos(),
    )
}

/// One packet of a [`Batch`]; its bytes follow those of the packet before it.
#[derive(Clone, Copy, Debug)]
struct Meta {
    number: u64,
    ts: Ts,
    len: usize,
    origlen: u32,
}

/// Packets on their way from the capture thread to the analysis, their bytes back to back in
/// one buffer, so that a hand-off moves two vectors whatever the number of packets.
#[derive(Debug)]
struct Batch {
    data: Vec<u8>,
    packets: Vec<Meta>,
}

impl Batch {
    /// An empty batch with its buffers at full size.
    fn allocate() -> Batch {
        Batch {
            data: Vec::with_capacity(BATCH_CAPACITY),
            packets: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    fn push(&mut self, pkt: &Packet<'_>) {
        self.data.extend_from_slice(pkt.data);
        self.packets.push(Meta {
            number: pkt.number,
            ts: pkt.ts,
            len: pkt.data.len(),
            origlen: pkt.origlen,
        });
    }

    fn is_full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.packets.len() >= BATCH_PACKETS
    }

    /// The packets, in capture order.
    fn packets(&self, linktype: u32) -> impl Iterator<Item = Packet<'_>> {
        let mut rest = self.data.as_slice();
        self.packets.iter().map_while(move |m| {
            let (data, tail) = rest.split_at_checked(m.len)?;
            rest = tail;
            Some(Packet {
                number: m.number,
                ts: m.ts,
                linktype,
                data,
                origlen: m.origlen,
            })
        })
    }
}

/// The capture's counters at one moment. They travel in the queue behind the packets read
/// before them, so that the analysis reports them once it has analysed those packets: the
/// `stats` line then adds up (packets analysed + dropped by the queue = packets captured).
#[derive(Clone, Copy, Debug)]
struct Counters {
    ts: Ts,
    elapsed: f64,
    received: u64,
    dropped_kernel: u64,
    dropped_interface: u64,
    dropped_queue: u64,
    is_final: bool,
}

impl Counters {
    fn stats<S: EventSink>(&self, pipeline: &Pipeline<S>, done: &Analysed) -> LiveStats {
        LiveStats {
            ts: self.ts,
            elapsed: self.elapsed,
            received: self.received,
            dropped_kernel: self.dropped_kernel,
            dropped_interface: self.dropped_interface,
            dropped_queue: self.dropped_queue,
            packets: done.packets,
            bytes: done.bytes,
            connections_open: pipeline.connections_open(),
            flows: pipeline.flows() as u64,
            is_final: self.is_final,
        }
    }
}

enum Chunk {
    Packets(Batch),
    Counters(Counters),
}

enum Next {
    Chunk(Chunk),
    /// Nothing is waiting now.
    Empty,
    /// Nothing will come any more.
    Closed,
}

#[derive(Default)]
struct QueueState {
    chunks: VecDeque<Chunk>,
    /// Emptied batches, kept for reuse.
    spare: Vec<Batch>,
    /// The capture thread has stopped: what is queued is all there is.
    closed: bool,
    /// The analysis thread is waiting for a chunk.
    waiting: bool,
}

/// The hand-off from the capture thread to the analysis, bounded in packet bytes.
struct Queue {
    state: Mutex<QueueState>,
    arrived: Condvar,
    /// Packet bytes handed over and not yet analysed (queued, or in the batch being analysed).
    held: AtomicUsize,
    limit: usize,
    /// The analysis has stopped (its output failed): the capture thread stops too.
    abandoned: AtomicBool,
}

impl Queue {
    fn new(limit: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            arrived: Condvar::new(),
            held: AtomicUsize::new(0),
            limit,
            abandoned: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Nothing panics while holding the lock; were it to, the state would still be whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a packet of `len` bytes fits beside what is held and the `pending` bytes the
    /// capture thread has not handed over yet.
    fn fits(&self, pending: usize, len: usize) -> bool {
        self.held
            .load(Ordering::Relaxed)
            .saturating_add(pending)
            .saturating_add(len)
            <= self.limit
    }

    /// Hands `batch` over, when it holds anything, and leaves an empty one in its place.
    fn send(&self, batch: &mut Batch) {
        if batch.packets.is_empty() {
            return;
        }
        self.held.fetch_add(batch.data.len(), Ordering::Relaxed);
        let mut st = self.lock();
        // The analysis is behind: top up the newest queued batch rather than queue one more
        // part-full buffer, so that the queue's memory stays close to the packet bytes in it.
        if let Some(Chunk::Packets(last)) = st.chunks.back_mut()
            && last.data.len() + batch.data.len() <= last.data.capacity()
        {
            last.data.extend_from_slice(&batch.data);
            last.packets.extend_from_slice(&batch.packets);
            batch.data.clear();
            batch.packets.clear();
            return;
        }
        let empty = st.spare.pop().unwrap_or_else(Batch::allocate);
        let full = std::mem::replace(batch, empty);
        st.chunks.push_back(Chunk::Packets(full));
        self.wake(st);
    }

    /// Queues the counters; the final ones close the queue.
    fn send_counters(&self, counters: Counters) {
        let mut st = self.lock();
        st.chunks.push_back(Chunk::Counters(counters));
        st.closed |= counters.is_final;
        self.wake(st);
    }

    fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        self.wake(st);
    }

    fn wake(&self, st: MutexGuard<'_, QueueState>) {
        let waiting = st.waiting;
        drop(st);
        if waiting {
            self.arrived.notify_one();
        }
    }

    /// The oldest chunk; when none is queued, waits up to `wait` for one.
    fn next(&self, wait: Duration) -> Next {
        let mut st = self.lock();
        if st.chunks.is_empty() && !st.closed && !wait.is_zero() {
            st.waiting = true;
            st = match self
                .arrived
                .wait_timeout_while(st, wait, |s| s.chunks.is_empty() && !s.closed)
            {
                Ok((st, _)) => st,
                Err(poisoned) => poisoned.into_inner().0,
            };
            st.waiting = false;
        }
        match st.chunks.pop_front() {
            Some(chunk) => Next::Chunk(chunk),
            None if st.closed => Next::Closed,
            None => Next::Empty,
        }
    }

    /// Takes back an analysed batch: its bytes no longer count, its buffers are reused.
    fn recycle(&self, mut batch: Batch) {
        self.held.fetch_sub(batch.data.len(), Ordering::Relaxed);
        batch.data.clear();
        batch.packets.clear();
        let mut st = self.lock();
        if st.spare.len() < SPARE_BATCHES {
            st.spare.push(batch);
        }
    }
}

/// Closes the queue when the capture thread ends, however it ends, so the analysis never waits
/// for a thread that is gone.
struct CloseOnDrop<'a>(&'a Queue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What the analysis has done so far.
#[derive(Debug, Default)]
struct Analysed {
    packets: u64,
    bytes: u64,
    /// The counters it last reported.
    last: Option<LiveStats>,
}

/// Runs the capture through a pipeline and the analysis stage into `sink` until the duration,
/// the packet count or the stop flag ends it.
///
/// A thread of its own reads the packets from libpcap (and writes the `-w` file), so that the
/// kernel's buffer is emptied as fast as packets come even while the analysis is busy with a
/// burst; the packets wait for the analysis in a queue of at most [`LiveRun::queue_size`]
/// bytes, and those that would overflow it are dropped and counted.
///
/// At the end the packets still queued are analysed, the sink gets the last counters
/// (`stats`), then every connection still open ends as `capture_end`, then the summary; the
/// `-w` file is flushed. A read error ends the run the same way and is then returned. When the
/// output fails, the capture stops and that error is returned.
pub fn run<S: EventSink>(
    cap: &mut LiveCapture,
    run: &LiveRun,
    cfg: Config,
    analysis: AnalysisOptions,
    sink: S,
) -> Result<(S, CaptureSummary), LiveError> {
    let mut pipeline = Pipeline::new(cfg, AnalysisSink::new(sink, analysis));
    let queue = Queue::new(run.queue_size);
    let started = Instant::now();
    let (interface, linktype) = (cap.interface().to_owned(), cap.linktype());
    let mut done = Analysed::default();
    let (analysed, captured) = std::thread::scope(|s| {
        let reader = std::thread::Builder::new()
            .name("wsinspect-capture".into())
            .spawn_scoped(s, || capture(cap, run, &queue, started))
            .map_err(LiveError::Thread)?;
        let analysed = analyse(&queue, &mut pipeline, linktype, &mut done);
        if analysed.is_err() {
            queue.abandoned.store(true, Ordering::Relaxed);
        }
        let captured = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok::<_, LiveError>((analysed, captured))
    })?;
    analysed?;
    let capture = CaptureSummary {
        file: interface,
        format: "live",
        link_types: vec![linktype],
        bytes: done.bytes,
        live: Some(done.last.unwrap_or_default()),
        ..CaptureSummary::default()
    };
    let (sink, mut capture) = pipeline.finish(capture)?;
    let (sink, diagnosis) = sink.into_parts();
    capture.diagnosis = Some(diagnosis);
    match captured {
        Some(e) => Err(e),
        None => Ok((sink, capture)),
    }
}

/// The capture thread: reads every packet libpcap has, writes it to `-w`, and hands it to the
/// analysis in batches, or drops it when the queue is full; adds the counters to the queue
/// every stats interval and at the end. Returns the error that stopped it, if any.
fn capture(
    cap: &mut LiveCapture,
    run: &LiveRun,
    queue: &Queue,
    started: Instant,
) -> Option<LiveError> {
    let _close = CloseOnDrop(queue);
    let deadline = run.duration.map(|d| started + d);
    let interval = run.stats_interval.filter(|d| !d.is_zero());
    let mut next_stats = interval.map(|i| started + i);
    let mut batch = Batch::allocate();
    let (mut read, mut dropped) = (0u64, 0u64);
    let mut failed = None;
    loop {
        if run.stop.load(Ordering::Relaxed)
            || queue.abandoned.load(Ordering::Relaxed)
            || run.count.is_some_and(|c| read >= c)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        match cap.next_packet() {
            Ok(Some(pkt)) => {
                read += 1;
                if queue.fits(batch.data.len(), pkt.data.len()) {
                    batch.push(&pkt);
                    if batch.is_full() {
                        queue.send(&mut batch);
                    }
                } else {
                    dropped += 1;
                }
            }
            // Every packet waiting has been read: the analysis gets them now, not once the
            // batch is full.
            Ok(None) => queue.send(&mut batch),
            // A signal can cut a read short; that is the stop asked for, not a failure.
            Err(_) if run.stop.load(Ordering::Relaxed) => break,
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        if let (Some(due), Some(every)) = (next_stats, interval)
            && Instant::now() >= due
        {
            match cap.counters() {
                Ok(c) => {
                    queue.send(&mut batch);
                    queue.send_counters(counters(c, started, dropped, false));
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            next_stats = Some(due + every);
        }
    }
    queue.send(&mut batch);
    let totals = match cap.counters() {
        Ok(c) => c,
        Err(e) => {
            failed.get_or_insert(e);
            cap.totals()
        }
    };
    if let Err(e) = cap.flush_savefile() {
        failed.get_or_insert(e);
    }
    queue.send_counters(counters(totals, started, dropped, true));
    failed
}

fn counters(
    (received, dropped_kernel, dropped_interface): (u64, u64, u64),
    started: Instant,
    dropped_queue: u64,
    is_final: bool,
) -> Counters {
    Counters {
        ts: wall_clock(),
        elapsed: started.elapsed().as_secs_f64(),
        received,
        dropped_kernel,
        dropped_interface,
        dropped_queue,
        is_final,
    }
}

/// The analysis: runs each queued packet through `pipeline`, reports the counters where they
/// come, and gives the pipeline the wall clock (and flushes the output) whenever every packet
/// captured so far has been analysed; returns once the capture thread has stopped and its last
/// packets are analysed.
fn analyse<S: EventSink>(
    queue: &Queue,
    pipeline: &mut Pipeline<S>,
    linktype: u32,
    done: &mut Analysed,
) -> Result<(), LiveError> {
    let mut flushed = Instant::now();
    let mut wait = Duration::ZERO;
    loop {
        match queue.next(wait) {
            Next::Chunk(Chunk::Packets(batch)) => {
                wait = Duration::ZERO;
                for pkt in batch.packets(linktype) {
                    done.packets += 1;
                    done.bytes += pkt.data.len() as u64;
                    pipeline.packet(&pkt)?;
                    if flushed.elapsed() >= FLUSH_EVERY {
                        pipeline.flush()?;
                        flushed = Instant::now();
                    }
                }
                queue.recycle(batch);
            }
            Next::Chunk(Chunk::Counters(c)) => {
                let stats = c.stats(pipeline, done);
                pipeline.stats(&stats)?;
                done.last = Some(stats);
            }
            Next::Empty => {
                // Every packet captured so far has been analysed: what it said goes out now.
                pipeline.tick(wall_clock())?;
                pipeline.flush()?;
                flushed = Instant::now();
                wait = Duration::from_millis(u64::from(WAIT_MS));
            }
            Next::Closed => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;

    /// Packets of a real capture go through the queue whole and in order, with the counters
    /// behind them; batches sent while others wait are merged into them; the queue refuses a
    /// byte beyond its limit, and has room again once the analysis gave the batches back.
    #[test]
    fn queue_hands_packets_over_whole_and_within_its_limit() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/node-basic.pcap");
        let mut reader = CaptureReader::open(&path).expect("the sample");
        let mut want = Vec::new();
        while let Some(p) = reader.next_packet().expect("a packet") {
            want.push((p.number, p.ts, p.data.to_vec(), p.origlen));
        }
        let linktype = 1;
        let total: usize = want.iter().map(|w| w.2.len()).sum();
        assert!(
            want.len() > 6 && total < BATCH_BYTES,
            "several batches, one buffer"
        );
        let q = Queue::new(total);
        let mut batch = Batch::allocate();
        for (number, ts, data, origlen) in &want {
            assert!(q.fits(batch.data.len(), data.len()));
            batch.push(&Packet {
                number: *number,
                ts: *ts,
                linktype,
                data,
                origlen: *origlen,
            });
            if batch.packets.len() == 3 {
                q.send(&mut batch);
            }
        }
        assert!(!q.fits(batch.data.len(), 1));
        q.send(&mut batch);
        assert!(batch.packets.is_empty());
        assert!(!q.fits(0, 1));
        q.send_counters(counters((7, 1, 0), Instant::now(), 0, true));
        let (mut got, mut batches) = (Vec::new(), 0);
        let mut finals = 0;
        loop {
            match q.next(Duration::ZERO) {
                Next::Chunk(Chunk::Packets(b)) => {
                    assert_eq!(finals, 0, "the counters come after every packet");
                    batches += 1;
                    for p in b.packets(linktype) {
                        got.push((p.number, p.ts, p.data.to_vec(), p.origlen));
                    }
                    q.recycle(b);
                }
                Next::Chunk(Chunk::Counters(c)) => {
                    assert!(c.is_final);
                    assert_eq!(c.received, 7);
                    finals += 1;
                }
                Next::Empty => panic!("the final counters close the queue"),
                Next::Closed => break,
            }
        }
        assert_eq!(finals, 1);
        assert_eq!(batches, 1, "sent in threes, merged while queued");
        assert_eq!(got, want);
        assert!(q.fits(0, total));
        assert!(!q.fits(0, total + 1));
    }

    #[test]
    fn counters_survive_the_32_bit_wrap() {
        let mut c = Counter::default();
        assert_eq!(c.update(10), 10);
        assert_eq!(c.update(u32::MAX - 5), u64::from(u32::MAX) - 5);
        assert_eq!(c.update(4), u64::from(u32::MAX) + 5);
    }

    #[test]
    fn activation_errors_name_the_cause() {
        let known = || {
            Ok(vec![Interface {
                name: "lo".to_owned(),
                description: None,
                addresses: Vec::new(),
                loopback: true,
                up: true,
            }])
        };
        let e = open_error(
            "lo",
            pcap::Error::PcapError(
                "lo: You don't have permission to perform this capture on that device".to_owned(),
            ),
            known(),
        );
        assert!(matches!(e, LiveError::PermissionDenied { .. }), "{e}");
        assert!(e.to_string().contains("setcap"), "{e}");
        let e = open_error(
            "nosuch0",
            pcap::Error::PcapError("nosuch0: something".to_owned()),
            known(),
        );
        assert!(matches!(e, LiveError::NoSuchInterface(_)), "{e}");
        let e = open_error(
            "lo",
            pcap::Error::PcapError("lo: something else".to_owned()),
            known(),
        );
        assert!(matches!(e, LiveError::Pcap { .. }), "{e}");
    }
}
