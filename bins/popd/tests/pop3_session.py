"""One POP3 session through popd over implicit TLS, with Python's
poplib, for the metrics and reload tests.

Usage: pop3_session.py MODE PORT CAFILE USER PASSWORD

MODE:
  retr   USER/PASS, RETR 1, QUIT
  hold   USER/PASS, print `ready=1`, wait for a line on standard input,
         then RETR 1 and QUIT in the same session
  bad    a login that must fail

Prints `key=value` lines (the message in hex).
"""

import poplib
import ssl
import sys


def out(key, value):
    if isinstance(value, bytes):
        value = value.hex()
    print(f"{key}={value}", flush=True)


def main():
    mode, port, cafile, user, password = sys.argv[1:6]
    ctx = ssl.create_default_context(cafile=cafile)
    pop = poplib.POP3_SSL("127.0.0.1", int(port), context=ctx, timeout=60)
    out("greeting", pop.getwelcome().decode(errors="replace"))
    pop.user(user)
    try:
        out("login", pop.pass_(password).decode(errors="replace"))
    except poplib.error_proto as e:
        out("login", e.args[0].decode(errors="replace"))
        pop.quit()
        return
    if mode == "hold":
        out("ready", "1")
        sys.stdin.readline()
    _, lines, _ = pop.retr(1)
    out("message", b"\r\n".join(lines) + b"\r\n")
    out("quit", pop.quit().decode(errors="replace"))


main()
