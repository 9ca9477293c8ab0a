#!/usr/bin/env python3
"""setup9p.py SOCKET ADMIN USERS: over gefsd's unix socket, in plain 9P2000, replace adm's
/users with USERS (`\\n` for newlines) as ADMIN, and make the directory /t owned by ADMIN
(owner and group, mode 0777) for pjdfstest to run in (tests/vm/PJDFSTEST.md). gefsd must
then reload the table (`gefsd console users`)."""
import socket
import struct
import sys


def s9(x):
    b = x.encode()
    return struct.pack('<H', len(b)) + b


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)

    def _read(self, n):
        b = b''
        while len(b) < n:
            d = self.s.recv(n - len(b))
            if not d:
                raise EOFError('gefsd closed the connection')
            b += d
        return b

    def rpc(self, typ, body, tag=1):
        self.s.sendall(struct.pack('<IBH', 7 + len(body), typ, tag) + body)
        n = struct.unpack('<I', self._read(4))[0]
        rest = self._read(n - 4)
        if rest[0] == 107:  # Rerror
            raise RuntimeError(rest[5:].decode())
        return rest[3:]


def wstat_gid(gid):
    """A wstat that changes only the group."""
    st = (struct.pack('<HI', 0xffff, 0xffffffff) + b'\xff' * 13
          + struct.pack('<IIIQ', 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffffffffffff)
          + s9('') + s9('') + s9(gid) + s9(''))
    return struct.pack('<H', len(st)) + st


def main():
    sock, admin, users = sys.argv[1], sys.argv[2], sys.argv[3].replace('\\n', '\n')
    c = Conn(sock)
    c.rpc(100, struct.pack('<I', 8192) + s9('9P2000'), tag=0xffff)  # Tversion
    c.rpc(104, struct.pack('<II', 0, 0xffffffff) + s9(admin) + s9('adm'))  # Tattach adm
    c.rpc(110, struct.pack('<IIH', 0, 1, 1) + s9('users'))  # Twalk
    c.rpc(112, struct.pack('<IB', 1, 0x11))  # Topen OWRITE|OTRUNC
    data = users.encode()
    c.rpc(118, struct.pack('<IQI', 1, 0, len(data)) + data)  # Twrite
    c.rpc(120, struct.pack('<I', 1))  # Tclunk
    c.rpc(104, struct.pack('<II', 2, 0xffffffff) + s9(admin) + s9(''))  # Tattach main
    c.rpc(110, struct.pack('<IIH', 2, 3, 0))  # Twalk (clone)
    c.rpc(114, struct.pack('<I', 3) + s9('t') + struct.pack('<IB', 0x80000000 | 0o777, 0))
    c.rpc(120, struct.pack('<I', 3))
    c.rpc(110, struct.pack('<IIH', 2, 4, 1) + s9('t'))
    st = wstat_gid(admin)
    c.rpc(126, struct.pack('<IH', 4, len(st)) + st)  # Twstat: group
    c.rpc(120, struct.pack('<I', 4))


if __name__ == '__main__':
    main()
