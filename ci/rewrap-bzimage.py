#!/usr/bin/env python3
"""Make a bzImage variant whose payload is a given compressed file.

usage: rewrap-bzimage.py BZIMAGE NEW_PAYLOAD OUT [--size-trailer N]

Keeps the setup code and header of BZIMAGE, replaces the payload with
NEW_PAYLOAD (plus Linux's u32 size trailer when --size-trailer is given, as
Linux's size_append does for every format but gzip) fixes payload_length, and ends the image with the CRC32 Linux's build.c
writes (syssize updated; the PE fields that signing set are cleared, as
before signing, and the old signature dropped).
Used to test Cocoon's decompressors on a real kernel in formats Debian does
not currently ship (xz, lzma, zstd, gzip).
"""
import struct
import sys
import zlib

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
if out_data[:2] == b"MZ":
    pe = struct.unpack_from("<I", out_data, 0x3C)[0]
    if out_data[pe:pe + 4] == b"PE\0\0":
        cert = 24 + (112 if struct.unpack_from("<H", out_data, pe + 24)[0] == 0x20B else 96) + 32
        struct.pack_into("<I", out_data, pe + 24 + 64, 0)
        struct.pack_into("<II", out_data, pe + cert, 0, 0)
setup = ((out_data[0x1F1] or 4) + 1) * 512
while (len(out_data) + 4 - setup) % 16:
    out_data.append(0)
struct.pack_into("<I", out_data, 0x1F4, (len(out_data) + 4 - setup) // 16)
out_data += struct.pack("<I", zlib.crc32(bytes(out_data)) ^ 0xFFFFFFFF)
open(out, "wb").write(out_data)
