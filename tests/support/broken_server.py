#!/usr/bin/env python3
"""A deliberately broken SMTP AUTH server, for testing `authspec fuzz`.

Two bugs, on purpose:
  1. AUTH PLAIN accepts ANY password for user `alice` (RFC 4954 §6 says 535).
  2. A command whose verb is not all upper case gets a malformed multiline reply:
     the lines carry different codes (RFC 5321 §4.2.1 forbids it).
Everything else behaves: AUTH LOGIN checks the password, unknown mechanisms get 504.

Usage: broken_server.py [HOST:PORT]   (default 127.0.0.1:0); prints `listening on ADDR`.
"""

import base64
import binascii
import socketserver
import sys

USERS = {"alice": "wonderland"}
HOST = "broken.example"


def b64decode(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


class Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def send(self, text):
        self.wfile.write(text.encode("latin-1"))
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(20000)
        if not line:
            raise EOFError
        return line.rstrip(b"\r\n")

    def plain(self, payload):
        raw = b64decode(payload)
        if raw is None:
            self.send("501 5.5.2 Cannot decode response\r\n")
            return
        parts = raw.split(b"\0")
        if len(parts) != 3:
            self.send("535 5.7.8 Authentication failed\r\n")
            return
        user = parts[1].decode("utf-8", "replace")
        # BUG 1: the password is never compared for alice.
        if user == "alice":
            self.send("235 2.7.0 Authentication successful\r\n")
        else:
            self.send("535 5.7.8 Authentication failed\r\n")

    def login(self, initial):
        user = initial
        if user is None:
            self.send("334 VXNlcm5hbWU6\r\n")
            user = self.readline()
        self.send("334 UGFzc3dvcmQ6\r\n")
        password = self.readline()
        u, p = b64decode(user), b64decode(password)
        if u is None or p is None:
            self.send("501 5.5.2 Cannot decode response\r\n")
        elif USERS.get(u.decode("utf-8", "replace")) == p.decode("utf-8", "replace"):
            self.send("235 2.7.0 Authentication successful\r\n")
        else:
            self.send("535 5.7.8 Authentication failed\r\n")

    def handle(self):
        self.send(f"220 {HOST} ESMTP broken\r\n")
        try:
            while True:
                line = self.readline()
                words = line.split(b" ")
                verb = words[0]
                if verb and verb != verb.upper():
                    # BUG 2: different codes on the lines of one reply.
                    self.send(f"250-{HOST}\r\n251 continuation with another code\r\n")
                    continue
                verb = verb.upper()
                if verb in (b"EHLO", b"HELO"):
                    self.send(f"250-{HOST}\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n")
                elif verb == b"AUTH" and len(words) >= 2:
                    mech = words[1].upper()
                    initial = words[2] if len(words) >= 3 else None
                    if mech == b"PLAIN":
                        if initial is None:
                            self.send("334 \r\n")
                            initial = self.readline()
                        if initial == b"*":
                            self.send("501 5.7.0 Authentication aborted\r\n")
                        else:
                            self.plain(initial)
                    elif mech == b"LOGIN":
                        self.login(initial)
                    else:
                        self.send("504 5.5.4 Unrecognized authentication type\r\n")
                elif verb in (b"NOOP", b"RSET", b"MAIL", b"RCPT", b"VRFY", b"HELP"):
                    self.send("250 2.0.0 Ok\r\n")
                elif verb == b"QUIT":
                    self.send("221 2.0.0 Bye\r\n")
                    return
                elif not verb:
                    self.send("500 5.5.2 Error: bad syntax\r\n")
                else:
                    self.send("502 5.5.2 Error: command not recognized\r\n")
        except (EOFError, ConnectionError, OSError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"
    host, port = addr.rsplit(":", 1)
    with Server((host, int(port)), Handler) as srv:
        h, p = srv.server_address[:2]
        print(f"listening on {h}:{p}", flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
