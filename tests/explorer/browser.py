"""A real browser for the explorer's tests: Debian's Chromium, headless, driven by
Selenium through Debian's ChromeDriver.

Both come from /usr/bin (``.ci/run`` installs them with apt-get, with fonts-noto-cjk so
Chinese text renders); Selenium Manager is never asked for anything, so nothing is
downloaded. A missing browser fails the test that wants it, saying so; it never skips.

    with browser(390, 844, lang="zh-CN") as driver:   # a phone's viewport, in Chinese
        driver.get(url)
        wait_for_text(driver, "区块")
        assert console_errors(driver) == []
        screenshot(driver, tmp_path / "home.png")

The browser reaches no network but this machine's: every host name other than
localhost fails to resolve, and there is no proxy. A page that fetches anything from
the internet (a font, a script from a CDN) gets a failed request, which
:func:`console_errors` reports.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

# Selenium Manager is skipped when the driver's path is given (it always is, below);
# should anything still call it, it runs offline and downloads no browser.
os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("SE_AVOID_BROWSER_DOWNLOAD", "true")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: The tallest screenshot taken (pixels); a longer page is cut there.
MAX_SCREENSHOT_HEIGHT = 6_000
#: The most a page load or a script may take.
PAGE_TIMEOUT = 30.0
#: Below this width the viewport is a phone's (``mobile``: the page's meta viewport is
#: honoured, as a phone does; without one the page is laid out 980 px wide).
PHONE_WIDTH = 768

_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    # /dev/shm is small in containers; Chromium then crashes on shared memory.
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    # No network but this machine's (see the module's docstring).
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)

#: Messages of the browser log that speak of a request that failed, whatever their level.
_FAILED_REQUEST = re.compile(r"Failed to load resource|net::ERR_|Failed to fetch|"
                             r"WebSocket connection to .* failed|NetworkError")

#: Each driver's viewport (width, height, mobile), to put back after a screenshot.
_viewports: weakref.WeakKeyDictionary[WebDriver, tuple[int, int, bool]] = \
    weakref.WeakKeyDictionary()


def require_browser() -> None:
    """Fail the calling test, saying how to get them, unless Chromium and ChromeDriver
    are installed (a browser test never skips: a skip would look like a pass in CI)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER)
               if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: the explorer's browser tests need "
                    "Debian's chromium and chromium-driver (and fonts-noto-cjk); `.ci/run` "
                    "installs them (apt-get install chromium chromium-driver fonts-noto-cjk)",
                    pytrace=False)


def _set_viewport(driver: WebDriver, width: int, height: int, mobile: bool) -> None:
    # A headless window is at least 500 px wide and its viewport is shorter than the
    # window; the emulated device metrics give the exact viewport asked for.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


@contextlib.contextmanager
def browser(width: int = 1280, height: int = 800, lang: str | None = None, *,
            mobile: bool | None = None) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (its own profile in a temporary directory) whose
    viewport is ``width`` x ``height`` CSS pixels; quit at the end, whatever happened.

    ``lang`` ("zh-CN", "en-US", ...): the browser's language, so also the
    Accept-Language header it sends. ``mobile``: a phone (touch, meta viewport honoured),
    by default when ``width`` is below PHONE_WIDTH. The browser's console is logged
    in full, for :func:`console_errors`."""
    require_browser()
    phone = width < PHONE_WIDTH if mobile is None else mobile
    profile = Path(tempfile.mkdtemp(prefix="agora-chromium-"))
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile / 'profile'}")
    options.add_argument(f"--window-size={max(width, 500)},{height}")
    if lang:
        options.add_argument(f"--lang={lang}")
        primary = lang.split("-")[0]
        accept = lang if primary == lang else f"{lang},{primary}"
        options.add_experimental_option("prefs", {"intl.accept_languages": accept})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=str(profile / "chromedriver.log"))
    try:
        try:
            driver = webdriver.Chrome(options=options, service=service)
        except Exception as exc:
            log = profile / "chromedriver.log"
            tail = log.read_text(errors="replace")[-2_000:] if log.exists() else ""
            raise RuntimeError(f"Chromium did not start through ChromeDriver: {exc}\n"
                               f"chromedriver.log (end):\n{tail}") from exc
        try:
            driver.set_page_load_timeout(PAGE_TIMEOUT)
            driver.set_script_timeout(PAGE_TIMEOUT)
            _set_viewport(driver, width, height, phone)
            _viewports[driver] = (width, height, phone)
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def text(driver: WebDriver) -> str:
    """The page's visible text (``document.body.innerText``)."""
    return driver.execute_script("return document.body ? document.body.innerText : ''") or ""


def wait_for_text(driver: WebDriver, needle: str, timeout: float = 10.0) -> str:
    """Wait until the page's visible text holds ``needle`` (at most ``timeout`` seconds,
    re-reading it every 50 ms); return that text. Fails with what the page said."""
    seen: list[str] = []

    def holds(d: WebDriver) -> bool:
        seen[:] = [text(d)]
        return needle in seen[0]
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.05).until(holds)
        return seen[0]
    except TimeoutException:
        shown = text(driver)
        raise AssertionError(f"{needle!r} did not appear on {driver.current_url} within "
                             f"{timeout:g} s; the page says:\n{shown[:3_000]}") from None


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The browser log's errors since the previous call (ChromeDriver hands each entry
    out once): every SEVERE entry (console.error, uncaught exceptions, failed
    requests) and any other entry that speaks of a failed network request."""
    found = []
    for entry in driver.get_log("browser"):
        message = str(entry.get("message", ""))
        if entry.get("level") == "SEVERE" or _FAILED_REQUEST.search(message):
            found.append(f"{entry.get('level')} {entry.get('source', '')}: {message}")
    return found


def screenshot(driver: WebDriver, path: str | os.PathLike[str]) -> Path:
    """A PNG of the whole page (its full height, cut at MAX_SCREENSHOT_HEIGHT) at the
    viewport's width; the viewport is put back afterwards. Returns the path."""
    width, height, phone = _viewports.get(driver, (0, 0, False))
    if not width:
        width, height = driver.execute_script("return [innerWidth, innerHeight]")
    full = driver.execute_script(
        "return Math.max(document.body ? document.body.scrollHeight : 0, "
        "document.documentElement.scrollHeight)")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _set_viewport(driver, width, max(height, min(int(full), MAX_SCREENSHOT_HEIGHT)), phone)
    try:
        if not driver.save_screenshot(str(out)):
            raise AssertionError(f"the screenshot of {driver.current_url} was not written")
    finally:
        _set_viewport(driver, width, height, phone)
    return out
