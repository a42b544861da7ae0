#!/usr/bin/env python3
"""A real CoAP client (aiocoap 0.4.17) run against the UDP responder that
tests/tests/coap_interop.rs builds from Trickle's codec.

Usage: aiocoap_client.py PORT. Exits 0 and prints "OK" when every answer is as expected;
exits 1 with the first mismatch on stderr otherwise.
"""

import asyncio
import sys

import aiocoap
from aiocoap.numbers import ContentFormat, OptionNumber
from aiocoap.optiontypes import OpaqueOption

CBOR_BODY = bytes.fromhex("a264626f6479626869676d736774797065666d2e74657874")
RESPONSE_CBOR = b"\xa1\x68event_id\x70$ev1:example.org"
LARGE = bytes((i * 13 + i // 256) & 0xFF for i in range(3000))
AUTH = b"syt_dGVzdA_abcdefghij0123"


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


async def run(port):
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    base = "coap://127.0.0.1:%d" % port

    def msg(code, path, **kw):
        m = aiocoap.Message(code=code, uri=base + "/", **kw)
        m.opt.uri_path = path
        return m

    async def request(m):
        return await asyncio.wait_for(ctx.request(m).response, 10)

    # 1. MSC3079 code path with query items.
    m = msg(aiocoap.GET, ("7",))
    m.opt.uri_query = ("since=s1", "timeout=0")
    r = await request(m)
    check(r.code == aiocoap.CONTENT, "sync: code %s" % r.code)
    check(r.payload == b"sync since=s1 timeout=0", "sync: payload %r" % r.payload)

    # 2. PUT with Content-Format 60 and a CBOR body to /9/{room}/{type}/{txn}.
    m = msg(
        aiocoap.PUT,
        ("9", "!room:example.org", "m.room.message", "txn1"),
        payload=CBOR_BODY,
        content_format=60,
    )
    r = await request(m)
    check(r.code == aiocoap.CHANGED, "send: code %s %r" % (r.code, r.payload))
    check(r.opt.content_format == ContentFormat(60), "send: cf %r" % r.opt.content_format)
    check(r.payload == RESPONSE_CBOR, "send: payload %r" % r.payload)

    # 3. Extended option forms: Authorization (256, 25-byte value) and elective 2048 (300 bytes).
    m = msg(aiocoap.GET, ("ext",))
    m.opt.add_option(OpaqueOption(OptionNumber(256), AUTH))
    m.opt.add_option(OpaqueOption(OptionNumber(2048), b"x" * 300))
    r = await request(m)
    check(r.code == aiocoap.CONTENT, "ext: code %s" % r.code)
    check(r.payload == b"auth=" + AUTH + b";x=300", "ext: payload %r" % r.payload)

    # 4. An unknown critical option (2049): Trickle answers 4.02 Bad Option.
    m = msg(aiocoap.GET, ("7",))
    m.opt.add_option(OpaqueOption(OptionNumber(2049), b"\x01"))
    r = await request(m)
    check(r.code == aiocoap.BAD_OPTION, "critical: code %s" % r.code)

    # 5. Observe: first response, then one notification.
    m = msg(aiocoap.GET, ("obs",), observe=0)
    pr = ctx.request(m)
    r = await asyncio.wait_for(pr.response, 10)
    check(r.code == aiocoap.CONTENT and r.payload == b"n=0", "obs: first %s %r" % (r.code, r.payload))
    check(r.opt.observe is not None, "obs: no Observe option in the first response")
    first = r.opt.observe
    n = await asyncio.wait_for(pr.observation.__aiter__().__anext__(), 10)
    check(n.payload == b"n=1", "obs: notification %r" % n.payload)
    check(n.opt.observe is not None and n.opt.observe > first, "obs: sequence %r" % n.opt.observe)
    pr.observation.cancel()

    # 6. Block2: a 3000-byte body sent in blocks by Trickle; aiocoap reassembles it.
    r = await request(msg(aiocoap.GET, ("large",)))
    check(r.code == aiocoap.CONTENT, "large: code %s" % r.code)
    check(r.payload == LARGE, "large: %d bytes, differ" % len(r.payload))

    await ctx.shutdown()


def main():
    port = int(sys.argv[1])
    try:
        asyncio.run(asyncio.wait_for(run(port), 60))
    except Failed as e:
        print("MISMATCH: %s" % e, file=sys.stderr)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
