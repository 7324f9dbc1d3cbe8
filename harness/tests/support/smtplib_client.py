#!/usr/bin/env python3
"""A third-party client for server-role scenarios: Python's smtplib, used the way
most scripts use it (login() picks the mechanism, then send one message).

Usage: smtplib_client.py HOST PORT; credentials from AUTHSPEC_USER and
AUTHSPEC_PASSWORD (set by `authspec run --client-command`)."""
import os
import smtplib
import sys

host, port = sys.argv[1], int(sys.argv[2])
user = os.environ.get("AUTHSPEC_USER", "alice")
password = os.environ.get("AUTHSPEC_PASSWORD", "wonderland")
try:
    with smtplib.SMTP(host, port, timeout=10) as s:
        s.ehlo("client.smtplib.test")
        s.login(user, password)
        s.sendmail(
            "alice@authspec.test",
            ["bob@authspec.test"],
            "Subject: authspec server-role scenario\r\n\r\nhello\r\n",
        )
except Exception as e:  # the verdict comes from the dialog, not from here
    print(f"smtplib: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1)
