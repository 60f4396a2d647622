"""Open a report in headless Chromium with the network cut off, and check what a person would see.

For any self-contained HTML report (the data-quality page, the drift report). Import it from a
test as `import browser` (tests/ is on sys.path through tests/conftest.py):

    page = browser.open_offline(path, tmp_path)    # skips the test if Chromium is missing
    assert not browser.external_refs(path.read_text())
    browser.assert_tables_filled(page.dom, {"fields": 5, "expectations": 20})
    browser.assert_styled(page.png)

Chromium is Debian's package (`make browser`, or `apt-get install chromium` as root). It runs
with a proxy that does not exist and a resolver that resolves nothing, so any fetch from the
network fails, as on a line PC without one; a page that needs a CDN renders as it would there.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

INSTALL_HINT = ("Chromium not found: run `make browser` (as root it runs "
                "`apt-get install -y --no-install-recommends chromium`), or set OANET_CHROMIUM to a "
                "Chromium or Chrome binary")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 2000)
#: Every network request goes to a proxy on the discard port (nothing listens) and every host
#: name fails to resolve, so nothing leaves the machine; file:// still loads.
OFFLINE_FLAGS = ("--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 "--host-resolver-rules=MAP * ~NOTFOUND")
QUIET_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
               "--disable-extensions", "--disable-sync", "--disable-background-networking",
               "--disable-component-update", "--disable-default-apps", "--disable-breakpad",
               "--disable-crash-reporter", "--metrics-recording-only", "--mute-audio", "--hide-scrollbars")


def find_chromium() -> str | None:
    """$OANET_CHROMIUM, else the first Chromium or Chrome on PATH, else None."""
    env = os.environ.get("OANET_CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def require_chromium() -> str:
    """The Chromium binary; inside a test, skip it (saying how to install) when there is none."""
    exe = find_chromium()
    if exe is None:
        import pytest
        pytest.skip(INSTALL_HINT)
    return exe


def run_chromium(url: str, *extra: str, timeout: float = 90.0, chromium: str | None = None) -> str:
    """Run headless Chromium offline on `url` with `extra` flags; return its stdout.

    A fresh profile in a temporary folder each time (nothing under $HOME, no cache carried over).
    """
    exe = chromium or require_chromium()
    with tempfile.TemporaryDirectory(prefix="oanet-chromium-") as profile:
        env = {**os.environ, "HOME": profile, "XDG_CONFIG_HOME": profile, "XDG_CACHE_HOME": profile}
        cmd = [exe, *QUIET_FLAGS, *OFFLINE_FLAGS, f"--user-data-dir={profile}", *extra, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"chromium exited {proc.returncode} on {url}:\n{tail}")
    return proc.stdout


def _url(page: str | Path) -> str:
    return page if re.match(r"^[a-z]+://", str(page)) else Path(page).resolve().as_uri()


def dump_dom(page: str | Path, *, budget_ms: int = 3000, **kw) -> str:
    """The DOM after loading (and running whatever script the page has), serialised as HTML."""
    return run_chromium(_url(page), "--dump-dom", f"--virtual-time-budget={budget_ms}", **kw)


def screenshot(page: str | Path, png: str | Path, *, size: tuple[int, int] = WINDOW,
               budget_ms: int = 3000, **kw) -> Path:
    """A PNG of the first `size` pixels (width, height) of the rendered page."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    run_chromium(_url(page), f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
                 f"--virtual-time-budget={budget_ms}", **kw)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot for {page}")
    return png


@dataclass(frozen=True)
class Rendered:
    dom: str          # the DOM after rendering
    png: Path         # the screenshot


def open_offline(page: str | Path, out_dir: str | Path, name: str | None = None,
                 size: tuple[int, int] = WINDOW) -> Rendered:
    """Both views of `page` offline: its rendered DOM and a screenshot under `out_dir`.

    With $OANET_SCREENSHOTS set, the screenshot is also copied there (to look at after a run).
    """
    name = name or Path(page).stem
    rendered = Rendered(dom=dump_dom(page), png=screenshot(page, Path(out_dir) / f"{name}.png", size=size))
    keep = os.environ.get("OANET_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rendered.png, Path(keep) / rendered.png.name)
    return rendered


# ---------------------------------------------------------------------------------------
# What the page references
# ---------------------------------------------------------------------------------------

_REF_ATTR = re.compile(r"""\b(?:src|href|srcset|poster|data|action|formaction|xlink:href)\s*=\s*["']?\s*"""
                       r"""((?:https?:)?//[^"'\s>]+)""", re.I)
_CSS_URL = re.compile(r"""url\(\s*["']?\s*((?:https?:)?//[^"')\s]+)""", re.I)
_CSS_IMPORT = re.compile(r"""@import\s+["']\s*((?:https?:)?//[^"']+)""", re.I)


def external_refs(html: str) -> list[str]:
    """Every URL the page would fetch from elsewhere: http(s) or protocol-relative (`//host`)
    in src/href/srcset/... attributes, CSS `url(...)` and `@import`. Empty for a self-contained page."""
    found = [m.group(1) for rx in (_REF_ATTR, _CSS_URL, _CSS_IMPORT) for m in rx.finditer(html)]
    return sorted(set(found))


# ---------------------------------------------------------------------------------------
# What the rendered DOM holds
# ---------------------------------------------------------------------------------------

@dataclass
class Table:
    id: str | None
    headers: list[str]
    rows: int = 0         # body rows with at least one <td>
    cells: int = 0        # <td> elements


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self._stack: list[Table] = []
        self._row_has_td = False
        self._in_th = False
        self._th = ""

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            t = Table(id=dict(attrs).get("id"), headers=[])
            self.tables.append(t)
            self._stack.append(t)
        elif not self._stack:
            return
        elif tag == "tr":
            self._row_has_td = False
        elif tag == "td":
            self._stack[-1].cells += 1
            if not self._row_has_td:
                self._stack[-1].rows += 1
                self._row_has_td = True
        elif tag == "th":
            self._in_th, self._th = True, ""

    def handle_endtag(self, tag):
        if tag == "table" and self._stack:
            self._stack.pop()
        elif tag == "th" and self._in_th and self._stack:
            self._stack[-1].headers.append(" ".join(self._th.split()))
            self._in_th = False

    def handle_data(self, data):
        if self._in_th:
            self._th += data


def tables(dom: str) -> list[Table]:
    """Every <table> in document order with its id, header texts, body rows and <td> count."""
    parser = _Tables()
    parser.feed(dom)
    parser.close()
    return parser.tables


def assert_tables_filled(dom: str, expected: dict[str, int] | None = None, min_tables: int = 1) -> list[Table]:
    """At least `min_tables` tables, each with rows; for `expected` {table id: n}, that table
    exists and has at least n rows. Returns the tables."""
    found = tables(dom)
    assert len(found) >= min_tables, f"{len(found)} tables in the rendered DOM, expected at least {min_tables}"
    empty = [t.id or f"#{i} ({', '.join(t.headers[:3])})" for i, t in enumerate(found) if t.rows == 0]
    assert not empty, f"tables without rows after rendering: {empty}"
    by_id = {t.id: t for t in found if t.id}
    for id_, n in (expected or {}).items():
        assert id_ in by_id, f"no table with id {id_!r} in the rendered DOM (ids: {sorted(by_id)})"
        assert by_id[id_].rows >= n, f"table {id_!r} has {by_id[id_].rows} rows, expected at least {n}"
    return found


# ---------------------------------------------------------------------------------------
# What the screenshot shows
# ---------------------------------------------------------------------------------------

def image_stats(png: str | Path) -> dict:
    """Pixel statistics of a screenshot: size, grey-level standard deviation, the share of
    near-white pixels, the colours covering at least 0.2 % of the image, and how many of those
    are chromatic (not grey: channel spread > 40)."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    h, w, _ = rgb.shape
    flat = rgb.reshape(-1, 3)
    q = (flat // 8).astype(np.int32)                       # 32 levels per channel: anti-aliasing merges
    keys, counts = np.unique(q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2], return_counts=True)
    share = counts / counts.sum()
    major = [(tuple(int(c) * 8 + 4 for c in (k // 1024, (k // 32) % 32, k % 32)), float(s))
             for k, s in sorted(zip(keys, share, strict=True), key=lambda x: -x[1]) if s >= 0.002]
    chromatic = [c for c, _ in major if max(c) - min(c) > 40]
    return {"size": (w, h), "grey_std": float(flat.mean(axis=1).std()),
            "white_share": float((flat.min(axis=1) >= 245).mean()),
            "dominant_share": float(share.max()), "major_colours": major, "chromatic_colours": len(chromatic)}


def assert_styled(png: str | Path, *, min_colours: int = 4, min_chromatic: int = 2,
                  max_dominant: float = 0.9) -> dict:
    """The screenshot is not blank and looks styled: no single colour covers more than
    `max_dominant` of it, at least `min_colours` colours each cover 0.2 %, and at least
    `min_chromatic` of those are real colours (an unstyled page is black text on white,
    plus blue links at most). Returns the statistics."""
    s = image_stats(png)
    assert s["grey_std"] > 5, f"{png}: blank screenshot (grey-level std {s['grey_std']:.1f})"
    assert s["dominant_share"] <= max_dominant, \
        f"{png}: one colour covers {s['dominant_share']:.0%} of the screenshot (mostly empty page?)"
    assert len(s["major_colours"]) >= min_colours, \
        f"{png}: only {len(s['major_colours'])} colours cover >= 0.2% each: {s['major_colours']}"
    assert s["chromatic_colours"] >= min_chromatic, \
        f"{png}: only {s['chromatic_colours']} chromatic colours (unstyled?): {s['major_colours']}"
    return s


def has_colour(png: str | Path, rgb: tuple[int, int, int], *, tol: int = 12, min_share: float = 0.002) -> bool:
    """Whether at least `min_share` of the pixels are within `tol` (per channel) of `rgb`,
    e.g. a page's header band colour, to show its stylesheet applied."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        px = np.asarray(im.convert("RGB"), dtype=np.int16)
    near = (np.abs(px - np.array(rgb, dtype=np.int16)) <= tol).all(axis=2)
    return float(near.mean()) >= min_share
