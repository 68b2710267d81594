"""One IMAP session through imapd over implicit TLS, with Python's
imaplib, for the reload and metrics tests.

Usage: session_client.py MODE PORT CAFILE USER PASSWORD

MODE:
  fetch  log in, fetch message 1, log out
  hold   log in, select INBOX, print `ready=1`, wait for a line on
         standard input, then fetch message 1 in the same session
  bad    a login that must fail

Prints `key=value` lines (the message in hex) for the Rust test.
"""

import imaplib
import ssl
import sys


def out(key, value):
    if isinstance(value, bytes):
        value = value.hex()
    print(f"{key}={value}", flush=True)


def main():
    mode, port, cafile, user, password = sys.argv[1:6]
    ctx = ssl.create_default_context(cafile=cafile)
    try:
        imap = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx, timeout=60)
    except imaplib.IMAP4.error as e:
        # A refusal in place of the greeting (`* BYE ...`).
        arg = e.args[0]
        out("greeting", arg.decode(errors="replace") if isinstance(arg, bytes) else arg)
        return
    out("greeting", imap.welcome.decode(errors="replace"))
    if mode == "bad":
        try:
            imap.login(user, password)
            out("login", "OK")
        except imaplib.IMAP4.error as e:
            out("login", f"NO {e}")
        imap.logout()
        return
    typ, _ = imap.login(user, password)
    out("login", typ)
    typ, _ = imap.select("INBOX")
    out("select", typ)
    if mode == "hold":
        out("ready", "1")
        sys.stdin.readline()
    typ, data = imap.fetch("1", "(RFC822)")
    out("fetch", typ)
    out("message", data[0][1])
    typ, _ = imap.noop()
    out("noop", typ)
    imap.logout()
    out("logout", "OK")


main()
