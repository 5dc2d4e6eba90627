'use strict';
// Shared helpers for the Node peers: deterministic payloads, the per-side
// event log, and the small step interpreter both peers run on a connection.
// common.py implements the same payload generator, byte for byte.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const WS_VERSION = require('ws/package.json').version;
const IMPL = `node-ws ${WS_VERSION}`;

// `--scenarios FILE` reads another scenario file (the live-capture test writes its own).
const SCENARIOS = JSON.parse(
  fs.readFileSync(args().scenarios || path.join(__dirname, 'scenarios.json'), 'utf8')
);

// --- deterministic payloads ------------------------------------------------
// 32-bit LCG (Numerical Recipes constants): trivial to reproduce in Python.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

const WORDS = ('alpha bravo charlie delta echo foxtrot golf hotel india juliet ' +
  'kilo lima mike november oscar papa quebec romeo sierra tango uniform ' +
  'victor whiskey xray yankee zulu').split(' ');

function words(next, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(WORDS[next() % WORDS.length]);
  return out.join(' ');
}

// spec: {text: "literal"} | {text_len: N, seed: S} | {binary_len: N, seed: S}
//     | {json: SEQ}
// Returns {type: 'text'|'binary', data: Buffer} (text is UTF-8 bytes).
function makePayload(spec) {
  if (spec.text !== undefined) {
    return { type: 'text', data: Buffer.from(spec.text, 'utf8') };
  }
  if (spec.text_len !== undefined) {
    const next = rng(spec.seed);
    let s = '';
    while (s.length < spec.text_len) s += words(next, 8) + '\n';
    return { type: 'text', data: Buffer.from(s.slice(0, spec.text_len), 'ascii') };
  }
  if (spec.binary_len !== undefined) {
    const next = rng(spec.seed);
    const b = Buffer.alloc(spec.binary_len);
    for (let i = 0; i < b.length; i++) b[i] = next() >>> 24;
    return { type: 'binary', data: b };
  }
  if (spec.json !== undefined) {
    // Similar chat-like JSON messages: good material for context takeover.
    const seq = spec.json;
    const next = rng(1000 + seq);
    const msg = {
      type: 'chat.message',
      seq,
      room: 'lobby',
      user: `user-${seq % 3}`,
      ts: 1700000000 + seq * 7,
      text: words(next, 12),
      tags: ['sample', 'wsinspect']
    };
    return { type: 'text', data: Buffer.from(JSON.stringify(msg), 'utf8') };
  }
  throw new Error('bad payload spec ' + JSON.stringify(spec));
}

function sha256(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex');
}

// --- log -----------------------------------------------------------------
// One JSON file per process holding one record per connection. It is
// rewritten after every event so that a peer killed with SIGKILL still
// leaves what it saw up to that point.
class Log {
  constructor(file, role) {
    this.file = file;
    this.role = role;
    this.records = [];
  }
  record(fields) {
    const r = {
      role: this.role,
      client_port: null,
      server_port: null,
      ip: null,
      path: null,
      impl: IMPL,
      handshake: null,
      sent: [],
      received: [],
      pings_sent: [],
      pongs_received: 0,
      close: null,
      ...fields
    };
    this.records.push(r);
    this.flush();
    return r;
  }
  flush() {
    fs.writeFileSync(this.file, JSON.stringify(this.records, null, 1));
  }
}

// Parse a handshake response's header lines into the truth-file shape.
function handshakeFrom(status, get) {
  return {
    status,
    subprotocol: get('sec-websocket-protocol') || null,
    extensions: get('sec-websocket-extensions') || null
  };
}

// --- connection wrapper and step interpreter --------------------------------
// Hooks a ws WebSocket so that its events land in `rec`; returns an object
// the steps use. `opts.deflate` is the perMessageDeflate option this side
// used (for predicting whether a sent message is compressed).
function track(ws, rec, log, opts = {}) {
  const conn = { ws, rec, log, closed: false, waiters: [], opts };
  const poke = () => {
    conn.waiters = conn.waiters.filter((w) => !w());
  };
  ws.on('message', (data, isBinary) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    rec.received.push({ type: isBinary ? 'binary' : 'text', len: buf.length, sha256: sha256(buf) });
    log.flush();
    poke();
  });
  ws.on('pong', () => {
    rec.pongs_received++;
    conn.lastPong = Date.now();
    log.flush();
    poke();
  });
  ws.on('error', (err) => {
    // e.g. "read ECONNRESET" when the peer's kernel resets the connection
    rec.error = err.message;
    log.flush();
  });
  // The EventTarget-style close event is the one carrying wasClean
  // (true when a close frame was both sent and received).
  ws.addEventListener('close', (ev) => {
    rec.close = { code: ev.code, reason: ev.reason, was_clean: ev.wasClean };
    conn.closed = true;
    if (conn.heartbeat) clearInterval(conn.heartbeat);
    log.flush();
    poke();
  });
  conn.waitFor = (pred) =>
    new Promise((resolve) => {
      const w = () => {
        if (pred() || conn.closed) {
          resolve();
          return true;
        }
        return false;
      };
      if (!w()) conn.waiters.push(w);
    });
  return conn;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function willCompress(conn, len, compressOpt) {
  // ws compresses every data message once permessage-deflate is negotiated,
  // unless send(..., {compress: false}); `threshold` only applies to a side
  // that uses no context takeover.
  const pmd = conn.ws._extensions['permessage-deflate'];
  if (!pmd || compressOpt === false) return false;
  const noTakeover = pmd.params[pmd._isServer ? 'server_no_context_takeover' : 'client_no_context_takeover'];
  const threshold = (conn.opts.deflate && conn.opts.deflate.threshold) ?? 1024;
  return noTakeover ? len >= threshold : true;
}

async function runSteps(conn, steps) {
  const { ws, rec, log } = conn;
  for (const step of steps) {
    if (conn.closed && !step.sleep) break;
    if (step.send) {
      const p = makePayload(step.send);
      const entry = { type: p.type, len: p.data.length, sha256: sha256(p.data), fragments: 1,
        compressed: willCompress(conn, p.data.length, step.compress) };
      const o = { binary: p.type === 'binary' };
      if (step.compress === false) o.compress = false;
      ws.send(p.type === 'text' ? p.data.toString('utf8') : p.data, o);
      rec.sent.push(entry);
    } else if (step.fragments) {
      // One message sent as several frames; optionally a ping after
      // fragment number `ping_after` (0-based), i.e. between fragments.
      const parts = step.fragments.map(makePayload);
      const whole = Buffer.concat(parts.map((x) => x.data));
      const type = parts[0].type;
      const entry = { type, len: whole.length, sha256: sha256(whole), fragments: parts.length,
        compressed: willCompress(conn, parts[0].data.length, step.compress) };
      parts.forEach((x, i) => {
        const o = { binary: type === 'binary', fin: i === parts.length - 1 };
        if (step.compress === false) o.compress = false;
        ws.send(x.data, o);
        if (step.ping_after === i) {
          const pd = Buffer.from(step.ping_data || 'mid');
          ws.ping(pd);
          rec.pings_sent.push({ len: pd.length });
        }
      });
      rec.sent.push(entry);
    } else if (step.ping !== undefined) {
      const pd = Buffer.from(step.ping);
      ws.ping(pd);
      rec.pings_sent.push({ len: pd.length });
    } else if (step.expect !== undefined) {
      await conn.waitFor(() => rec.received.length >= step.expect);
    } else if (step.wait_pongs !== undefined) {
      await conn.waitFor(() => rec.pongs_received >= step.wait_pongs);
    } else if (step.sleep) {
      await sleep(step.sleep);
    } else if (step.wait_file) {
      // Hold the connection open until this file exists (the live-capture test opens the gate
      // once it has seen the first events).
      while (!fs.existsSync(step.wait_file) && !conn.closed) await sleep(20);
    } else if (step.close) {
      ws.close(step.close, step.reason);
    } else if (step.terminate) {
      ws.terminate(); // destroys the socket: no close frame
    } else if (step.pause) {
      ws.pause(); // stop reading the socket (so no pongs go out either)
    } else if (step.stop_reading) {
      // Stop reading at the libuv level so new data stays in the kernel's
      // receive queue (ws.pause() alone still lets Node buffer incoming
      // data). Closing a socket with unread data makes the kernel send RST.
      ws._socket._handle.readStop();
    } else if (step.resume) {
      ws.resume();
    } else if (step.heartbeat) {
      // The heartbeat from the ws README: ping every interval, terminate
      // when the previous ping got no pong.
      conn.alive = true;
      ws.on('pong', () => (conn.alive = true));
      conn.heartbeat = setInterval(() => {
        if (!conn.alive) {
          rec.heartbeat_terminated = true;
          ws.terminate();
          return;
        }
        conn.alive = false;
        ws.ping();
        rec.pings_sent.push({ len: 0 });
        log.flush();
      }, step.heartbeat);
    } else if (step.sigkill) {
      rec.killed = 'SIGKILL'; // this log ends here: no close event follows
      log.flush();
      process.kill(process.pid, 'SIGKILL');
    } else {
      throw new Error('unknown step ' + JSON.stringify(step));
    }
    log.flush();
  }
  // Whatever the steps did, a connection ends with its close event.
  await conn.waitFor(() => false);
}

function args() {
  // --key value pairs
  const a = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  return a;
}

module.exports = { IMPL, SCENARIOS, makePayload, sha256, Log, handshakeFrom, track, runSteps, sleep, args };
