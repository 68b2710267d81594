"""SMTP client scenarios for the smtpd end-to-end tests.

usage: smtp_client.py SCENARIO PORT CA_FILE USER PASSWORD FROM RCPT MARK [SOURCE_IP]

Prints key=value lines (reply codes, texts) for the test to check; exits
non-zero only when the scenario itself could not run.
"""

import smtplib
import socket
import ssl
import sys

scenario, port, ca, user, password, sender, rcpt, mark = sys.argv[1:9]
port = int(port)
source = sys.argv[9] if len(sys.argv) > 9 else "127.0.0.1"
extra = sys.argv[10] if len(sys.argv) > 10 else ""
HOST = "127.0.0.1"


def out(key, value):
    print(f"{key}={value}".replace("\r", "\\r").replace("\n", "\\n"))


def context():
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    return ctx


def message():
    return (
        f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {mark}\r\n\r\n"
        f"body of {mark}\r\n.leading dot line\r\n"
    ).encode()


def result(key, fn):
    try:
        r = fn()
        out(key, f"ok {r!r}")
    except smtplib.SMTPResponseException as e:
        out(key, f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        out(key, f"{code} {text.decode(errors='replace')}")
    except smtplib.SMTPSenderRefused as e:
        out(key, f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}")


def send(s):
    result("send", lambda: s.sendmail(sender, [rcpt], message()))


def connect(tls=False):
    if tls:
        s = smtplib.SMTP_SSL(HOST, port, timeout=30, context=context(),
                             source_address=(source, 0))
    else:
        s = smtplib.SMTP(HOST, port, timeout=30, source_address=(source, 0))
    s.ehlo("client.example")
    return s


def login(s, mech):
    s.user, s.password = user, password
    auth = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[mech]
    result("auth", lambda: s.auth(mech, auth, initial_response_ok=(mech == "PLAIN")))


def quit(s):
    """QUIT, unless the server has closed already (after a 421)."""
    try:
        s.quit()
    except smtplib.SMTPServerDisconnected:
        out("closed", "by the server")


def authenticated():
    """STARTTLS, EHLO again, AUTH PLAIN."""
    s = connect()
    s.starttls(context=context())
    s.ehlo("client.example")
    login(s, "PLAIN")
    return s


if scenario in ("starttls-plain", "starttls-login"):
    s = connect()
    out("features_plain", " ".join(sorted(s.esmtp_features)))
    s.starttls(context=context())
    s.ehlo("client.example")
    out("features_tls", " ".join(sorted(s.esmtp_features)))
    login(s, scenario.split("-")[1].upper())
    send(s)
    quit(s)
elif scenario == "implicit-tls":
    s = connect(tls=True)
    out("auth_offered", s.esmtp_features.get("auth", ""))
    login(s, "PLAIN")
    send(s)
    quit(s)
elif scenario == "noauth":
    # Plain connection, no AUTH: refused at MAIL FROM.
    s = connect()
    send(s)
    quit(s)
elif scenario == "noauth-tls":
    s = connect()
    s.starttls(context=context())
    s.ehlo("client.example")
    send(s)
    quit(s)
elif scenario == "auth-plaintext":
    # AUTH without TLS: not offered, refused when tried.
    s = connect()
    out("features_plain", " ".join(sorted(s.esmtp_features)))
    s.user, s.password = user, password
    result("auth", lambda: s.auth("PLAIN", s.auth_plain))
    quit(s)
elif scenario == "two-messages":
    s = authenticated()
    send(s)
    result("second", lambda: s.sendmail(sender, [rcpt.replace("@", "-2@")], message()))
    quit(s)
elif scenario == "wrong-sender":
    s = authenticated()
    send(s)
    quit(s)
elif scenario == "impersonation":
    # XCLIENT, XFORWARD and a PROXY line from an authenticated client.
    s = authenticated()
    for key, cmd in [("xclient", "XCLIENT ADDR=192.0.2.66 LOGIN=root"),
                     ("xforward", "XFORWARD ADDR=192.0.2.66"),
                     ("proxy", "PROXY TCP4 192.0.2.66 127.0.0.1 4000 587")]:
        code, text = s.docmd(cmd)
        out(key, f"{code} {text.decode(errors='replace')}")
    send(s)
    quit(s)
elif scenario == "size":
    # SIZE= above the limit, then content above it with no SIZE=.
    s = authenticated()
    out("size_declared", " ".join(str(x) for x in s.mail(sender, ["SIZE=" + extra])))
    s.rset()
    out("mail", s.mail(sender)[0])
    out("rcpt", s.rcpt(rcpt)[0])
    body = message() + (b"x" * 70 + b"\r\n") * (int(extra) // 72 + 2)
    result("data", lambda: s.data(body))
    quit(s)
elif scenario == "recipients":
    s = authenticated()
    out("mail", s.mail(sender)[0])
    codes = [str(s.rcpt(rcpt.replace("@", f"-{i}@"))[0]) for i in range(int(extra))]
    out("rcpts", " ".join(codes))
    result("data", lambda: s.data(message()))
    quit(s)
elif scenario == "smuggle":
    # A smuggling sequence inside DATA, then a normal message as a sync
    # point on the same connection.
    seq = bytes.fromhex(extra)
    s = authenticated()
    s.mail(sender)
    s.rcpt(rcpt)
    s.putcmd("DATA")
    out("data", s.getreply()[0])
    evil = (b"MAIL FROM:<" + sender.encode() + b">\r\nRCPT TO:<victim-" + mark.encode()
            + b"@elsewhere.example>\r\nDATA\r\nSubject: evil\r\n\r\nevil\r\n")
    s.send(b"Subject: smuggle-" + mark.encode() + b"\r\n\r\nA" + seq + evil + b"\r\n.\r\n")
    code, text = s.getreply()
    out("smuggled", f"{code} {text.decode(errors='replace')}")
    result("sync", lambda: s.sendmail(sender, ["sync-" + mark + "@elsewhere.example"], message()))
    quit(s)
elif scenario == "starttls-injection":
    # Commands pipelined after STARTTLS in the same packet are discarded.
    raw = socket.create_connection((HOST, port), timeout=30)
    f = raw.makefile("rb")
    def reply(f):
        text = b""
        while True:
            line = f.readline()
            if not line:
                return "closed " + text.decode(errors="replace")
            text += line
            if line[3:4] == b" ":
                return text.decode(errors="replace").strip()
    reply(f)
    raw.sendall(b"EHLO client.example\r\n")
    reply(f)
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<" + sender.encode() + b">\r\nRCPT TO:<" + rcpt.encode() + b">\r\n")
    out("starttls", reply(f))
    tls = context().wrap_socket(raw, server_hostname="localhost")
    tf = tls.makefile("rb")
    tls.sendall(b"NOOP\r\n")
    out("first_after_tls", reply(tf))
    tls.sendall(b"MAIL FROM:<" + sender.encode() + b">\r\n")
    out("mail_after_tls", reply(tf))
    tls.sendall(b"QUIT\r\n")
    reply(tf)
elif scenario == "hostile-helo":
    # Each hostile greeting, then MAIL FROM on the same authenticated
    # session; the last message goes through.
    s = authenticated()
    names = [b"", b"a" * 300 + b".example", b"ctl\x01name.example", b"del\x7fname.example",
             "ex\u00e4mple.example".encode(), b"[999.1.1.1]"]
    for i, name in enumerate(names):
        s.send(b"EHLO " + name + b"\r\n" if name else b"EHLO\r\n")
        code, text = s.getreply()
        out(f"helo{i}", code)
        code, text = s.mail(sender)
        out(f"mail{i}", f"{code} {text.decode(errors='replace')}")
        s.rset()
    s.ehlo("client.example")
    send(s)
    quit(s)
else:
    raise SystemExit(f"unknown scenario {scenario}")
