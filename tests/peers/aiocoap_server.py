#!/usr/bin/env python3
"""A real CoAP server (aiocoap 0.4.17) that Trickle's codec talks to in
tests/tests/coap_interop.rs.

Binds UDP on 127.0.0.1 with an ephemeral port and prints "PORT <n>" on stdout once ready.
Exits by itself after --lifetime seconds (the test also kills it).

Resources (all on one root resource, dispatched on the Uri-Path options):
  GET  /7?...                     2.05 text "sync " + Uri-Query items joined by " "
  PUT  /9/{room}/{type}/{txn}     checks Content-Format 60 and the CBOR body sent by the test;
                                  2.04 with a CBOR body {"event_id": "$ev1:example.org"} and
                                  Content-Format 60
  GET  /ext                       2.05 text "auth=<option 256>;x=<len of option 2048>"
  GET  /obs (Observe 0)           2.05 "n=0", then one notification "n=1" 0.2 s later
  GET  /large                     2.05, a 2000-byte body (blockwise by aiocoap)
  GET  /crit                      2.05 with an unknown critical option 2049 (the client must
                                  reject the response)
  anything else                   2.05 text: Uri-Path items joined by "|"
"""

import argparse
import asyncio
import sys

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers import ContentFormat, OptionNumber
from aiocoap.optiontypes import OpaqueOption

# The CBOR body the test PUTs: {"body": "hi", "msgtype": "m.text"}.
EXPECTED_CBOR = bytes.fromhex("a264626f6479626869676d736774797065666d2e74657874")
# Response body: {"event_id": "$ev1:example.org"}.
RESPONSE_CBOR = b"\xa1\x68event_id\x70$ev1:example.org"
LARGE = bytes((i * 7 + i // 256) & 0xFF for i in range(2000))


def text(payload, code=aiocoap.CONTENT):
    return aiocoap.Message(code=code, payload=payload.encode(), content_format=0)


class Root(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.n = 0

    async def add_observation(self, request, serverobservation):
        if tuple(request.opt.uri_path) != ("obs",):
            return
        await super().add_observation(request, serverobservation)
        asyncio.get_running_loop().call_later(0.2, self.bump)

    def bump(self):
        self.n += 1
        self.updated_state()

    async def render_get(self, request):
        path = tuple(request.opt.uri_path)
        if path == ("7",):
            return text("sync " + " ".join(request.opt.uri_query))
        if path == ("ext",):
            auth = b"".join(o.value for o in request.opt.get_option(OptionNumber(256)))
            x = sum(len(o.value) for o in request.opt.get_option(OptionNumber(2048)))
            return text("auth=%s;x=%d" % (auth.decode(), x))
        if path == ("obs",):
            return text("n=%d" % self.n)
        if path == ("large",):
            return aiocoap.Message(payload=LARGE, content_format=42)
        if path == ("crit",):
            m = text("critical")
            m.opt.add_option(OpaqueOption(OptionNumber(2049), b"\x01"))
            return m
        return text("|".join(path))

    async def render_put(self, request):
        path = tuple(request.opt.uri_path)
        if len(path) != 4 or path[0] != "9":
            return text("bad path %r" % (path,), aiocoap.BAD_REQUEST)
        if request.opt.content_format != ContentFormat(60):
            return text("bad content-format %r" % request.opt.content_format, aiocoap.BAD_REQUEST)
        if request.payload != EXPECTED_CBOR:
            return text("bad body %s" % request.payload.hex(), aiocoap.BAD_REQUEST)
        return aiocoap.Message(code=aiocoap.CHANGED, payload=RESPONSE_CBOR, content_format=60)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=60.0)
    args = ap.parse_args()
    ctx = await aiocoap.Context.create_server_context(
        Root(), bind=("127.0.0.1", 0), transports=["udp6"]
    )
    port = None
    for ri in ctx.request_interfaces:
        mi = getattr(getattr(ri, "token_interface", None), "message_interface", None)
        if mi is not None and hasattr(mi, "_local_port"):
            port = mi._local_port()
    if not port:
        print("could not find the bound port", file=sys.stderr)
        sys.exit(2)
    print("PORT %d" % port, flush=True)
    await asyncio.sleep(args.lifetime)
    await ctx.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
