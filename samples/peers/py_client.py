"""Python `websockets` client peer.

    python py_client.py --scenario NAME --port P --host H --log FILE

Runs scenario.client.connections one after the other.
"""

import asyncio

from websockets.asyncio.client import connect

from common import (SCENARIOS, Log, handshake_from, compression_kwargs, parse_args, run_connection,
                    tls_context, tls_facts)


async def main(a):
    sc = SCENARIOS[a.scenario]["client"]
    log = Log(a.log, "client")
    host = f"[{a.host}]" if ":" in a.host else a.host
    ssl_ctx = tls_context(a.scenario, a.tls, a.keylog, server=False)
    scheme = "wss" if ssl_ctx else "ws"
    tls_kwargs = {"ssl": ssl_ctx, "server_hostname": "localhost"} if ssl_ctx else {}
    for plan in sc["connections"]:
        url = f"{scheme}://{host}:{a.port}{plan['path']}"
        async with connect(url,
                           subprotocols=plan.get("protocols"),
                           ping_interval=None,  # no automatic keepalive pings
                           **tls_kwargs,
                           **compression_kwargs(sc.get("compression"), server=False)) as ws:
            rec = log.record(client_port=ws.local_address[1], server_port=int(a.port),
                             ip=a.host, path=plan["path"], handshake=handshake_from(ws.response))
            if ssl_ctx:
                rec["tls"] = tls_facts(ws)
            await run_connection(ws, rec, log, plan.get("steps", []))
    log.flush()


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(asyncio.wait_for(main(args), args.timeout))
