"""Python `websockets` server peer.

    python py_server.py --scenario NAME --port P --host H --log FILE --ready FILE

The n-th connection runs scenario.server.connections[n]; the process exits
once all of them have ended.
"""

import asyncio
import pathlib

from websockets.asyncio.server import serve

from common import (SCENARIOS, Log, handshake_from, compression_kwargs, parse_args, run_connection,
                    tls_context, tls_facts)


async def main(a):
    sc = SCENARIOS[a.scenario]["server"]
    plans = sc["connections"]
    log = Log(a.log, "server")
    count = 0
    all_done = asyncio.get_running_loop().create_future()
    ssl_ctx = tls_context(a.scenario, a.tls, a.keylog, server=True)

    async def handler(ws):
        nonlocal count
        plan = plans[count]
        count += 1
        client_port = ws.remote_address[1]
        host, port = ws.local_address[:2]
        rec = log.record(client_port=client_port, server_port=port, ip=host,
                         path=ws.request.path, handshake=handshake_from(ws.response))
        if ssl_ctx:
            rec["tls"] = tls_facts(ws)
        await run_connection(ws, rec, log, plan.get("steps", []))
        if count == len(plans) and not all_done.done():
            all_done.set_result(None)

    async with serve(handler, a.host, int(a.port),
                     subprotocols=sc.get("protocols"),
                     ping_interval=None,  # no automatic keepalive pings
                     ssl=ssl_ctx,
                     **compression_kwargs(sc.get("compression"), server=True)):
        if a.ready:
            pathlib.Path(a.ready).write_text("ready\n")
        await all_done
    log.flush()


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(asyncio.wait_for(main(args), args.timeout))
