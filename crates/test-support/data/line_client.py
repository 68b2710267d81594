"""Protocol-neutral line client scenarios against a mail front end (IMAP
or POP3): connection limits, the pre-login timeout, overlong lines, the
greeting over implicit TLS.

Usage: line_client.py SCENARIO HOST PORT CAFILE ARG1 ARG2 [SOURCE]

Prints `key=value` lines for the Rust test to check.
"""

import socket
import ssl
import sys


def out(key, value):
    print(f"{key}={value}", flush=True)


def read_line(sock):
    """One line without its CRLF; empty at the end of the connection."""
    line = b""
    while not line.endswith(b"\r\n"):
        try:
            chunk = sock.recv(1)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace").rstrip("\r\n")


def connect(host, port, source):
    return socket.create_connection((host, port), 60, source_address=(source, 0))


def connections(host, port, _cafile, sources, _unused, _source):
    """One connection from each address of the comma-separated `sources`,
    in order, each kept open until all are made; each one's first line
    (empty when the server closed without a word)."""
    held = []
    for source in sources.split(","):
        sock = connect(host, port, source)
        out("greeting", read_line(sock))
        held.append(sock)
    for sock in held:
        sock.close()


def idle(host, port, _cafile, _unused, _unused2, source):
    """The greeting, then nothing sent: what the server says before it
    closes the connection."""
    sock = connect(host, port, source)
    out("greeting", read_line(sock))
    lines = []
    while True:
        line = read_line(sock)
        if not line:
            break
        lines.append(line)
    out("after", " | ".join(lines + ["closed"]))
    sock.close()


def overlong(host, port, _cafile, head, follow, source):
    """`head` followed by 100,000 octets and CRLF, then `follow`: the
    server's next two lines, then whether a new connection is greeted."""
    sock = connect(host, port, source)
    out("greeting", read_line(sock))
    sock.sendall(head.encode() + b"x" * 100_000 + b"\r\n" + follow.encode() + b"\r\n")
    out("overlong", read_line(sock))
    out("next", read_line(sock))
    sock.close()
    again = connect(host, port, source)
    out("again", read_line(again))
    again.close()


def ssl_greeting(host, port, cafile, _unused, _unused2, source):
    """The first line over implicit TLS from `source`."""
    sock = connect(host, port, source)
    tls = ssl.create_default_context(cafile=cafile).wrap_socket(
        sock, server_hostname=host
    )
    out("greeting", read_line(tls))
    tls.close()


def proxied_greeting(host, port, cafile, client, tls, source):
    """A PROXY v1 header naming `client` as the client, then (`tls` =
    `tls`) the TLS handshake: the first line."""
    sock = connect(host, port, source)
    sock.sendall(f"PROXY TCP4 {client} 127.0.0.1 40077 {port}\r\n".encode())
    if tls == "tls":
        sock = ssl.create_default_context(cafile=cafile).wrap_socket(
            sock, server_hostname=host
        )
    out("greeting", read_line(sock))
    sock.close()


SCENARIOS = {
    "connections": connections,
    "idle": idle,
    "overlong": overlong,
    "ssl-greeting": ssl_greeting,
    "proxied-greeting": proxied_greeting,
}

if __name__ == "__main__":
    name, host, port, cafile, arg1, arg2 = sys.argv[1:7]
    source = sys.argv[7] if len(sys.argv) > 7 else "127.0.0.1"
    SCENARIOS[name](host, int(port), cafile, arg1, arg2, source)
