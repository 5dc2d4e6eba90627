//! One TCP connection's application layer: takes its reassembled byte streams (and gaps, FINs,
//! RSTs) and gives events. It finds the HTTP/1.1 upgrade (skipping earlier keep-alive requests),
//! or recognises WebSocket frames picked up mid-stream, then drives the frame decoder and the
//! message assembler of each direction, matches pings with pongs and records close frames.
//!
//! Directions here are the application's: the client is whoever sent the upgrade request (or
//! masked frames), which is not always the side TCP guessed from ports.
//!
//! A connection that opens with a TLS ClientHello (wss://) goes through its [`tls::TlsConn`]
//! first: decrypted bytes then take the same path as a ws:// stream, and without plaintext the
//! connection is still listed, by the TLS layer's rule, with its TLS facts.

use std::collections::VecDeque;
use std::net::SocketAddr;

use base64::Engine as _;

use crate::config::{Config, PayloadMode};
use crate::event::{
    AnomalyEvent, CloseEvent, ConnectionEnd, ConnectionOpen, DirStats, Event, FrameEvent, GapEvent,
    GapMark, Handshake, HandshakeEvent, MAX_PENDING_PINGS, MessageEvent, PayloadEncoding,
    PingEvent, PongEvent, TcpEvent, TcpMark, TcpSummary, TtlRange,
};
use crate::http::{self, BodyFraming, BodySkipper, Parsed, Request, Response};
use crate::tcp::{StreamEvent, TcpStats};
use crate::tls::{self, TlsConn};
use crate::types::{ConnId, Dir, Ts};
use crate::ws::coding;
use crate::ws::decoder::{FrameDecoder, FrameEvent as DecoderEvent};
use crate::ws::frame::{self, FrameHeader, opcode};
use crate::ws::message::{
    DeflateDir, MessageAssembler, MessageEvent as AssemblerEvent, MessageStatus,
};

/// Chunks per direction examined for mid-stream frames before a flow is declared not WebSocket.
const MIDSTREAM_ATTEMPTS: u8 = 8;

enum Phase {
    /// No payload seen yet.
    Start,
    /// Speaking HTTP/1.1.
    Http,
    /// Upgraded (or picked up mid-stream).
    WebSocket,
    /// Not WebSocket; ignore the rest.
    Ignored,
}

/// What the client direction is doing while HTTP is spoken.
enum ClientHttp {
    /// Parsing request heads.
    Heads,
    /// Skipping a request body.
    Body(BodySkipper),
    /// An upgrade request awaits its answer; later bytes are held.
    AwaitingAnswer,
}

struct PendingRequest {
    method: String,
    upgrade: Option<Box<(Request, Ts)>>,
}

struct WsDir {
    decoder: FrameDecoder,
    assembler: MessageAssembler,
    close_seen: bool,
    /// No byte decoded yet since the switch.
    fresh: bool,
}

struct PendingPing {
    id: u32,
    ts: Ts,
    payload: Vec<u8>,
}

/// Application-layer state of one TCP connection.
pub struct Session {
    phase: Phase,
    conn: Option<ConnId>,
    /// The application's client is TCP's server.
    flipped: bool,
    client: SocketAddr,
    server: SocketAddr,
    syn_seen: bool,
    /// Bytes were lost before the flow was recognised, so its start is no longer trusted.
    damaged: bool,
    start_ts: Ts,
    midstream_attempts: [u8; 2],
    /// Held stream bytes per application direction while HTTP is parsed.
    held: [Vec<u8>; 2],
    /// Length of `held` when a head parse last found it unfinished (0: parse on the next look).
    head_partial_at: [usize; 2],
    client_http: ClientHttp,
    server_body: Option<BodySkipper>,
    pending: VecDeque<PendingRequest>,
    /// Boxed for the same reason as `ws`.
    handshake: Option<Box<Handshake>>,
    handshake_seen: bool,
    upgrade_attempts: u32,
    /// Boxed: most tracked flows (a SYN flood, plain HTTP) never get here, and the flow table's
    /// memory per flow is what bounds a flood.
    ws: Option<Box<[WsDir; 2]>>,
    stats: [DirStats; 2],
    pings: [VecDeque<PendingPing>; 2],
    next_ping_id: u32,
    closes: Vec<CloseEvent>,
    fins: Vec<TcpMark>,
    rsts: Vec<TcpMark>,
    gaps: Vec<GapMark>,
    anomalies: u64,
    /// TLS state of a wss:// connection.
    tls: Option<Box<TlsConn>>,
    /// Payload and preview bytes of this connection's messages counted in [`HeldPayload`].
    payload_held: u64,
    payload_cap_reported: bool,
}

/// Payload bytes a sink holds for connections still open, against their cap
/// ([`crate::config::Limits::max_held_payload_bytes`]).
#[derive(Clone, Copy, Debug)]
pub struct HeldPayload {
    used: u64,
    max: u64,
}

impl HeldPayload {
    /// Nothing held yet; at most `max` bytes.
    pub fn new(max: u64) -> HeldPayload {
        HeldPayload { used: 0, max }
    }

    /// Takes `n` bytes if they fit.
    fn take(&mut self, n: u64) -> bool {
        match self.used.checked_add(n) {
            Some(u) if u <= self.max => {
                self.used = u;
                true
            }
            _ => false,
        }
    }

    /// A connection ended and the sink let go of its `n` bytes.
    pub fn release(&mut self, n: u64) {
        self.used = self.used.saturating_sub(n);
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used
    }
}

/// What the session needs from its surroundings for one call.
pub struct Ctx<'a> {
    /// Run settings.
    pub cfg: &'a Config,
    /// The next free connection id; taken when the flow is recognised.
    pub next_id: &'a mut ConnId,
    /// Events go here, in order.
    pub out: &'a mut Vec<Event>,
    /// Payload bytes held by the sink for all open connections.
    pub held: &'a mut HeldPayload,
}

impl Session {
    /// A session for a TCP connection whose client (per TCP's guess) and server are given.
    pub fn new(client: SocketAddr, server: SocketAddr, syn_seen: bool, start_ts: Ts) -> Session {
        Session {
            phase: Phase::Start,
            conn: None,
            flipped: false,
            client,
            server,
            syn_seen,
            damaged: false,
            start_ts,
            midstream_attempts: [0; 2],
            held: [Vec::new(), Vec::new()],
            head_partial_at: [0, 0],
            client_http: ClientHttp::Heads,
            server_body: None,
            pending: VecDeque::new(),
            handshake: None,
            handshake_seen: false,
            upgrade_attempts: 0,
            ws: None,
            stats: [DirStats::default(), DirStats::default()],
            pings: [VecDeque::new(), VecDeque::new()],
            next_ping_id: 1,
            closes: Vec::new(),
            fins: Vec::new(),
            rsts: Vec::new(),
            gaps: Vec::new(),
            anomalies: 0,
            tls: None,
            payload_held: 0,
            payload_cap_reported: false,
        }
    }

    /// Payload and preview bytes of this connection's message events (see [`HeldPayload`]).
    pub fn held_payload(&self) -> u64 {
        self.payload_held
    }

    /// The connection id, once the flow was recognised as WebSocket.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// Counts one TCP packet (for per-direction packet counts and last-activity times).
    pub fn packet(&mut self, tcp_dir: Dir, ts: Ts) {
        let d = self.app_dir(tcp_dir).index();
        self.stats[d].packets += 1;
        self.stats[d].last_packet_ts = Some(ts);
    }

    fn app_dir(&self, tcp_dir: Dir) -> Dir {
        if self.flipped {
            tcp_dir.flip()
        } else {
            tcp_dir
        }
    }

    /// Handles one reassembly event (directions in TCP's orientation).
    pub fn stream_event(&mut self, ev: StreamEvent<'_>, ctx: &mut Ctx<'_>) {
        match ev {
            StreamEvent::Syn { .. } => {}
            StreamEvent::Data { dir, ts, bytes } => {
                if self.tls.is_some()
                    || (matches!(self.phase, Phase::Start) && tls::looks_like_client_hello(bytes))
                {
                    self.tls_data(dir, ts, bytes, ctx)
                } else {
                    self.data(dir, ts, bytes, ctx)
                }
            }
            StreamEvent::Gap { dir, ts, len } => {
                let app_dir = self.app_dir(dir);
                if let Some(t) = self.tls.as_mut() {
                    let mut out = tls::Output::default();
                    t.gap(app_dir, len, &mut out);
                    self.tls_output(app_dir, ts, out, ctx);
                }
                self.gap(dir, ts, len, ctx)
            }
            StreamEvent::Fin {
                dir,
                ts,
                ttl,
                ip_id,
            } => self.tcp_mark("fin", dir, ts, ttl, ip_id, ctx),
            StreamEvent::Rst {
                dir,
                ts,
                ttl,
                ip_id,
            } => self.tcp_mark("rst", dir, ts, ttl, ip_id, ctx),
            StreamEvent::Anomaly {
                dir,
                ts,
                kind,
                detail,
            } => {
                let dir = self.app_dir(dir);
                self.anomaly(ts, Some(dir), kind, detail, ctx);
            }
        }
    }

    /// Records a FIN or RST (direction in TCP's orientation) and announces it.
    fn tcp_mark(
        &mut self,
        kind: &'static str,
        tcp_dir: Dir,
        ts: Ts,
        ttl: u8,
        ip_id: Option<u16>,
        ctx: &mut Ctx<'_>,
    ) {
        let dir = self.app_dir(tcp_dir);
        let mark = TcpMark {
            ts,
            dir,
            ttl,
            ip_id,
        };
        if let Some(conn) = self.conn {
            ctx.out.push(Event::Tcp(TcpEvent {
                conn,
                ts,
                dir,
                kind,
                ttl,
                ip_id,
            }));
        }
        // Nothing more can be decoded from a direction that ended (the FIN comes once its
        // stream is complete), or from either after a reset: their zlib states go back for
        // other directions now, not when the flow leaves the table.
        if let Some(ws) = self.ws.as_mut() {
            for (i, d) in ws.iter_mut().enumerate() {
                if kind == "rst" || i == dir.index() {
                    d.assembler.release();
                }
            }
        }
        if kind == "fin" {
            self.fins.push(mark)
        } else {
            self.rsts.push(mark)
        }
    }

    fn anomaly(
        &mut self,
        ts: Ts,
        dir: Option<Dir>,
        kind: &'static str,
        detail: String,
        ctx: &mut Ctx<'_>,
    ) {
        if let Some(conn) = self.conn {
            self.anomalies += 1;
            ctx.out.push(Event::Anomaly(AnomalyEvent {
                conn,
                ts,
                dir,
                kind,
                detail,
            }));
        }
    }

    /// Gives the flow an id and announces it.
    fn recognise(&mut self, ctx: &mut Ctx<'_>) {
        if self.conn.is_some() {
            return;
        }
        let conn = *ctx.next_id;
        *ctx.next_id += 1;
        self.conn = Some(conn);
        ctx.out.push(Event::ConnectionOpen(ConnectionOpen {
            conn,
            ts: self.start_ts,
            client: self.client.to_string(),
            server: self.server.to_string(),
            handshake_seen: self.handshake_seen,
            syn_seen: self.syn_seen,
            tls: self.tls.as_ref().map(|t| Box::new(t.info([false; 2]))),
        }));
    }

    /// wss://: runs a TLS connection's bytes through its TLS state; the plaintext (when the key
    /// log decrypts it) goes on as a ws:// stream's bytes would.
    fn tls_data(&mut self, tcp_dir: Dir, ts: Ts, bytes: &[u8], ctx: &mut Ctx<'_>) {
        if self.tls.is_none() {
            // The ClientHello's sender is the client.
            if !self.orient(tcp_dir, true) {
                self.phase = Phase::Ignored;
                return;
            }
            self.tls = Some(Box::default());
        }
        if matches!(self.phase, Phase::Ignored) && self.conn.is_none() {
            // Decrypted and not WebSocket: nothing more to learn.
            return;
        }
        let dir = self.app_dir(tcp_dir);
        let mut out = tls::Output::default();
        if let Some(t) = self.tls.as_mut() {
            t.push(dir, ts, bytes, &ctx.cfg.keylog, &mut out);
        }
        let plain = self.tls_output(dir, ts, out, ctx);
        if !plain.is_empty() {
            self.data(tcp_dir, ts, &plain, ctx);
        }
    }

    /// Lists the connection when the TLS layer says so, reports its anomalies, and gives back
    /// the plaintext.
    fn tls_output(&mut self, dir: Dir, ts: Ts, out: tls::Output, ctx: &mut Ctx<'_>) -> Vec<u8> {
        if self.conn.is_none()
            && self
                .tls
                .as_ref()
                .is_some_and(|t| t.listed_without_plaintext(self.server.port()))
        {
            self.recognise(ctx);
        }
        for (kind, detail) in out.anomalies {
            self.anomaly(ts, Some(dir), kind, detail, ctx);
        }
        out.plain
    }

    fn flip(&mut self) {
        self.flipped = !self.flipped;
        std::mem::swap(&mut self.client, &mut self.server);
        self.stats.swap(0, 1);
    }

    fn data(&mut self, tcp_dir: Dir, ts: Ts, bytes: &[u8], ctx: &mut Ctx<'_>) {
        if bytes.is_empty() {
            return;
        }
        if let Phase::Start = self.phase {
            self.start(tcp_dir, ts, bytes, ctx);
        }
        let dir = self.app_dir(tcp_dir);
        match self.phase {
            Phase::Start => {}
            Phase::Ignored => {}
            Phase::Http => {
                self.held[dir.index()].extend_from_slice(bytes);
                let max_head = ctx.cfg.limits.max_http_header_bytes;
                if dir == Dir::C2s
                    && matches!(self.client_http, ClientHttp::AwaitingAnswer)
                    && self.held[0].len() > max_head
                {
                    // Bytes behind an unanswered upgrade request are held for the answer; a
                    // client that keeps sending must not grow that without bound.
                    let detail = format!(
                        "over {max_head} bytes sent after the upgrade request before any answer; \
                         decoded as frames from here"
                    );
                    self.give_up_http(ts, dir, "early_data_too_large", detail, ctx);
                    return;
                }
                self.http(ts, ctx);
            }
            Phase::WebSocket => self.ws_bytes(dir, ts, bytes, ctx),
        }
    }

    /// Decides what the flow is from its first payload bytes.
    fn start(&mut self, tcp_dir: Dir, ts: Ts, bytes: &[u8], ctx: &mut Ctx<'_>) {
        // A request comes from the client and a response (the capture began between the two)
        // from the server.
        let http_sender_is_client = if http::looks_like_request(bytes) {
            Some(true)
        } else if bytes.starts_with(b"HTTP/1.") {
            Some(false)
        } else {
            None
        };
        if let Some(client_sent) = http_sender_is_client {
            self.phase = if self.orient(tcp_dir, client_sent) {
                Phase::Http
            } else {
                Phase::Ignored
            };
            return;
        }
        if self.syn_seen && !self.damaged {
            // The connection's start is in the capture and it does not open with HTTP.
            self.phase = Phase::Ignored;
            return;
        }
        let i = tcp_dir.index();
        self.midstream_attempts[i] = self.midstream_attempts[i].saturating_add(1);
        match plausible_frames(bytes) {
            // Clients mask their frames (RFC 6455 §5.1).
            Some(masked) if self.orient(tcp_dir, masked) => {
                self.recognise(ctx);
                self.enter_websocket(None, ts, ctx);
            }
            Some(_) => self.phase = Phase::Ignored,
            None => {
                if self
                    .midstream_attempts
                    .iter()
                    .all(|&n| n >= MIDSTREAM_ATTEMPTS)
                {
                    self.phase = Phase::Ignored;
                }
            }
        }
    }

    /// Takes the sender of `tcp_dir` to be the client (`client_sent`) or the server. Without the
    /// SYN, TCP's orientation is only a guess from ports and is flipped to agree; with it, a
    /// disagreement means the flow is not a WebSocket connection (returns false).
    fn orient(&mut self, tcp_dir: Dir, client_sent: bool) -> bool {
        if client_sent == (tcp_dir == Dir::C2s) {
            return true;
        }
        if self.syn_seen {
            return false;
        }
        self.flip();
        true
    }

    /// Parses whatever HTTP heads are complete in both directions.
    fn http(&mut self, ts: Ts, ctx: &mut Ctx<'_>) {
        loop {
            let progressed_client = self.http_client(ts, ctx);
            if !matches!(self.phase, Phase::Http) {
                return;
            }
            let progressed_server = self.http_server(ts, ctx);
            if !matches!(self.phase, Phase::Http) {
                return;
            }
            if !progressed_client && !progressed_server {
                return;
            }
        }
    }

    /// One step of the client's HTTP; returns whether it consumed anything.
    fn http_client(&mut self, ts: Ts, ctx: &mut Ctx<'_>) -> bool {
        let max_head = ctx.cfg.limits.max_http_header_bytes;
        let buf = &mut self.held[0];
        if buf.is_empty() {
            return false;
        }
        match &mut self.client_http {
            ClientHttp::AwaitingAnswer => false,
            ClientHttp::Body(skipper) => match skipper.push(buf) {
                Ok(n) => {
                    buf.drain(..n);
                    if skipper.done() {
                        self.client_http = ClientHttp::Heads;
                    }
                    n > 0
                }
                Err(e) => {
                    self.give_up_http(ts, Dir::C2s, "http_body_invalid", e, ctx);
                    false
                }
            },
            ClientHttp::Heads
                if !head_may_be_complete(buf, &mut self.head_partial_at[0], max_head) =>
            {
                false
            }
            ClientHttp::Heads => match http::parse_request(buf, max_head) {
                Parsed::Partial => {
                    self.head_partial_at[0] = buf.len();
                    false
                }
                Parsed::TooLarge => {
                    self.unreadable_upgrade(max_head, ctx);
                    self.give_up_http(
                        ts,
                        Dir::C2s,
                        "http_header_too_large",
                        format!("request head over {max_head} bytes"),
                        ctx,
                    );
                    false
                }
                Parsed::Invalid(why) => {
                    self.unreadable_upgrade(max_head, ctx);
                    self.give_up_http(ts, Dir::C2s, "http_invalid", format!("request: {why}"), ctx);
                    false
                }
                Parsed::Complete { head, head_len } => {
                    buf.drain(..head_len);
                    let is_upgrade = head.header("upgrade").is_some()
                        || head.header("sec-websocket-key").is_some();
                    if is_upgrade {
                        self.handshake_seen = true;
                        self.upgrade_attempts += 1;
                        self.recognise(ctx);
                        self.client_http = ClientHttp::AwaitingAnswer;
                        self.pending.push_back(PendingRequest {
                            method: head.method.clone(),
                            upgrade: Some(Box::new((head, ts))),
                        });
                    } else {
                        let framing = head.body_framing();
                        self.pending.push_back(PendingRequest {
                            method: head.method.clone(),
                            upgrade: None,
                        });
                        if framing != BodyFraming::None {
                            self.client_http = ClientHttp::Body(BodySkipper::new(framing));
                        }
                    }
                    true
                }
            },
        }
    }

    /// A request head that cannot be parsed (too large, or invalid) but names a WebSocket
    /// upgrade is an upgrade attempt: the connection is reported, so that the anomaly saying
    /// why its head was refused is seen rather than the flow silently ignored.
    fn unreadable_upgrade(&mut self, max_head: usize, ctx: &mut Ctx<'_>) {
        let buf = &self.held[0];
        let window = buf.get(..buf.len().min(max_head)).unwrap_or_default();
        let names_upgrade = [&b"\nupgrade:"[..], b"\nsec-websocket-key:"]
            .iter()
            .any(|needle| {
                window
                    .windows(needle.len())
                    .any(|w| w.eq_ignore_ascii_case(needle))
            });
        if names_upgrade {
            self.handshake_seen = true;
            self.upgrade_attempts += 1;
            self.recognise(ctx);
        }
    }

    /// One step of the server's HTTP; returns whether it consumed anything.
    fn http_server(&mut self, ts: Ts, ctx: &mut Ctx<'_>) -> bool {
        let max_head = ctx.cfg.limits.max_http_header_bytes;
        if self.held[1].is_empty() {
            return false;
        }
        if let Some(skipper) = &mut self.server_body {
            return match skipper.push(&self.held[1]) {
                Ok(n) => {
                    self.held[1].drain(..n);
                    if skipper.done() {
                        self.server_body = None;
                    }
                    n > 0
                }
                Err(e) => {
                    self.give_up_http(ts, Dir::S2c, "http_body_invalid", e, ctx);
                    false
                }
            };
        }
        if !head_may_be_complete(&self.held[1], &mut self.head_partial_at[1], max_head) {
            return false;
        }
        match http::parse_response(&self.held[1], max_head) {
            Parsed::Partial => {
                self.head_partial_at[1] = self.held[1].len();
                false
            }
            Parsed::TooLarge => {
                self.give_up_http(
                    ts,
                    Dir::S2c,
                    "http_header_too_large",
                    format!("response head over {max_head} bytes"),
                    ctx,
                );
                false
            }
            Parsed::Invalid(why) => {
                self.give_up_http(
                    ts,
                    Dir::S2c,
                    "http_invalid",
                    format!("response: {why}"),
                    ctx,
                );
                false
            }
            Parsed::Complete { head, head_len } => {
                self.held[1].drain(..head_len);
                if (100..200).contains(&head.status) && head.status != 101 {
                    // Interim responses (100 Continue) do not answer the request.
                    return true;
                }
                let Some(req) = self.pending.pop_front() else {
                    if head.status == 101 {
                        // The capture began between the request and the answer.
                        self.handshake_seen = false;
                        self.recognise(ctx);
                        let hs = build_handshake(None, Some(&head), ts);
                        self.finish_handshake(hs, ts, ctx);
                    }
                    return true;
                };
                match req.upgrade {
                    Some(upgrade) => {
                        let (request, req_ts) = *upgrade;
                        let hs = build_handshake(Some((request, req_ts)), Some(&head), ts);
                        self.client_http = ClientHttp::Heads;
                        let accepted = hs.accepted;
                        self.finish_handshake(hs, ts, ctx);
                        if !accepted {
                            self.skip_response_body(&head, &req.method);
                        }
                    }
                    None => self.skip_response_body(&head, &req.method),
                }
                true
            }
        }
    }

    fn skip_response_body(&mut self, head: &Response, method: &str) {
        let framing = head.body_framing(method);
        if framing != BodyFraming::None {
            self.server_body = Some(BodySkipper::new(framing));
        }
    }

    fn give_up_http(
        &mut self,
        ts: Ts,
        dir: Dir,
        kind: &'static str,
        detail: String,
        ctx: &mut Ctx<'_>,
    ) {
        self.anomaly(ts, Some(dir), kind, detail, ctx);
        if self.conn.is_some()
            && self.upgrade_attempts > 0
            && matches!(self.client_http, ClientHttp::AwaitingAnswer)
        {
            // The request was an upgrade; look for frames rather than lose the connection.
            self.enter_websocket(None, ts, ctx);
        } else {
            self.phase = Phase::Ignored;
            self.held = [Vec::new(), Vec::new()];
            self.head_partial_at = [0, 0];
        }
    }

    /// Records a completed (or rejected) upgrade and switches to WebSocket when accepted.
    fn finish_handshake(&mut self, hs: Handshake, ts: Ts, ctx: &mut Ctx<'_>) {
        let accepted = hs.accepted;
        let deflate = hs.permessage_deflate.map(|p| {
            let offered_client_no_takeover = hs
                .extensions_offered
                .as_deref()
                .map(|v| {
                    let offers: Vec<_> = http::parse_extensions(v)
                        .into_iter()
                        .filter(|e| e.name.eq_ignore_ascii_case("permessage-deflate"))
                        .collect();
                    !offers.is_empty()
                        && offers.iter().all(|e| {
                            e.params
                                .iter()
                                .any(|(k, _)| k.eq_ignore_ascii_case("client_no_context_takeover"))
                        })
                })
                .unwrap_or(false);
            [
                DeflateDir {
                    context_takeover: !(p.client_no_context_takeover || offered_client_no_takeover),
                },
                DeflateDir {
                    context_takeover: !p.server_no_context_takeover,
                },
            ]
        });
        let problems = handshake_problems(&hs);
        let mut hs = hs;
        hs.valid = hs.accepted && problems.is_empty();
        for (kind, detail) in problems {
            self.anomaly(ts, None, kind, detail, ctx);
        }
        if let Some(conn) = self.conn {
            ctx.out.push(Event::Handshake(Box::new(HandshakeEvent {
                conn,
                ts,
                handshake: hs.clone(),
            })));
        }
        self.handshake = Some(Box::new(hs));
        if accepted {
            self.enter_websocket(deflate, ts, ctx);
        }
    }

    /// Switches to frame decoding, then decodes bytes already held after the HTTP heads.
    fn enter_websocket(&mut self, deflate: Option<[DeflateDir; 2]>, ts: Ts, ctx: &mut Ctx<'_>) {
        let limits = &ctx.cfg.limits;
        // Picked up mid-stream: RSV1 may appear although no negotiation was seen, and the
        // inflater starts without history.
        let midstream = !self.handshake_seen && self.handshake.is_none();
        let dflt = if midstream {
            Some(DeflateDir {
                context_takeover: true,
            })
        } else {
            None
        };
        // Decoded bytes of each message the events need: nothing more is copied or held.
        let keep = match ctx.cfg.payloads {
            PayloadMode::None => 0,
            // One byte past the preview tells whether there is more.
            PayloadMode::Preview => limits.preview_bytes.saturating_add(1),
            PayloadMode::Full => usize::MAX,
        };
        let mk = |i: usize| {
            let d = deflate.map(|d| d[i]).or(dflt);
            WsDir {
                decoder: FrameDecoder::new(i == 0, limits),
                assembler: MessageAssembler::new(d, limits, keep),
                close_seen: false,
                fresh: true,
            }
        };
        let mut dirs = [mk(0), mk(1)];
        if midstream {
            for d in &mut dirs {
                d.decoder.start_mid_stream();
                d.assembler.desync(&mut |_| {});
            }
        }
        self.ws = Some(Box::new(dirs));
        self.phase = Phase::WebSocket;
        let held = std::mem::take(&mut self.held);
        self.head_partial_at = [0, 0];
        // Frames the server sent right behind its 101 come first: the client's can only follow.
        for dir in [Dir::S2c, Dir::C2s] {
            let bytes = &held[dir.index()];
            if !bytes.is_empty() {
                self.ws_bytes(dir, ts, bytes, ctx);
            }
        }
    }

    fn gap(&mut self, tcp_dir: Dir, ts: Ts, len: u64, ctx: &mut Ctx<'_>) {
        let dir = self.app_dir(tcp_dir);
        self.gaps.push(GapMark { ts, dir, len });
        if let Some(conn) = self.conn {
            ctx.out.push(Event::Gap(GapEvent { conn, ts, dir, len }));
        }
        match self.phase {
            Phase::Http => {
                if self.upgrade_attempts > 0 {
                    self.anomaly(
                        ts,
                        Some(dir),
                        "handshake_bytes_lost",
                        format!("{len} bytes lost during the HTTP exchange"),
                        ctx,
                    );
                    self.enter_websocket(None, ts, ctx);
                    self.ws_gap(dir, ts, len, ctx);
                } else {
                    // The request head itself was cut (a short snaplen does this): what follows
                    // may still show what the flow is, as if picked up mid-stream.
                    self.phase = Phase::Start;
                    self.damaged = true;
                    self.held = [Vec::new(), Vec::new()];
                    self.head_partial_at = [0, 0];
                    self.client_http = ClientHttp::Heads;
                    self.server_body = None;
                    self.pending.clear();
                }
            }
            Phase::WebSocket => self.ws_gap(dir, ts, len, ctx),
            Phase::Start | Phase::Ignored => {}
        }
    }

    fn ws_gap(&mut self, dir: Dir, ts: Ts, len: u64, ctx: &mut Ctx<'_>) {
        self.feed_decoder(dir, ts, ctx, |decoder, out| decoder.gap(len, out));
    }

    fn ws_bytes(&mut self, dir: Dir, ts: Ts, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let first = self
            .ws
            .as_mut()
            .is_some_and(|ws| std::mem::take(&mut ws[dir.index()].fresh));
        if first && self.handshake.is_some() {
            // A peer that goes on speaking HTTP after a 101 did not switch protocols (broken
            // handshakes do this); follow what it did rather than decode HTTP as frames.
            let http_again = match dir {
                Dir::C2s => http::looks_like_request(bytes),
                Dir::S2c => bytes.starts_with(b"HTTP/1."),
            };
            if http_again {
                let who = if dir == Dir::C2s { "client" } else { "server" };
                self.anomaly(
                    ts,
                    Some(dir),
                    "http_after_101",
                    format!("the {who} kept speaking HTTP after the 101 response"),
                    ctx,
                );
                self.ws = None;
                self.phase = Phase::Http;
                self.client_http = ClientHttp::Heads;
                self.held[dir.index()].extend_from_slice(bytes);
                self.http(ts, ctx);
                return;
            }
        }
        self.feed_decoder(dir, ts, ctx, |decoder, out| decoder.push(bytes, out));
    }

    /// Gives one direction's decoder something to do (`feed`) and routes what it reports
    /// through that direction's assembler into events.
    fn feed_decoder(
        &mut self,
        dir: Dir,
        ts: Ts,
        ctx: &mut Ctx<'_>,
        feed: impl FnOnce(&mut FrameDecoder, &mut dyn FnMut(DecoderEvent<'_>)),
    ) {
        // Taken out while it runs: the decoder's callback needs the rest of the session.
        let Some(mut ws) = self.ws.take() else { return };
        {
            let WsDir {
                decoder,
                assembler,
                close_seen,
                ..
            } = &mut ws[dir.index()];
            feed(decoder, &mut |fe| {
                self.decoder_event(dir, ts, fe, assembler, close_seen, ctx)
            });
        }
        self.ws = Some(ws);
    }

    fn decoder_event(
        &mut self,
        dir: Dir,
        ts: Ts,
        fe: DecoderEvent<'_>,
        assembler: &mut MessageAssembler,
        close_seen: &mut bool,
        ctx: &mut Ctx<'_>,
    ) {
        // A frame is reported when it is complete, whether it came in one piece (`Frame`) or
        // its pieces went to the assembler as they arrived (`Begin`, `Data`, then `End`).
        let (header, fe_payload, lost, skipped) = match fe {
            DecoderEvent::Begin { header } => return assembler.begin(&header),
            DecoderEvent::Data { bytes } => return assembler.data(bytes),
            DecoderEvent::Frame {
                header,
                payload,
                lost,
                skipped,
            } => (header, Some(payload), lost, skipped),
            DecoderEvent::End {
                header,
                lost,
                skipped,
            } => (header, None, lost, skipped),
            other => return self.decoder_signal(dir, ts, other, assembler, close_seen, ctx),
        };
        let st = &mut self.stats[dir.index()];
        st.frames += 1;
        st.last_frame_ts = Some(ts);
        if let (Some(conn), true) = (self.conn, ctx.cfg.frames) {
            ctx.out.push(Event::Frame(FrameEvent {
                conn,
                ts,
                dir,
                fin: header.fin,
                rsv: header.rsv,
                opcode: header.opcode,
                opcode_name: coding::opcode_name(header.opcode),
                masked: header.mask.is_some(),
                len: header.payload_len,
                lost,
            }));
        }
        if *close_seen && !header.is_control() {
            self.anomaly(
                ts,
                Some(dir),
                "data_after_close",
                format!(
                    "{} frame after this side's close frame",
                    coding::opcode_name(header.opcode)
                ),
                ctx,
            );
        }
        let mut to_event =
            |me: AssemblerEvent<'_>| self.assembler_event(dir, ts, me, close_seen, ctx);
        match fe_payload {
            Some(payload) => assembler.frame(&header, payload, lost, skipped, &mut to_event),
            None => assembler.end(&header, lost, skipped, &mut to_event),
        }
    }

    /// What the decoder reports besides frames: losses of framing and stream anomalies.
    fn decoder_signal(
        &mut self,
        dir: Dir,
        ts: Ts,
        fe: DecoderEvent<'_>,
        assembler: &mut MessageAssembler,
        close_seen: &mut bool,
        ctx: &mut Ctx<'_>,
    ) {
        match fe {
            DecoderEvent::Desync { lost } => {
                self.anomaly(
                    ts,
                    Some(dir),
                    "frame_sync_lost",
                    format!("{lost} bytes lost where a frame header was due"),
                    ctx,
                );
                assembler.desync(&mut |me| self.assembler_event(dir, ts, me, close_seen, ctx));
            }
            DecoderEvent::Resync { discarded } => {
                // Picked up exactly at a frame boundary: nothing was skipped, nothing to say.
                if discarded > 0 {
                    self.anomaly(
                        ts,
                        Some(dir),
                        "frame_sync_found",
                        format!("frames found again after skipping {discarded} bytes"),
                        ctx,
                    );
                }
            }
            DecoderEvent::Anomaly { kind, detail } => {
                self.anomaly(ts, Some(dir), kind, detail, ctx)
            }
            // Handled by `decoder_event`.
            DecoderEvent::Frame { .. }
            | DecoderEvent::Begin { .. }
            | DecoderEvent::Data { .. }
            | DecoderEvent::End { .. } => {}
        }
    }

    fn assembler_event(
        &mut self,
        dir: Dir,
        ts: Ts,
        me: AssemblerEvent<'_>,
        close_seen: &mut bool,
        ctx: &mut Ctx<'_>,
    ) {
        match me {
            AssemblerEvent::Message(m) => {
                let st = &mut self.stats[dir.index()];
                st.messages += 1;
                if m.opcode == opcode::TEXT {
                    st.text += 1;
                } else {
                    st.binary += 1;
                }
                st.bytes += m.len;
                st.wire_bytes += m.wire_len;
                let Some(conn) = self.conn else { return };
                let text = m.opcode == opcode::TEXT;
                let (status, undecodable_reason) = match m.status {
                    MessageStatus::Complete => ("complete", None),
                    MessageStatus::Truncated => ("truncated", None),
                    MessageStatus::Incomplete => ("incomplete", None),
                    MessageStatus::Undecodable(why) => ("undecodable", Some(why)),
                };
                let has_data =
                    matches!(m.status, MessageStatus::Complete | MessageStatus::Truncated);
                let (preview, payload, payload_encoding) = match (ctx.cfg.payloads, has_data) {
                    (PayloadMode::Preview, true) => (
                        Some(preview(m.data, text, ctx.cfg.limits.preview_bytes)),
                        None,
                        None,
                    ),
                    (PayloadMode::Full, true) => {
                        let (p, enc) = full_payload(m.data, text);
                        (None, Some(p), Some(enc))
                    }
                    _ => (None, None, None),
                };
                let size = preview
                    .as_ref()
                    .or(payload.as_ref())
                    .map_or(0, |p| p.len() as u64);
                let capped = !ctx.held.take(size);
                let (preview, payload, payload_encoding) = if capped {
                    (None, None, None)
                } else {
                    self.payload_held += size;
                    (preview, payload, payload_encoding)
                };
                ctx.out.push(Event::Message(MessageEvent {
                    conn,
                    ts,
                    dir,
                    kind: if text { "text" } else { "binary" },
                    len: m.len,
                    wire_len: m.wire_len,
                    frames: m.frames,
                    compressed: m.compressed,
                    status,
                    undecodable_reason,
                    utf8_valid: m.utf8_valid,
                    history_reset: m.history_reset,
                    preview,
                    payload,
                    payload_encoding,
                }));
                if capped && !std::mem::replace(&mut self.payload_cap_reported, true) {
                    let detail = format!(
                        "payloads held for open connections reached {} bytes; this \
                         connection's later messages are listed without payload",
                        ctx.held.max
                    );
                    self.anomaly(ts, Some(dir), "payload_memory_cap", detail, ctx);
                }
            }
            AssemblerEvent::Control { header, payload } => {
                self.control(dir, ts, &header, payload, close_seen, ctx)
            }
            AssemblerEvent::Anomaly { kind, detail } => {
                self.anomaly(ts, Some(dir), kind, detail, ctx)
            }
        }
    }

    fn control(
        &mut self,
        dir: Dir,
        ts: Ts,
        header: &FrameHeader,
        payload: &[u8],
        close_seen: &mut bool,
        ctx: &mut Ctx<'_>,
    ) {
        let len = header.payload_len;
        match header.opcode {
            opcode::PING => {
                self.stats[dir.index()].pings += 1;
                let id = self.next_ping_id;
                self.next_ping_id = next_ping_id(id);
                let q = &mut self.pings[dir.index()];
                if q.len() >= MAX_PENDING_PINGS {
                    q.pop_front();
                }
                q.push_back(PendingPing {
                    id,
                    ts,
                    payload: payload.to_vec(),
                });
                if let Some(conn) = self.conn {
                    ctx.out.push(Event::Ping(PingEvent {
                        conn,
                        ts,
                        dir,
                        len,
                        ping_id: id,
                    }));
                }
            }
            opcode::PONG => {
                self.stats[dir.index()].pongs += 1;
                // A pong answers a ping from the other side with the same payload (RFC 6455 §5.5.3).
                let q = &mut self.pings[dir.flip().index()];
                let matched = q
                    .iter()
                    .position(|p| p.payload == payload)
                    .and_then(|i| q.remove(i));
                if let Some(conn) = self.conn {
                    ctx.out.push(Event::Pong(PongEvent {
                        conn,
                        ts,
                        dir,
                        len,
                        ping_id: matched.as_ref().map(|p| p.id),
                        rtt_ms: matched.as_ref().map(|p| ts.millis_since(p.ts)),
                    }));
                }
            }
            opcode::CLOSE => {
                let close = coding::parse_close(payload);
                if *close_seen {
                    self.anomaly(
                        ts,
                        Some(dir),
                        "close_after_close",
                        "a second close frame from the same side".into(),
                        ctx,
                    );
                }
                *close_seen = true;
                if close.one_byte {
                    self.anomaly(
                        ts,
                        Some(dir),
                        "close_payload_one_byte",
                        "close frame with a 1-byte payload (RFC 6455 §5.5.1)".into(),
                        ctx,
                    );
                }
                if !close.reason_utf8 {
                    self.anomaly(
                        ts,
                        Some(dir),
                        "invalid_utf8_close_reason",
                        "close reason is not valid UTF-8".into(),
                        ctx,
                    );
                }
                if let Some(code) = close.code
                    && matches!(
                        coding::close_code_class(code),
                        coding::CloseClass::NotOnWire | coding::CloseClass::Invalid
                    )
                {
                    self.anomaly(
                        ts,
                        Some(dir),
                        "close_code_not_allowed",
                        format!("close code {code} must not be sent (RFC 6455 §7.4)"),
                        ctx,
                    );
                }
                let Some(conn) = self.conn else { return };
                let ev = CloseEvent {
                    conn,
                    ts,
                    dir,
                    code: close.code,
                    name: close.code.and_then(coding::close_code_name),
                    reason: close.reason,
                };
                self.closes.push(ev.clone());
                ctx.out.push(Event::Close(ev));
            }
            _ => {}
        }
    }

    /// The connection is over (or the capture is): its summary, if it was WebSocket. Called
    /// once, as the flow goes: what the summary carries is moved out, not copied.
    pub fn end(&mut self, ts: Ts, ended_by: &'static str, tcp: &TcpStats) -> Option<ConnectionEnd> {
        let conn = self.conn?;
        let ended =
            [Dir::C2s, Dir::S2c].map(|d| self.fins.iter().chain(&self.rsts).any(|m| m.dir == d));
        let tls = self.tls.as_ref().map(|t| t.info(ended));
        // An upgrade request that never got an answer is still the connection's handshake.
        let unanswered = self.pending.iter_mut().rev().find_map(|p| p.upgrade.take());
        if let Some(upgrade) = unanswered {
            let (request, req_ts) = *upgrade;
            self.handshake = Some(Box::new(build_handshake(
                Some((request, req_ts)),
                None,
                req_ts,
            )));
        }
        let (c, s) = if self.flipped { (1, 0) } else { (0, 1) };
        let ttl = |i: usize| TtlRange {
            min: tcp.ttl[i].min,
            max: tcp.ttl[i].max,
        };
        let end_ts = [self.stats[0].last_packet_ts, self.stats[1].last_packet_ts]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(ts);
        let (syn_ts, synack_ts) = if self.flipped {
            (tcp.synack_ts, tcp.syn_ts)
        } else {
            (tcp.syn_ts, tcp.synack_ts)
        };
        Some(ConnectionEnd {
            conn,
            ts,
            client: self.client.to_string(),
            server: self.server.to_string(),
            start_ts: self.start_ts,
            end_ts,
            ended_by,
            handshake_seen: self.handshake_seen,
            handshake: self.handshake.take().map(|h| *h),
            upgrade_attempts: self.upgrade_attempts,
            c2s: self.stats[0].clone(),
            s2c: self.stats[1].clone(),
            close: std::mem::take(&mut self.closes),
            tcp: TcpSummary {
                syn_ts,
                synack_ts,
                fin: std::mem::take(&mut self.fins),
                rst: std::mem::take(&mut self.rsts),
                gaps: std::mem::take(&mut self.gaps),
                retransmissions: tcp.retransmissions[0] + tcp.retransmissions[1],
                out_of_order: tcp.out_of_order[0] + tcp.out_of_order[1],
                ttl_c2s: ttl(c),
                ttl_s2c: ttl(s),
            },
            anomaly_count: self.anomalies,
            tls,
            diagnosis: None,
        })
    }
}

/// Whether `bytes` (the first chunk of a direction, picked up mid-stream) is a run of whole,
/// plausible WebSocket frames; `Some(masked)` says whether they were masked (client frames).
///
/// Exactly covering the chunk is what makes random binary protocols unlikely to pass.
fn plausible_frames(bytes: &[u8]) -> Option<bool> {
    let mut rest = bytes;
    let mut masked = None;
    let mut frames = 0;
    // Whether a fragmented message is open within the chunk: continuations must follow a
    // FIN=0 data frame and a new data frame must not, so a chunk that starts with a
    // continuation is not accepted (random bytes often parse as one).
    let mut fragmented = false;
    while !rest.is_empty() {
        let h = frame::parse_header(rest).ok()?;
        if h.rsv & 0b011 != 0 || !matches!(h.opcode, 0 | 1 | 2 | 8 | 9 | 10) {
            return None;
        }
        if !h.is_control() {
            if (h.opcode == opcode::CONTINUATION) != fragmented {
                return None;
            }
            fragmented = !h.fin;
        }
        if h.is_control() && (!h.fin || h.payload_len > 125) {
            return None;
        }
        if *masked.get_or_insert(h.mask.is_some()) != h.mask.is_some() {
            return None;
        }
        let total = u64::from(h.header_len).checked_add(h.payload_len)?;
        let total = usize::try_from(total).ok()?;
        let payload = rest.get(usize::from(h.header_len)..total)?;
        if h.opcode == opcode::TEXT
            && h.fin
            && !h.rsv1()
            && h.mask.is_none()
            && simdutf8::basic::from_utf8(payload).is_err()
        {
            return None;
        }
        rest = &rest[total..];
        frames += 1;
    }
    if frames == 0 { None } else { masked }
}

/// The handshake record from the request (when captured) and the response (when there was one).
/// The request is moved in: its headers become the record's without a copy.
fn build_handshake(request: Option<(Request, Ts)>, resp: Option<&Response>, ts: Ts) -> Handshake {
    let mut hs = Handshake::default();
    if let Some(resp) = resp {
        hs.response_ts = Some(ts);
        hs.status = Some(resp.status);
        hs.reason = Some(resp.reason.clone());
        hs.response_headers = resp.headers.clone();
        hs.subprotocol = resp.header("sec-websocket-protocol").map(str::to_owned);
        hs.extensions = resp.header("sec-websocket-extensions").map(str::to_owned);
    }
    if let Some((req, req_ts)) = request {
        hs.request_ts = Some(req_ts);
        hs.host = req.header("host").map(str::to_owned);
        hs.origin = req.header("origin").map(str::to_owned);
        hs.user_agent = req.header("user-agent").map(str::to_owned);
        hs.version = req.header("sec-websocket-version").map(str::to_owned);
        hs.subprotocols_offered = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|(_, v)| v.split(','))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        let offered: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
            .map(|(_, v)| v.as_str())
            .collect();
        if !offered.is_empty() {
            hs.extensions_offered = Some(offered.join(", "));
        }
        if let (Some(key), Some(accept)) = (
            req.header("sec-websocket-key"),
            resp.and_then(|r| r.header("sec-websocket-accept")),
        ) {
            hs.accept_valid = Some(http::accept_for_key(key.trim()) == accept.trim());
        }
        hs.method = Some(req.method);
        hs.path = Some(req.path);
        hs.request_headers = req.headers;
    }
    hs.permessage_deflate = hs.extensions.as_deref().and_then(|v| {
        http::parse_extensions(v)
            .into_iter()
            .find(|e| e.name.eq_ignore_ascii_case("permessage-deflate"))
            .and_then(|e| http::deflate_params(&e).ok())
    });
    hs.accepted = hs.status == Some(101);
    hs
}

/// RFC 6455 §4 checks on an upgrade exchange, as (kind, detail) anomalies.
fn handshake_problems(hs: &Handshake) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if hs.request_ts.is_some() {
        if hs.method.as_deref() != Some("GET") {
            out.push((
                "upgrade_not_get",
                format!(
                    "upgrade request uses {}",
                    hs.method.as_deref().unwrap_or("?")
                ),
            ));
        }
        if !http::has_token(&hs.request_headers, "upgrade", "websocket") {
            out.push((
                "request_missing_upgrade",
                format!(
                    "request Upgrade header is {:?}",
                    http::header(&hs.request_headers, "upgrade")
                ),
            ));
        }
        if !http::has_token(&hs.request_headers, "connection", "upgrade") {
            out.push((
                "request_missing_connection_upgrade",
                "request Connection header lacks the upgrade token".into(),
            ));
        }
        if http::header(&hs.request_headers, "sec-websocket-key").is_none() {
            out.push(("missing_key", "no Sec-WebSocket-Key in the request".into()));
        }
        if hs.version.as_deref().map(str::trim) != Some("13") {
            out.push((
                "unsupported_version",
                format!("Sec-WebSocket-Version is {:?}", hs.version),
            ));
        }
    }
    if !hs.accepted {
        return out;
    }
    if !http::has_token(&hs.response_headers, "upgrade", "websocket") {
        out.push((
            "response_missing_upgrade",
            "101 response without Upgrade: websocket".into(),
        ));
    }
    if !http::has_token(&hs.response_headers, "connection", "upgrade") {
        out.push((
            "response_missing_connection_upgrade",
            "101 response without Connection: upgrade".into(),
        ));
    }
    match (
        hs.accept_valid,
        http::header(&hs.response_headers, "sec-websocket-accept"),
    ) {
        (Some(false), found) => {
            let expected = http::header(&hs.request_headers, "sec-websocket-key")
                .map(|k| http::accept_for_key(k.trim()));
            out.push((
                "wrong_accept",
                format!("Sec-WebSocket-Accept is {found:?}, expected {expected:?}"),
            ));
        }
        (None, None) if hs.request_ts.is_some() => out.push((
            "missing_accept",
            "101 response without Sec-WebSocket-Accept".into(),
        )),
        _ => {}
    }
    if let Some(chosen) = &hs.subprotocol
        && hs.request_ts.is_some()
        && !hs.subprotocols_offered.iter().any(|p| p == chosen)
    {
        out.push((
            "subprotocol_not_offered",
            format!(
                "server chose {chosen:?}, client offered {:?}",
                hs.subprotocols_offered
            ),
        ));
    }
    if let Some(accepted) = &hs.extensions
        && hs.request_ts.is_some()
    {
        let offered: Vec<String> = hs
            .extensions_offered
            .as_deref()
            .map(|v| {
                http::parse_extensions(v)
                    .into_iter()
                    .map(|e| e.name.to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        for ext in http::parse_extensions(accepted) {
            if !offered.contains(&ext.name.to_ascii_lowercase()) {
                out.push((
                    "extension_not_offered",
                    format!(
                        "server accepted {:?}, which the client did not offer",
                        ext.name
                    ),
                ));
            }
            if ext.name.eq_ignore_ascii_case("permessage-deflate")
                && let Err(e) = http::deflate_params(&ext)
            {
                out.push(("deflate_params_invalid", e));
            }
        }
    }
    out
}

/// The printable start of a payload: text up to a character boundary, binary as hex.
fn preview(data: &[u8], text: bool, max: usize) -> String {
    if text {
        let cut = &data[..data.len().min(max)];
        let s = match simdutf8::compat::from_utf8(cut) {
            Ok(s) => s.to_owned(),
            Err(e) if e.error_len().is_none() => {
                String::from_utf8_lossy(&cut[..e.valid_up_to()]).into_owned()
            }
            Err(_) => String::from_utf8_lossy(cut).into_owned(),
        };
        if data.len() > max { s + "…" } else { s }
    } else {
        let n = data.len().min(max / 2);
        let mut s = hex::encode(&data[..n]);
        if data.len() > n {
            s.push('…');
        }
        s
    }
}

/// Whether parsing the head at the start of `buf` can give something new since it was last
/// found unfinished at `partial_at` bytes: a first look, a blank line among the bytes added since
/// (a head ends with one), or the cap reached. Without this, a long head arriving in small
/// segments is rescanned from its start on every segment, quadratic in its length. Resets
/// `partial_at` when the answer is yes, so a drained buffer is always looked at.
fn head_may_be_complete(buf: &[u8], partial_at: &mut usize, max_head: usize) -> bool {
    let seen = std::mem::take(partial_at);
    if seen == 0 || seen > buf.len() || buf.len() >= max_head {
        return true;
    }
    // Two bytes of overlap: the blank line may straddle the old end.
    let new = buf.get(seen.saturating_sub(2)..).unwrap_or_default();
    if memchr::memmem::find(new, b"\n\n").is_some()
        || memchr::memmem::find(new, b"\n\r\n").is_some()
    {
        return true;
    }
    *partial_at = seen;
    false
}

/// The whole payload: valid UTF-8 text as a string, anything else as base64.
fn full_payload(data: &[u8], text: bool) -> (String, PayloadEncoding) {
    if text && let Ok(s) = simdutf8::basic::from_utf8(data) {
        return (s.to_owned(), PayloadEncoding::Text);
    }
    (
        base64::engine::general_purpose::STANDARD.encode(data),
        PayloadEncoding::Base64,
    )
}

/// The ping id after `id`: 1, 2, … up to `u32::MAX - 1`, then 1 again. Ids stay unique among
/// the pings a pong can still answer (a few dozen), and `u32::MAX` is left free for sinks that
/// need a "no ping" value.
fn next_ping_id(id: u32) -> u32 {
    if id >= u32::MAX - 1 { 1 } else { id + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_ids_wrap_to_one_and_never_take_the_last_value() {
        assert_eq!(next_ping_id(1), 2);
        assert_eq!(next_ping_id(u32::MAX - 2), u32::MAX - 1);
        assert_eq!(next_ping_id(u32::MAX - 1), 1);
        assert_eq!(next_ping_id(u32::MAX), 1);
    }

    #[test]
    fn previews_cut_binary_as_hex_and_text_at_a_character_boundary() {
        assert_eq!(preview(&[0xde, 0xad, 0xbe, 0xef], false, 120), "deadbeef");
        assert_eq!(preview(&[0xde, 0xad, 0xbe, 0xef], false, 4), "dead…");
        // "é" is two bytes: a cut after its first byte must not leave half a character.
        assert_eq!(preview("aé".as_bytes(), true, 2), "a…");
        assert_eq!(preview("aé".as_bytes(), true, 3), "aé");
        let (p, enc) = full_payload(&[0xff, 0x00], true);
        assert_eq!(
            (p.as_str(), matches!(enc, PayloadEncoding::Base64)),
            ("/wA=", true)
        );
    }

    #[test]
    fn head_is_parsed_again_only_when_it_can_be_complete() {
        let mut at = 0;
        let mut buf = b"GET / HTTP/1.1\r\nHost: a".to_vec();
        // A first look always parses; the caller then records where the head was unfinished.
        assert!(head_may_be_complete(&buf, &mut at, 1000));
        at = buf.len();
        buf.extend_from_slice(b"aaaa\r\nX: y");
        assert!(!head_may_be_complete(&buf, &mut at, 1000));
        assert_eq!(at, buf.len() - 10, "the unfinished length is kept");
        // The blank line straddles the previous end.
        at = buf.len();
        buf.extend_from_slice(b"\r\n");
        assert!(!head_may_be_complete(&buf, &mut at, 1000));
        at = buf.len();
        buf.extend_from_slice(b"\r\n");
        assert!(head_may_be_complete(&buf, &mut at, 1000));
        assert_eq!(at, 0);
        // Bare LF heads, and the cap, count too.
        let mut at = 3;
        assert!(head_may_be_complete(b"GET\n\n", &mut at, 1000));
        let mut at = 3;
        assert!(head_may_be_complete(b"GET xx", &mut at, 6));
        // A buffer shorter than recorded was drained: look again.
        let mut at = 50;
        assert!(head_may_be_complete(b"GET", &mut at, 1000));
    }

    #[test]
    fn held_payload_takes_what_fits_and_releases() {
        let mut h = HeldPayload::new(10);
        assert!(h.take(6));
        assert!(!h.take(5));
        assert!(h.take(4));
        assert_eq!(h.used(), 10);
        h.release(6);
        assert!(h.take(5));
        assert!(!HeldPayload::new(u64::MAX - 1).take(u64::MAX));
    }
}
