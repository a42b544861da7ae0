#!/usr/bin/env python3
"""A plain MSC3079 client built on a real CoAP implementation (aiocoap 0.4.17): sends one
message through a Trickle gateway's plain-profile UDP port.

Usage: msc3079_send.py PORT ROOM_ID TXN_ID ACCESS_TOKEN CBOR_HEX
PUT /9/{roomId}/m.room.message/{txnId} (MSC3079 path enum 9), Content-Format 60, option 257
(CBOR enum version) = 1, option 256 (Authorization) = the access token without "Bearer ".
Then a second PUT without option 256 (MSC3079: the server reuses the last value).
Prints the response codes; exits 0 when both are 2.04 Changed, 1 otherwise.
"""

import asyncio
import sys

import aiocoap
from aiocoap.numbers import OptionNumber
from aiocoap.optiontypes import OpaqueOption, UintOption


async def send(ctx, port, room, txn, token, body):
    m = aiocoap.Message(code=aiocoap.PUT, uri="coap://127.0.0.1:%d/" % port, payload=body)
    m.opt.uri_path = ("9", room, "m.room.message", txn)
    m.opt.content_format = 60
    m.opt.add_option(UintOption(OptionNumber(257), 1))
    if token is not None:
        m.opt.add_option(OpaqueOption(OptionNumber(256), token.encode()))
    r = await asyncio.wait_for(ctx.request(m).response, 30)
    print("%s %s" % (txn, r.code))
    return r.code == aiocoap.CHANGED


async def main():
    port = int(sys.argv[1])
    room, txn, token, body = sys.argv[2], sys.argv[3], sys.argv[4], bytes.fromhex(sys.argv[5])
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    ok = await send(ctx, port, room, txn, token, body)
    ok = await send(ctx, port, room, txn + "-sticky", None, body) and ok
    await ctx.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
