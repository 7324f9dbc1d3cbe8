"""A SCRAM-SHA-256 SMTP client for the channel-binding negative controls
(tests/server_role_binding.rs). It takes STARTTLS (without verifying the
harness's self-signed certificate) and then, by MODE:

  y        plain SCRAM-SHA-256 with the gs2 flag "y" (right when -PLUS is hidden)
  n        plain SCRAM-SHA-256 with "n", although it can bind (RFC 5802 §6 breach)
  mitm     SCRAM-SHA-256-PLUS with p=tls-exporter and binding bytes that are not
           this connection's, as a client behind a TLS-terminating proxy sends

Python's ssl module has no TLS exporter, so this client cannot bind correctly;
gsasl is the positive control (tests/interop/run.sh).

usage: scram_binding_client.py HOST PORT MODE   (user/password from AUTHSPEC_USER/
AUTHSPEC_PASSWORD)
"""
import base64, hashlib, hmac, os, socket, ssl, sys

host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
user = os.environ.get("AUTHSPEC_USER", "alice")
password = os.environ.get("AUTHSPEC_PASSWORD", "wonderland").encode()

sock = socket.create_connection((host, port), timeout=10)
f = sock.makefile("rb")


def reply():
    lines = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return lines


def send(text):
    sock.sendall(text.encode() + b"\r\n")


reply()
send("EHLO client.example")
reply()
send("STARTTLS")
reply()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
sock = ctx.wrap_socket(sock, server_hostname="localhost")
f = sock.makefile("rb")
send("EHLO client.example")
reply()

if mode == "mitm":
    mech, header, binding = "SCRAM-SHA-256-PLUS", b"p=tls-exporter,,", b"\0" * 32
else:
    mech, header, binding = "SCRAM-SHA-256", (b"y,," if mode == "y" else b"n,,"), b""
nonce = base64.b64encode(os.urandom(18)).decode()
bare = f"n={user},r={nonce}".encode()
send(f"AUTH {mech} " + base64.b64encode(header + bare).decode())
r = reply()
if not r[0].startswith("334 "):
    print("refused:", r[0])
    send("QUIT")
    sys.exit(1)
server_first = base64.b64decode(r[0][4:])
attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
salted = hashlib.pbkdf2_hmac("sha256", password, base64.b64decode(attrs["s"]), int(attrs["i"]))
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
stored = hashlib.sha256(client_key).digest()
without_proof = b"c=" + base64.b64encode(header + binding) + b",r=" + attrs["r"].encode()
auth_message = bare + b"," + server_first + b"," + without_proof
signature = hmac.new(stored, auth_message, "sha256").digest()
proof = bytes(a ^ b for a, b in zip(client_key, signature))
send(base64.b64encode(without_proof + b",p=" + base64.b64encode(proof)).decode())
r = reply()
if r[0].startswith("334 "):
    send("")
    r = reply()
print("result:", r[0])
send("QUIT")
sys.exit(0 if r[0].startswith("235") else 1)
