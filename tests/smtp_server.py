#!/usr/bin/env python3
"""netdigest's loopback SMTP test server (aiosmtpd), started by tests/mail.rs.

Listens on 127.0.0.1 only: a STARTTLS port, an implicit-TLS port and (optionally) a
plain port, each on a free port unless one is given. Requires AUTH (PLAIN and LOGIN,
or the mechanisms named) against one user and the password read from a file. Makes
its own self-signed certificate with openssl (basicConstraints=critical,CA:FALSE and
subjectAltName localhost/127.0.0.1/::1: rustls refuses a CA certificate used as the
server's own).

Every accepted message is stored as OUTDIR/msg-N.eml, with OUTDIR/msg-N.json written
last (atomically): envelope, login, AUTH mechanism, TLS, port, and each MIME leaf part
as parsed by Python's email package (content type, Content-ID, disposition, file name)
with its decoded bytes in OUTDIR/msg-N.part-K.

Failure injection, counted over DATA commands on all ports together:
  --fail-first N   answer the first N with FAIL_CODE (default 421) and close
  --drop-first N   drop the connection (no reply) on the first N
  --reject-rcpt A  answer RCPT TO:<A> with 550 5.1.1 (repeatable)
  --reject-data-containing T  answer DATA with 550 5.7.1 when the message holds the
                   text T (repeatable): a permanent failure of that one message

Prints one line 'READY {json}' (ports, certificate) on stdout when listening. Exits on
SIGTERM/SIGINT, when stdin reaches EOF (the test process is gone), or after --lifetime
seconds, so a failed test never leaves it running.
"""
import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def make_cert(certdir):
    cert = os.path.join(certdir, "cert.pem")
    key = os.path.join(certdir, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        os.makedirs(certdir, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
             "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "keyUsage=critical,digitalSignature",
             "-addext", "extendedKeyUsage=serverAuth"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


class Sink:
    def __init__(self, outdir, fail_first, drop_first, fail_code, reject_rcpt=(), reject_data=()):
        self.outdir = outdir
        self.reject_data = [t.encode() for t in reject_data]
        self.reject_rcpt = {a.lower() for a in reject_rcpt}
        self.fail_left = fail_first
        self.drop_left = drop_first
        self.fail_code = fail_code
        self.attempts = 0
        self.stored = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject_rcpt:
            log(f"RCPT {address}: rejected")
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        if self.drop_left > 0:
            self.drop_left -= 1
            log(f"DATA {self.attempts}: dropping the connection")
            server.transport.abort()  # no reply at all
            return "250 never sent"
        if self.fail_left > 0:
            self.fail_left -= 1
            log(f"DATA {self.attempts}: answering {self.fail_code}")
            if self.fail_code == 421:  # 421: the server closes the channel
                asyncio.get_running_loop().call_soon(server.transport.close)
            return f"{self.fail_code} 4.3.0 Simulated temporary failure, try again later"
        if any(t in envelope.original_content for t in self.reject_data):
            log(f"DATA {self.attempts}: rejecting the message (550)")
            return "550 5.7.1 Message rejected: content refused by policy"
        self.stored += 1
        n = self.stored
        base = os.path.join(self.outdir, f"msg-{n}")
        raw = envelope.original_content
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        parts = []
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        for k, part in enumerate(p for p in msg.walk() if not p.is_multipart()):
            payload = part.get_payload(decode=True) or b""
            pfile = f"{base}.part-{k}"
            with open(pfile, "wb") as f:
                f.write(payload)
            parts.append({
                "content_type": part.get_content_type(),
                "content_id": part.get("Content-ID"),
                "disposition": part.get_content_disposition(),
                "filename": part.get_filename(),
                "file": pfile,
            })
        auth = session.auth_data if isinstance(session.auth_data, LoginPassword) else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": auth.login.decode() if auth else None,
            "auth_mechanism": getattr(session, "nd_mechanism", None),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "port": server.transport.get_extra_info("sockname")[1],
            "subject": msg.get("Subject"),
            "message_id": msg.get("Message-ID"),
            "to": msg.get("To"),
            "cc": msg.get("Cc"),
            "reply_to": msg.get("Reply-To"),
            "parts": parts,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f, indent=1)
        os.rename(base + ".json.tmp", base + ".json")  # the .json appears last
        log(f"DATA {self.attempts}: stored {base}.eml from {meta['auth_login']} "
            f"via {meta['auth_mechanism']} tls={meta['tls']}")
        return "250 2.0.0 OK queued as " + os.path.basename(base)


def make_auth(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        if ok:
            session.nd_mechanism = mechanism
        log(f"AUTH {mechanism} as {auth_data.login.decode()}: {'ok' if ok else 'refused'}")
        # handled=False: aiosmtpd answers 235, or 535 5.7.8 on failure
        return AuthResult(success=ok, handled=False, auth_data=auth_data)
    return authenticator


def log(line):
    print(line, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--starttls-port", type=int, default=0)
    p.add_argument("--tls-port", type=int, default=0)
    p.add_argument("--plain-port", type=int, default=-1, help="-1: none")
    p.add_argument("--certdir", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--mechanisms", default="PLAIN,LOGIN")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--drop-first", type=int, default=0)
    p.add_argument("--fail-code", type=int, default=421)
    p.add_argument("--reject-rcpt", action="append", default=[])
    p.add_argument("--reject-data-containing", action="append", default=[])
    p.add_argument("--lifetime", type=float, default=300.0)
    a = p.parse_args()
    # aiosmtpd warns about AUTH on the implicit-TLS port (it only counts STARTTLS as TLS)
    # and about its own deprecations: noise in the tests' output.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    host = "127.0.0.1"  # loopback only, never anything else
    with open(a.password_file) as f:
        password = f.read().strip()
    os.makedirs(a.outdir, exist_ok=True)
    cert, key = make_cert(a.certdir)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    handler = Sink(a.outdir, a.fail_first, a.drop_first, a.fail_code, a.reject_rcpt,
                   a.reject_data_containing)
    wanted = {m.strip().upper() for m in a.mechanisms.split(",") if m.strip()}
    exclude = [m for m in ("PLAIN", "LOGIN", "CRAM-MD5") if m not in wanted]

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory(**kw):
        def make():
            return SMTP(handler, hostname="mailsink.test", authenticator=make_auth(a.user, password),
                        auth_required=True, auth_exclude_mechanism=exclude, timeout=30,
                        loop=loop, **kw)
        return make

    servers = {}
    # STARTTLS port: TLS required before MAIL and before AUTH.
    servers["starttls"] = loop.run_until_complete(loop.create_server(
        factory(tls_context=ctx, require_starttls=True, auth_require_tls=True),
        host, a.starttls_port))
    # Implicit TLS port: aiosmtpd only counts STARTTLS as TLS, so with
    # auth_require_tls=True it would never offer AUTH here; the socket is TLS anyway.
    servers["tls"] = loop.run_until_complete(loop.create_server(
        factory(auth_require_tls=False), host, a.tls_port, ssl=ctx))
    if a.plain_port >= 0:
        servers["plain"] = loop.run_until_complete(loop.create_server(
            factory(auth_require_tls=False), host, a.plain_port))
    ports = {k: s.sockets[0].getsockname()[1] for k, s in servers.items()}

    stop = loop.create_future()

    def finish(why):
        if not stop.done():
            log(f"STOP {why}")
            stop.set_result(why)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, finish, sig.name)
    loop.call_later(a.lifetime, finish, "lifetime")

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        loop.call_soon_threadsafe(finish, "stdin closed")

    threading.Thread(target=watch_stdin, daemon=True).start()
    log("READY " + json.dumps({"ports": ports, "cert": cert, "pid": os.getpid()}))
    loop.run_until_complete(stop)
    for s in servers.values():
        s.close()
    loop.run_until_complete(asyncio.sleep(0))


if __name__ == "__main__":
    main()
