"""The adaptive interview on the web page, in a real headless Chromium against the real server (the fixtures of
test_e2e_browser.py: a small biased-mf on the embedded data, `movierec serve` on 127.0.0.1).

Five questions from "Rate some of these", answered with stars or "Haven't seen it": after each answer the
suggestions are chosen again (never a movie answered), and the page ends with a recommendations list that holds
none of the rated movies, asked for with every answer, "haven't seen it" included (POST
/onboarding/recommendations); one more "haven't seen it" asks for the list again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from test_e2e_browser import CHROMIUM, new_page, playwright_api, run_dir, server

if TYPE_CHECKING:
    from playwright.sync_api import Request

__all__ = ["run_dir", "server"]  # the fixtures, shared with the page test

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]

ANSWERS: list[int | None] = [5, None, 4, None, 1]
"""Stars for each question in turn; None: "Haven't seen it"."""


def test_an_interview_of_five_questions_ends_in_a_list(server: str) -> None:
    expect = playwright_api.expect
    with new_page() as (page, errors):
        posted: list[dict[str, Any]] = []  # the bodies of POST /onboarding/next, in order
        listed: list[dict[str, Any]] = []  # ... and of POST /onboarding/recommendations

        def record(request: Request) -> None:
            if request.url.endswith("/onboarding/next"):
                posted.append(request.post_data_json)
            if request.url.endswith("/onboarding/recommendations"):
                listed.append(request.post_data_json)

        page.on("request", record)
        page.goto(server + "/")
        questions = page.locator("#onboarding-list li.card")
        expect(questions.first).to_be_visible()
        expect(page.locator("#recs-status")).to_contain_text("Rate at least 3")

        asked: list[int] = []
        for number, stars in enumerate(ANSWERS, 1):
            card = questions.first
            movie = int(card.get_attribute("data-movie") or 0)
            assert movie not in asked, (movie, asked)
            shown_before = questions.evaluate_all("cards => cards.map(c => c.dataset.movie)")
            if stars is None:
                card.locator("button.not-seen").click()
            else:
                card.locator("label.star").nth(stars - 1).click()
            asked.append(movie)
            # the suggestions are chosen again: the answered movie leaves, the list stays full
            expect(page.locator(f'#onboarding-list li.card[data-movie="{movie}"]')).to_have_count(0)
            expect(questions).to_have_count(len(shown_before))
            assert posted and len(posted[-1]["answers"]) == number, posted[-1:]

        last = posted[-1]["answers"]
        assert {(a["movieId"], a["rating"]) for a in last} == {
            (movie, None if stars is None else float(stars)) for movie, stars in zip(asked, ANSWERS, strict=True)
        }
        rated = [movie for movie, stars in zip(asked, ANSWERS, strict=True) if stars is not None]
        expect(page.locator("#rated-count")).to_have_text(str(len(rated)))
        expect(page.locator("#recs-list li.card").first).to_be_visible()
        unseen = [movie for movie, stars in zip(asked, ANSWERS, strict=True) if stars is None]
        expect(page.locator("#recs-status")).to_contain_text(
            f"from your {len(rated)} ratings and {len(unseen)} not seen"
        )
        assert {(a["movieId"], a["rating"]) for a in listed[-1]["answers"]} == {
            (a["movieId"], a["rating"]) for a in last
        }
        recommended = [int(m) for m in page.locator("#recs-list li.card").evaluate_all(
            "cards => cards.map(c => c.dataset.movie)")]  # fmt: skip
        assert len(recommended) >= 5
        assert not set(recommended) & set(rated), (recommended, rated)
        expect(page.locator("#onboarding-heading")).to_contain_text("Rate some of these")

        stored = page.evaluate("() => JSON.parse(localStorage.getItem('movierec.not-seen.v1'))")
        assert list(map(int, stored)) == unseen

        # one more "haven't seen it": the list is asked for again with it
        requests_before = len(listed)
        another = int(questions.first.get_attribute("data-movie") or 0)
        questions.first.locator("button.not-seen").click()
        expect(page.locator("#recs-status")).to_contain_text(f"and {len(unseen) + 1} not seen")
        assert len(listed) > requests_before
        assert {"movieId": another, "rating": None} in listed[-1]["answers"]
        unseen.append(another)
        asked.append(another)

        page.reload()  # the answers survive: none of them is suggested again
        expect(questions.first).to_be_visible()
        suggested = {int(m) for m in questions.evaluate_all("cards => cards.map(c => c.dataset.movie)")}
        assert not suggested & set(asked), (suggested, asked)
        assert not errors, errors
