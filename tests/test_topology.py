"""The shipped production topology, run for real: Caddy (deploy/Caddyfile, `tls internal`)
in front of two `policy-site serve` on one fresh PostgreSQL database and Redis, mail to
aiosmtpd. Everything goes over https through Caddy, as customers and staff meet it."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator

import brotli
import httpx2
import psycopg
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS
from live_service import HIDDEN, REFERENCE
from smtp_server import SmtpServer, body_of
from topology_support import Topology, topology

from form_service.store import Store
from form_service.tokens import read_token

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.browser]

HEADER_TIMEOUT = 3  # seconds Caddy waits for a request's headers (10 s in production)
PAUSE = 0.25  # seconds each of the four streaming customers waits between submissions
PER_IP = 6  # submissions a minute from one client address (POLICY_RATE_LIMIT_PER_IP)
DOMAIN = "pulkstenu-outlets.lv"
MESSAGE_ID = re.compile(r"<(PO-[0-9A-Z]{4}-[0-9A-Z]{4})\.([a-z]+)@")
VERIFY_LINK = re.compile(r"https://\S+/request/verify/\S+")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[Topology]:
    work = tmp_path_factory.mktemp("topology")
    with topology(work, instances=2, smtp_url=smtp.url, read_header_timeout=f"{HEADER_TIMEOUT}s",
                  POLICY_RATE_LIMIT_PER_IP=f"{PER_IP}/minute",
                  # Short, so that the survivor takes over a killed instance's mail soon.
                  POLICY_OUTBOX_LEASE_SECONDS="5") as deployed:
        yield deployed


def mail_ids(smtp: SmtpServer) -> list[str]:
    return smtp.message_ids()


def confirm(client: httpx2.Client, link: str, base_url: str) -> httpx2.Response:
    """Open the e-mail's link and press "confirm": the page's same-origin POST back to the
    link (opening the link alone changes nothing), then the page it redirects to."""
    page = client.get(link)
    if page.status_code != 200 or 'value="confirm"' not in page.text:
        return page
    fields = {m["name"]: m["value"] for m in HIDDEN.finditer(page.text)}
    answer = client.post(link, data={**fields, "decision": "confirm"},
                         headers={"Origin": base_url})
    if answer.status_code != 303:
        return answer
    return client.get(answer.headers["location"])


# -- TLS ----------------------------------------------------------------------------


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """One DER element at `pos`: its tag, where its value starts, and where it ends."""
    tag, length, pos = der[pos], der[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length, pos = int.from_bytes(der[pos:pos + count], "big"), pos + count
    return tag, pos, pos + length


def spki_sha256(certificate: bytes) -> str:
    """Base64 SHA-256 of a certificate's SubjectPublicKeyInfo (what Chromium pins by)."""
    _, cert, _ = _tlv(certificate, 0)
    _, pos, end = _tlv(certificate, cert)  # tbsCertificate
    elements = []
    while pos < end:
        tag, _, after = _tlv(certificate, pos)
        elements.append((tag, pos, after))
        pos = after
    if elements[0][0] == 0xA0:  # the optional [0] version
        elements = elements[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    _, start, after = elements[5]
    return base64.b64encode(hashlib.sha256(certificate[start:after]).digest()).decode()


def served_certificate(deployed: Topology) -> bytes:
    """The leaf certificate Caddy serves, read over a connection that verified its chain."""
    context = deployed.caddy.ssl_context()
    with socket.create_connection(("127.0.0.1", deployed.caddy.https_port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        certificate = tls.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def test_https_certificate_chains_to_caddys_local_ca_only(deployed: Topology) -> None:
    """The served certificate verifies against Caddy's local root (for 127.0.0.1) and not
    against the system's CAs: nothing was installed into the trust store."""
    assert served_certificate(deployed)
    system = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError), \
            socket.create_connection(("127.0.0.1", deployed.caddy.https_port), timeout=5) as raw, \
            system.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass


# -- the journey --------------------------------------------------------------------


def wait_for(predicate, seconds: float, what: str, state=None):  # type: ignore[no-untyped-def]
    """Poll until `predicate` holds; else fail, saying what `state()` found."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds} s"
                         + (f": {state()}" if state else ""))


def test_chromium_journey_through_caddy_gives_staff_one_ticket(
    deployed: Topology, smtp: SmtpServer
) -> None:
    """In Chromium over https via Caddy: form → confirmation page → e-mail link → confirm →
    exactly one ticket at the staff mailbox, with `__Host-` cookies accepted by the browser."""
    from playwright.sync_api import sync_playwright

    pin = spki_sha256(served_certificate(deployed))
    args = [*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"]
    email = f"journey.{time.monotonic_ns()}@example.lv"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.goto(deployed.base_url + "/en/")
            page.goto(deployed.base_url + "/en/request/?type=erasure")
            page.fill("#name", "Jānis Bērziņš")
            page.fill("#email", email)
            page.fill("#details", "Please delete my account.")
            with page.expect_navigation():
                page.locator('button[type="submit"]').click()
            assert "/en/request/sent/" in page.url
            reference = REFERENCE.search(page.locator("main").inner_text())
            assert reference, page.content()
            cookies = {c["name"]: c for c in context.cookies()}
            assert cookies["__Host-csrf"]["secure"] and cookies["__Host-csrf"]["path"] == "/"

            verify_mail = wait_for(lambda: [m for m in smtp.messages if email in m.recipients],
                                   30, "the verify e-mail")[0]
            link = VERIFY_LINK.search(body_of(verify_mail))
            assert link and link[0].startswith(deployed.base_url + "/request/verify/")
            page.goto(link[0])
            with page.expect_navigation():
                page.locator("button[value=confirm]").click()
            assert "confirmed" in page.locator("main").inner_text().lower()
            context.close()
        finally:
            browser.close()

    ticket_id = f"<{reference[0]}.ticket@{DOMAIN}>"
    wait_for(lambda: ticket_id in mail_ids(smtp), 30, "the staff ticket")
    time.sleep(1)  # a second one, if any, would come now
    assert mail_ids(smtp).count(ticket_id) == 1


# -- static pages -------------------------------------------------------------------


def _asset(deployed: Topology, folder: str, pattern: str) -> str:
    site = deployed.caddy.site_dir
    [found] = sorted((site / "assets" / folder).glob(pattern))
    return "/" + found.relative_to(site).as_posix()


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_static_site_is_precompressed_and_cached_by_kind(
    deployed: Topology, encoding: str
) -> None:
    """Caddy serves the site's .br/.gz copies (the same bytes as the page), fingerprinted
    assets as immutable for a year, pages for five minutes then revalidated."""
    site = deployed.caddy.site_dir
    pages = {"/": "index.html", "/en/": "en/index.html", "/en/versions/": "en/versions/index.html"}
    assets = [_asset(deployed, "stylesheets", "main.*.min.css"),
              _asset(deployed, "javascripts", "bundle.*.min.js")]
    decode = brotli.decompress if encoding == "br" else gzip.decompress
    with deployed.caddy.client() as client:
        for path in [*pages, *assets]:
            # The bytes on the wire, not decoded by the client: they are what is checked.
            with client.stream("GET", path, headers={"Accept-Encoding": encoding}) as response:
                wire = b"".join(response.iter_raw())
            assert response.status_code == 200, path
            assert response.headers["content-encoding"] == encoding, path
            assert "Accept-Encoding" in response.headers["vary"]
            on_disk = site / (pages.get(path) or path.lstrip("/"))
            assert decode(wire) == on_disk.read_bytes(), path
            cache = response.headers["cache-control"]
            if path in assets:
                assert cache == "public, max-age=31536000, immutable", path
            else:
                assert cache == "public, max-age=300, must-revalidate", path
        plain = client.get("/", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == (site / "index.html").read_bytes()
        etag = plain.headers["etag"]
        assert client.get("/", headers={"If-None-Match": etag,
                                         "Accept-Encoding": "identity"}).status_code == 304


def test_static_pages_carry_the_services_security_headers(deployed: Topology) -> None:
    """Pages served by Caddy carry the same CSP (Material's inline scripts by hash), HSTS
    and nosniff as the form pages the instances serve."""
    with deployed.caddy.client() as client:
        static = client.get("/en/")
        form = client.get("/en/request/")
        missing = client.get("/no/such/page/")
    assert static.headers["content-security-policy"] == form.headers["content-security-policy"]
    assert "unsafe-inline" not in static.headers["content-security-policy"]
    for response in (static, form, missing):
        assert response.headers["strict-transport-security"] == \
            "max-age=31536000; includeSubDomains"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404


def test_form_cookies_are_host_prefixed_and_secure_over_https(deployed: Topology) -> None:
    """Through Caddy the instances know they are served over https: the CSRF cookie is
    `__Host-` (Secure, Path=/, no Domain) and the form page is not cached."""
    with deployed.caddy.client() as client:
        form = client.get("/en/request/")
    cookie = form.headers["set-cookie"]
    assert cookie.startswith("__Host-csrf=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "path", "httponly"} <= attributes
    assert "domain" not in attributes
    assert "; Path=/;" in cookie + ";"
    assert form.headers["cache-control"] == "no-store"


# -- rate limits and X-Forwarded-For -------------------------------------------------


def _post_form(client: httpx2.Client, base_url: str, **headers: str) -> int:
    """A POST that the per-address limit counts: same-origin, with its CSRF pair, but
    without an e-mail address (the form again, with its errors: 200), so that nothing is
    stored and no mail goes."""
    form = client.get("/en/request/?type=access")
    fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
    fields.update(name="Rate Limit", request_type="access", details="x")
    return client.post("/en/request/", data=fields,
                       headers={"Origin": base_url, **headers}).status_code


def test_rate_limit_counts_each_client_address_not_caddys(deployed: Topology) -> None:
    """Behind Caddy each client address has its own count, shared by both instances (Redis),
    and a client's own X-Forwarded-For is not believed: rotating forged addresses from
    127.0.0.1 still runs into 429 within the limit."""
    base = deployed.base_url
    with deployed.caddy.client("127.0.0.2") as first, deployed.caddy.client("127.0.0.3") as other:
        # Round robin: these alternate between the two instances, which share one count.
        codes = [_post_form(first, base) for _ in range(PER_IP)]
        assert codes == [200] * PER_IP
        form = first.get("/en/request/?type=access")
        fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
        refused = first.post("/en/request/", data=fields, headers={"Origin": base})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert _post_form(other, base) == 200
    with deployed.caddy.client("127.0.0.1") as forger:
        codes = [_post_form(forger, base, **{"X-Forwarded-For": f"198.51.100.{i}"})
                 for i in range(PER_IP + 1)]
    assert codes[-1] == 429, codes


# -- slow clients -------------------------------------------------------------------


def test_caddy_cuts_a_client_that_never_finishes_its_headers(deployed: Topology) -> None:
    """A connection that sends half a request and waits is closed by Caddy (read_header
    timeout), not kept open for the client."""
    context = deployed.caddy.ssl_context()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", deployed.caddy.https_port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /en/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            received = tls.recv(4096)
        except (ConnectionResetError, ssl.SSLError):
            received = b""
    waited = time.monotonic() - started
    assert not received.startswith(b"HTTP/1.1 200"), received
    assert HEADER_TIMEOUT - 0.5 <= waited < HEADER_TIMEOUT + 5, f"closed after {waited:.1f} s"


# -- an instance killed mid-stream ---------------------------------------------------


class Stream:
    """Customers submitting through Caddy, each from an address of their own (so that the
    per-address limit does not throttle the stream), and a confirmer clicking every
    link that arrives; what each was told is noted."""

    def __init__(self, deployed: Topology, smtp: SmtpServer) -> None:
        self.deployed, self.smtp = deployed, smtp
        self.lock = threading.Lock()
        self.submissions = 0
        self.acknowledged: set[str] = set()
        self.confirmed: set[str] = set()
        self.unexpected: list[str] = []
        self.resent = 0  # POSTs sent again after an error (the instance died under them)
        self.stop_submitting = threading.Event()
        self.stop_confirming = threading.Event()
        self._next = 0

    def _address(self) -> str:
        with self.lock:
            self._next += 1
            n = self._next
        return f"127.1.{n // 250}.{1 + n % 250}"

    def submit(self, worker: int) -> None:
        base, secret = self.deployed.base_url, self.deployed.secret_key
        # Paced: flat out, four clients queue more mail in ten seconds than one instance
        # sends in a minute, and the test would measure the backlog, not the takeover.
        while not self.stop_submitting.wait(PAUSE):
            with self.deployed.caddy.client(self._address()) as client:
                try:
                    form = client.get("/en/request/?type=access")
                except httpx2.HTTPError:
                    continue
                if form.status_code != 200:
                    continue
                fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
                with self.lock:
                    self.submissions += 1
                    n = self.submissions
                fields.update(name=f"Klients {worker}-{n}", email=f"k{worker}-{n}@example.lv",
                              request_type="access", details="Lūdzu, atsūtiet manus datus.")
                # After an error page a customer presses "send" again: the same form,
                # the same one-time id, so it is never stored twice.
                for _ in range(10):
                    try:
                        answer = client.post("/en/request/", data=fields,
                                             headers={"Origin": base})
                    except httpx2.HTTPError:
                        with self.lock:
                            self.resent += 1
                        time.sleep(0.2)
                        continue
                    location = answer.headers.get("location", "")
                    if answer.status_code == 303 and "/request/sent/" in location:
                        token = location.rsplit("/", 1)[1]
                        reference = read_token(secret, "confirm", token, 3600)["ref"]
                        with self.lock:
                            self.acknowledged.add(reference)
                        break
                    if answer.status_code in (502, 503, 504):
                        with self.lock:
                            self.resent += 1
                        time.sleep(0.2)
                        continue
                    with self.lock:
                        self.unexpected.append(f"POST {answer.status_code}")
                    break

    def confirm_links(self) -> None:
        done: set[str] = set()
        while not self.stop_confirming.is_set():
            with self.smtp.lock:
                waiting = [m for m in self.smtp.messages if m.message_id not in done
                           and ".verify@" in m.message_id]
            for mail in waiting:
                link = VERIFY_LINK.search(body_of(mail))
                reference = MESSAGE_ID.search(mail.message_id)
                assert link and reference
                try:
                    with self.deployed.caddy.client(self._address()) as client:
                        page = confirm(client, link[0], self.deployed.base_url)
                except httpx2.HTTPError:
                    continue  # an instance went away under us: try again next round
                if page.status_code == 200 and "confirmed" in page.text.lower():
                    done.add(mail.message_id)
                    with self.lock:
                        self.confirmed.add(reference[1])
            time.sleep(0.05)


def test_killing_an_instance_loses_no_acknowledged_request_and_sends_each_ticket_once(
    deployed: Topology, smtp: SmtpServer
) -> None:
    """SIGKILL to one of two instances during a stream of submissions and confirmations:
    every request a customer was shown a confirmation for is stored, every confirmed
    request's ticket reaches staff exactly once (bar the one message the dying instance
    may have had on the wire, which arrives twice with one Message-ID), and the survivor
    sends the mail the killed instance had leased (no message is left pending)."""
    stream = Stream(deployed, smtp)
    threads = [threading.Thread(target=stream.submit, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=stream.confirm_links))
    victim, survivor = deployed.instances
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(stream.acknowledged) >= 30 and len(stream.confirmed) >= 5, 60,
                 "30 acknowledged and 5 confirmed requests")
        assert victim.proc is not None
        victim.kill()
        leased_at_kill = _leased_by(deployed.database_url, victim.proc.pid)
        acknowledged_before = len(stream.acknowledged)
        time.sleep(4)  # the stream goes on, through Caddy, to the survivor alone
        stream.stop_submitting.set()
        for thread in threads[:-1]:
            thread.join(timeout=30)
        acknowledged = set(stream.acknowledged)
        wait_for(lambda: acknowledged <= stream.confirmed, 60,
                 "a confirmation of every acknowledged request",
                 lambda: _unconfirmed(deployed.database_url, acknowledged - stream.confirmed,
                                      smtp))
    finally:
        stream.stop_submitting.set()
        stream.stop_confirming.set()
        for thread in threads:
            thread.join(timeout=30)

    tickets = {f"<{reference}.ticket@{DOMAIN}>" for reference in acknowledged}
    wait_for(lambda: tickets <= set(mail_ids(smtp)), 60, "every ticket")
    time.sleep(2)  # a duplicate, if any, would come now
    counts = Counter(mail_ids(smtp))
    store = Store(deployed.database_url)
    try:
        stored = [store.get(reference) for reference in acknowledged]
        backlog = store.health(dt.date.today())
    finally:
        store.close()
    figures = {
        "submissions": stream.submissions,
        "acknowledged": len(acknowledged),
        "acknowledged after the kill": len(acknowledged) - acknowledged_before,
        "sent again after an error": stream.resent,
        "stored": sum(record is not None for record in stored),
        "confirmed": len(stream.confirmed),
        "tickets": sum(counts[t] for t in tickets),
        "duplicates (all mail)": sum(n - 1 for n in counts.values()),
        "mail leased by the killed instance at the kill": len(leased_at_kill),
        "mail still leased by it at the end": len(_leased_by(deployed.database_url,
                                                             victim.proc.pid)),
        "outbox pending at the end": backlog.pending,
    }
    print("\ntopology kill figures: " + ", ".join(f"{k}: {v}" for k, v in figures.items()))
    assert stream.unexpected == []
    assert acknowledged_before >= 30 and figures["acknowledged after the kill"] > 0
    assert figures["stored"] == len(acknowledged)
    assert all(record is not None and record.status == "verified" for record in stored)
    assert set(tickets) <= set(counts)
    # Mail goes at least once. Only the message on the wire as the instance died (the
    # SMTP server had accepted it, the database not yet heard so) can go twice; it is
    # one the killed instance held, and it keeps its Message-ID, so staff's mail
    # client or helpdesk shows it once. Every other ticket arrives exactly once.
    twice = {message_id for message_id, n in counts.items() if n > 1}
    assert len(twice) <= 1 and twice <= leased_at_kill, (twice, leased_at_kill)
    assert {t: counts[t] for t in tickets - twice} == dict.fromkeys(tickets - twice, 1)
    assert figures["duplicates (all mail)"] == len(twice)
    assert figures["mail still leased by it at the end"] == 0
    assert figures["outbox pending at the end"] == 0
    assert survivor.proc is not None and survivor.proc.poll() is None
    assert victim.proc.poll() is not None


def _leased_by(database_url: str, pid: int) -> set[str]:
    """Message-IDs of unsent outbox rows whose lease names the process (host:pid:…)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT message_id FROM outbox WHERE status = 'pending' "
                            "AND lease_owner LIKE %s", (f"%:{pid}:%",)).fetchall()
    return {row[0] for row in rows}


def _unconfirmed(database_url: str, references: set[str], smtp: SmtpServer) -> str:
    """Where the requests that were never confirmed stand: their mail, and their outbox rows."""
    arrived = {MESSAGE_ID.search(i)[1] for i in mail_ids(smtp) if ".verify@" in i}  # type: ignore[index]
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT r.reference, r.status, o.kind, o.status, o.attempts, o.lease_owner, "
            "o.lease_until, o.next_attempt_at, o.last_error FROM requests r "
            "LEFT JOIN outbox o ON o.request_id = r.id WHERE r.reference = ANY(%s)",
            (sorted(references),)).fetchall()
    return (f"{len(references)} unconfirmed, {len(references & arrived)} of them with their "
            f"link delivered; rows: {rows[:6]}")


def test_caddy_answers_a_missing_page_in_its_language_and_feeds_as_atom(
        deployed: Topology) -> None:
    """Caddy answers a missing English address with the English 404 page, a Latvian one
    with the Latvian page, and sends the feeds as application/atom+xml."""
    with deployed.caddy.client() as client:
        english = client.get("/en/no/such/page/")
        latvian = client.get("/no/such/page/")
        feed = client.get("/en/feed.xml")
    assert english.status_code == latvian.status_code == 404
    assert '<html lang="en"' in english.text and "Page not found" in english.text
    assert '<html lang="lv"' in latvian.text and "Lapa nav atrasta" in latvian.text
    assert feed.headers["content-type"] == "application/atom+xml; charset=utf-8"
