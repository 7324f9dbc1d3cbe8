"""python3 send.py HOST PORT [MECHANISM]: send one message with aiosmtplib,
authenticating as $AUTHSPEC_USER with $AUTHSPEC_PASSWORD (environment, never argv).

MECHANISM (PLAIN, LOGIN, CRAM-MD5) calls that auth method directly; without it
aiosmtplib's login() picks (its order: CRAM-MD5, PLAIN, LOGIN). Exit 0 when the
message was accepted, 1 otherwise.
"""
import asyncio
import logging
import os
import sys

# install.sh puts aiosmtplib next to this file.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "site"))

import aiosmtplib  # noqa: E402


async def main(host, port, mechanism):
    user = os.environ.get("AUTHSPEC_USER", "")
    password = os.environ.get("AUTHSPEC_PASSWORD", "")
    smtp = aiosmtplib.SMTP(hostname=host, port=port, use_tls=False, start_tls=False, timeout=10)
    await smtp.connect()
    if mechanism is None:
        await smtp.login(user, password)
    else:
        await smtp.ehlo()
        method = {"PLAIN": smtp.auth_plain, "LOGIN": smtp.auth_login, "CRAM-MD5": smtp.auth_crammd5}[mechanism.upper()]
        await method(user, password)
    msg = "From: alice@authspec.test\r\nTo: bob@example.net\r\nSubject: authspec interop (aiosmtplib)\r\n\r\nhello\r\n"
    errors, response = await smtp.sendmail("alice@authspec.test", ["bob@example.net"], msg)
    print("accepted:", response)
    await smtp.quit()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print("usage: send.py HOST PORT [MECHANISM]", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
    except Exception as e:  # the client's own report of the failure
        print(f"aiosmtplib: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
