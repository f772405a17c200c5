"""Idle keep-alive clients for run.sh's idle case.

    python3 idle.py PORT N

Opens N connections to 127.0.0.1:PORT, sends one GET / on each and reads
its answer, so every connection is an idle keep-alive connection the
server has served once. Prints "ready N" when all N have their answer,
then holds them until stdin closes. Standard library only.
"""

import selectors
import socket
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BATCH = 256  # connects in flight at once, well under any listen backlog


def main():
    port, want = int(sys.argv[1]), int(sys.argv[2])
    sel = selectors.DefaultSelector()
    held, pending, started = [], 0, 0
    got = {}

    def start():
        nonlocal pending, started
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE)
        got[s] = b""
        pending += 1
        started += 1

    while len(held) < want:
        while pending < BATCH and started < want:
            start()
        for key, ev in sel.select(timeout=10):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    sys.exit("idle.py: connect: error %d" % err)
                s.send(REQUEST)
                sel.modify(s, selectors.EVENT_READ)
                continue
            data = s.recv(4096)
            if not data:
                sys.exit("idle.py: the server closed a connection before its answer")
            got[s] += data
            head, sep, body = got[s].partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(body) >= length:
                sel.unregister(s)
                del got[s]
                held.append(s)
                pending -= 1
    print("ready", len(held), flush=True)
    sys.stdin.read()
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
