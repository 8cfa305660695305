#!/usr/bin/env python3
"""Extract the ELF vmlinux from a bzImage with the system's own decompressors.

This is the independent reference for Cocoon's loader tests: it uses the
boot-protocol header to find the payload and hands it to lz4/xz/zstd/gzip
command-line tools, never to Cocoon's code. Debian's kernels carry lz4
(bullseye/bookworm cloud), xz with the x86 BCJ filter (bullseye/bookworm
generic) and zstd (trixie) payloads.
"""
import struct
import subprocess
import sys

src, dst = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()
if data[0x202:0x206] != b"HdrS":
    sys.exit(f"{src}: not a bzImage")
setup_sects = data[0x1F1]
off, length = struct.unpack_from("<II", data, 0x248)
start = (setup_sects + 1) * 512 + off
payload = data[start : start + length]
magic = {
    b"\x1f\x8b": ["gzip", "-dc"],
    b"\xfd7zXZ\x00": ["xz", "-dc"],
    # zstd -22 --ultra frames may use windows past the CLI's default 128 MiB limit.
    b"\x28\xb5\x2f\xfd": ["zstd", "-dc", "--memory=2048MB"],
    b"\x02\x21\x4c\x18": ["lz4", "-dc"],
    b"\x5d\x00": ["xz", "--format=lzma", "-dc"],
}
for m, cmd in magic.items():
    if payload.startswith(m):
        break
else:
    sys.exit(f"{src}: unknown payload magic {payload[:6].hex()}")
# Linux appends the uncompressed size (u32 LE) to every format but gzip.
body = payload if cmd[0] == "gzip" else payload[:-4]
res = subprocess.run(cmd, input=body, capture_output=True)
out = res.stdout
if not out.startswith(b"\x7fELF"):
    sys.exit(f"{src}: {cmd[0]} failed: {res.stderr.decode(errors='replace')}")
open(dst, "wb").write(out)
