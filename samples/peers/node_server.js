'use strict';
// Node `ws` server peer.
//   node node_server.js --scenario NAME --port P --host H --log FILE --ready FILE
// A plain http server with a WebSocketServer attached in noServer mode.
// The n-th connection (in arrival order) runs scenario.server.connections[n];
// the process exits once all of them have ended.

const http = require('http');
const https = require('https');
const fs = require('fs');
const { WebSocketServer } = require('ws');
const { SCENARIOS, Log, handshakeFrom, track, runSteps, args } = require('./common');

const a = args();
const sc = SCENARIOS[a.scenario].server;
// wss scenarios: TLS settings of the server (versions, cipher preference) and
// the certificate record.sh generated for this run (--tls DIR).
const tlsSettings = SCENARIOS[a.scenario].tls;
const log = new Log(a.log, 'server');
const plans = sc.connections;
let accepted = 0;
let finished = 0;

function done() {
  if (++finished === plans.length) {
    log.flush();
    server.close();
    setTimeout(() => process.exit(0), 100);
  }
}

// Plain HTTP requests (the keep-alive scenario, the browser page).
const handler = (req, res) => {
  if (req.method === 'POST' && req.url === '/result') {
    // The browser page posts its own event log here (chromium scenario).
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      fs.writeFileSync(a.log.replace(/server\.json$/, 'client.json'), body);
      res.end('ok\n');
      done();
    });
    return;
  }
  if (req.url.startsWith('/page') && sc.page) {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(fs.readFileSync(__dirname + '/' + sc.page));
    return;
  }
  const body = 'plain HTTP response before the upgrade\n';
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
};
const server = tlsSettings
  ? https.createServer(
      {
        key: fs.readFileSync(a.tls + '/key.pem'),
        cert: fs.readFileSync(a.tls + '/cert.pem'),
        minVersion: tlsSettings.version,
        maxVersion: tlsSettings.version,
        ...(tlsSettings.ciphers ? { ciphers: tlsSettings.ciphers } : {})
      },
      handler
    )
  : http.createServer(handler);
server.keepAliveTimeout = 10000;

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: sc.perMessageDeflate ?? false,
  handleProtocols: (protocols) => {
    for (const p of sc.protocols || []) if (protocols.has(p)) return p;
    return false;
  },
  // Rejections go through ws's own verifyClient path (status + headers).
  verifyClient: (info, cb) => {
    const plan = plans[accepted] || {};
    info.req.plan = plan;
    info.req.index = accepted++;
    if (!plan.reject) return cb(true);
    const sock = info.req.socket;
    log.record({
      client_port: sock.remotePort,
      server_port: sock.localPort,
      ip: sock.localAddress,
      path: info.req.url,
      handshake: { status: plan.reject.status, subprotocol: null, extensions: null },
      rejected: true
    });
    cb(false, plan.reject.status, plan.reject.message, plan.reject.headers);
    done();
  }
});

// Remember what we answered, to log it as this side's handshake.
wss.on('headers', (headers, req) => {
  const get = (name) => {
    const line = headers.find((h) => h.toLowerCase().startsWith(name + ':'));
    return line ? line.slice(name.length + 1).trim() : null;
  };
  req.handshake = handshakeFrom(Number(headers[0].split(' ')[1]), get);
});

server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', async (ws, req) => {
  const sock = req.socket;
  const rec = log.record({
    client_port: sock.remotePort,
    server_port: sock.localPort,
    ip: sock.localAddress,
    path: req.url,
    handshake: req.handshake
  });
  if (sock.getProtocol) rec.tls = { version: sock.getProtocol(), cipher: sock.getCipher().standardName };
  const conn = track(ws, rec, log, { deflate: sc.perMessageDeflate });
  await runSteps(conn, req.plan.steps || []);
  if (!sc.page) done(); // with a page, the browser's POST ends the run
});

server.listen(Number(a.port), a.host, () => {
  if (a.ready) fs.writeFileSync(a.ready, 'ready\n');
});

// Never hang a recording.
setTimeout(() => {
  log.flush();
  process.exit(2);
}, Number(a.timeout || 30000)).unref();
