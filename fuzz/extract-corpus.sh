#!/usr/bin/env bash
# Seed the fuzz corpus from the bundled scenarios (and a few protocol examples the
# scenarios do not spell out as bytes): client lines go to the command-level
# targets, server lines to the reply-level ones, whole files to the file parsers.
#
#   fuzz/extract-corpus.sh            # writes fuzz/corpus/<target>/<sha1>
#
# Needs python3 with PyYAML. Files are named by content hash, so running it again
# adds only what is new and never duplicates a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import base64, glob, hashlib, os, re, sys
import yaml

ROOT = os.getcwd()
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
# A corpus-only password: the seeds must not carry a credential that works on any
# peer (the interop users' password is wonderland).
VARS = {"user": "alice", "password": "fuzzseed10"}

COMMAND_TARGETS = ["command", "differential", "server_session", "line_framer"]
REPLY_TARGETS = ["reply", "client_session"]

written = {}

def put(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not data or len(data) > 16384:
        return
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    path = os.path.join(d, name)
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        written[target] = written.get(target, 0) + 1

def expand(text):
    """${name} and ${name|base64}, as the harness expands them."""
    def sub(m):
        name, _, fil = m.group(1).partition("|")
        v = VARS.get(name, name)
        if fil == "base64":
            return base64.b64encode(v.encode()).decode()
        return v
    return re.sub(r"\$\{([^}]*)\}", sub, text)

def unescape(s):
    # The scenario format's raw strings: \r \n \0 \xHH \\ escapes.
    try:
        return s.encode("utf-8").decode("unicode_escape").encode("latin-1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return s.encode("utf-8")

def server_line(pattern):
    # Patterns use `*` for "anything": put plausible text there.
    return pattern.replace("*", "mx.example.org")

client_lines, server_lines = [], []

def walk_steps(steps):
    for step in steps or []:
        if not isinstance(step, dict):
            continue
        send = step.get("send")
        if isinstance(send, str):
            client_lines.append(expand(send).encode() + b"\r\n")
        elif isinstance(send, dict) and "line" in send:
            line = unescape(expand(str(send["line"])))
            if send.get("crlf", not send.get("raw", False)):
                line += b"\r\n"
            client_lines.append(line)
        pipe = step.get("pipeline")
        if isinstance(pipe, list):
            client_lines.append(b"".join(expand(str(p)).encode() + b"\r\n" for p in pipe))
        sasl = step.get("sasl")
        if isinstance(sasl, dict) and isinstance(sasl.get("send"), str):
            client_lines.append(expand(sasl["send"]).encode() + b"\r\n")
        for key in ("expect",):
            exp = step.get(key)
            if isinstance(exp, dict):
                if isinstance(exp.get("reply_lines"), list):
                    server_lines.append(
                        b"".join(server_line(str(l)).encode() + b"\r\n" for l in exp["reply_lines"]))
                if "code" in exp:
                    enh = exp.get("enhanced")
                    text = f"{exp['code']} {enh + ' ' if enh else ''}mx.example.org"
                    server_lines.append(text.encode() + b"\r\n")
        auth = step.get("auth")
        if isinstance(auth, dict) and isinstance(auth.get("expect"), dict):
            walk_steps([{"expect": auth["expect"]}])

scenario_files = sorted(glob.glob(os.path.join(ROOT, "scenarios", "**", "*.yaml"), recursive=True))
for path in scenario_files:
    with open(path, "rb") as f:
        raw = f.read()
    put("yaml_load", raw)
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError:
        continue
    if not isinstance(doc, dict):
        continue
    profile = doc.get("profile")
    if isinstance(profile, dict):
        cf = "".join(f"{k} = {'yes' if v is True else 'no' if v is False else v}\n"
                     for k, v in profile.items())
        put("main_cf", cf)
    walk_steps(doc.get("steps"))
    transcript = doc.get("transcript")
    if isinstance(transcript, str):
        reply = []
        for line in transcript.splitlines():
            line = line.strip()
            if line.startswith("C:"):
                if reply:
                    server_lines.append(b"".join(reply)); reply = []
                client_lines.append(expand(line[2:].strip()).encode() + b"\r\n")
            elif line.startswith("S:"):
                reply.append(server_line(line[2:].strip()).encode() + b"\r\n")
        if reply:
            server_lines.append(b"".join(reply))

for line in client_lines:
    for t in COMMAND_TARGETS:
        put(t, line)
for reply in server_lines:
    for t in REPLY_TARGETS:
        put(t, reply)
# Whole dialogs: every client line of the library in one stream, every reply in another.
for t in COMMAND_TARGETS:
    put(t, b"".join(client_lines))
for t in REPLY_TARGETS:
    put(t, b"".join(server_lines))

# ---- seeds the scenarios do not carry as bytes -------------------------------------
b64 = lambda b: base64.b64encode(b).decode()

# Commands the library does not send yet, so each verb and parameter has a seed.
plain_ir = b64(b"\0alice\0fuzzseed10")
xoauth2_ir = b64(b"user=alice\x01auth=Bearer tok\x01\x01")
for line in [
    "MAIL FROM:<alice@example.org> SIZE=1000 AUTH=alice+40example.org BODY=8BITMIME",
    "MAIL FROM:<> AUTH=<>", "RCPT TO:<Postmaster>", "RCPT TO:<@a.example,@b.example:bob@example.net>",
    "DATA", "BDAT 100 LAST", "RSET", "VRFY alice", "EXPN staff", "HELP", "NOOP", "QUIT", "STARTTLS",
    "HELO client.example.com", "EHLO [192.0.2.1]", "EHLO [IPv6:2001:db8::1]",
    f"AUTH PLAIN {plain_ir}", "AUTH PLAIN =", "AUTH CRAM-MD5", "AUTH SCRAM-SHA-256",
    f"AUTH XOAUTH2 {xoauth2_ir}", "AUTH EXTERNAL =",
    'MAIL FROM:<"quoted local"@example.org> SMTPUTF8',
]:
    for t in ["command", "differential"]:
        put(t, line + "\r\n")

for reply in [
    "220 mx.example.org ESMTP\r\n",
    "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n",
    "334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n",
    "334 \r\n", "334\r\n", "235 2.7.0 Authentication successful\r\n",
    "535 5.7.8 Error: authentication failed\r\n", "538 5.7.11 Encryption required\r\n",
    "354 End data with <CR><LF>.<CR><LF>\r\n", "421 4.7.0 too many errors\r\n", "221 2.0.0 Bye\r\n",
]:
    for t in REPLY_TARGETS:
        put(t, reply)

# Mechanism messages. mech.rs: first byte's low bit = "no initial response first",
# messages split on 0xFF. mech_digest_scram.rs: messages split on NUL.
FF = b"\xff"
put("server_plain", b"\x00" + b"\0user@example.org\0pencil")
put("server_plain", b"\x01" + b"authz\0user\0pencil")
put("server_login", b"\x01" + b"" + FF + b"user" + FF + b"pencil")
put("server_login", b"\x00" + b"user@example.org" + FF + b"pencil")
put("server_cram_md5", b"\x01" + b"user b913a602c7eda7a495b4e6e7334d3890")
put("server_xoauth2", b"\x00" + b"user=user@example.org\x01auth=Bearer pencil\x01\x01")
put("server_xoauth2", b"\x00" + b"user=x\x01auth=Bearer y\x01\x01" + FF + b"")
put("server_oauthbearer", b"\x00" + b"n,a=user@example.org,\x01host=mx.example.org\x01port=587\x01auth=Bearer pencil\x01\x01")
put("server_anonymous", b"\x00" + b"trace@example.org")
put("server_anonymous", b"\x01" + b"")
put("server_external", b"\x00" + b"")
put("server_external", b"\x00" + b"cert-user")
put("client_xoauth2", b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}')
put("client_oauthbearer", b'{"status":"invalid_token","scope":"x"}')
put("server_scram_sha1", b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL\0c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
put("server_scram_sha256", b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO\0c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
put("server_scram_sha256", b"n,a=keyed-sha256,n=keyed-sha256,r=abc\0c=bixhPWtleWVkLXNoYTI1Nix=,r=abc,p=AAAA")
put("client_scram", b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096\0v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
put("client_scram", b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\0v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
digest_challenge = b'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8'
put("client_digest_md5", digest_challenge + b"\0rspauth=ea40f60335c427b5527b84dbabcdfffd")
put("digest_directives", digest_challenge)
put("digest_directives", b'username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth')
put("server_digest_md5", b'charset=utf-8,username="user",realm="fuzz.test",nonce="x",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="smtp/smtp.fuzz.test",response=d388dad90d4bbd760a152321f2143af7,qop=auth\0')

# Files.
put("passwd_file", "alice:{PLAIN}fuzzseed10\nbob:{CRAM-MD5}" + "0" * 64 + ":1000:1000::/home/bob\n"
    "carol:{SCRAM-SHA-256}4096,c2FsdA==,AAAA,BBBB\n# comment\n\ndave:{PLAIN.B64}ZnV6enNlZWQxMA==\n")
put("passwd_file", "tim:{CLEAR}pw\nuser@example.org:secret::::::\n")
put("password_map", "[mx.example.com]:587 alice:fuzzseed10\nexample.net bob:p@ss w0rd:x\n# comment\n")
put("main_cf", "myhostname = mx.example.org\nsmtpd_sasl_auth_enable = yes\nsmtpd_tls_security_level = may\n"
    "smtpd_tls_auth_only = yes\nsmtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination\n"
    "smtpd_sasl_security_options = noanonymous, noplaintext\nbroken_sasl_auth_clients = yes\n"
    "smtpd_banner = $myhostname ESMTP\n  continued line\n")
put("main_cf", "smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:/etc/postfix/sasl_passwd\n"
    "smtp_sasl_security_options = noanonymous\nsmtp_sasl_mechanism_filter = !gssapi, plain, login\n"
    "smtp_tls_security_level = encrypt\nrelayhost = [mx.example.com]:587\n")
put("xtext", b"alice+40example.org")
put("xtext", b"+2B+3D+20")
put("sasl_base64", b"AGFsaWNlAGZ1enpzZWVkMTA=")
put("sasl_base64", b"=")
put("sasl_base64", b"*")
put("yaml_glob", b"250-AUTH * PLAIN *\n250-AUTH LOGIN PLAIN CRAM-MD5")
put("yaml_glob", b"2?? *\n235 2.7.0 Authentication successful")
put("line_framer", b"\x08EHLO a\r\nMAIL FROM:<x> AUTH=<>\r\nRCPT TO:<y>\nDATA\r\n")
put("line_framer", b"\x06a\rb\r\n\0c\r\n")

for t in sorted(written):
    print(f"{t}: {written[t]} new")
PY
