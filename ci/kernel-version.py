#!/usr/bin/env python3
"""Print a bzImage's version string (what `uname -r` says once it runs): the
setup header's kernel_version field (offset 0x20e) points 0x200 bytes short of it."""
import struct
import sys

b = open(sys.argv[1], "rb").read(0x10000)
if b[0x202:0x206] != b"HdrS":
    sys.exit("not a bzImage: " + sys.argv[1])
p = struct.unpack_from("<H", b, 0x20E)[0] + 0x200
print(b[p : b.index(b"\0", p)].split()[0].decode())
