"""Merge the two peers' event logs of one scenario into NAME.truth.json.

    python merge_truth.py NAME LOGDIR OUTDIR

Each peer wrote LOGDIR/NAME.client.json / NAME.server.json: a list with one
record per connection, as that side saw it. Records are paired by
(client_port, server_port). Behind a proxy the two legs are different TCP
connections, so each leg becomes its own entry, with the side played by the
proxy set to null and a "leg" field naming the leg.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONN_KEYS = ("client_port", "server_port", "ip", "path")


def load(logdir, name, role):
    path = os.path.join(logdir, f"{name}.{role}.json")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def side(rec):
    if rec is None:
        return None
    return {k: v for k, v in rec.items() if k not in CONN_KEYS and k != "role"}


def nginx_version():
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr
    return "nginx " + out.strip().split("/")[-1]


def main(name, logdir, outdir):
    with open(os.path.join(HERE, "scenarios.json"), encoding="utf-8") as f:
        sc = json.load(f)[name]
    clients = load(logdir, name, "client")
    servers = load(logdir, name, "server")
    proxy = sc.get("proxy")

    connections = []
    unmatched = list(servers)
    for c in clients:
        s = next((s for s in unmatched
                  if s["client_port"] == c["client_port"] and s["server_port"] == c["server_port"]), None)
        if s is None and c["client_port"] is None and len(unmatched) == 1:
            # A browser does not know its local port: take the server's view.
            s = unmatched[0]
            c = dict(c, client_port=s["client_port"])
        if s is not None:
            unmatched.remove(s)
        entry = {k: c[k] for k in CONN_KEYS}
        if proxy:
            entry["leg"] = "client-proxy"
        entry["client"] = side(c)
        entry["server"] = side(s)
        connections.append(entry)
    for s in unmatched:
        entry = {k: s[k] for k in CONN_KEYS}
        if proxy:
            entry["leg"] = "proxy-backend"
        entry["client"] = None
        entry["server"] = side(s)
        connections.append(entry)

    truth = {
        "scenario": name,
        "description": sc["description"],
        "capture": f"{name}.pcap",
    }
    if proxy:
        truth["proxy"] = {
            "impl": nginx_version(),
            "port": sc["port"],
            "backend_port": proxy["backend_port"],
            "note": "the proxy's own view is not logged: its side of each leg is null",
        }
    if sc.get("tls"):
        truth["tls"] = {
            "keys": f"{name}.keys",
            "note": "NSS key log written by the peers for this throwaway loopback session",
        }
        if sc.get("dsb"):
            truth["tls"]["capture_with_secrets"] = f"{name}.dsb.pcapng"
    truth["connections"] = connections
    with open(os.path.join(outdir, f"{name}.truth.json"), "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
