"""A real MLflow server and a headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium) for browser tests. Nothing is downloaded at run time."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage", "--window-size=1500,1400")


def missing_browser() -> str | None:
    """Why no browser test can run here, or None when one can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not any(shutil.which(b) for b in BROWSERS):
        return "no Chromium binary on PATH (apt-get install -y chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver on PATH (apt-get install -y chromium-driver)"
    return None


def artifacts_dir() -> Path:
    """Where browser tests keep screenshots after pytest's tmp dirs are gone."""
    d = Path(os.environ.get("HARNESS_TEST_ARTIFACTS",
                            Path(__file__).resolve().parent.parent / "test-artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(tracking_uri: str, log: Path, timeout_s: float = 90.0):
    """A real ``mlflow server`` on 127.0.0.1 over ``tracking_uri``; yields its base URL."""
    port = _free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)


@contextlib.contextmanager
def chromium(profile_dir: Path):
    """A headless Chromium with a fresh profile, as a Selenium driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        opts.add_argument(flag)
    opts.binary_location = next(shutil.which(b) for b in BROWSERS if shutil.which(b))
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver, needles: list[str], timeout_s: float = 30.0) -> str:
    """The page's visible text once it contains every needle (AssertionError after timeout)."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            text = driver.find_element("tag name", "body").text
        if all(n in text for n in needles):
            return text
        time.sleep(0.3)
    missing = [n for n in needles if n not in text]
    raise AssertionError(f"{driver.current_url}: {missing} not on the page after {timeout_s} s; "
                         f"page text: {text[:1500]!r}")
