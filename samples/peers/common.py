"""Shared helpers for the Python peers (mirror of common.js).

Deterministic payloads (same bytes as common.js for the same spec), the
per-side event log, and the step interpreter run on one connection.
"""

import argparse
import asyncio
import hashlib
import json
import os
import ssl

import websockets
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

IMPL = f"python-websockets {websockets.__version__}"
HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "scenarios.json"), encoding="utf-8") as f:
    SCENARIOS = json.load(f)

# --- deterministic payloads ---------------------------------------------------

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
    "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
    "xray yankee zulu"
).split()


def rng(seed):
    s = seed & 0xFFFFFFFF

    def nxt():
        nonlocal s
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        return s

    return nxt


def words(nxt, n):
    return " ".join(WORDS[nxt() % len(WORDS)] for _ in range(n))


def make_payload(spec):
    """Return (type, bytes) for a payload spec; see common.js."""
    if "text" in spec:
        return "text", spec["text"].encode("utf-8")
    if "text_len" in spec:
        nxt = rng(spec["seed"])
        s = ""
        while len(s) < spec["text_len"]:
            s += words(nxt, 8) + "\n"
        return "text", s[: spec["text_len"]].encode("ascii")
    if "binary_len" in spec:
        nxt = rng(spec["seed"])
        return "binary", bytes(nxt() >> 24 for _ in range(spec["binary_len"]))
    if "json" in spec:
        seq = spec["json"]
        nxt = rng(1000 + seq)
        msg = {
            "type": "chat.message",
            "seq": seq,
            "room": "lobby",
            "user": f"user-{seq % 3}",
            "ts": 1700000000 + seq * 7,
            "text": words(nxt, 12),
            "tags": ["sample", "wsinspect"],
        }
        return "text", json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()
    raise ValueError(f"bad payload spec {spec!r}")


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def to_wire(kind, data):
    return data.decode("utf-8") if kind == "text" else data


# --- compression settings -------------------------------------------------------


def compression_kwargs(setting, server):
    """Keyword arguments for serve()/connect() from a scenario's "compression"."""
    if setting is None:
        return {"compression": None}
    if setting == "deflate":
        return {"compression": "deflate"}  # the library's defaults
    if setting == "deflate-no-takeover":
        factory = ServerPerMessageDeflateFactory if server else ClientPerMessageDeflateFactory
        return {
            "extensions": [
                factory(server_no_context_takeover=True, client_no_context_takeover=True)
            ],
            "compression": None,
        }
    raise ValueError(setting)


# --- log --------------------------------------------------------------------------


class Log:
    """One JSON file per process, one record per connection; rewritten after
    every event so that a killed peer still leaves what it saw."""

    def __init__(self, path, role):
        self.path, self.role, self.records = path, role, []

    def record(self, **fields):
        r = {
            "role": self.role,
            "client_port": None,
            "server_port": None,
            "ip": None,
            "path": None,
            "impl": IMPL,
            "handshake": None,
            "sent": [],
            "received": [],
            "pings_sent": [],
            "pongs_received": 0,
            "close": None,
        }
        r.update(fields)
        self.records.append(r)
        self.flush()
        return r

    def flush(self):
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.records, f, indent=1, ensure_ascii=False)


def handshake_from(response):
    h = response.headers
    return {
        "status": response.status_code,
        "subprotocol": h.get("Sec-WebSocket-Protocol"),
        "extensions": h.get("Sec-WebSocket-Extensions"),
    }


# --- step interpreter ---------------------------------------------------------------


async def run_connection(ws, rec, log, steps):
    """Run `steps` on connection `ws` while a reader task logs what arrives;
    return after this side's connection is closed."""
    changed = asyncio.Condition()
    # websockets compresses every data frame once permessage-deflate is
    # negotiated (no size threshold).
    compressed = bool(ws.response.headers.get("Sec-WebSocket-Extensions"))

    async def notify():
        async with changed:
            changed.notify_all()

    async def wait_for(pred):
        async with changed:
            await changed.wait_for(lambda: pred() or closed.done())

    async def reader():
        try:
            while True:
                msg = await ws.recv()
                data = msg.encode("utf-8") if isinstance(msg, str) else msg
                rec["received"].append(
                    {"type": "text" if isinstance(msg, str) else "binary",
                     "len": len(data), "sha256": sha256(data)}
                )
                log.flush()
                await notify()
        except ConnectionClosed as exc:
            # The library's "close event": the close frames received/sent.
            rec["close"] = {
                "code": exc.rcvd.code if exc.rcvd else 1006,
                "reason": exc.rcvd.reason if exc.rcvd else "",
                "was_clean": exc.rcvd is not None and exc.sent is not None,
            }
            log.flush()
            closed.set_result(True)
            await notify()

    def count_pong(_):
        rec["pongs_received"] += 1
        log.flush()
        asyncio.ensure_future(notify())

    async def ping(data):
        waiter = await ws.ping(data)
        rec["pings_sent"].append({"len": len(data)})
        asyncio.ensure_future(waiter).add_done_callback(count_pong)

    closed = asyncio.get_running_loop().create_future()
    reader_task = asyncio.create_task(reader())

    for step in steps:
        if closed.done():
            break
        if "send" in step:
            kind, data = make_payload(step["send"])
            await ws.send(to_wire(kind, data))
            rec["sent"].append({"type": kind, "len": len(data), "sha256": sha256(data),
                                "fragments": 1, "compressed": compressed})
        elif "fragments" in step:
            # websockets sends an (async) iterable as one fragmented message;
            # an async generator lets us put a ping between two fragments.
            parts = [make_payload(p) for p in step["fragments"]]
            whole = b"".join(d for _, d in parts)

            async def gen():
                for i, (kind, data) in enumerate(parts):
                    yield to_wire(kind, data)
                    if step.get("ping_after") == i:
                        await ping(step.get("ping_data", "mid").encode())

            await ws.send(gen())
            # websockets cannot tell which item is the last one, so it sends
            # every item with FIN=0 and ends the message with an extra, empty
            # continuation frame with FIN=1: one frame more than items.
            rec["sent"].append({"type": parts[0][0], "len": len(whole), "sha256": sha256(whole),
                                "fragments": len(parts) + 1, "compressed": compressed})
        elif "ping" in step:
            await ping(step["ping"].encode())
        elif "expect" in step:
            await wait_for(lambda: len(rec["received"]) >= step["expect"])
        elif "wait_pongs" in step:
            await wait_for(lambda: rec["pongs_received"] >= step["wait_pongs"])
        elif "sleep" in step:
            await asyncio.sleep(step["sleep"] / 1000)
        elif "close" in step:
            await ws.close(step["close"], step.get("reason", ""))
        else:
            raise ValueError(f"unknown step {step!r}")
        log.flush()

    await reader_task


def tls_context(scenario, tls_dir, keylog, server):
    """The ssl context of a wss scenario (None for ws): the run's self-signed
    certificate, the scenario's TLS version and cipher preference (server
    side), and the session secrets appended to `keylog` (NSS key log format,
    as SSLKEYLOGFILE would)."""
    settings = SCENARIOS[scenario].get("tls")
    if not settings:
        return None
    if server:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f"{tls_dir}/cert.pem", f"{tls_dir}/key.pem")
        version = getattr(ssl.TLSVersion, settings["version"].replace("TLSv1.", "TLSv1_"))
        ctx.minimum_version = ctx.maximum_version = version
        if settings.get("ciphers") and version == ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers(settings["ciphers"])
    else:
        ctx = ssl.create_default_context(cafile=f"{tls_dir}/cert.pem")
    ctx.keylog_filename = keylog
    return ctx


def tls_facts(ws):
    """The negotiated TLS version and cipher suite, as this side saw them."""
    obj = ws.transport.get_extra_info("ssl_object")
    if obj is None:
        return None
    return {"version": obj.version(), "cipher": obj.cipher()[0]}


def parse_args():
    p = argparse.ArgumentParser()
    for a in ("scenario", "port", "host", "log", "ready", "tls", "keylog"):
        p.add_argument("--" + a)
    p.add_argument("--timeout", type=float, default=30)
    return p.parse_args()
