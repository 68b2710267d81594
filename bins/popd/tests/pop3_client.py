"""POP3 client scenarios against popd, with Python's poplib.

Usage: pop3_client.py SCENARIO HOST PORT CAFILE USER PASSWORD [SOURCE]

Prints `key=value` lines (binary values in hex) for the Rust test to check.
The EXTERNAL scenarios take the client certificate and key files (PEM) in
place of USER and PASSWORD.
"""

import base64
import poplib
import socket
import ssl
import sys


class SourcedPOP3(poplib.POP3):
    """POP3 from a chosen local address (a second loopback address)."""

    def __init__(self, host, port, source):
        self._source = source
        super().__init__(host, port, timeout=60)

    def _create_socket(self, timeout):
        return socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


def out(key, value):
    if isinstance(value, bytes):
        value = value.hex()
    print(f"{key}={value}", flush=True)


def capa_names(p):
    return " ".join(sorted(p.capa().keys()))


def stls_retr(host, port, cafile, user, password, source):
    p = SourcedPOP3(host, port, source)
    out("capa_plain", capa_names(p))
    try:
        p.user(user)
        out("plain_user", "accepted")
    except poplib.error_proto as e:
        out("plain_user", e.args[0].decode(errors="replace"))
    p.stls(context(cafile))
    out("capa_tls", capa_names(p))
    p.user(user)
    out("login", p.pass_(password).decode())
    count, _size = p.stat()
    out("count", count)
    _resp, lines, _octets = p.retr(1)
    out("message", b"\r\n".join(lines) + b"\r\n")
    p.quit()


def ssl_apop(host, port, cafile, user, password, _source):
    p = poplib.POP3_SSL(host, port, context=context(cafile), timeout=60)
    out("greeting", p.getwelcome().decode())
    out("login", p.apop(user, password).decode())
    count, _size = p.stat()
    out("count", count)
    p.quit()


def stls_wrong(host, port, cafile, user, password, _source):
    p = poplib.POP3(host, port, timeout=60)
    p.stls(context(cafile))
    p.user(user)
    try:
        p.pass_(password)
        out("wrong", "accepted")
    except poplib.error_proto as e:
        out("wrong", e.args[0].decode(errors="replace"))
    p.quit()


def greeting(host, port, _cafile, _user, _password, source):
    try:
        p = SourcedPOP3(host, port, source)
        out("greeting", p.getwelcome().decode())
        p.quit()
    except poplib.error_proto as e:
        out("greeting", e.args[0].decode(errors="replace"))


def stls_auth_plain(host, port, cafile, user, password, source):
    p = SourcedPOP3(host, port, source)
    p.stls(context(cafile))
    out("sasl", " ".join(p.capa().get("SASL", [])))
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    out("login", p._shortcmd("AUTH PLAIN " + token.decode()).decode())
    count, _size = p.stat()
    out("count", count)
    p.quit()


def attempts(host, port, cafile, user, password, _source):
    p = poplib.POP3(host, port, timeout=60)
    p.stls(context(cafile))
    for _ in range(6):
        try:
            p.user(user)
            p.pass_(password)
            out("attempt", "accepted")
        except poplib.error_proto as e:
            text = e.args[0]
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            if "EOF" in text:
                out("closed", "yes")
                return
            out("attempt", text)
        except OSError:
            out("closed", "yes")
            return
    out("closed", "no")


def proxy_ssl(host, port, cafile, user, password, source):
    """POP3S behind a PROXY v1 header naming `source` as the client."""

    class ProxiedPOP3(poplib.POP3_SSL):
        def _create_socket(self, timeout):
            sock = socket.create_connection((self.host, self.port), timeout)
            header = f"PROXY TCP4 {source} 127.0.0.1 40077 {self.port}\r\n"
            sock.sendall(header.encode())
            return self.context.wrap_socket(sock, server_hostname=self.host)

    p = ProxiedPOP3(host, port, context=context(cafile), timeout=60)
    p.user(user)
    out("login", p.pass_(password).decode())
    count, _size = p.stat()
    out("count", count)
    p.quit()


def external_login(p):
    out("sasl", " ".join(p.capa().get("SASL", [])))
    # `=`: an empty initial response, act as whoever the certificate maps to.
    out("login", p._shortcmd("AUTH EXTERNAL =").decode())
    count, _size = p.stat()
    out("count", count)
    p.quit()


def client_context(cafile, certfile, keyfile):
    ctx = context(cafile)
    ctx.load_cert_chain(certfile, keyfile)
    return ctx


class SourcedPOP3_SSL(poplib.POP3_SSL):
    """POP3 over implicit TLS from a chosen local address."""

    def __init__(self, host, port, context, source):
        self._source = source
        super().__init__(host, port, context=context, timeout=60)

    def _create_socket(self, timeout):
        sock = socket.create_connection(
            (self.host, self.port), timeout, source_address=(self._source, 0)
        )
        return self.context.wrap_socket(sock, server_hostname=self.host)


def ssl_external(host, port, cafile, certfile, keyfile, source):
    ctx = client_context(cafile, certfile, keyfile)
    try:
        p = SourcedPOP3_SSL(host, port, ctx, source)
        greeting = p.getwelcome().decode()
    except (ssl.SSLError, OSError, poplib.error_proto) as e:
        # Under TLS 1.3 the server judges the certificate after the
        # client's handshake is done: its alert arrives on the first read.
        out("refused", type(e).__name__)
        return
    out("greeting", greeting)
    external_login(p)


def stls_external(host, port, cafile, certfile, keyfile, _source):
    p = poplib.POP3(host, port, timeout=60)
    out("sasl_plain", " ".join(p.capa().get("SASL", [])))
    p.stls(client_context(cafile, certfile, keyfile))
    external_login(p)


def plain_retr(host, port, _cafile, user, password, source):
    """USER/PASS without TLS (allowed by the configuration), then RETR."""
    p = SourcedPOP3(host, port, source)
    out("capa_plain", capa_names(p))
    p.user(user)
    out("login", p.pass_(password).decode())
    _resp, lines, _octets = p.retr(1)
    out("message", b"\r\n".join(lines) + b"\r\n")
    p.quit()


def plain_auth_plain(host, port, _cafile, user, password, source):
    """AUTH PLAIN without TLS: what the server answers."""
    p = SourcedPOP3(host, port, source)
    out("sasl_plain", " ".join(p.capa().get("SASL", [])))
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    try:
        out("auth_plain", p._shortcmd("AUTH PLAIN " + token.decode()).decode())
    except poplib.error_proto as e:
        out("auth_plain", e.args[0].decode(errors="replace"))
    p.quit()


SCENARIOS = {
    "ssl-external": ssl_external,
    "stls-external": stls_external,
    "stls-retr": stls_retr,
    "ssl-apop": ssl_apop,
    "stls-wrong": stls_wrong,
    "greeting": greeting,
    "stls-auth-plain": stls_auth_plain,
    "attempts": attempts,
    "proxy-ssl": proxy_ssl,
    "plain-retr": plain_retr,
    "plain-auth-plain": plain_auth_plain,
}

if __name__ == "__main__":
    name, host, port, cafile, user, password = sys.argv[1:7]
    source = sys.argv[7] if len(sys.argv) > 7 else "127.0.0.1"
    SCENARIOS[name](host, int(port), cafile, user, password, source)
