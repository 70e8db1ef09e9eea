"""Title search speed and typo tolerance on a catalog of ML-25M's size (59,047 titles).

The catalog is the 9,742 real titles of the embedded ml-latest-small plus made-up titles of one to four words
drawn from the real titles' words (seeded), so the vocabulary and the posting lists look like MovieLens. Queries
are made from real titles: the title as typed, a prefix of it (typed left to right), one typo in one word, a typo
in each of two words, three typos with two in one word ("Shawshenk Redemtoin"), and words in no title. For each
kind it prints queries/s and the share of queries whose movie is among the first 10 results (the misses: the share
with no result at all).

    python benchmarks/title_search.py [--titles 59047] [--queries 400] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from movierec.data.movielens import read_movies_csv
from movierec.paths import EMBEDDED_DIR
from movierec.serve.search import TitleIndex, title_words

ML25M_TITLES = 59_047
LIMIT = 10


def catalog(n_titles: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, int]:
    """The real titles first, then made-up ones; popularity counts drawn from a long tail."""
    real = read_movies_csv(EMBEDDED_DIR / "ml-latest-small" / "movies.csv")["title"].astype(str).tolist()
    words = [word.title() for title in real for word in title_words(title)]
    made = []
    for _ in range(max(n_titles - len(real), 0)):
        picked = rng.choice(len(words), size=int(rng.integers(1, 5)))
        made.append(" ".join(words[i] for i in picked) + f" ({int(rng.integers(1920, 2020))})")
    titles = (real + made)[:n_titles]
    return titles, np.floor(rng.pareto(1.2, len(titles)) * 3).astype(np.int64), len(real)


def typo(word: str, rng: np.random.Generator) -> str:
    """One edit: a letter wrong, missing, extra, or two neighbours swapped."""
    i = int(rng.integers(0, len(word) - 1))
    kind = int(rng.integers(0, 4))
    letter = "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))]
    if kind == 0:
        return word[:i] + (letter if letter != word[i] else "z") + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + letter + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :] if word[i] != word[i + 1] else word[:i] + word[i + 1 :]


def typos(words: list[str], count: int, rng: np.random.Generator, in_one: int = 1) -> list[str]:
    """``count`` typos over the words of five letters or more: ``in_one`` of them in the first such word."""
    out = list(words)
    long_words = [i for i, w in enumerate(words) if len(w) >= 5]
    first = long_words[0]
    for _ in range(in_one):
        out[first] = typo(out[first], rng)
    for i in long_words[1 : 1 + count - in_one]:
        out[i] = typo(out[i], rng)
    return out


QueryMaker = Callable[[list[str], np.random.Generator], str | None]
KINDS: dict[str, QueryMaker] = {
    "as typed": lambda w, rng: " ".join(w),
    "prefix": lambda w, rng: " ".join(w)[: max(4, len(" ".join(w)) * 2 // 3)],
    "1 typo": lambda w, rng: " ".join(typos(w, 1, rng)) if any(len(x) >= 5 for x in w) else None,
    "2 typos, 2 words": lambda w, rng: " ".join(typos(w, 2, rng)) if sum(len(x) >= 5 for x in w) >= 2 else None,
    "3 typos, 2 in a word": lambda w, rng: (
        " ".join(typos(w, 3, rng, in_one=2)) if sum(len(x) >= 5 for x in w) >= 2 else None
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=ML25M_TITLES)
    parser.add_argument("--queries", type=int, default=400, help="queries of each kind")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    titles, popularity, n_real = catalog(args.titles, rng)
    started = time.perf_counter()
    index = TitleIndex(titles, popularity)
    built = time.perf_counter() - started
    print(f"{platform.processor() or platform.machine()}; {len(titles):,} titles ({n_real:,} real); "
          f"index built in {built:.2f} s")  # fmt: skip
    print(f"{'queries':<24}{'count':>7}{'queries/s':>12}{'found in top 10':>18}")
    everything = []
    for kind, make in KINDS.items():
        pairs = []
        while len(pairs) < args.queries:
            movie = int(rng.integers(0, n_real))
            words = title_words(titles[movie])
            query = make(words, rng) if words else None
            if query:
                pairs.append((query, movie))
        everything += pairs
        report(kind, index, pairs)
    misses = [(" ".join(f"qx{int(rng.integers(10**6))}zq" for _ in range(2)), -1) for _ in range(args.queries)]
    report("no such words", index, misses)
    report("all of the above", index, everything + misses)
    check = "shawshenk redemtoin"
    found = [titles[i] for i in index.search(check, LIMIT)[0][:1]]
    print(f"{check!r} -> {found[0] if found else 'nothing'}")


def report(kind: str, index: TitleIndex, pairs: list[tuple[str, int]]) -> None:
    started = time.perf_counter()
    results = [index.search(query, LIMIT)[0] for query, _ in pairs]
    seconds = time.perf_counter() - started
    wanted = [movie for _, movie in pairs]
    if all(movie < 0 for movie in wanted):
        share = sum(not found for found in results) / len(pairs)
        label = "(none found)"
    else:
        hits = [movie in found for found, movie in zip(results, wanted, strict=True) if movie >= 0]
        share, label = sum(hits) / len(hits), ""
    print(f"{kind:<24}{len(pairs):>7}{len(pairs) / seconds:>12,.0f}{share:>17.1%} {label}")


if __name__ == "__main__":
    main()
