//! The typed event stream: what the decoding stages found, in capture order, one value per fact.
//!
//! Every sink (JSON document, NDJSON, text, and later the TUI) and the analysis stage consume
//! these and nothing else. NDJSON writes each event as one line, so the names and shapes here are
//! the wire format documented in `docs/json-schema.md`.

use serde::Serialize;

use crate::diagnosis::Diagnosis;
use crate::http::DeflateParams;
use crate::types::{ConnId, Dir, Ts};

/// One fact about one connection (or, for `CaptureEnd`, about the capture).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A TCP connection was recognised as WebSocket (an upgrade request, or frames mid-stream).
    ConnectionOpen(ConnectionOpen),
    /// An upgrade request and its answer (or the request alone when the answer never came).
    Handshake(Box<HandshakeEvent>),
    /// One WebSocket frame (only when frames were asked for).
    Frame(FrameEvent),
    /// One complete data message.
    Message(MessageEvent),
    /// A ping frame.
    Ping(PingEvent),
    /// A pong frame, matched to its ping when one is pending.
    Pong(PongEvent),
    /// A close frame.
    Close(CloseEvent),
    /// A TCP FIN or RST.
    Tcp(TcpEvent),
    /// Bytes the capture lacks.
    Gap(GapEvent),
    /// Something that breaks a protocol rule or a limit.
    Anomaly(AnomalyEvent),
    /// The connection ended (or the capture did); its summary.
    ConnectionEnd(Box<ConnectionEnd>),
}

impl Event {
    /// The connection the event is about.
    pub fn conn(&self) -> ConnId {
        match self {
            Event::ConnectionOpen(e) => e.conn,
            Event::Handshake(e) => e.conn,
            Event::Frame(e) => e.conn,
            Event::Message(e) => e.conn,
            Event::Ping(e) => e.conn,
            Event::Pong(e) => e.conn,
            Event::Close(e) => e.conn,
            Event::Tcp(e) => e.conn,
            Event::Gap(e) => e.conn,
            Event::Anomaly(e) => e.conn,
            Event::ConnectionEnd(e) => e.conn,
        }
    }
}

/// See [`Event::ConnectionOpen`].
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionOpen {
    /// Connection id.
    pub conn: ConnId,
    /// When the TCP connection started (its SYN, or its first captured packet).
    pub ts: Ts,
    /// Client `ip:port` (`[v6]:port` for IPv6).
    pub client: String,
    /// Server `ip:port`.
    pub server: String,
    /// Whether the upgrade request was in the capture.
    pub handshake_seen: bool,
    /// Whether the TCP SYN was in the capture.
    pub syn_seen: bool,
    /// TLS facts known so far, for a wss:// (TLS) connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<crate::tls::TlsInfo>>,
}

/// The upgrade as both sides saw it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Handshake {
    /// When the request's head was complete.
    pub request_ts: Option<Ts>,
    /// When the response's head was complete.
    pub response_ts: Option<Ts>,
    /// Request method (`GET` for a valid upgrade).
    pub method: Option<String>,
    /// Request target.
    pub path: Option<String>,
    /// `Host` header.
    pub host: Option<String>,
    /// `Origin` header.
    pub origin: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Sec-WebSocket-Version` sent by the client.
    pub version: Option<String>,
    /// Response status (101 when accepted); `None` when no response was captured.
    pub status: Option<u16>,
    /// Response reason phrase.
    pub reason: Option<String>,
    /// Subprotocols the client offered.
    pub subprotocols_offered: Vec<String>,
    /// Subprotocol the server chose.
    pub subprotocol: Option<String>,
    /// `Sec-WebSocket-Extensions` as offered by the client (raw value).
    pub extensions_offered: Option<String>,
    /// `Sec-WebSocket-Extensions` as accepted by the server (raw value).
    pub extensions: Option<String>,
    /// Negotiated permessage-deflate parameters, or null when not in effect.
    pub permessage_deflate: Option<DeflateParams>,
    /// Whether `Sec-WebSocket-Accept` matches the key; `None` without both.
    pub accept_valid: Option<bool>,
    /// Whether the server switched protocols (status 101).
    pub accepted: bool,
    /// Whether the exchange follows every rule of RFC 6455 §4 (see the anomalies when not).
    pub valid: bool,
    /// Request headers in order, `[name, value]`.
    pub request_headers: Vec<(String, String)>,
    /// Response headers in order.
    pub response_headers: Vec<(String, String)>,
}

/// See [`Event::Handshake`].
#[derive(Clone, Debug, Serialize)]
pub struct HandshakeEvent {
    /// Connection id.
    pub conn: ConnId,
    /// When the exchange completed (response head), or the request when unanswered.
    pub ts: Ts,
    /// The handshake.
    pub handshake: Handshake,
}

/// See [`Event::Frame`].
#[derive(Clone, Debug, Serialize)]
pub struct FrameEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time of the packet that completed the frame.
    pub ts: Ts,
    /// Direction.
    pub dir: Dir,
    /// FIN bit.
    pub fin: bool,
    /// RSV bits as a number 0..7 (4 = RSV1).
    pub rsv: u8,
    /// Opcode number.
    pub opcode: u8,
    /// Opcode name.
    pub opcode_name: &'static str,
    /// Whether the frame was masked.
    pub masked: bool,
    /// Declared payload length.
    pub len: u64,
    /// Payload bytes the capture lost.
    pub lost: u64,
}

/// What a message's payload looks like in the output (see `--payloads`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadEncoding {
    /// UTF-8 text.
    Text,
    /// Base64 of the bytes.
    Base64,
}

/// See [`Event::Message`].
#[derive(Clone, Debug, Serialize)]
pub struct MessageEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time of the packet that completed the message.
    pub ts: Ts,
    /// Direction.
    pub dir: Dir,
    /// `text` or `binary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Decoded length in bytes (after inflation).
    pub len: u64,
    /// Payload bytes on the wire (compressed size when compressed).
    pub wire_len: u64,
    /// Frames the message was sent in.
    pub frames: u32,
    /// Whether it was compressed with permessage-deflate.
    pub compressed: bool,
    /// `complete`, `truncated` (over the message cap), `incomplete` (bytes missing from the
    /// capture) or `undecodable`.
    pub status: &'static str,
    /// Why it could not be decoded, when `undecodable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undecodable_reason: Option<&'static str>,
    /// For text: whether the decoded bytes are valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utf8_valid: Option<bool>,
    /// Inflated exactly although earlier deflate history was missing from the capture.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub history_reset: bool,
    /// The start of the payload, printable (`--payloads preview`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
    /// The whole decoded payload (`--payloads full`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// How `payload` is encoded: `text` or `base64`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_encoding: Option<PayloadEncoding>,
}

impl MessageEvent {
    /// A complete, uncompressed, valid text message of `len` bytes in one frame, with nothing
    /// of its payload kept: the base that events built by hand (tests, other producers) adjust
    /// with struct update syntax.
    pub fn text(conn: ConnId, ts: Ts, dir: Dir, len: u64) -> MessageEvent {
        MessageEvent {
            conn,
            ts,
            dir,
            kind: "text",
            len,
            wire_len: len,
            frames: 1,
            compressed: false,
            status: "complete",
            undecodable_reason: None,
            utf8_valid: Some(true),
            history_reset: false,
            preview: None,
            payload: None,
            payload_encoding: None,
        }
    }
}

/// See [`Event::Ping`].
#[derive(Clone, Debug, Serialize)]
pub struct PingEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time.
    pub ts: Ts,
    /// Direction.
    pub dir: Dir,
    /// Payload length.
    pub len: u64,
    /// Ping number within the connection, from 1; pongs refer to it. After `u32::MAX - 1` it
    /// starts again at 1 (never `u32::MAX`), so it is unique among the pings a pong can answer.
    pub ping_id: u32,
}

/// Unanswered pings a direction keeps for matching: a pong's `ping_id` names one of the last
/// this many unanswered pings of the other side; older ones stay unanswered.
pub const MAX_PENDING_PINGS: usize = 64;

/// See [`Event::Pong`].
#[derive(Clone, Debug, Serialize)]
pub struct PongEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time.
    pub ts: Ts,
    /// Direction.
    pub dir: Dir,
    /// Payload length.
    pub len: u64,
    /// The ping this answers (same payload, other direction), if any.
    pub ping_id: Option<u32>,
    /// Milliseconds since that ping.
    pub rtt_ms: Option<f64>,
}

/// See [`Event::Close`].
#[derive(Clone, Debug, Serialize)]
pub struct CloseEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time.
    pub ts: Ts,
    /// Direction (who sent it).
    pub dir: Dir,
    /// Status code; null for an empty close payload.
    pub code: Option<u16>,
    /// Registry name of the code.
    pub name: Option<&'static str>,
    /// Reason text.
    pub reason: String,
}

/// See [`Event::Tcp`].
#[derive(Clone, Debug, Serialize)]
pub struct TcpEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time.
    pub ts: Ts,
    /// Who sent it.
    pub dir: Dir,
    /// `fin` or `rst`.
    pub kind: &'static str,
    /// TTL / hop limit of the packet.
    pub ttl: u8,
    /// IPv4 identification of the packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_id: Option<u16>,
}

/// See [`Event::Gap`].
#[derive(Clone, Debug, Serialize)]
pub struct GapEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time when the loss became known.
    pub ts: Ts,
    /// Direction.
    pub dir: Dir,
    /// Bytes missing.
    pub len: u64,
}

/// See [`Event::Anomaly`].
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyEvent {
    /// Connection id.
    pub conn: ConnId,
    /// Capture time.
    pub ts: Ts,
    /// Direction, when it concerns one.
    pub dir: Option<Dir>,
    /// Stable snake-case kind (listed in `docs/json-schema.md`).
    pub kind: &'static str,
    /// Human-readable specifics.
    pub detail: String,
}

/// Per-direction counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirStats {
    /// Frames.
    pub frames: u64,
    /// Data messages.
    pub messages: u64,
    /// Text messages.
    pub text: u64,
    /// Binary messages.
    pub binary: u64,
    /// Decoded message bytes.
    pub bytes: u64,
    /// Message payload bytes on the wire.
    pub wire_bytes: u64,
    /// Pings sent.
    pub pings: u64,
    /// Pongs sent.
    pub pongs: u64,
    /// TCP packets.
    pub packets: u64,
    /// Time of the last WebSocket frame.
    pub last_frame_ts: Option<Ts>,
    /// Time of the last TCP packet.
    pub last_packet_ts: Option<Ts>,
}

/// TTL / hop-limit range of ordinary packets in one direction.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TtlRange {
    /// Smallest.
    pub min: Option<u8>,
    /// Largest.
    pub max: Option<u8>,
}

/// A FIN or RST in the connection summary.
#[derive(Clone, Debug, Serialize)]
pub struct TcpMark {
    /// Capture time.
    pub ts: Ts,
    /// Who sent it.
    pub dir: Dir,
    /// TTL / hop limit of the packet.
    pub ttl: u8,
    /// IPv4 identification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_id: Option<u16>,
}

/// A gap in the connection summary.
#[derive(Clone, Debug, Serialize)]
pub struct GapMark {
    /// Capture time.
    pub ts: Ts,
    /// Direction.
    pub dir: Dir,
    /// Bytes missing.
    pub len: u64,
}

/// TCP facts of a connection.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TcpSummary {
    /// Client SYN time.
    pub syn_ts: Option<Ts>,
    /// Server SYN-ACK time.
    pub synack_ts: Option<Ts>,
    /// FINs, in order.
    pub fin: Vec<TcpMark>,
    /// RSTs, in order.
    pub rst: Vec<TcpMark>,
    /// Gaps, in order.
    pub gaps: Vec<GapMark>,
    /// Retransmitted segments (both directions).
    pub retransmissions: u64,
    /// Segments that arrived ahead of a hole.
    pub out_of_order: u64,
    /// TTL of client packets.
    pub ttl_c2s: TtlRange,
    /// TTL of server packets.
    pub ttl_s2c: TtlRange,
}

/// See [`Event::ConnectionEnd`]: everything about a connection except its per-message lists.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionEnd {
    /// Connection id.
    pub conn: ConnId,
    /// When it ended (last packet, or the capture's end).
    pub ts: Ts,
    /// Client `ip:port`.
    pub client: String,
    /// Server `ip:port`.
    pub server: String,
    /// First packet (or SYN) time.
    pub start_ts: Ts,
    /// Last packet time.
    pub end_ts: Ts,
    /// Why tracking stopped: `closed` (FIN both ways or RST), `capture_end`, `idle_timeout`,
    /// `evicted` (flow cap), `reused` (a new SYN on the same ports).
    pub ended_by: &'static str,
    /// Whether the upgrade request was in the capture.
    pub handshake_seen: bool,
    /// The final handshake (the last upgrade attempt).
    pub handshake: Option<Handshake>,
    /// Upgrade requests seen on this TCP connection.
    pub upgrade_attempts: u32,
    /// Client to server counters.
    pub c2s: DirStats,
    /// Server to client counters.
    pub s2c: DirStats,
    /// Close frames, in order.
    pub close: Vec<CloseEvent>,
    /// TCP facts.
    pub tcp: TcpSummary,
    /// Anomalies recorded.
    pub anomaly_count: u64,
    /// TLS facts, for a wss:// (TLS) connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsInfo>,
    /// How and why it ended (filled by the analysis stage; `None` before it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
}
