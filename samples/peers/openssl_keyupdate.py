"""TLS 1.3 KeyUpdate peers: `openssl s_server` and `openssl s_client`, driven through their
standard input, speak WebSocket over TLS 1.3 and update their keys mid-connection (s_server's
`K` command: update and ask the client to update too; s_client's `k`: update again). Neither
Node nor Python exposes KeyUpdate, OpenSSL's own tools do.

    python openssl_keyupdate.py --scenario NAME --port P --host H --tls DIR --logdir DIR

Writes DIR/NAME.client.json and DIR/NAME.server.json in the peers' log format (what each side
sent is what this driver wrote to it; the frames use a zero masking key so they can be typed
in) and DIR/NAME.{server,client}.keys (both tools' -keylogfile).
"""

import argparse
import hashlib
import json
import subprocess
import time

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key ...
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # ... and its accept value


def main():
    p = argparse.ArgumentParser()
    for a in ("scenario", "port", "host", "tls", "logdir"):
        p.add_argument("--" + a)
    a = p.parse_args()
    base = f"{a.logdir}/{a.scenario}"
    srv = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"{a.host}:{a.port}", "-cert", f"{a.tls}/cert.pem",
         "-key", f"{a.tls}/key.pem", "-tls1_3", "-keylogfile", f"{base}.server.keys",
         "-naccept", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    cli = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"{a.host}:{a.port}", "-servername", "localhost",
         "-tls1_3", "-keylogfile", f"{base}.client.keys"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)

    def write(proc, data):
        proc.stdin.write(data)
        proc.stdin.flush()
        time.sleep(0.3)  # one read() per chunk on the other end of the pipe

    sent = {"client": [], "server": []}

    def text(role, payload):
        sent[role].append({"type": "text", "len": len(payload),
                           "sha256": hashlib.sha256(payload).hexdigest(),
                           "fragments": 1, "compressed": False})
        if role == "client":
            write(cli, bytes([0x81, 0x80 | len(payload), 0, 0, 0, 0]) + payload)
        else:
            write(srv, bytes([0x81, len(payload)]) + payload)

    write(cli, (f"GET /keyupdate HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    write(srv, (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n").encode())
    # s_client does not say its local port; the kernel does (the truth pairs by ports).
    ss = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{a.port} )"],
                        capture_output=True, text=True).stdout.split()
    client_port = int(ss[2].rsplit(":", 1)[1]) if len(ss) >= 3 else None
    text("client", b"before update")
    text("server", b"server before")
    write(srv, b"K\n")  # KeyUpdate with update_requested: both sides move on
    text("client", b"after update")
    text("server", b"server after")
    write(cli, b"k\n")  # the client alone updates once more
    text("client", b"after second update")
    text("server", b"server last")
    write(cli, bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]))  # close 1000, masked (zero key)
    write(srv, bytes([0x88, 0x02, 0x03, 0xE8]))
    cli.stdin.close()  # s_client ends its session (close_notify) at end of input
    time.sleep(0.5)
    srv.stdin.close()
    time.sleep(0.5)
    for proc in (cli, srv):
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.split()[1]
    for role, other in (("client", "server"), ("server", "client")):
        rec = {
            "role": role, "client_port": client_port, "server_port": int(a.port), "ip": a.host,
            "path": "/keyupdate", "impl": f"openssl s_{role} {version}",
            "handshake": {"status": 101, "subprotocol": None, "extensions": None},
            "sent": sent[role],
            # The tools print what they receive but do not parse frames: the other side's
            # writes, which tshark's decryption confirms (verify.py).
            "received": [{k: m[k] for k in ("type", "len", "sha256")} for m in sent[other]],
            "pings_sent": [], "pongs_received": 0,
            "close": {"code": 1000, "reason": "", "was_clean": True},
            "tls": {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384"},
        }
        with open(f"{base}.{role}.json", "w", encoding="utf-8") as f:
            json.dump([rec], f, indent=1)


if __name__ == "__main__":
    main()
