"""IMAP client scenarios against imapd, with Python's imaplib (and raw
sockets where imaplib would hide the server's answer).

Usage: imap_client.py SCENARIO HOST PORT CAFILE USER PASSWORD [SOURCE]

Prints `key=value` lines (binary values in hex) for the Rust test to check.
"""

import base64
import hashlib
import hmac
import imaplib
import os
import socket
import ssl
import sys


def context(cafile):
    return ssl.create_default_context(cafile=cafile)


def out(key, value):
    if isinstance(value, bytes):
        value = value.hex()
    print(f"{key}={value}", flush=True)


def text(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, (list, tuple)):
        return " ".join(text(v) for v in value)
    return str(value)


class SourcedIMAP4(imaplib.IMAP4):
    """IMAP from a chosen local address (a second loopback address)."""

    def __init__(self, host, port, source):
        self._source = source
        super().__init__(host, port, timeout=60)

    def _create_socket(self, timeout):
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


def fetch_first(m):
    """Selects INBOX and prints the first message as the store has it."""
    typ, data = m.select("INBOX")
    out("select", typ)
    out("exists", text(data))
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    out("fetch", typ)
    out("message", data[0][1])


def login_tagged(m, user, password):
    """LOGIN; prints the tagged result line as the server sent it."""
    try:
        typ, data = m.login(user, password)
        out("login", f"{typ} {text(data)}")
        return True
    except imaplib.IMAP4.error as e:
        out("login", f"NO {text(e.args)}")
        return False


def authenticate(m, mechanism, answer):
    """AUTHENTICATE; prints the tagged result line as the server sent it."""
    try:
        typ, data = m.authenticate(mechanism, answer)
        out("login", f"{typ} {text(data)}")
        return True
    except imaplib.IMAP4.error as e:
        out("login", f"NO {text(e.args)}")
        return False


def capabilities(m):
    typ, data = m.capability()
    return text(data)


def starttls_fetch(host, port, cafile, user, password, source):
    m = SourcedIMAP4(host, port, source)
    out("greeting", text(m.welcome))
    out("caps_plain", capabilities(m))
    # LOGIN before TLS: imaplib refuses when LOGINDISABLED is advertised,
    # so send it by hand.
    tag = m._new_tag().decode()
    m.send(f"{tag} LOGIN {user} {password}\r\n".encode())
    while True:
        line = m.readline().decode(errors="replace").rstrip("\r\n")
        if line.startswith(tag + " "):
            out("plain_login", line[len(tag) + 1:])
            break
    m.starttls(context(cafile))
    out("caps_tls", capabilities(m))
    if login_tagged(m, user, password):
        fetch_first(m)
        # STARTTLS after login goes to the store, which refuses it.
        try:
            typ, data = m._simple_command("STARTTLS")
            out("starttls_after_login", f"{typ} {text(data)}")
        except imaplib.IMAP4.error as e:
            out("starttls_after_login", f"BAD {text(e.args)}")
        m.logout()


def ssl_auth_plain(host, port, cafile, user, password, _source):
    m = imaplib.IMAP4_SSL(host, port, ssl_context=context(cafile), timeout=60)
    out("caps", capabilities(m))
    # STARTTLS on the implicit-TLS port.
    try:
        typ, data = m._simple_command("STARTTLS")
        out("starttls", f"{typ} {text(data)}")
    except imaplib.IMAP4.error as e:
        out("starttls", f"BAD {text(e.args)}")
    token = b"\0" + user.encode() + b"\0" + password.encode()
    if authenticate(m, "PLAIN", lambda _challenge: token):
        fetch_first(m)
        m.logout()


def ssl_cram_md5(host, port, cafile, user, password, _source):
    m = imaplib.IMAP4_SSL(host, port, ssl_context=context(cafile), timeout=60)
    out("caps", capabilities(m))
    typ, data = m.login_cram_md5(user, password)
    out("login", f"{typ} {text(data)}")
    fetch_first(m)
    m.logout()


def starttls_login(host, port, cafile, user, password, source):
    """STARTTLS, LOGIN; the tagged result, then LOGOUT."""
    m = SourcedIMAP4(host, port, source)
    m.starttls(context(cafile))
    if login_tagged(m, user, password):
        m.logout()
        return
    try:
        m.logout()
    except (imaplib.IMAP4.abort, OSError):
        out("closed", "yes")


def attempts(host, port, cafile, user, password, source):
    """Wrong logins until the server closes the connection."""
    m = SourcedIMAP4(host, port, source)
    m.starttls(context(cafile))
    for _ in range(6):
        try:
            m.login(user, password)
            out("attempt", "accepted")
            return
        except imaplib.IMAP4.abort:
            out("closed", "yes")
            return
        except imaplib.IMAP4.error as e:
            out("attempt", text(e.args))
        except OSError:
            out("closed", "yes")
            return
    out("closed", "no")


def read_line(sock):
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").rstrip("\r\n")


def read_until_tag(sock, tag):
    """The lines up to and including the tagged one (or the close)."""
    lines = []
    while True:
        line = read_line(sock)
        lines.append(line)
        if not line or line.startswith(tag + " "):
            return lines


def greeting(host, port, _cafile, _user, _password, source):
    sock = socket.create_connection((host, port), 60, source_address=(source, 0))
    out("greeting", read_line(sock))
    sock.close()


def pipelined_starttls(host, port, cafile, _user, _password, source):
    """CVE-2011-0411: a command sent in the same packet as STARTTLS must
    not be executed inside the TLS session."""
    sock = socket.create_connection((host, port), 60, source_address=(source, 0))
    out("greeting", read_line(sock))
    sock.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
    out("starttls", read_until_tag(sock, "a")[-1])
    tls = context(cafile).wrap_socket(sock, server_hostname=host)
    tls.sendall(b"c NOOP\r\n")
    lines = read_until_tag(tls, "c")
    out("after_tls", " | ".join(lines))
    # STARTTLS again inside TLS.
    tls.sendall(b"d STARTTLS\r\n")
    out("starttls_again", read_until_tag(tls, "d")[-1])
    tls.sendall(b"e LOGOUT\r\n")
    read_until_tag(tls, "e")
    tls.close()


def huge_literal(host, port, cafile, _user, _password, _source):
    """A 1 GB literal announced: refused without being read."""
    sock = socket.create_connection((host, port), 60)
    tls = context(cafile).wrap_socket(sock, server_hostname=host)
    out("greeting", read_line(tls))
    tls.sendall(b"a LOGIN {1073741824}\r\n")
    out("sync", read_until_tag(tls, "a")[-1])
    # Non-synchronizing: refused, and the connection ends.
    tls.sendall(b"b LOGIN {1073741824+}\r\n")
    out("nonsync", read_until_tag(tls, "b")[-1])
    # Then `* BYE` and the end of the connection.
    rest = []
    try:
        while True:
            line = read_line(tls)
            if not line:
                break
            rest.append(line)
    except (ssl.SSLError, OSError):
        pass
    out("after", " | ".join(rest + ["closed"]))
    tls.close()


def plain_fetch(host, port, _cafile, user, password, source):
    """LOGIN without TLS (allowed by the configuration), then a FETCH."""
    m = SourcedIMAP4(host, port, source)
    out("caps_plain", capabilities(m))
    if login_tagged(m, user, password):
        fetch_first(m)
        m.logout()


def wrong_logins(host, port, cafile, user, password, source):
    """Two wrong passwords (different ones, so the penalty counts both);
    `sent=N` before each, `attempt=...` once its refusal arrived."""
    m = SourcedIMAP4(host, port, source)
    m.starttls(context(cafile))
    for n in (1, 2):
        out("sent", n)
        try:
            m.login(user, f"{password}-{n}")
            out("attempt", "accepted")
            return
        except imaplib.IMAP4.error as e:
            out("attempt", text(e.args))
    m.logout()


def scram_client(user, password):
    """A SCRAM-SHA-256 client (RFC 5802, RFC 7677) for imaplib's
    authenticate(): each call answers one server challenge."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    state = {"step": 0}

    def step(challenge):
        state["step"] += 1
        if state["step"] == 1:
            return ("n,," + first_bare).encode()
        if state["step"] == 2:
            server_first = challenge.decode()
            attrs = dict(a.split("=", 1) for a in server_first.split(","))
            if not attrs["r"].startswith(nonce):
                raise ValueError("server nonce does not extend ours")
            salt = base64.b64decode(attrs["s"])
            salted = hashlib.pbkdf2_hmac(
                "sha256", password.encode(), salt, int(attrs["i"])
            )
            client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
            stored_key = hashlib.sha256(client_key).digest()
            without_proof = f"c=biws,r={attrs['r']}"
            auth_message = f"{first_bare},{server_first},{without_proof}".encode()
            signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
            state["expected"] = base64.b64encode(
                hmac.new(server_key, auth_message, hashlib.sha256).digest()
            ).decode()
            return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
        # The server's final message: its signature must match.
        final = challenge.decode()
        out("server_signature_ok", final == "v=" + state["expected"])
        return b""

    return step


def ssl_scram(host, port, cafile, user, password, _source):
    m = imaplib.IMAP4_SSL(host, port, ssl_context=context(cafile), timeout=60)
    out("caps", capabilities(m))
    if authenticate(m, "SCRAM-SHA-256", scram_client(user, password)):
        fetch_first(m)
        m.logout()


def id_login(host, port, cafile, user, password, source):
    """STARTTLS, the client's own ID (with a forged x-originating-ip),
    LOGIN, LOGOUT."""
    imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
    m = SourcedIMAP4(host, port, source)
    m.starttls(context(cafile))
    typ, data = m._simple_command(
        "ID",
        '("name" "PortcullisTestClient" "version" "4.2"'
        ' "x-originating-ip" "203.0.113.66")',
    )
    out("id", f"{typ} {text(data)}")
    if login_tagged(m, user, password):
        m.logout()


SCENARIOS = {
    "starttls-fetch": starttls_fetch,
    "ssl-auth-plain": ssl_auth_plain,
    "ssl-cram-md5": ssl_cram_md5,
    "starttls-login": starttls_login,
    "attempts": attempts,
    "greeting": greeting,
    "pipelined-starttls": pipelined_starttls,
    "huge-literal": huge_literal,
    "plain-fetch": plain_fetch,
    "wrong-logins": wrong_logins,
    "ssl-scram": ssl_scram,
    "id-login": id_login,
}

if __name__ == "__main__":
    name, host, port, cafile, user, password = sys.argv[1:7]
    source = sys.argv[7] if len(sys.argv) > 7 else "127.0.0.1"
    SCENARIOS[name](host, int(port), cafile, user, password, source)
