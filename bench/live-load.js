'use strict';
// Loopback WebSocket load for bench/live-load.sh: one ws server and CONNS ws clients on
// 127.0.0.1; every client and every server-side socket sends binary messages of SIZE bytes as
// fast as the socket drains, for SECONDS, then the clients close with 1000. Prints one JSON
// line with what was sent and received.
//
//   node bench/live-load.js --port P [--conns 4] [--size 1024] [--seconds 30] [--deflate 0]
//
// Uses the `ws` library of samples/peers (npm ci there). Only loopback addresses; it stops by
// itself after SECONDS (+ at most 10 s for the closes; `unclosed` counts the connections whose
// close handshake had not finished by then).

const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'samples', 'peers', 'node_modules', 'ws'));

function args() {
  const a = { conns: '4', size: '1024', seconds: '30', deflate: '0' };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  return a;
}

const a = args();
const port = Number(a.port);
const conns = Number(a.conns);
const size = Number(a.size);
const seconds = Number(a.seconds);
const deflate = a.deflate === '1' ? { threshold: 0 } : false;
if (!port || !conns || !size || !seconds) {
  console.error('usage: node live-load.js --port P [--conns N] [--size BYTES] [--seconds S] [--deflate 0|1]');
  process.exit(2);
}

// Kept below this many bytes queued per socket, the sender never outruns the kernel.
const HIGH_WATER = 64 << 10;
const payload = Buffer.alloc(size);
for (let i = 0; i < size; i++) payload[i] = (i * 131 + 7) & 0xff;

const totals = { sent_messages: 0, sent_bytes: 0, received_messages: 0, received_bytes: 0 };
let stopping = false;
let opened = 0;
const sockets = []; // both ends of every connection

// Sends while the socket's queue is short; resumes when ws has flushed.
function pump(ws) {
  const go = () => {
    if (stopping || ws.readyState !== WebSocket.OPEN) return;
    while (ws.bufferedAmount < HIGH_WATER) {
      ws.send(payload, { binary: true });
      totals.sent_messages++;
      totals.sent_bytes += size;
    }
    setImmediate(go);
  };
  go();
}

function count(ws) {
  ws.on('message', (data) => {
    totals.received_messages++;
    totals.received_bytes += data.length;
  });
}

const wss = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate: deflate }, () => {
  const clients = [];
  for (let i = 0; i < conns; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/load/${i}`, { perMessageDeflate: deflate });
    count(ws);
    sockets.push(ws);
    ws.on('open', () => {
      // Load starts once every connection is up: pumping starves the handshakes otherwise.
      if (++opened === conns) for (const s of sockets) pump(s);
    });
    ws.on('error', (e) => console.error('client:', e.message));
    clients.push(ws);
  }
  const started = Date.now();
  setTimeout(() => {
    stopping = true;
    totals.seconds = (Date.now() - started) / 1000;
    let open = clients.length;
    const report = () => {
      totals.conns = conns;
      totals.size = size;
      totals.unclosed = open;
      console.log(JSON.stringify(totals));
      process.exit(0);
    };
    const done = () => {
      if (--open === 0) report();
    };
    // A close frame waits behind every message still unread in the socket buffers; past this,
    // the run ends without it (the capture then sees those connections still open).
    setTimeout(report, 10000).unref();
    for (const ws of clients) {
      ws.on('close', done);
      ws.close(1000, 'load done');
    }
  }, seconds * 1000);
});
wss.on('connection', (ws) => {
  count(ws);
  sockets.push(ws);
});

// Never outlive the run by much.
setTimeout(() => {
  console.error('live-load: did not finish');
  process.exit(1);
}, (seconds + 20) * 1000).unref();
