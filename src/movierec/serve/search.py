"""Title search for the service: case- and accent-insensitive, word by word, tolerant of typos.

``Catalog.find`` resolves one movie for the CLI; a search box needs a ranked list, so this index is built once
per loaded model. A title is split into words (its year and punctuation dropped, accents folded). Each query
word matches a title word exactly, as a prefix (the last word only: people type left to right), or, when it is
neither, within a few edits (a letter wrong, missing, extra, or two neighbours swapped: the optimal string
alignment distance of rapidfuzz): one edit in a word of three to six letters, two in a longer one, so
"Shawshenk Redemtoin" finds The Shawshank Redemption. rapidfuzz compares the query word only with vocabulary
words that the edits could reach: of a length within the number of edits, and whose sets of letters differ by
at most two letters per edit (a cheap vectorised bound on bit masks: a wrong letter changes two, a missing or
extra one one, a swap none). Titles that match every query word rank first, then by match quality, then by how many
people rated the movie.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

EXACT, PREFIX, FUZZY = 1.0, 0.8, 0.6
PHRASE_BONUS = 0.5
MAX_PREFIX_WORDS = 5_000
MIN_FUZZY_LENGTH = 3
TWO_EDITS_FROM = 7
"""Words of this many letters or more may carry two typos; shorter ones (of ``MIN_FUZZY_LENGTH`` or more) one."""
EDIT_PENALTY = 0.1
"""A fuzzy match scores ``FUZZY`` less this for each edit beyond the first."""
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
    """Word postings over the catalog's titles, and the word vocabulary grouped by length for fuzzy look-ups."""

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
        self.fuzzy = FuzzyVocabulary(self.vocabulary)
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
        for found, distance in self.fuzzy.near(word, allowed_edits(word)):
            yield found, FUZZY - EDIT_PENALTY * (distance - 1)


class FuzzyVocabulary:
    """Words ordered by length, with the set of characters of each as a bit mask, for look-ups of the words a few
    edits away."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = sorted(words, key=lambda word: (len(word), word))
        self.lengths = np.fromiter((len(word) for word in self.words), np.int64, len(self.words))
        self.masks = np.fromiter((letter_mask(word) for word in self.words), np.uint64, len(self.words))

    def near(self, word: str, edits: int) -> list[tuple[str, int]]:
        """(vocabulary word, distance) within ``edits`` optimal-string-alignment edits of ``word``, sorted."""
        start, stop = np.searchsorted(self.lengths, [len(word) - edits, len(word) + edits + 1])
        differ = np.bitwise_count(self.masks[start:stop] ^ np.uint64(letter_mask(word)))
        choices = [self.words[i] for i in np.flatnonzero(differ <= 2 * edits) + start]
        found = process.extract(word, choices, scorer=OSA.distance, score_cutoff=edits, limit=None)
        return sorted((match, int(distance)) for match, distance, _ in found)


def letter_mask(word: str) -> int:
    """One bit per character of ``word``: a-z and 0-9 each their own, any other character one shared bit."""
    mask = 0
    for char in word:
        if "a" <= char <= "z":
            mask |= 1 << (ord(char) - 97)
        elif "0" <= char <= "9":
            mask |= 1 << (ord(char) - 22)
        else:
            mask |= 1 << 36
    return mask


def allowed_edits(word: str) -> int:
    """How many typos a query word may carry: none below ``MIN_FUZZY_LENGTH`` letters, two from ``TWO_EDITS_FROM``."""
    if len(word) < MIN_FUZZY_LENGTH:
        return 0
    return 2 if len(word) >= TWO_EDITS_FROM else 1
