"""Title search for the service: case- and accent-insensitive, word by word, tolerant of one-letter typos.

``Catalog.find`` resolves one movie for the CLI; a search box needs a ranked list, so this index is built once
per loaded model. A title is split into words (its year and punctuation dropped, accents folded). Each query
word matches a title word exactly, as a prefix (the last word only: people type left to right), or within one
edit (a letter wrong, missing, extra, or two letters swapped; words of three letters or more). Fuzzy look-ups
use a deletion index: a word and every typo of it one edit away share a one-letter deletion. Titles that match
every query word rank first, then by match quality, then by how many people rated the movie.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

EXACT, PREFIX, FUZZY = 1.0, 0.8, 0.6
PHRASE_BONUS = 0.5
MAX_PREFIX_WORDS = 5_000
MIN_FUZZY_LENGTH = 3
_YEAR = re.compile(r"\(\s*\d{4}(?:\s*[-–]\s*\d{0,4})?\s*\)\s*$")
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower case, accents removed: "Amélie" -> "amelie"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def title_words(title: str) -> list[str]:
    """The searchable words of a title: without the trailing "(1999)"."""
    return words_of(_YEAR.sub("", title))


class TitleIndex:
    """Word postings over the catalog's titles, plus a one-deletion index of the word vocabulary."""

    def __init__(self, titles: Sequence[str], popularity: np.ndarray) -> None:
        self.n = len(titles)
        postings: dict[str, list[int]] = defaultdict(list)
        keys = []
        for index, title in enumerate(titles):
            words = title_words(title)
            keys.append(" ".join(words))
            for word in dict.fromkeys(words):
                postings[word].append(index)
        self.postings = {word: np.asarray(items, dtype=np.int64) for word, items in postings.items()}
        self.vocabulary = sorted(self.postings)
        deletions: dict[str, list[str]] = defaultdict(list)
        for word in self.vocabulary:
            if len(word) >= MIN_FUZZY_LENGTH - 1:
                for variant in _deletions(word):
                    deletions[variant].append(word)
        self.deletions = dict(deletions)
        self.keys = keys
        counts = np.asarray(popularity, dtype=np.float64)
        self.popularity = np.log1p(np.maximum(counts, 0)) / max(np.log1p(max(float(counts.max(initial=0)), 0)), 1.0)

    def search(self, query: str, limit: int, allowed: np.ndarray | None = None) -> tuple[list[int], int]:
        """Item indices of the best ``limit`` matches (among ``allowed``, a bool mask) and how many matched.

        An empty query lists the most rated movies."""
        words = words_of(query)
        if not words:
            candidates = np.flatnonzero(allowed) if allowed is not None else np.arange(self.n)
            order = np.argsort(-self.popularity[candidates], kind="stable")
            return [int(i) for i in candidates[order[:limit]]], int(candidates.size)
        quality = np.zeros(self.n, dtype=np.float64)
        matched = np.zeros(self.n, dtype=np.int64)
        for position, word in enumerate(words):
            best = np.zeros(self.n, dtype=np.float64)
            for found, value in self._expand(word, last=position == len(words) - 1):
                items = self.postings[found]
                best[items] = np.maximum(best[items], value)
            matched += best > 0
            quality += best
        need = len(words)
        hits = matched >= need
        if not hits.any() and need > 2:
            hits = matched >= need - 1  # one unknown word in a long query is forgiven
        if allowed is not None:
            hits &= allowed
        candidates = np.flatnonzero(hits)
        if candidates.size == 0:
            return [], 0
        phrase = " ".join(words)
        score = quality[candidates] / need + self.popularity[candidates] * 0.3
        score += np.fromiter((PHRASE_BONUS * (phrase in self.keys[i]) for i in candidates), float, candidates.size)
        order = np.lexsort((candidates, -score))[:limit]
        return [int(i) for i in candidates[order]], int(candidates.size)

    def _expand(self, word: str, last: bool) -> Iterable[tuple[str, float]]:
        """Title words that ``word`` may stand for, with how well they match; typos are only considered when
        the word is neither a title word nor (for the last word) the start of one."""
        found_any = False
        if word in self.postings:
            found_any = True
            yield word, EXACT
        if last:
            start = bisect_left(self.vocabulary, word)
            for found in self.vocabulary[start : start + MAX_PREFIX_WORDS]:
                if not found.startswith(word):
                    break
                if found != word:
                    found_any = True
                    yield found, PREFIX
        if found_any or len(word) < MIN_FUZZY_LENGTH:
            return
        variants = _deletions(word)
        near = {v for v in variants if v in self.postings}  # ``word`` has one letter too many
        near.update(self.deletions.get(word, ()))  # ``word`` misses a letter
        for variant in variants:  # a wrong letter, or two neighbours swapped
            near.update(found for found in self.deletions.get(variant, ()) if _within_one_edit(word, found))
        for found in sorted(near):
            yield found, FUZZY


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _within_one_edit(a: str, b: str) -> bool:
    """One substitution, insertion, deletion or swap of neighbouring letters turns ``a`` into ``b``."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]
