"""The web page in a real headless Chromium (Debian's, driven by Playwright) against the real server.

Trains a small biased-mf on the embedded data, starts `movierec serve` on 127.0.0.1, then searches, rates six
movies high and low (by mouse and by keyboard), checks that recommendations appear without any rated movie, each
with its reasons at a glance ("Because you liked … · disliked …", naming only movies rated that way) and the
full explanation on demand, asks for "more like this", filters by genre, and saves screenshots (one is copied to
docs/images/web_page.png for the README).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from movierec import atomic

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
README_IMAGE = Path(__file__).resolve().parents[1] / "docs" / "images" / "web_page.png"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from movierec.config import TrainConfig
    from movierec.data.source import DataOptions
    from movierec.train.session import train_run

    out = tmp_path_factory.mktemp("e2e") / "run"
    train_run(TrainConfig(model="biased-mf", dim=16, epochs=4, seed=0), DataOptions(), out, progress=False)
    return out


@contextmanager
def new_page() -> Iterator[tuple[Page, list[str]]]:
    """A fresh page of headless Chromium (1280 x 900) and the list its JavaScript errors go to; the browser is
    closed afterwards."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page, errors
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(run_dir: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "movierec", "serve", str(run_dir), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else "the server exited"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 180 s"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_search_rate_and_get_recommendations(server: str, tmp_path: Path) -> None:
    expect = playwright_api.expect
    with new_page() as (page, errors):
        page.goto(server + "/")
        expect(page.locator("#model-info")).to_contain_text("biased-mf")
        expect(page.locator("#onboarding-list li.card").first).to_be_visible()
        expect(page.locator("#recs-status")).to_contain_text("Rate at least 3")

        rated: list[int] = []
        # A typo and an accent; four liked movies and, with the keyboard's 2 stars below, two disliked ones.
        searches = [("matrix", 5), ("toy story", 4), ("godfathr", 5), ("amelie", 4), ("twilight", 1)]
        for query, stars in searches:
            page.fill("#search-input", query)
            page.press("#search-input", "Enter")
            expect(page.locator("#search-status")).to_contain_text("match")
            card = page.locator("#search-results li.card").first
            card.locator("label.star").nth(stars - 1).click()
            rated.append(int(card.get_attribute("data-movie") or 0))

        # The sixth rating by keyboard (2 stars): Tab into a star group, arrows move the choice.
        page.fill("#search-input", "titanic")
        page.press("#search-input", "Enter")
        expect(page.locator("#search-status")).to_contain_text("match")
        card = page.locator("#search-results li.card").first
        card.locator("input[type=radio]").first.focus()
        page.keyboard.press("Space")
        page.keyboard.press("ArrowRight")
        rated.append(int(card.get_attribute("data-movie") or 0))
        expect(card.locator("input[type=radio]").nth(1)).to_be_checked()

        expect(page.locator("#rated-count")).to_have_text("6")
        expect(page.locator("#recs-list li.card").first).to_be_visible()
        expect(page.locator("#recs-status")).to_contain_text("from your 6 ratings")
        recommended = [int(m) for m in page.locator("#recs-list li.card").evaluate_all(
            "cards => cards.map(c => c.dataset.movie)")]  # fmt: skip
        assert len(recommended) >= 5
        assert not set(recommended) & set(rated), (recommended, rated)
        first = page.locator("#recs-list li.card").first
        expect(first.locator(".prediction")).to_contain_text("predicted for you")
        expect(first.locator(".chips li").first).to_be_visible()
        assert re.search(r"\d{4}", first.locator(".year").inner_text())
        check_reasons(page, first)

        stored = page.evaluate("() => Object.keys(JSON.parse(localStorage.getItem('movierec.ratings.v1')))")
        assert sorted(map(int, stored)) == sorted(rated)

        page.mouse.move(1, 1)  # no hover preview of stars in the picture
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.wait_for_timeout(300)  # let the stars' colour transition finish
        screenshot = tmp_path / "web_page.png"
        page.screenshot(path=str(screenshot))
        atomic.write_bytes(README_IMAGE, screenshot.read_bytes())

        first.locator("button.more").click()
        expect(page.locator("#similar-block")).to_be_visible()
        expect(page.locator("#similar-list li.card").first).to_be_visible()
        expect(page.locator("#similar-heading")).to_be_focused()

        page.locator("#close-similar").click()
        page.select_option("#genre-filter", "Comedy")
        expect(page.locator("#recs-status")).to_contain_text("Comedy only")
        for chips in page.locator("#recs-list li.card .chips").all_inner_texts():
            assert "Comedy" in chips

        page.reload()  # ratings survive in localStorage
        expect(page.locator("#rated-count")).to_have_text("6")

        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(tmp_path / "web_page_phone.png"), full_page=True)
        assert not errors, errors


def check_reasons(page: Page, first: Locator) -> None:
    """Every card says why at a glance; the list names liked and disliked movies, each rated that way; the first
    card's full explanation opens on demand."""
    expect = playwright_api.expect
    cards = page.locator("#recs-list li.card")
    assert cards.locator(".reasons").count() == cards.count()
    expect(first.locator(".reasons")).to_contain_text("Because you")
    stars = page.evaluate(
        "() => Object.fromEntries(Object.values(JSON.parse(localStorage.getItem('movierec.ratings.v1')))"
        ".map(r => [displayTitle(r.title), r.rating]))"
    )
    liked = page.locator("#recs-list .reason.liked strong").all_inner_texts()
    disliked = page.locator("#recs-list .reason.disliked strong").all_inner_texts()
    assert liked and disliked, (liked, disliked)
    assert all(stars[title] >= 4 for title in liked), (liked, stars)
    assert all(stars[title] <= 2 for title in disliked), (disliked, stars)
    first.locator(".why summary").click()
    expect(first.locator(".why .because li").first).to_contain_text("You gave")
    expect(first.locator(".why .numbers")).to_contain_text("score")
    first.locator(".why summary").click()
