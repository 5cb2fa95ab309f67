#!/usr/bin/env python3
"""Headless-browser tests of the web console (issue #14), with Playwright (sync API) driving
Debian's Chromium (/usr/bin/chromium; `playwright install` is never needed).

The script starts its own `smdpp serve` (binary: $SMDPP_BIN, default target/debug/smdpp) on a
temporary data directory with free ports, an HTTPS callback receiver for operator A (a real
TLS server in this process whose answer can be switched from 400 to 200), and checks:

- log-in (wrong password refused with 401), redirect of an unauthenticated request, log-out;
- a real download with the virtual eUICC (`smdpp euicc init` + `euicc download` of the demo
  Activation Code), then the profile found by ICCID and its timeline reaching `installed`;
- /metrics: request and download counters moving, with the right labels;
- an order created, confirmed and released from the browser; its QR code read from the page
  (zbarimg) equals the Activation Code shown; release and cancel as separate steps; an
  engine refusal shown with its SGP.22 code;
- a failed callback (receiver answering 400, the outbox gives up) retried from the browser
  and delivered once the receiver answers 200;
- refusals: CSRF-less (and wrong-CSRF) POST (403), operator A's user reading operator B's
  profile (404 "no such profile"), an expired session (`--console-session-ttl-secs 2`).

Screenshots of each page go to docs/console/<page>.png (or $SMDPP_CONSOLE_SCREENSHOT_DIR).

Every check is run even when an earlier one failed (where it can be); the script ends with
"console: N passed, N failed" and exits 0 only when none failed. On a failure the HTML and a
screenshot of the page are kept in an artifacts directory whose path is printed.
"""

import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMDPP = os.environ.get("SMDPP_BIN") or str(REPO / "target" / "debug" / "smdpp")
CHROMIUM = os.environ.get("SMDPP_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("SMDPP_CONSOLE_SCREENSHOT_DIR") or (REPO / "docs" / "console"))
CHROME_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
HDPI = "/gsma/rsp2/es2plus/handleDownloadProgressInfo"
# The whole run; a hung browser or server must not hang `cargo test`.
WATCHDOG_SECS = int(os.environ.get("SMDPP_CONSOLE_TEST_TIMEOUT", "420"))

ADMIN_PW = "admin-" + secrets.token_hex(8)
ALICE_PW = "alice-" + secrets.token_hex(8)


def log(msg):
    print(f"console-test: {msg}", flush=True)


# ----------------------------------------------------------------- results


class Results:
    def __init__(self, artifacts):
        self.passed = []
        self.failed = []
        self.artifacts = artifacts

    def check(self, name, cond, detail=""):
        if cond:
            self.passed.append(name)
            log(f"ok   {name}")
        else:
            self.failed.append((name, detail))
            log(f"FAIL {name}: {detail}")
        return bool(cond)

    def dump_page(self, page, name):
        """Keeps the page's HTML and a screenshot for a failed step."""
        if page is None:
            return
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]
        try:
            (self.artifacts / f"{safe}.html").write_text(page.content())
            page.screenshot(path=str(self.artifacts / f"{safe}.png"))
            log(f"     page kept: {self.artifacts / safe}.html (url {page.url})")
        except Exception as e:  # noqa: BLE001 - best effort
            log(f"     (could not keep the page: {e})")


class Step:
    """`with Step(results, "name", page):` records an exception as a failure of that step."""

    def __init__(self, results, name, page=None):
        self.r, self.name, self.page = results, name, page

    def __enter__(self):
        log(f"---- {self.name}")
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            return False
        if et is KeyboardInterrupt:
            return False
        last = "".join(traceback.format_exception_only(et, ev)).strip().splitlines()
        where = traceback.extract_tb(tb)[-1] if tb else None
        at = f" (line {where.lineno})" if where else ""
        self.r.check(f"{self.name}: completes", False, f"{last[0] if last else et}{at}")
        for extra in last[1:6]:
            log(f"     {extra}")
        self.r.dump_page(self.page, self.name)
        return True  # go on with the next step


# ----------------------------------------------------------------- helpers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, check=True, env=None):
    e = dict(os.environ)
    for k in ("SMDPP_DATA_DIR", "SMDPP_DATABASE_URL", "SMDPP_CONFIG", "SMDPP_KEK_FILE"):
        e.pop(k, None)
    e.setdefault("RUST_LOG", "warn")
    if env:
        e.update(env)
    p = subprocess.run([SMDPP, *args], capture_output=True, text=True, env=e, timeout=180)
    if check and p.returncode != 0:
        raise RuntimeError(f"smdpp {' '.join(args)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout


def luhn(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def iccid(prefix, n):
    body = f"{prefix}{n:011d}"
    return body + luhn(body)


def subscribers_csv(path, prefix, imsi_prefix, count):
    rows = ["iccid,imsi,ki,opc,pin1,puk1,pin2,puk2,adm1"]
    ids = []
    for n in range(1, count + 1):
        i = iccid(prefix, n)
        ids.append(i)
        rows.append(
            f"{i},{imsi_prefix}{n:06d},{secrets.token_hex(16).upper()},"
            f"{secrets.token_hex(16).upper()},1234,12345678,5678,87654321,12345678"
        )
    Path(path).write_text("\n".join(rows) + "\n")
    return ids


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certs(d):
    """A CA and a server certificate for 127.0.0.1 (the callback receiver), and a
    self-signed client certificate per operator."""
    d = Path(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", str(d / "rx-ca.key"), "-out", str(d / "rx-ca.pem"),
            "-subj", "/CN=console test receiver CA", "-days", "3",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-new", *ec, "-keyout", str(d / "rx.key"), "-out", str(d / "rx.csr"),
            "-subj", "/CN=127.0.0.1")
    (d / "rx.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1\n"
    )
    openssl("x509", "-req", "-in", str(d / "rx.csr"), "-CA", str(d / "rx-ca.pem"),
            "-CAkey", str(d / "rx-ca.key"), "-CAcreateserial", "-days", "3",
            "-extfile", str(d / "rx.ext"), "-out", str(d / "rx.pem"))
    for op in ("opa", "opb"):
        openssl("req", "-x509", *ec, "-keyout", str(d / f"{op}.key"), "-out", str(d / f"{op}.pem"),
                "-subj", f"/CN={op} client", "-days", "3")


class Receiver:
    """Operator A's ES2+ endpoint (HTTPS): answers 400 until `accept` is set, then 200 with
    Executed-Success. Client certificates are not asked for."""

    def __init__(self, d):
        self.accept = False
        self.refused = 0
        self.accepted = []
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if self.path != HDPI:
                    code, out = 404, b""
                elif rx.accept:
                    rx.accepted.append(body)
                    code = 200
                    out = json.dumps(
                        {"header": {"functionExecutionStatus": {"status": "Executed-Success"}}}
                    ).encode()
                else:
                    rx.refused += 1
                    code, out = 400, b'{"error":"not yet"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(Path(d) / "rx.pem"), str(Path(d) / "rx.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def stop(self):
        self.httpd.shutdown()


class Server:
    """`smdpp serve` on a data dir; stdout lines collected, stderr to a file."""

    def __init__(self, data, port, stderr_path, extra=(), env=None):
        e = dict(os.environ)
        for k in ("SMDPP_DATA_DIR", "SMDPP_DATABASE_URL", "SMDPP_CONFIG", "SMDPP_KEK_FILE",
                  "SMDPP_ADMIN_LISTEN", "SMDPP_CONSOLE_SESSION_TTL_SECS"):
            e.pop(k, None)
        e.setdefault("RUST_LOG", "info")
        e.update(env or {})
        self.lines = []
        self.stderr_path = stderr_path
        self.err = open(stderr_path, "ab")
        args = [SMDPP, "serve", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
                "--admin-listen", "127.0.0.1:0", *extra]
        log("starting " + " ".join(args[1:]))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err, env=e,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern, timeout=90):
        rx = re.compile(pattern)
        end = time.time() + timeout
        while time.time() < end:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(
                    f"smdpp serve exited ({self.proc.returncode}) before printing /{pattern}/;"
                    f" stdout: {self.lines}; stderr tail: {self.stderr_tail()}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"timed out waiting for /{pattern}/; stdout: {self.lines}")

    def wait_ready(self, base, port, timeout=60):
        """Until the admin listener's /readyz answers 200 and the ES9+ port accepts."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"smdpp serve exited ({self.proc.returncode}); stdout: {self.lines};"
                                   f" stderr tail: {self.stderr_tail()}")
            try:
                st, _ = http_get(base + "/readyz", timeout=5)
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    pass
                if st == 200:
                    return
                last = st
            except (OSError, urllib.error.URLError) as e:
                last = e
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s: {last}; stdout: {self.lines}")

    def stderr_tail(self, n=30):
        try:
            self.err.flush()
            return "\n".join(Path(self.stderr_path).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
        return r.status, r.read().decode("utf-8", "replace")


def parse_metrics(text):
    """[(name, {label: value}, float)] of a Prometheus text exposition."""
    out = []
    line_rx = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
    label_rx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_rx.match(line)
        if not m:
            continue
        labels = dict(label_rx.findall(m.group(3) or ""))
        try:
            v = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), labels, v))
    return out


def metric(samples, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` (None: no such sample)."""
    vals = [v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items())]
    return sum(vals) if vals else None


def zbar(png_path):
    p = subprocess.run(["zbarimg", "--raw", "-q", str(png_path)], capture_output=True, text=True,
                       timeout=30)
    return p.stdout.strip() if p.returncode == 0 else None


# ----------------------------------------------------------------- the browser side


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def submit(page, form_sel, button_sel=None):
    """Submits a form with its button; returns (POST response or None, final response)."""
    btn = page.locator(button_sel or f"{form_sel} button[type=submit], {form_sel} input[type=submit],"
                       f" {form_sel} button").first
    post = {}

    def on_response(resp):
        if resp.request.method == "POST" and "post" not in post:
            post["post"] = resp

    page.on("response", on_response)
    try:
        with page.expect_navigation() as nav:
            btn.click()
        final = nav.value
    finally:
        page.remove_listener("response", on_response)
    return post.get("post"), final


def login(page, base, username, password):
    page.goto(base + "/login")
    page.fill("form#login input[name=username]", username)
    page.fill("form#login input[name=password]", password)
    return submit(page, "form#login", "#login-submit")


def text_of(page, sel):
    loc = page.locator(sel)
    return loc.first.inner_text().strip() if loc.count() else None


def path_of(url):
    return urllib.parse.urlsplit(url).path


def query_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)


def main():
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("watchdog")))
    signal.alarm(WATCHDOG_SECS)

    from playwright.sync_api import sync_playwright

    if not Path(SMDPP).exists():
        log(f"no smdpp binary at {SMDPP} (set SMDPP_BIN)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="smdpp-console-"))
    artifacts = tmp / "artifacts"
    artifacts.mkdir()
    r = Results(artifacts)
    data = tmp / "data"
    dd = ["--data-dir", str(data)]
    server = None
    rx = None
    browser = None
    keep = False
    try:
        make_certs(tmp)
        rx = Receiver(tmp)
        port = free_port()
        outbox_env = {
            "SMDPP_OUTBOX_POLL_MS": "50",
            "SMDPP_OUTBOX_INITIAL_BACKOFF_MS": "100",
            "SMDPP_OUTBOX_MAX_BACKOFF_MS": "100",
            "SMDPP_OUTBOX_MAX_ATTEMPTS": "2",
        }
        server = Server(data, port, tmp / "serve.log", env=outbox_env)
        m = server.wait_line(r"admin listener: (http://127\.0\.0\.1:(\d+))/ \(metrics, health, console\)")
        base = m.group(1)
        server.wait_ready(base, port)
        try:
            server.wait_line(r"^demo profile Activation Code: ", timeout=15)
        except RuntimeError:
            pass
        demo = [ln.split(": ", 1)[1].strip() for ln in server.lines
                if ln.startswith("demo profile Activation Code: ")]
        r.check("serve prints the admin listener line", True)
        r.check("serve prints the demo Activation Code", bool(demo) and demo[0].startswith("LPA:1$"),
                f"stdout: {server.lines}")
        demo_ac = demo[0] if demo else None

        # Operators, inventory, users (through the CLI, next to the running server).
        run(["operators", "add", *dd, "--id", "OPA", "--cert", str(tmp / "opa.pem"),
             "--callback-url", rx.url, "--callback-ca", str(tmp / "rx-ca.pem")])
        run(["operators", "add", *dd, "--id", "OPB", "--cert", str(tmp / "opb.pem")])
        run(["types", "add", "TA", *dd, "--spn", "Operator A", "--profile-name", "A mobile"])
        run(["types", "add", "TB", *dd, "--spn", "Operator B", "--profile-name", "B mobile"])
        a_ids = subscribers_csv(tmp / "a.csv", "8999902", "001019", 4)
        b_ids = subscribers_csv(tmp / "b.csv", "8999903", "001018", 1)
        run(["profiles", "import", *dd, "--type", "TA", "--operator", "OPA", str(tmp / "a.csv")])
        run(["profiles", "import", *dd, "--type", "TB", "--operator", "OPB", str(tmp / "b.csv")])
        (tmp / "admin.pw").write_text(ADMIN_PW + "\n")
        (tmp / "alice.pw").write_text(ALICE_PW + "\n")
        run(["console", "users", "add", *dd, "--username", "admin", "--role", "admin",
             "--password-file", str(tmp / "admin.pw")])
        run(["console", "users", "add", *dd, "--username", "alice", "--role", "operator",
             "--operator", "OPA", "--password-file", str(tmp / "alice.pw")])
        run(["console", "users", "add", *dd, "--username", "vic", "--role", "viewer",
             "--operator", "OPA", "--password-file", str(tmp / "alice.pw")])
        run(["console", "users", "add", *dd, "--username", "temp", "--role", "viewer",
             "--password-file", str(tmp / "alice.pw")])
        listed = run(["console", "users", "list", *dd])
        r.check("console users list shows the users",
                all(u in listed for u in ("admin", "alice", "temp")) and "OPA" in listed, listed)
        run(["console", "users", "remove", *dd, "--username", "temp"])
        listed = run(["console", "users", "list", *dd])
        r.check("console users remove removes", "temp" not in listed and "alice" in listed, listed)

        # Health and metrics on the admin listener; the ES9+ listener serves neither.
        with Step(r, "health"):
            st, _ = http_get(base + "/healthz")
            r.check("/healthz 200", st == 200, st)
            st, _ = http_get(base + "/readyz")
            r.check("/readyz 200", st == 200, st)
        with Step(r, "the ES9+ listener serves neither metrics nor the console"):
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE
            for path in ("/metrics", "/login", "/profiles"):
                try:
                    with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", timeout=10,
                                                context=insecure) as resp:  # noqa: S310
                        st, body = resp.status, resp.read(300)
                except urllib.error.HTTPError as e:
                    st, body = e.code, b""
                r.check(f"ES9+ listener: GET {path} is not served", st != 200, f"{st} {body[:100]!r}")
        before = []
        with Step(r, "metrics before the download"):
            st, text = http_get(base + "/metrics")
            r.check("/metrics 200", st == 200, st)
            before = parse_metrics(text)
            r.check("/metrics has smdpp_ metrics", any(n.startswith("smdpp_") for n, _, _ in before),
                    text[:500])

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
            admin = browser.new_context(viewport=VIEWPORT)
            page = admin.new_page()
            page.set_default_timeout(15000)

            with Step(r, "unauthenticated request", page):
                resp = page.request.get(base + "/profiles", max_redirects=0)
                r.check("unauthenticated GET /profiles: 303", resp.status == 303, resp.status)
                loc = resp.headers.get("location", "")
                r.check("... to /login", path_of(urllib.parse.urljoin(base + "/", loc)) == "/login", loc)
                page.goto(base + "/orders")
                r.check("browser lands on /login", path_of(page.url) == "/login", page.url)

            with Step(r, "login page", page):
                page.goto(base + "/login")
                r.check("form#login with username, password, #login-submit",
                        page.locator("form#login input[name=username]").count() == 1
                        and page.locator("form#login input[name=password]").count() == 1
                        and page.locator("#login-submit").count() == 1, page.url)
                shot(page, "login")

            with Step(r, "wrong password", page):
                post, final = login(page, base, "admin", "not-the-password")
                st = post.status if post else final.status
                r.check("wrong password: 401", st == 401, st)
                err = text_of(page, ".error") or ""
                r.check("wrong password: .error 'wrong username or password'",
                        "wrong username or password" in err.lower(), err)
                post, final = login(page, base, "nobody", "whatever")
                st = post.status if post else final.status
                r.check("unknown user: 401, same message",
                        st == 401 and "wrong username or password" in (text_of(page, ".error") or "").lower(),
                        st)

            with Step(r, "login", page):
                post, final = login(page, base, "admin", ADMIN_PW)
                r.check("login: redirect", post is not None and 300 <= post.status < 400,
                        post.status if post else None)
                r.check("login: lands on /", path_of(page.url) == "/", page.url)
                cookies = {c["name"]: c for c in admin.cookies()}
                c = cookies.get("smdpp_console")
                r.check("session cookie smdpp_console, HttpOnly", c is not None and c.get("httpOnly"),
                        cookies)
                r.check("form#logout in the header", page.locator("form#logout").count() == 1)

            with Step(r, "dashboard", page):
                page.goto(base + "/")
                r.check("dashboard: table#downloads-per-minute",
                        page.locator("table#downloads-per-minute").count() == 1)
                r.check("dashboard: table#failures-by-code",
                        page.locator("table#failures-by-code").count() == 1)

            # ---- a real download with the virtual eUICC
            dev = tmp / "dev.json"
            demo_iccid = None
            with Step(r, "virtual eUICC download of the demo profile"):
                run(["euicc", "init", "--state", str(dev), "--pki", str(data / "pki")])
                out = run(["euicc", "download", "--state", str(dev), demo_ac])
                st = json.loads(dev.read_text())
                demo_iccid = st["profiles"][0]["iccid"]
                r.check("euicc download installs the demo profile", demo_iccid in out, out)

            with Step(r, "a refused download (unknown MatchingID)"):
                bad = re.sub(r"\$[^$]*$", "$NO-SUCH-MATCHING-ID", demo_ac)
                p2 = subprocess.run([SMDPP, "euicc", "download", "--state", str(dev), bad],
                                    capture_output=True, text=True, timeout=120)
                r.check("euicc download of an unknown MatchingID fails", p2.returncode != 0,
                        p2.stdout + p2.stderr)

            with Step(r, "metrics after the download"):
                st, text = http_get(base + "/metrics")
                after = parse_metrics(text)
                ia = metric(after, "smdpp_requests_total", function="initiateAuthentication",
                            interface="es9", status="200")
                ia0 = metric(before, "smdpp_requests_total", function="initiateAuthentication",
                             interface="es9", status="200") or 0
                r.check('smdpp_requests_total{function="initiateAuthentication",interface="es9",'
                        'status="200"} > 0 and moved', ia is not None and ia > 0 and ia > ia0,
                        f"before {ia0}, after {ia}: "
                        + "; ".join(f"{n}{ls}" for n, ls, _ in after if n == "smdpp_requests_total")[:800])
                dl = metric(after, "smdpp_downloads_total", result="success")
                dl0 = metric(before, "smdpp_downloads_total", result="success") or 0
                r.check('smdpp_downloads_total{result="success"} >= 1 and moved',
                        dl is not None and dl >= 1 and dl > dl0, f"before {dl0}, after {dl}")
                lat = metric(after, "smdpp_request_duration_seconds_count", function="initiateAuthentication",
                             interface="es9")
                r.check("latency histogram smdpp_request_duration_seconds counts initiateAuthentication",
                        lat is not None and lat >= 1, lat)
                fails = [(ls, v) for n, ls, v in after if n == "smdpp_function_failures_total"
                         and ls.get("interface") == "es9" and v > 0]
                r.check("smdpp_function_failures_total{interface=es9,subject_code,reason_code} counts the "
                        "refused download", bool(fails) and all("subject_code" in ls and "reason_code" in ls
                                                                for ls, _ in fails), fails)
                inst = metric(after, "smdpp_profiles", state="installed", profile_type="demo")
                r.check('smdpp_profiles{state="installed",profile_type="demo"} >= 1', inst is not None and inst >= 1,
                        inst)
                tls = metric(after, "smdpp_tls_handshakes_total")
                tls0 = metric(before, "smdpp_tls_handshakes_total") or 0
                r.check("smdpp_tls_handshakes_total moved", tls is not None and tls > tls0, f"{tls0} -> {tls}")
                for fn in ("authenticateClient", "getBoundProfilePackage"):
                    v = metric(after, "smdpp_requests_total", function=fn, interface="es9", status="200")
                    r.check(f"smdpp_requests_total {fn} counted", v is not None and v >= 1, v)

            with Step(r, "profiles: search by ICCID", page):
                page.goto(base + "/profiles")
                r.check("profiles: form#search with input q",
                        page.locator("form#search input[name=q]").count() == 1)
                r.check("profiles: table#profiles", page.locator("table#profiles").count() == 1)
                shot(page, "profiles")
                page.fill("form#search input[name=q]", demo_iccid)
                with page.expect_navigation():
                    page.locator("form#search input[name=q]").press("Enter")
                r.check("search puts q in the URL", query_of(page.url).get("q") == [demo_iccid], page.url)
                rows = page.locator("table#profiles tr[data-iccid]")
                r.check("search by ICCID: exactly that row",
                        rows.count() == 1 and rows.first.get_attribute("data-iccid") == demo_iccid,
                        [rows.nth(i).get_attribute("data-iccid") for i in range(rows.count())])
                # IMSI search (operator A's first subscriber) and filters.
                page.goto(base + "/profiles?q=001019000001")
                rows = page.locator("table#profiles tr[data-iccid]")
                r.check("search by IMSI", rows.count() == 1
                        and rows.first.get_attribute("data-iccid") == a_ids[0],
                        [rows.nth(i).get_attribute("data-iccid") for i in range(rows.count())])
                page.goto(base + "/profiles?operator=OPB")
                got = {page.locator("table#profiles tr[data-iccid]").nth(i).get_attribute("data-iccid")
                       for i in range(page.locator("table#profiles tr[data-iccid]").count())}
                r.check("filter by operator", got == set(b_ids), got)
                page.goto(base + "/profiles?type=TA&state=available")
                got = {page.locator("table#profiles tr[data-iccid]").nth(i).get_attribute("data-iccid")
                       for i in range(page.locator("table#profiles tr[data-iccid]").count())}
                r.check("filter by type and state", got == set(a_ids), got)
                page.goto(base + f"/profiles?q={demo_iccid}")
                link = page.locator(f'tr[data-iccid="{demo_iccid}"] a.profile-link')
                r.check("row has a.profile-link to /profiles/{iccid}",
                        link.count() == 1 and link.get_attribute("href").endswith(f"/profiles/{demo_iccid}"),
                        link.get_attribute("href") if link.count() else None)
                with page.expect_navigation():
                    link.click()
                r.check("profile link opens the profile", path_of(page.url) == f"/profiles/{demo_iccid}",
                        page.url)

            with Step(r, "profile timeline", page):
                page.goto(base + f"/profiles/{demo_iccid}")
                state = text_of(page, "#profile-state")
                r.check("#profile-state is installed", state == "installed", state)
                tos = [t.strip() for t in page.locator("table#timeline tr.event td.to-state").all_inner_texts()]
                r.check("timeline reaches installed", "installed" in tos, tos)
                r.check("timeline passes released and downloaded",
                        "released" in tos and "downloaded" in tos, tos)
                r.check("table#callbacks present", page.locator("table#callbacks").count() == 1)
                shot(page, "profile")

            with Step(r, "dashboard counts the download", page):
                page.goto(base + "/")
                rows = page.locator("table#downloads-per-minute tr").evaluate_all(
                    "trs => trs.map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim()))")
                r.check("downloads-per-minute shows a download",
                        any(any(re.fullmatch(r"[1-9]\d*", c) for c in row[1:]) for row in rows), rows)
                body = page.locator("table#failures-by-code").inner_text()
                r.check("failures-by-code shows the refused download's code",
                        re.search(r"\b8(\.\d+)+\s*/\s*\d+(\.\d+)+|\b8(\.\d+)+\b", body) is not None,
                        body[:300])
                shot(page, "dashboard")

            with Step(r, "CSRF", page):
                resp = page.request.post(base + "/orders", form={"profile_type": "TA"}, max_redirects=0)
                body = resp.text()
                r.check("POST without csrf: 403 'CSRF'", resp.status == 403 and "CSRF" in body,
                        f"{resp.status} {body[:200]}")
                resp = page.request.post(base + "/orders", form={"profile_type": "TA", "csrf": "x" * 43},
                                         max_redirects=0)
                body = resp.text()
                r.check("POST with a wrong csrf: 403 'CSRF'", resp.status == 403 and "CSRF" in body,
                        f"{resp.status} {body[:200]}")
                resp = page.request.post(base + f"/outbox/1/retry", form={}, max_redirects=0)
                r.check("retry without csrf: 403", resp.status == 403, resp.status)
                page.goto(base + "/profiles?type=TA&state=available")
                n = page.locator("table#profiles tr[data-iccid]").count()
                r.check("the refused POSTs created no order", n == len(a_ids), n)

            # ---- operator A's user: orders, QR, callbacks
            alice_ctx = browser.new_context(viewport=VIEWPORT)
            ap = alice_ctx.new_page()
            ap.set_default_timeout(15000)
            with Step(r, "operator user login", ap):
                login(ap, base, "alice", ALICE_PW)
                r.check("alice logged in", path_of(ap.url) == "/", ap.url)

            with Step(r, "cross-operator profile", ap):
                resp = ap.goto(base + f"/profiles/{b_ids[0]}")
                r.check("operator A's user, operator B's profile: 404", resp.status == 404, resp.status)
                err = text_of(ap, ".error") or ""
                r.check("... .error 'no such profile'", "no such profile" in err.lower(), err)
                resp = ap.goto(base + f"/orders/{b_ids[0]}")
                r.check("operator A's user, operator B's order page: 404", resp.status == 404, resp.status)
                ap.goto(base + f"/profiles?q={b_ids[0]}")
                n = ap.locator(f'table#profiles tr[data-iccid="{b_ids[0]}"]').count()
                r.check("operator B's profile not in operator A's search", n == 0, n)
                ap.goto(base + "/profiles")
                seen = {ap.locator("table#profiles tr[data-iccid]").nth(i).get_attribute("data-iccid")
                        for i in range(ap.locator("table#profiles tr[data-iccid]").count())}
                r.check("operator A's inventory is only operator A's", seen and seen <= set(a_ids), seen)
                resp = page.goto(base + f"/profiles/{b_ids[0]}")
                r.check("the admin sees operator B's profile", resp.status == 200, resp.status)

            order_iccid = None
            ac_text = None
            with Step(r, "create, confirm and release an order", ap):
                ap.goto(base + "/orders")
                r.check("orders: form#create-order with profile_type, iccid, eid",
                        all(ap.locator(f"form#create-order [name={n}]").count() == 1
                            for n in ("profile_type", "iccid", "eid")))
                shot(ap, "orders")
                f = ap.locator("form#create-order [name=profile_type]")
                if f.evaluate("e => e.tagName") == "SELECT":
                    f.select_option("TA")
                else:
                    f.fill("TA")
                post, _ = submit(ap, "form#create-order")
                r.check("create order: redirect", post is not None and 300 <= post.status < 400,
                        post.status if post else None)
                mm = re.fullmatch(r"/orders/(\d{18,20}F?)", path_of(ap.url))
                r.check("create order: lands on /orders/{iccid}", mm is not None, ap.url)
                order_iccid = mm.group(1) if mm else None
                r.check("the order took one of operator A's profiles", order_iccid in a_ids, order_iccid)
                r.check("#order-state allocated", (text_of(ap, "#order-state") or "") == "allocated",
                        text_of(ap, "#order-state"))
                r.check("no Activation Code before release", ap.locator("#activation-code").count() == 0)
                for sel in ("form#confirm [name=matching_id]", "form#confirm [name=confirmation_code]",
                            "form#confirm input[type=checkbox][name=release]", "form#release",
                            "form#cancel select[name=final_status]", "form#deactivate select[name=reason]",
                            "form#deactivate select[name=mode]"):
                    r.check(f"order page has {sel}", ap.locator(sel).count() >= 1)
                opts = ap.locator("form#cancel select[name=final_status] option").evaluate_all(
                    "os => os.map(o => o.value)")
                r.check("cancel final_status: available|unavailable",
                        set(opts) >= {"available", "unavailable"}, opts)
                ap.check("form#confirm input[name=release]")
                post, _ = submit(ap, "form#confirm")
                r.check("confirm+release: redirect back to the order",
                        post is not None and 300 <= post.status < 400
                        and path_of(ap.url) == f"/orders/{order_iccid}", f"{post and post.status} {ap.url}")
                r.check("#order-state released", (text_of(ap, "#order-state") or "") == "released",
                        text_of(ap, "#order-state"))
                ac_text = text_of(ap, "#activation-code")
                r.check("#activation-code LPA:1$<address>$<matching id>",
                        ac_text is not None and re.fullmatch(r"LPA:1\$127\.0\.0\.1:%d\$[0-9A-Z-]+" % port,
                                                             ac_text), ac_text)
                r.check("img#qr", ap.locator("img#qr").count() == 1)
                shot(ap, "order")

            with Step(r, "QR code", ap):
                img = ap.locator("img#qr")
                src = img.get_attribute("src")
                resp = ap.request.get(urllib.parse.urljoin(ap.url, src))
                r.check("QR src: a PNG", resp.status == 200 and resp.body()[:8] == b"\x89PNG\r\n\x1a\n",
                        f"{resp.status} {resp.headers.get('content-type')}")
                (tmp / "qr-src.png").write_bytes(resp.body())
                decoded = zbar(tmp / "qr-src.png")
                r.check("QR PNG decodes to #activation-code", decoded == ac_text, f"{decoded!r} vs {ac_text!r}")
                img.screenshot(path=str(tmp / "qr-shot.png"))
                decoded = zbar(tmp / "qr-shot.png")
                r.check("QR as shown on the page decodes to #activation-code", decoded == ac_text,
                        f"{decoded!r} vs {ac_text!r}")
                resp = page.request.get(base + f"/orders/{b_ids[0]}/qr.png")
                r.check("QR of a profile without an order: not 200", resp.status != 200, resp.status)
                resp = ap.request.get(base + f"/orders/{b_ids[0]}/qr.png")
                r.check("QR of operator B's profile for operator A's user: 404", resp.status == 404, resp.status)

            with Step(r, "engine refusal", ap):
                ap.goto(base + f"/orders/{order_iccid}")
                if ap.locator("form#confirm").count():
                    post, _ = submit(ap, "form#confirm")
                    err = text_of(ap, ".error") or ""
                    r.check("confirming a released order: .error with subjectCode/reasonCode",
                            re.search(r"\b8(\.\d+)+\b", err) is not None and re.search(r"\b\d\.\d+\b", err),
                            f"{post and post.status}: {err!r}")
                    r.check("... the page is not a 5xx", post is None or post.status < 500,
                            post and post.status)
                else:
                    r.check("form#confirm still offered on a released order (for the refusal test)",
                            False, "no form#confirm")

            with Step(r, "confirm, then release; cancel", ap):
                ap.goto(base + "/orders")
                ap.locator("form#create-order [name=iccid]").fill(a_ids[3])
                submit(ap, "form#create-order")
                r.check("order by ICCID: /orders/{iccid}", path_of(ap.url) == f"/orders/{a_ids[3]}", ap.url)
                ap.uncheck("form#confirm input[name=release]")
                submit(ap, "form#confirm")
                r.check("confirm without release: confirmed",
                        (text_of(ap, "#order-state") or "") == "confirmed", text_of(ap, "#order-state"))
                submit(ap, "form#release")
                r.check("release: released", (text_of(ap, "#order-state") or "") == "released",
                        text_of(ap, "#order-state"))
                ap.select_option("form#cancel select[name=final_status]", "available")
                submit(ap, "form#cancel")
                r.check("cancel (available): available", (text_of(ap, "#order-state") or "") == "available",
                        text_of(ap, "#order-state"))
                r.check("cancelled order: no Activation Code", ap.locator("#activation-code").count() == 0)

            # ---- the order's download: callbacks to the receiver, which refuses them
            with Step(r, "download of the console's order"):
                out = run(["euicc", "download", "--state", str(dev), ac_text])
                r.check("euicc download of the console's Activation Code", order_iccid in out, out)

            failed_id = None
            with Step(r, "failed callback", ap):
                end = time.time() + 30
                ids = []
                while time.time() < end:
                    ap.goto(base + "/outbox?state=failed")
                    ids = [x.get_attribute("data-id") for x in ap.locator("table#outbox tr[data-id]").all()]
                    if ids:
                        break
                    time.sleep(0.5)
                r.check("the refused callbacks end up failed", bool(ids),
                        f"receiver refused {rx.refused} attempts")
                r.check("the receiver was called (400)", rx.refused > 0, rx.refused)
                states = [t.strip() for t in ap.locator("table#outbox tr[data-id] td.outbox-state").all_inner_texts()]
                r.check("?state=failed lists only failed rows", states and set(states) == {"failed"}, states)
                r.check("failed rows have form.retry", ap.locator("table#outbox tr[data-id] form.retry").count()
                        == len(ids), ap.locator("table#outbox tr[data-id] form.retry").count())
                shot(ap, "outbox")
                failed_id = ids[0] if ids else None
                resp = page.goto(base + "/outbox")
                r.check("admin: /outbox 200", resp.status == 200, resp.status)
                ap.goto(base + f"/profiles/{order_iccid}")
                cbs = [t.strip() for t in ap.locator("table#callbacks tr.callback td.callback-state").all_inner_texts()]
                r.check("the profile page lists its failed callbacks", "failed" in cbs, cbs)

            with Step(r, "retry a failed callback", ap):
                rx.accept = True
                ap.goto(base + "/outbox?state=failed")
                row = ap.locator(f'table#outbox tr[data-id="{failed_id}"]')
                post, _ = submit(ap, f'table#outbox tr[data-id="{failed_id}"] form.retry')
                r.check("retry: redirect", post is not None and 300 <= post.status < 400,
                        post.status if post else None)
                ap.goto(base + "/outbox")
                row = ap.locator(f'table#outbox tr[data-id="{failed_id}"] td.outbox-state')
                st = row.inner_text().strip() if row.count() else None
                r.check("retried row is pending again (or already delivered)", st in ("pending", "delivered"), st)
                end = time.time() + 30
                while time.time() < end:
                    ap.goto(base + "/outbox?state=delivered")
                    if ap.locator(f'table#outbox tr[data-id="{failed_id}"]').count():
                        break
                    time.sleep(0.5)
                r.check("retried row delivered", ap.locator(f'table#outbox tr[data-id="{failed_id}"]').count() == 1,
                        f"receiver accepted {len(rx.accepted)}")
                st = text_of(ap, f'table#outbox tr[data-id="{failed_id}"] td.outbox-state')
                r.check("delivered row shows delivered", st == "delivered", st)
                r.check("the receiver got the HandleDownloadProgressInfo", len(rx.accepted) >= 1, len(rx.accepted))
                ap.goto(base + f"/profiles/{order_iccid}")
                cbs = [t.strip() for t in ap.locator("table#callbacks tr.callback td.callback-state").all_inner_texts()]
                r.check("the profile page shows the delivered callback", "delivered" in cbs, cbs)
                shot(ap, "profile")
                ap.goto(base + "/outbox?state=failed")
                others = ap.locator("table#outbox tr[data-id]").count()
                r.check("the other failed rows stay failed (retry is per row)", others >= 0, others)

            with Step(r, "deactivate form", ap):
                ap.goto(base + f"/orders/{order_iccid}")
                reasons = ap.locator("form#deactivate select[name=reason] option").evaluate_all(
                    "os => os.map(o => o.value)")
                modes = ap.locator("form#deactivate select[name=mode] option").evaluate_all(
                    "os => os.map(o => o.value)")
                r.check("deactivate offers reasons and modes", bool(reasons) and bool(modes),
                        f"{reasons} {modes}")
                post, final = submit(ap, "form#deactivate")
                st = post.status if post else final.status
                r.check("deactivate: answered, not a 5xx", st < 500, st)

            with Step(r, "types and keys", page):
                page.goto(base + "/types")
                body = page.locator("table#types").inner_text() if page.locator("table#types").count() else ""
                r.check("types: table#types lists TA, TB and demo",
                        all(t in body for t in ("TA", "TB", "demo")), body[:300])
                shot(page, "types")
                page.goto(base + "/keys")
                r.check("keys: table#keys", page.locator("table#keys").count() == 1)
                shot(page, "keys")

            with Step(r, "viewer and operator limits", ap):
                resp = ap.goto(base + "/types")
                r.check("operator user: /types answers", resp.status in (200, 403), resp.status)
                vctx = browser.new_context(viewport=VIEWPORT)
                vp = vctx.new_page()
                vp.set_default_timeout(15000)
                login(vp, base, "vic", ALICE_PW)
                r.check("viewer logged in", path_of(vp.url) == "/", vp.url)
                resp = vp.goto(base + f"/profiles/{order_iccid}")
                r.check("viewer of operator A reads operator A's profile", resp.status == 200, resp.status)
                resp = vp.goto(base + f"/profiles/{b_ids[0]}")
                r.check("viewer of operator A: operator B's profile 404", resp.status == 404, resp.status)
                csrf = vp.locator("input[name=csrf]").first.get_attribute("value")
                resp = vp.request.post(base + "/orders", form={"csrf": csrf, "profile_type": "TA"},
                                       max_redirects=0)
                r.check("viewer: POST /orders (with csrf) refused", resp.status in (403, 404)
                        or (resp.status == 200 and "error" in resp.text()), resp.status)
                vp.goto(base + "/profiles?type=TA&state=allocated")
                n = vp.locator("table#profiles tr[data-iccid]").count()
                r.check("viewer: no order was created", n == 0, n)
                vctx.close()

            with Step(r, "OpenAPI and JSON endpoints"):
                st, body = http_get(base + "/openapi.json")
                doc = json.loads(body)
                r.check("admin listener: /openapi.json with paths", st == 200 and "paths" in doc,
                        list(doc)[:5])
                try:
                    st, _ = http_get(base + "/console/api/profiles")
                except urllib.error.HTTPError as e:
                    st = e.code
                r.check("console JSON API without a session: 401", st == 401, st)
                resp = page.request.get(base + f"/console/api/profiles/{demo_iccid}")
                r.check("console JSON API with the session: 200 JSON", resp.status == 200
                        and demo_iccid in resp.text(), resp.status)

            with Step(r, "logout", page):
                page.goto(base + "/")
                submit(page, "form#logout")
                page.goto(base + "/profiles")
                r.check("after logout: /login", path_of(page.url) == "/login", page.url)
                resp = page.request.get(base + "/profiles", max_redirects=0)
                r.check("after logout: 303", resp.status == 303, resp.status)

            # ---- an expired session: a server with a 2 s session lifetime on the same data
            with Step(r, "expired session", None):
                server.stop()
                server = Server(data, port, tmp / "serve2.log", extra=["--console-session-ttl-secs", "2"])
                m = server.wait_line(r"admin listener: (http://127\.0\.0\.1:(\d+))/")
                base2 = m.group(1)
                server.wait_ready(base2, port)
                ctx = browser.new_context(viewport=VIEWPORT)
                ep = ctx.new_page()
                ep.set_default_timeout(15000)
                login(ep, base2, "admin", ADMIN_PW)
                r.check("login (short sessions)", path_of(ep.url) == "/", ep.url)
                token = {c["name"]: c["value"] for c in ctx.cookies()}.get("smdpp_console")
                time.sleep(3.5)
                # The server's side alone: the expired token sent explicitly (whatever the
                # browser did with the cookie's own lifetime).
                resp = ep.request.get(base2 + "/profiles", max_redirects=0,
                                      headers={"Cookie": f"smdpp_console={token}"})
                loc = resp.headers.get("location", "")
                r.check("expired token: 303 to /login?expired=1",
                        resp.status == 303 and loc.endswith("/login?expired=1"), f"{resp.status} {loc}")
                left = {c["name"]: c for c in ctx.cookies()}.get("smdpp_console")
                r.check("the browser still sends the session cookie after the session's lifetime "
                        "(else the server cannot tell an expired session from none)", left is not None,
                        "the cookie's Max-Age equals the session lifetime: the browser dropped it")
                ep.goto(base2 + "/profiles")
                r.check("expired session: /login?expired=1",
                        path_of(ep.url) == "/login" and query_of(ep.url).get("expired") == ["1"], ep.url)
                err = text_of(ep, ".error") or ""
                r.check("expired session: .error 'session expired'", "session expired" in err.lower(), err)
                login(ep, base2, "admin", ADMIN_PW)
                r.check("log-in again after expiry", path_of(ep.url) == "/", ep.url)
                ctx.close()

            browser.close()
            browser = None
    except Exception as e:  # noqa: BLE001
        r.check("harness", False, f"{type(e).__name__}: {e}")
        traceback.print_exc()
    finally:
        signal.alarm(0)
        if server is not None:
            if r.failed:
                log("serve stderr (tail):\n" + server.stderr_tail())
            server.stop()
        if rx is not None:
            rx.stop()
        if r.failed:
            keep = True
    print(f"console: {len(r.passed)} passed, {len(r.failed)} failed", flush=True)
    if r.failed:
        for name, detail in r.failed:
            print(f"  FAILED {name}: {detail}", flush=True)
        print(f"  artifacts (pages, logs): {tmp}", flush=True)
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
