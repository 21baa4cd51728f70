"""The web page at ``/`` in a real headless Chromium, against a real uvicorn server.

The server runs the bundled models (one thread worker) with an API key set. Through Selenium and
Debian's ``chromium`` + ``chromium-driver`` the tests pick a fixture photo in the page's file
input and check what a person sees: without the key the 401 message; with it the face box drawn
on the canvas at the golden box, the 68 landmarks, the golden attractiveness and age in the DOM,
the beautified image (and a new one after a slider moves), and no error in the browser console.
A screenshot of the page goes to ``$FACECORE_SCREENSHOT_DIR`` when set, else to the test's
``tmp_path``.

The module skips, saying what is missing, when selenium, Chromium or chromedriver is not there
(``make test-browser`` installs them). ``FACECORE_CHROMIUM`` and ``FACECORE_CHROMEDRIVER`` name
the binaries when they are not on ``PATH``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from servers import Server

from facecore.beauty.pipeline import DEFAULT_SMOOTH, DEFAULT_WARP

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (make test-browser installs it)"
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PHOTO = FIXTURES / "obama.jpg"
GOLDEN = json.loads((FIXTURES / "golden_scores.json").read_text("utf-8"))["obama.jpg"]
KEY = "browser-test-key"
BOX_COLOR = (0xE6, 0x19, 0x4B)  # the first face's colour in app.js
ANALYSIS_TIMEOUT = 180.0  # s: model work on a busy 2-core machine


def _binary(env: str, *names: str) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if Path(given).is_file() else None
    return next((p for p in map(shutil.which, names) if p), None)


CHROMIUM = _binary("FACECORE_CHROMIUM", "chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = _binary("FACECORE_CHROMEDRIVER", "chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    missing = " and ".join(
        n for n, p in (("Chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if p is None
    )
    pytest.skip(
        f"{missing} not found (apt-get install chromium chromium-driver, or make test-browser)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"FACECORE_API_KEYS": KEY, "FACECORE_WORKER_MODE": "thread", "FACECORE_WORKERS": "1"}
    s = Server("app.main:app", env, tmp_path_factory.mktemp("srv") / "server.log")
    s.wait()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(CHROMEDRIVER))
    yield d
    d.quit()


@pytest.fixture
def screenshot_dir(tmp_path) -> Path:
    folder = Path(os.environ.get("FACECORE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(driver, server, key: str = "") -> None:
    """The page, fresh: the stored key set to ``key`` (or none), the console log emptied."""
    driver.get(server.url + "/")
    driver.execute_script(
        "localStorage.clear(); if (arguments[0]) localStorage.setItem('facecore.apiKey', "
        "arguments[0]);",
        key,
    )
    driver.refresh()
    _wait_for(driver, "document.body.dataset.state === 'idle'", 10)
    driver.get_log("browser")


def _wait_for(driver, condition: str, timeout: float) -> None:
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: d.execute_script(f"return {condition};")
    )


def _errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _upload(driver, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))


def _screenshot(driver, folder: Path, name: str) -> Path:
    """The whole page, not only the window (Chrome DevTools' captureBeyondViewport)."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path = folder / name
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000
    return path


def test_without_the_key_the_page_says_so(driver, server, screenshot_dir):
    _open(driver, server)
    _upload(driver, PHOTO)
    _wait_for(driver, "document.body.dataset.state === 'error'", 30)
    error = driver.find_element(By.ID, "error")
    assert error.is_displayed() and error.get_attribute("data-status") == "401"
    assert "needs an API key" in error.text and "no API key" in error.text
    assert not driver.find_element(By.ID, "result").is_displayed()
    # The browser logs the refused request itself; nothing else may be there.
    errors = _errors(driver)
    assert len(errors) == 1 and "/v1/analyze" in errors[0] and "401" in errors[0], errors
    _screenshot(driver, screenshot_dir, "web-page-401.png")


def test_a_wrong_file_is_an_error_shown(driver, server):
    _open(driver, server, KEY)
    _upload(driver, FIXTURES / "SOURCES.md")
    _wait_for(driver, "document.body.dataset.state === 'error'", 30)
    error = driver.find_element(By.ID, "error")
    assert error.get_attribute("data-status") == "422", error.text
    assert error.text == "Error 422 (undecodable_image): not an image: content looks like text"
    errors = _errors(driver)
    assert len(errors) == 1 and "422" in errors[0], errors


def test_with_the_key_the_page_draws_the_faces_and_numbers(driver, server, screenshot_dir):
    _open(driver, server)
    key = driver.find_element(By.ID, "api-key")
    key.send_keys(KEY)
    driver.refresh()  # the key is remembered
    assert driver.find_element(By.ID, "api-key").get_attribute("value") == KEY
    driver.get_log("browser")

    assert float(driver.find_element(By.ID, "warp").get_attribute("value")) == DEFAULT_WARP
    assert float(driver.find_element(By.ID, "smooth").get_attribute("value")) == DEFAULT_SMOOTH
    _upload(driver, PHOTO)
    _wait_for(driver, "document.body.dataset.state !== 'analysing'", ANALYSIS_TIMEOUT)
    assert driver.find_element(By.ID, "error").is_displayed() is False
    assert driver.find_element(By.ID, "status").text == "1 face found."

    # The box and the landmarks on the canvas, at the photo's size.
    canvas = driver.find_element(By.ID, "overlay")
    assert canvas.get_attribute("data-boxes") == str(len(GOLDEN)) == "1"
    assert canvas.get_attribute("data-landmarks") == "68"
    (golden,) = GOLDEN
    x1, y1, x2, y2 = golden["box"]
    width, height, edge, corner = driver.execute_script(
        """const c = document.getElementById('overlay'), ctx = c.getContext('2d');
        const [x1, y1, x2] = arguments;
        const w = Math.round((x2 - x1) / 5);
        const edge = ctx.getImageData(Math.round(x1 + 2 * w), Math.round(y1), w, 1).data;
        const corner = ctx.getImageData(0, 0, 32, 32).data;
        return [c.width, c.height, Array.from(edge), Array.from(corner)];""",
        x1,
        y1,
        x2,
    )
    assert (width, height) == (910, 1137)
    pixels = [edge[i : i + 3] for i in range(0, len(edge), 4)]
    on_box = sum(all(abs(a - b) <= 8 for a, b in zip(p, BOX_COLOR, strict=True)) for p in pixels)
    assert on_box == len(pixels), pixels  # the box's top edge is drawn where the face is
    alphas = set(corner[3::4])
    greys = {tuple(corner[i : i + 3]) for i in range(0, len(corner), 4)}
    assert alphas == {255} and len(greys) > 20  # the photo itself is drawn under it

    # The numbers of the face.
    (card,) = driver.find_elements(By.CSS_SELECTOR, "#faces .face")
    att = card.find_element(By.CSS_SELECTOR, "dd.attractiveness")
    assert float(att.get_attribute("data-value")) == pytest.approx(golden["score"], abs=1e-3)
    assert att.text.startswith(f"{float(att.get_attribute('data-value')):.2f}")
    assert len(att.find_elements(By.CSS_SELECTOR, ".bar")) == 9  # SCUT's rating bins 1-5
    age = card.find_element(By.CSS_SELECTOR, "dd.age")
    age_value = float(age.get_attribute("data-value"))
    assert age_value == pytest.approx(golden["age"], abs=1e-2)
    assert f"{age_value:.1f} years (90% interval " in age.text
    assert len(age.find_elements(By.CSS_SELECTOR, ".bar")) == 101
    quality = card.find_element(By.CSS_SELECTOR, "dd.quality")
    if quality.text != "n/a":  # predictions.quality, once the service has it
        assert float(quality.text) == pytest.approx(
            float(quality.get_attribute("data-value")), abs=5e-3
        )

    # The beautified photo beside it, and again once a slider moves.
    _wait_for(
        driver,
        "document.getElementById('beautified').dataset.state !== 'loading'",
        ANALYSIS_TIMEOUT,
    )
    beautified = driver.find_element(By.ID, "beautified")
    assert beautified.get_attribute("data-state") == "done", driver.find_element(
        By.ID, "beautify-error"
    ).text
    assert (
        driver.execute_script("return document.getElementById('beautified').naturalWidth;") == 910
    )
    info = driver.find_element(By.ID, "beautify-info").text
    assert info.startswith(f"Beautified (warp {DEFAULT_WARP}, smoothing {DEFAULT_SMOOTH})"), info
    assert re.search(
        r"; its scorer: \d\.\d\d \u2192 \d\.\d\d; identity distance \d\.\d\d ", info
    ), info
    first = beautified.get_attribute("src")
    driver.execute_script(
        "const w = document.getElementById('warp'); w.value = '0.25';"
        "w.dispatchEvent(new Event('input')); w.dispatchEvent(new Event('change'));"
    )
    assert driver.find_element(By.ID, "warp-value").text == "0.25"
    _wait_for(
        driver,
        "document.getElementById('beautified').dataset.state !== 'loading'",
        ANALYSIS_TIMEOUT,
    )
    assert beautified.get_attribute("data-state") == "done"
    assert beautified.get_attribute("src") != first
    assert "warp 0.25" in driver.find_element(By.ID, "beautify-info").text

    assert _errors(driver) == []
    shot = _screenshot(driver, screenshot_dir, "web-page.png")
    print(f"screenshot: {shot}")


def test_a_photo_without_a_face(driver, server):
    _open(driver, server, KEY)
    _upload(driver, FIXTURES / "dlib_dog.jpg")
    _wait_for(driver, "document.body.dataset.state !== 'analysing'", ANALYSIS_TIMEOUT)
    assert driver.find_element(By.ID, "status").text == "No face found."
    assert driver.find_element(By.ID, "overlay").get_attribute("data-boxes") == "0"
    assert driver.find_elements(By.CSS_SELECTOR, "#faces .face") == []
    assert driver.find_element(By.ID, "beautify-info").text == "Beautified: no face to beautify"
    assert _errors(driver) == []


# A response of the shape /v1/analyze gives, with a quality and warnings (one for the face, one
# for the image), and a beautify error: answered by a stand-in for the page's fetch.
CANNED = {
    "image": {"width": 910, "height": 1137},
    "stages": ["landmarks", "trunk", "attractiveness", "age", "quality"],
    "faces": [
        {
            "box": [366.0, 136.0, 625.0, 395.0],
            "detector_score": 1.0,
            "detector": "hog",
            "landmarks": [[400.0 + 3 * k, 250.0 + (k % 7)] for k in range(68)],
            "predictions": {
                "attractiveness": {
                    "value": 3.25,
                    "model": "attractiveness_test",
                    "bins": [1.0, 2.0, 3.0, 4.0, 5.0],
                    "probabilities": [0.05, 0.15, 0.4, 0.3, 0.1],
                    "interval": [2.0, 4.0],
                },
                "age": {"value": 41.5, "model": "age_test", "interval": [35.0, 48.0]},
                "quality": {"value": 0.31, "model": "quality_test"},
                "symmetry": {"value": 0.875, "model": "symmetry_test"},
            },
        }
    ],
    "warnings": [
        {"face": 0, "code": "low_quality", "quality": 0.31, "threshold": 0.5, "message": "blurry"},
        {"face": None, "code": "note", "message": "for the whole image"},
    ],
}
NO_FACE = {"error": {"code": "no_face", "message": "no face found"}}


def test_quality_warnings_and_a_beautify_error(driver, server):
    _open(driver, server, KEY)
    driver.execute_script(
        """const [analysis, beautify] = arguments;
        window.fetch = async (url) => url.startsWith('/v1/analyze')
          ? new Response(JSON.stringify(analysis), {headers: {'Content-Type': 'application/json'}})
          : new Response(JSON.stringify(beautify), {status: 422});""",
        CANNED,
        NO_FACE,
    )
    _upload(driver, PHOTO)
    _wait_for(driver, "document.body.dataset.state === 'done'", 30)
    _wait_for(driver, "document.getElementById('beautified').dataset.state === 'error'", 30)
    (card,) = driver.find_elements(By.CSS_SELECTOR, "#faces .face")
    assert card.find_element(By.CSS_SELECTOR, "dd.quality").text == "0.31"
    assert card.find_element(By.CSS_SELECTOR, "dd.attractiveness").text.startswith("3.25")
    assert card.find_element(By.CSS_SELECTOR, "dd.age").text == (
        "41.5 years (90% interval 35\u201348)"
    )
    assert card.find_element(By.CSS_SELECTOR, "dd.other").text == "0.875"  # any other head
    bars = card.find_elements(By.CSS_SELECTOR, "dd.attractiveness .bar")
    assert [b.get_attribute("class") for b in bars] == ["bar", "bar in", "bar in", "bar in", "bar"]
    (warning,) = card.find_elements(By.CSS_SELECTOR, ".warnings li")
    assert warning.text == "low_quality: blurry"
    general = driver.find_element(By.ID, "warnings")
    assert general.is_displayed() and general.text == "note: for the whole image"
    error = driver.find_element(By.ID, "beautify-error")
    assert error.is_displayed() and error.text == "Error 422 (no_face): no face found"
    canvas = driver.find_element(By.ID, "overlay")
    assert (canvas.get_attribute("data-boxes"), canvas.get_attribute("data-landmarks")) == (
        "1",
        "68",
    )
    assert _errors(driver) == []
