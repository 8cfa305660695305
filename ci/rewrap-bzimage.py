#!/usr/bin/env python3
"""Make a bzImage variant whose payload is a given compressed file.

usage: rewrap-bzimage.py BZIMAGE NEW_PAYLOAD OUT [--size-trailer N]

Keeps the setup code and header of BZIMAGE, replaces the payload with
NEW_PAYLOAD (plus Linux's u32 size trailer when --size-trailer is given, as
Linux's size_append does for every format but gzip) and fixes payload_length.
Used to test Cocoon's decompressors on a real kernel in formats Debian does
not currently ship (xz, lzma, zstd, gzip).
"""
import struct
import sys

src, payload_path, out = sys.argv[1:4]
trailer = None
if len(sys.argv) > 5 and sys.argv[4] == "--size-trailer":
    trailer = int(sys.argv[5])
data = bytearray(open(src, "rb").read())
assert data[0x202:0x206] == b"HdrS", "not a bzImage"
start = (data[0x1F1] + 1) * 512 + struct.unpack_from("<I", data, 0x248)[0]
payload = open(payload_path, "rb").read()
if trailer is not None:
    payload += struct.pack("<I", trailer)
out_data = data[:start] + payload
struct.pack_into("<I", out_data, 0x24C, len(payload))
open(out, "wb").write(out_data)
