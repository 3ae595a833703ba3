"""The report a reader opens: every table rendered as an HTML table with its notes, and a home
page that summarises the study (config, N, seeds, weights, the headline table).

The HTML writer is checked with the stdlib's html.parser against the Markdown view. The report
itself is checked in a real headless Chromium: a real run of the tiny study, `snakemake
--report`, then the browser opens the report, reads the home page, clicks Tables and the
reconstruction table's view button, and reads the rows Snakemake's iframe renders. Chromium is
driven over the DevTools protocol on a pipe (--remote-debugging-pipe), so nothing beyond the
stdlib and the browser is needed. Without Chromium the browser test is skipped, unless
VAEBENCH_REQUIRE_BROWSER is set (CI: .ci/run installs Chromium and sets it).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import TINY, smk

from vaebench.io import read_parquet_metadata
from vaebench.render import HTML_BEGIN, HTML_END, write_table
from vaebench.tables import STAND_IN, WEIGHTS_WARNING

# -- reading the HTML back --------------------------------------------------------------------


class TableHTML(HTMLParser):
    """The parts of a vaebench table page: headers, body rows and notes as text, the warning,
    and anything that would make the page depend on other files."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headers: list[str] = []
        self.cols: list[str] = []
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self.warning = ""
        self.title = ""
        self.weights_official: str | None = None
        self.external: list[str] = []
        self._stack: list[str] = []
        self._text: list[str] | None = None
        self._in_notes = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._stack.append(tag)
        if tag == "script" or any(k in a for k in ("src", "href")):
            self.external.append(tag)
        cls = (a.get("class") or "").split()
        if "vb-table" in cls:
            self.weights_official = a.get("data-weights-official")
        if "vb-notes" in cls:
            self._in_notes = True
        if tag == "tr" and "tbody" in self._stack:
            self.rows.append([])
        if tag == "th" and "thead" in self._stack:
            self.cols.append(a.get("data-col") or "")
        if tag in ("th", "td", "li") or "vb-warning" in cls or "vb-title" in cls:
            self._text = []
            self._target = (tag, cls)

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._text is not None and tag == self._target[0]:
            text = "".join(self._text)
            tag_, cls = self._target
            if tag_ == "th" and "thead" in self._stack:
                self.headers.append(text)
            elif tag_ == "td" and "tbody" in self._stack:
                self.rows[-1].append(text)
            elif tag_ == "li" and self._in_notes:
                self.notes.append(text)
            elif "vb-warning" in cls:
                self.warning = text
            elif "vb-title" in cls:
                self.title = text
            self._text = None
        while self._stack:
            if self._stack.pop() == tag:
                break


def parse_html(text: str) -> TableHTML:
    parser = TableHTML()
    parser.feed(text)
    parser.close()
    return parser


def md_table(md: str) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, rows and notes of a vaebench Markdown table."""
    lines = md.splitlines()
    table = [line for line in lines if line.startswith("| ")]
    cells = [line[2:-2].split(" | ") for line in table]
    notes = [line.split(". ", 1)[1] for line in lines if line[:1].isdigit() and ". " in line]
    return cells[0], cells[1:], notes


# -- the HTML writer --------------------------------------------------------------------------


def small_table() -> pd.DataFrame:
    df = pd.DataFrame({
        "label": ["VAE (β = 1)", "β-VAE β=4", "VQ-VAE"],
        "model": ["vae", "beta_vae", "vqvae"],
        "n_seeds": [1, 1, 1],
        "mse": [0.0123, 0.0151, 0.02], "mse_lo": [0.011, 0.014, 0.018],
        "mse_hi": [0.013, 0.016, 0.022],
        "kl": [12.5, 4.0, np.nan], "kl_lo": [12.0, 3.5, np.nan], "kl_hi": [13.0, 4.5, np.nan],
        "lpips": [0.3, 0.35, 0.4], "lpips_lo": [0.29, 0.33, 0.38],
        "lpips_hi": [0.31, 0.37, 0.42],
    })  # fmt: skip
    df.attrs["footnotes"] = ["A <b>note</b> & a | pipe."]
    return df


@pytest.mark.parametrize("official", [True, False])
def test_html_table_has_the_rows_and_notes_of_the_frame(tmp_path, official):
    df = small_table()
    paths = write_table(df, tmp_path / "t", title="Recon <β>", weights_official=official)
    text = paths["html"].read_text(encoding="utf-8")
    page = parse_html(text)
    headers, rows, notes = md_table(paths["md"].read_text(encoding="utf-8"))
    assert page.title == "Recon <β>" and "<title>Recon &lt;β&gt;</title>" in text
    # One <tbody> row per frame row, the same cells as the Markdown view (which escapes "|").
    assert len(page.rows) == len(df) and [r[0] for r in page.rows] == list(df["label"])
    assert page.headers == headers and page.rows == rows
    assert page.cols == ["label", "n_seeds", "mse", "kl", "lpips"]
    assert page.rows[0][2] == "0.0123 [0.011, 0.013]" and page.rows[2][3] == ""  # no KL: blank
    # The notes: the frame's own (escaped, not markup) and the implied one for the blank KL.
    assert page.notes == [n.replace("\\|", "|") for n in notes]
    assert page.notes[0] == "A <b>note</b> & a | pipe." and "<b>" not in text
    assert any(n.startswith("KL is blank for VQ-VAE") for n in page.notes)
    assert page.weights_official == str(official).lower()
    assert page.warning == ("" if official else WEIGHTS_WARNING)
    assert all((r[4] == STAND_IN) is not official for r in page.rows)
    # Self-contained (no scripts, no links to other files), the table between the markers
    # the report's home page cuts at, and no line that reStructuredText's raw directive
    # refuses (10,000 characters).
    assert page.external == [] and "<style>" in text
    assert text.count(HTML_BEGIN) == 1 and text.index(HTML_BEGIN) < text.index(HTML_END)
    assert max(map(len, text.splitlines())) < 10_000
    # Written atomically like the others: no temporary file left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"t.{s}" for s in ("csv", "html", "md", "parquet", "tex")
    ]


def test_html_lines_stay_short_for_long_tables(tmp_path):
    df = pd.concat([small_table()] * 200, ignore_index=True)
    df["label"] = [f"row {i}" for i in range(len(df))]
    text = write_table(df, tmp_path / "t", title="T", weights_official=True)["html"].read_text()
    assert len(parse_html(text).rows) == 600
    assert max(map(len, text.splitlines())) < 10_000


# -- a headless Chromium over the DevTools protocol -------------------------------------------

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
]
WIDTH, HEIGHT = 1400, 1000


def find_chromium() -> str | None:
    for name in (os.environ.get("VAEBENCH_CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):  # fmt: skip
        if name and (path := shutil.which(name)):
            return path
    return None


class Chromium:
    """One headless Chromium with a fresh profile; CDP messages are JSON, NUL-terminated, on
    the child's fd 3 (commands) and fd 4 (answers and events)."""

    def __init__(self, exe: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="vaebench-chromium-"))
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def child_fds() -> None:  # in the child, before exec: the pipes become fds 3 and 4
            r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self._log = open(self.profile / "chromium.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                exe,
                *FLAGS,
                f"--user-data-dir={self.profile / 'profile'}",
                f"--window-size={WIDTH},{HEIGHT}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            close_fds=False,  # the pipes are non-inheritable; only fds 3 and 4 pass
            preexec_fn=child_fds,
        )
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._id = 0

    def log(self) -> str:
        return (self.profile / "chromium.log").read_text(errors="replace")[-3000:]

    def _message(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                raise TimeoutError(f"no answer from Chromium; its log:\n{self.log()}")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe; its log:\n{self.log()}")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict[str, Any]:  # fmt: skip
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:  # events arrive in between; nothing here needs them
            answer = self._message(deadline - time.monotonic())
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]

    def open(self, url: str) -> str:
        """A new tab showing `url`; returns its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        s = session["sessionId"]
        self.send("Page.enable", session=s)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
                  session=s)  # fmt: skip
        self.send("Page.navigate", {"url": url}, session=s)
        return s

    def eval(self, session: str, expr: str, context: int | None = None) -> Any:
        params = {"expression": expr, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        r = self.send("Runtime.evaluate", params, session=session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr[:80]}...: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, session: str, expr: str, context: int | None = None,
             timeout: float = 30) -> Any:  # fmt: skip
        """Poll `expr` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(session, expr, context)
            except RuntimeError:  # e.g. the frame's context went away while it navigated
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout} s for: {expr}")
            time.sleep(0.1)

    def frame_context(self, session: str, url_prefix: str, timeout: float = 30) -> int:
        """An execution context in the child frame whose URL starts with url_prefix."""
        deadline = time.monotonic() + timeout
        while True:
            tree = self.send("Page.getFrameTree", session=session)["frameTree"]
            for child in tree.get("childFrames", []):
                if child["frame"]["url"].startswith(url_prefix):
                    world = {"frameId": child["frame"]["id"], "worldName": "vaebench-test"}
                    w = self.send("Page.createIsolatedWorld", world, session=session)
                    return w["executionContextId"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no frame with a {url_prefix} URL")
            time.sleep(0.1)

    def screenshot(self, session: str, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self._cmd_w, self._out_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="session")
def chromium_exe() -> str:
    """Chromium's executable. Requested before tiny_study, so a skip costs no study run."""
    exe = find_chromium()
    if exe is None:
        if os.environ.get("VAEBENCH_REQUIRE_BROWSER"):
            pytest.fail("VAEBENCH_REQUIRE_BROWSER is set but no chromium executable was found")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return exe


@contextlib.contextmanager
def chromium(exe: str) -> Iterator[Chromium]:
    browser = Chromium(exe)
    try:
        yield browser
    finally:
        browser.close()


# JavaScript run in the report. Visible: laid out with a size (display: none has no boxes).
VISIBLE = "(e => e.getClientRects().length > 0 && e.getBoundingClientRect().height > 0)"
HOME = f"""(() => {{
  const home = document.querySelector('.vb-home');
  if (!home) return null;
  const visible = {VISIBLE};
  const box = e => {{ const r = e.getBoundingClientRect();
                      return {{left: r.left, right: r.right, top: r.top, width: r.width}}; }};
  const table = home.querySelector('.vb-headline table');
  const leaves = [...document.body.querySelectorAll('*')].filter(
      e => e.children.length === 0 && visible(e));
  return {{
    summary: [...home.querySelectorAll('.vb-summary dt')].map(
        dt => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()]),
    headers: table ? [...table.querySelectorAll('thead th')].filter(visible).map(
        th => th.textContent) : [],
    cols: table ? [...table.querySelectorAll('thead th')].filter(visible).map(
        th => th.dataset.col) : [],
    rows: table ? [...table.querySelectorAll('tbody tr')].filter(visible).map(
        tr => [...tr.cells].filter(visible).map(td => td.textContent)) : [],
    warnings: leaves.filter(e => e.textContent.trim() === 'Warning').length,
    admonitions: document.querySelectorAll('.admonition, .system-message').length,
    text: document.body.innerText,
    home: box(home.closest('.prose')),
    content: box(home.closest('.h-screen')),
    graph: box(home.closest('.py-2').nextElementSibling),
  }};
}})()"""
CLICK_MENU = """(() => {
  const a = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === 'Tables');
  if (!a) return false;
  a.click();
  return true;
})()"""
CLICK_VIEW = """(() => {
  const tr = [...document.querySelectorAll('tr')].find(
      tr => tr.cells.length && tr.cells[0].textContent.trim().endsWith('/reconstruction.html'));
  if (!tr) return false;
  tr.querySelector('a[iconname="eye"], a').click();
  return true;
})()"""
LISTED = """(() => {
  const files = [...document.querySelectorAll('tr')].filter(tr => tr.cells.length).map(
      tr => tr.cells[0].textContent.trim()).filter(t => t.includes('/tables/'));
  return files.length ? files : null;
})()"""
IFRAME = f"""(() => {{
  const f = document.querySelector('iframe');
  if (!f || !f.src.startsWith('data:text/html')) return null;
  const r = f.getBoundingClientRect();
  return {{width: r.width, height: r.height, visible: {VISIBLE}(f)}};
}})()"""
TABLE_IN_FRAME = f"""(() => {{
  const rows = [...document.querySelectorAll('.vb-table tbody tr')];
  if (document.readyState !== 'complete' || !rows.length) return null;
  const visible = {VISIBLE};
  return {{
    headers: [...document.querySelectorAll('.vb-table thead th')].map(th => th.textContent),
    rows: rows.map(tr => [...tr.cells].map(td => td.textContent)),
    visible: rows.map(visible),
    first_row_top: rows[0].getBoundingClientRect().top,
    viewport: window.innerHeight,
    display: getComputedStyle(document.querySelector('.vb-table table')).display,
    notes: [...document.querySelectorAll('.vb-notes li')].map(li => li.textContent),
    warning: (document.querySelector('.vb-warning') || {{}}).textContent || '',
  }};
}})()"""


@pytest.mark.e2e
def test_report_shows_the_tables_and_a_study_summary(chromium_exe, tiny_study, tmp_path):
    t0 = time.monotonic()
    report = tmp_path / "report.html"
    smk(tiny_study, TINY, "--report", str(report))
    t_report = time.monotonic() - t0
    tables = tiny_study / "results/tiny/tables"
    recon = pd.read_parquet(tables / "reconstruction.parquet")
    official = bool(recon["weights_official"].all())
    headers, rows, notes = md_table((tables / "reconstruction.md").read_text(encoding="utf-8"))
    assert (
        len(rows) == len(recon)
        and notes == read_parquet_metadata(tables / "reconstruction.parquet")["footnotes"]
    )

    with chromium(chromium_exe) as browser:
        s = browser.open(report.as_uri())
        home = browser.wait(s, HOME)
        browser.screenshot(s, tmp_path / "home.png")

        # The home page: the study summary, the headline table, no "Warning" heading, no
        # docutils error, and no blank area (the text fills the width beside the rule graph).
        summary = dict(home["summary"])
        assert set(summary) >= {"Study", "Config", "N", "Seeds", "Metric weights"}, summary
        assert summary["Study"].startswith("tiny") and "results/tiny/" in summary["Study"]
        assert summary["Config"].endswith("config.test.yaml")
        assert "128 training, 32 validation and 32 test images" in summary["N"]
        assert summary["Seeds"].startswith("0 (1 training seed")
        # the models named from the family registry (TINY: vae, beta_vae at 0.5 and 4, vqvae,
        # vaegan), never from a list of the page's own
        assert summary["Models"].startswith("VAE, β-VAE (β = 0.5, 4), VQ-VAE, VAE-GAN;"), summary
        assert "this study: VAE, β-VAE (β = 0.5, 4), VQ-VAE, VAE-GAN;" in home["text"]
        assert "(VAE, β-VAE only)" in home["text"]
        weights = summary["Metric weights"]
        assert weights.startswith("official" if official else "⚠ stand-ins"), weights
        assert home["warnings"] == 0 and home["admonitions"] == 0, home["text"][:2000]
        assert set(home["cols"]) == {"label", "n_seeds", "mse", "ssim", "gmsd", "kl", "lpips"}
        cols = [headers.index(h) for h in home["headers"]]
        assert home["rows"] == [[row[i] for i in cols] for row in rows]
        page, graph, content = home["home"], home["graph"], home["content"]
        assert page["top"] >= content["top"] and page["width"] > 0.5 * content["width"]
        assert content["right"] - max(page["right"], graph["right"]) < 0.1 * content["width"]

        # Tables: the five tables' and the findings' .html views are listed; the
        # reconstruction table's view button
        # shows it in Snakemake's iframe, rendered as a table with every row and the notes.
        assert browser.eval(s, CLICK_MENU)
        listed = browser.wait(s, LISTED)
        assert sorted(Path(p).name for p in listed) == [
            f"{n}.html"
            for n in ("feature_spaces", "findings", "generation", "metric_agreement",
                      "paired_comparisons", "reconstruction")
        ]
        assert browser.eval(s, CLICK_VIEW)
        frame = browser.wait(s, IFRAME)
        assert frame["visible"] and frame["width"] > 600 and frame["height"] > 400, frame
        ctx = browser.frame_context(s, "data:text/html")
        shown = browser.wait(s, TABLE_IN_FRAME, context=ctx)
        browser.screenshot(s, tmp_path / "reconstruction.png")
    t_total = time.monotonic() - t0

    assert shown["display"] == "table" and all(shown["visible"])
    assert 0 <= shown["first_row_top"] < shown["viewport"]
    assert shown["headers"] == headers
    assert shown["rows"] == rows
    assert [r[0] for r in shown["rows"]] == list(recon["label"])
    assert shown["notes"] == notes and len(notes) > 3
    assert (shown["warning"] == WEIGHTS_WARNING) is not official
    print(f"report {t_report:.1f} s, report + browser {t_total:.1f} s; screenshots in {tmp_path}")
