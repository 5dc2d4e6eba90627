"""Check a capture against its truth file, independently of the peers.

    python verify.py samples/NAME.truth.json [...]

tshark only reassembles the TCP byte streams (`-z follow,tcp,raw`); the
HTTP handshake, WebSocket frames, unmasking and permessage-deflate
inflation are redone here and every message is compared with the truth
file: type, length, SHA-256, fragment count, RSV1, pings, pongs and close
codes. (tshark's own WebSocket dissector is not used for the message
contents because tshark 4.0 does not inflate a fragmented compressed
message.) Exits non-zero on any mismatch.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import zlib


def tshark(*args):
    return subprocess.run(["tshark", *args], capture_output=True, text=True, check=True).stdout


def streams(pcap, keys=None):
    """Yield (client_port, server_port, c2s_bytes, s2c_bytes) per TCP stream.

    With `keys` (an NSS key log), tshark decrypts TLS and the streams are the
    TLS plaintext (`follow,tls`): an independent check of wsinspect's own
    decryption."""
    opts = ["-o", f"tls.keylog_file:{keys}"] if keys else []
    follow = "tls" if keys else "tcp"
    ids = sorted({int(x) for x in tshark("-r", pcap, "-T", "fields", "-e", "tcp.stream").split()})
    for i in ids:
        out = tshark("-r", pcap, "-q", "-z", f"follow,tcp,raw,{i}")
        nodes = re.findall(r"^Node [01]: (.*):(\d+)$", out, re.M)
        if keys:
            out = tshark("-r", pcap, *opts, "-q", "-z", f"follow,{follow},raw,{i}")
        c2s, s2c = bytearray(), bytearray()
        body = out.split("\n")
        for line in body:
            if re.fullmatch(r"\t?[0-9a-f]+", line):
                (s2c if line.startswith("\t") else c2s).extend(bytes.fromhex(line.strip()))
        if keys and s2c.startswith(b"GET "):
            # tshark's TLS follow does not number the nodes as its TCP follow does
            c2s, s2c = s2c, c2s
        # Node 0 is the side that sent the first segment (the client).
        yield int(nodes[0][1]), int(nodes[1][1]), bytes(c2s), bytes(s2c)


def split_http(data):
    """Split leading HTTP messages off `data`; return ([(head, body)], rest)."""
    msgs = []
    while data[:4] in (b"GET ", b"HTTP"):
        end = data.index(b"\r\n\r\n") + 4
        head = data[:end].decode("latin-1")
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        msgs.append((head, data[end:end + n]))
        data = data[end + n:]
        if head.startswith("HTTP/1.1 101"):
            break
    return msgs, data


def frames(data):
    i = 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        n, j = b1 & 0x7F, i + 2
        if n == 126:
            n, j = int.from_bytes(data[j:j + 2], "big"), j + 2
        elif n == 127:
            n, j = int.from_bytes(data[j:j + 8], "big"), j + 8
        key = None
        if b1 & 0x80:
            key, j = data[j:j + 4], j + 4
        if j + n > len(data):
            break  # truncated (connection cut mid-frame)
        payload = data[j:j + n]
        if key:
            payload = bytes(b ^ key[k % 4] for k, b in enumerate(payload))
        yield {"fin": bool(b0 & 0x80), "rsv1": bool(b0 & 0x40), "opcode": b0 & 0x0F, "payload": payload}
        i = j + n


def messages(data, no_takeover):
    """Decode one direction's frames into messages and control frames."""
    out = {"msgs": [], "pings": [], "pongs": 0, "close": None}
    inflater = zlib.decompressobj(-15)
    cur = None
    for f in frames(data):
        op = f["opcode"]
        if op in (1, 2):
            cur = {"type": "text" if op == 1 else "binary", "compressed": f["rsv1"],
                   "fragments": 0, "data": b""}
        if op in (0, 1, 2):
            cur["fragments"] += 1
            cur["data"] += f["payload"]
            if f["fin"]:
                d = cur.pop("data")
                if cur["compressed"]:
                    if no_takeover:
                        inflater = zlib.decompressobj(-15)
                    d = inflater.decompress(d + b"\x00\x00\xff\xff")
                cur.update(len=len(d), sha256=hashlib.sha256(d).hexdigest())
                out["msgs"].append(cur)
                cur = None
        elif op == 9:
            out["pings"].append({"len": len(f["payload"])})
        elif op == 10:
            out["pongs"] += 1
        elif op == 8:
            p = f["payload"]
            out["close"] = {"code": int.from_bytes(p[:2], "big") if len(p) >= 2 else 1005,
                            "reason": p[2:].decode("utf-8")}
    return out


def check_side(name, side, sent, recvd, errors):
    if side is None:
        return
    unclean = side["close"] is None or not side["close"]["was_clean"]
    for key, mine, wire in (("sent", side["sent"], sent["msgs"]), ("received", side["received"], recvd["msgs"])):
        if key == "received" and unclean and len(mine) < len(wire):
            # A peer killed or cut off never read what was still on its way.
            wire = wire[:len(mine)]
        if len(mine) != len(wire):
            errors.append(f"{name}.{key}: {len(mine)} in truth, {len(wire)} on the wire")
            continue
        for k, (t, w) in enumerate(zip(mine, wire)):
            for field in ("type", "len", "sha256", "fragments", "compressed"):
                if field in t and t[field] != w[field]:
                    errors.append(f"{name}.{key}[{k}].{field}: truth {t[field]!r}, wire {w[field]!r}")
    if side["pings_sent"] != sent["pings"]:
        errors.append(f"{name}.pings_sent: truth {side['pings_sent']}, wire {sent['pings']}")
    if side["pongs_received"] != recvd["pongs"] and not (unclean and side["pongs_received"] < recvd["pongs"]):
        errors.append(f"{name}.pongs_received: truth {side['pongs_received']}, wire {recvd['pongs']}")
    close = side["close"]
    if close is not None:
        rc = recvd["close"]
        code = rc["code"] if rc else 1006
        if close["code"] != code:
            errors.append(f"{name}.close.code: truth {close['code']}, close frame on the wire: {rc}")
        if close["was_clean"] != (rc is not None and sent["close"] is not None):
            errors.append(f"{name}.close.was_clean: truth {close['was_clean']}, wire sent={sent['close']} rcvd={rc}")


def verify(truth_path):
    with open(truth_path, encoding="utf-8") as f:
        truth = json.load(f)
    pcap = os.path.join(os.path.dirname(truth_path), truth["capture"])
    keys = truth.get("tls", {}).get("keys")
    keys = keys and os.path.join(os.path.dirname(truth_path), keys)
    conns = {(c["client_port"], c["server_port"]): c for c in truth["connections"]}
    errors, seen = [], set()
    for cport, sport, c2s, s2c in streams(pcap, keys):
        conn = conns.get((cport, sport))
        if conn is None:
            if not c2s and not s2c:
                continue  # e.g. a refused TCP connection (SYN, RST)
            if not re.search(rb"(?im)^upgrade:\s*websocket", c2s.split(b"\r\n\r\n")[0]):
                continue  # plain HTTP (the browser loading its page)
            errors.append(f"stream {cport}->{sport} not in truth")
            continue
        seen.add((cport, sport))
        reqs, c2s = split_http(c2s)
        resps, s2c = split_http(s2c)
        status = int(resps[-1][0].split()[1]) if resps else None
        for role in ("client", "server"):
            side = conn[role]
            if side and side["handshake"] and side["handshake"]["status"] != status:
                errors.append(f"{role}.handshake.status: truth {side['handshake']['status']}, wire {status}")
        if status != 101:
            continue
        ext = re.search(r"(?im)^sec-websocket-extensions:\s*(.*?)\r$", resps[-1][0])
        ext = ext.group(1) if ext else ""
        c_out = messages(c2s, "client_no_context_takeover" in ext)
        s_out = messages(s2c, "server_no_context_takeover" in ext)
        check_side("client", conn["client"], c_out, s_out, errors)
        check_side("server", conn["server"], s_out, c_out, errors)
    for key in conns.keys() - seen:
        errors.append(f"connection {key} from the truth file not in the capture")
    return errors


def main():
    bad = 0
    for path in sys.argv[1:]:
        errors = verify(path)
        print(f"{'ok  ' if not errors else 'FAIL'} {os.path.basename(path)}")
        for e in errors:
            print("     " + e)
        bad += bool(errors)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
