'use strict';
// Node `ws` client peer.
//   node node_client.js --scenario NAME --port P --host H --log FILE
// Runs scenario.client.connections one after the other.

const fs = require('fs');
const http = require('http');
const net = require('net');
const WebSocket = require('ws');
const { SCENARIOS, Log, handshakeFrom, track, runSteps, args } = require('./common');

const a = args();
const sc = SCENARIOS[a.scenario].client;
const tlsSettings = SCENARIOS[a.scenario].tls;
const log = new Log(a.log, 'client');
const hostInUrl = a.host.includes(':') ? `[${a.host}]` : a.host;

// GET `path` on `agent` and read the whole body (keep-alive scenario).
function httpGet(agent, path) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: a.host, port: Number(a.port), path, agent }, (res) => {
        const port = res.socket.localPort;
        let len = 0;
        res.on('data', (d) => (len += d.length));
        res.on('end', () =>
          resolve({ port, info: { method: 'GET', path, status: res.statusCode, body_len: len } })
        );
      })
      .on('error', reject);
  });
}

async function one(plan) {
  const opts = { perMessageDeflate: sc.perMessageDeflate ?? false, headers: plan.headers };
  let localPort = null;
  if (plan.http_get_first) {
    // A keep-alive agent: the GET leaves its socket idle in the agent and
    // the upgrade request below is sent on that same TCP connection.
    opts.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const got = await httpGet(opts.agent, plan.http_get_first);
    localPort = got.port;
    opts.http_before_upgrade = got.info;
  } else if (tlsSettings) {
    // wss: trust the run's self-signed certificate, name the host by SNI.
    opts.ca = fs.readFileSync(a.tls + '/cert.pem');
    opts.servername = 'localhost';
  } else {
    // Same as ws's default connector; we only note the local port, which
    // is needed even when the upgrade is rejected.
    opts.createConnection = (o) => {
      o.path = o.socketPath;
      const s = net.connect(o);
      s.on('connect', () => (localPort = s.localPort));
      return s;
    };
  }
  const scheme = tlsSettings ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${hostInUrl}:${a.port}${plan.path}`, plan.protocols || [], opts);
  const rec = log.record({ server_port: Number(a.port), ip: a.host, path: plan.path });
  if (opts.http_before_upgrade) rec.http_before_upgrade = opts.http_before_upgrade;
  const conn = track(ws, rec, log, { deflate: sc.perMessageDeflate });
  // ws has no public hook for a refused upgrade's response headers; its
  // ClientRequest is ws._req until the handshake ends.
  ws._req.once('response', (res) => {
    if (res.statusCode !== 101) rec.response_headers = res.headers;
  });

  const opened = await new Promise((resolve) => {
    ws.on('upgrade', (res) => {
      rec.client_port = res.socket.localPort;
      if (tlsSettings) rec.tls = { version: res.socket.getProtocol(), cipher: res.socket.getCipher().standardName };
      rec.handshake = handshakeFrom(res.statusCode, (h) => res.headers[h]);
    });
    ws.on('open', () => resolve(true));
    ws.on('error', (err) => {
      // A rejected upgrade: ws reports "Unexpected server response: NNN".
      // (ws then also emits a close event with 1006; the truth file keeps
      // close = null since no WebSocket connection existed.)
      rec.error = err.message;
      rec.client_port = rec.client_port ?? localPort;
      const m = /Unexpected server response: (\d+)/.exec(err.message);
      if (!rec.handshake) rec.handshake = { status: m ? Number(m[1]) : null, subprotocol: null, extensions: null };
      resolve(false);
    });
  });
  if (!opened) {
    await conn.waitFor(() => false); // until ws's close event
    rec.close = null;
    log.flush();
    return;
  }
  if (plan.http_get_first && localPort !== rec.client_port) {
    rec.note = `GET used port ${localPort}, upgrade used another connection`;
  }
  await runSteps(conn, plan.steps || []);
  log.flush();
}

let finished = false;
(async () => {
  for (const plan of sc.connections) await one(plan);
  finished = true;
  process.exit(0);
})();

// An empty event loop with work left means a step waited for an event
// that never came: fail loudly instead of exiting 0.
process.on('beforeExit', () => {
  if (!finished) {
    log.flush();
    console.error('client: event loop drained before the scenario finished');
    process.exit(3);
  }
});

setTimeout(() => {
  log.flush();
  process.exit(2);
}, Number(a.timeout || 30000)).unref();
