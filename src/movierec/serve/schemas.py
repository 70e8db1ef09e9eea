"""Request and response bodies of the HTTP API, typed separately (pydantic v2).

Requests reject unknown fields and carry every limit the service enforces (list lengths, ``n``, id ranges),
so a bad request is a 422 that names the field and its valid range. Ratings are checked against the loaded
model's own scale in the route (the scale is only known once a model is loaded), with the same error format.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from movierec.recommend.recommender import MAX_ANSWERS

MAX_N = 100
MAX_RATINGS = 500
MAX_PAIRS = 500
MAX_ID = 2**31 - 1
MAX_SEARCH = 100
MAX_GENRES = 20
MAX_GENRE_CHARS = 40
MAX_QUERY_CHARS = 200
MAX_MIN_RATINGS = 1_000_000
RATING_BOUNDS = (0.0, 10.0)  # the loose static bound; the model's scale is checked in the route

RANGES: dict[str, tuple[float, float]] = {
    "n": (1, MAX_N),
    "limit": (1, MAX_SEARCH),
    "movieId": (1, MAX_ID),
    "userId": (1, MAX_ID),
    "rating": RATING_BOUNDS,
    "min_ratings": (0, MAX_MIN_RATINGS),
}
"""Valid ranges by field name, for error messages that state the whole range, not just the bound that failed."""

MovieId = Annotated[int, Field(ge=1, le=MAX_ID, description="A MovieLens movieId.")]
UserId = Annotated[int, Field(ge=1, le=MAX_ID, description="A MovieLens userId from the run's training data.")]
Count = Annotated[int, Field(ge=1, le=MAX_N, description=f"How many movies to list (1 to {MAX_N}).")]
Genre = Annotated[str, Field(min_length=1, max_length=MAX_GENRE_CHARS)]
Stars = Annotated[
    float,
    Field(
        ge=RATING_BOUNDS[0],
        le=RATING_BOUNDS[1],
        allow_inf_nan=False,
        description="Stars, within the model's rating scale (see GET /health: scale_low to scale_high).",
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------------ requests


class RatingIn(_Request):
    movieId: MovieId
    rating: Stars


class FiltersIn(_Request):
    """Restrictions on a list; all optional."""

    genres: list[Genre] = Field(default_factory=list, max_length=MAX_GENRES, description="Any of these genres.")
    exclude_genres: list[Genre] = Field(default_factory=list, max_length=MAX_GENRES, description="None of these.")
    years: str | None = Field(
        default=None, max_length=20, description="Release years: 1990-2000, 1990-, -2000 or 1995."
    )
    min_ratings: int | None = Field(
        default=None, ge=0, le=MAX_MIN_RATINGS, description="Only movies with at least this many training ratings."
    )


class RecommendIn(FiltersIn):
    """A new user known only by a few ratings (none: the popular-and-well-rated list)."""

    ratings: list[RatingIn] = Field(default_factory=list, max_length=MAX_RATINGS)
    n: Count = 10


class AnswerIn(_Request):
    """One answer of the onboarding interview."""

    movieId: MovieId
    rating: Stars | None = Field(description="Stars within the model's scale, or null for \"I haven't seen it\".")


class InterviewIn(_Request):
    """A new user's answers so far (none: the first questions), in the order given; a later answer about the same
    movie replaces an earlier one."""

    answers: list[AnswerIn] = Field(default_factory=list, max_length=MAX_ANSWERS)
    n: Count = 5


class InterviewListIn(FiltersIn):
    """A new user's interview answers (as for ``POST /onboarding/next``), for the list they lead to."""

    answers: list[AnswerIn] = Field(default_factory=list, max_length=MAX_ANSWERS)
    n: Count = 10


class PairIn(_Request):
    userId: Annotated[int, Field(ge=1, le=MAX_ID)]
    movieId: MovieId


class PredictIn(_Request):
    """Either ``pairs`` of known users and movies, or a new user's ``ratings`` with the ``movieIds`` to predict."""

    pairs: list[PairIn] | None = Field(default=None, min_length=1, max_length=MAX_PAIRS)
    ratings: list[RatingIn] | None = Field(default=None, max_length=MAX_RATINGS)
    movieIds: list[MovieId] | None = Field(default=None, min_length=1, max_length=MAX_PAIRS)

    @model_validator(mode="after")
    def _one_form(self) -> PredictIn:
        by_pairs = self.pairs is not None
        by_ratings = self.ratings is not None or self.movieIds is not None
        if by_pairs == by_ratings:
            raise ValueError("give either pairs, or ratings together with movieIds")
        if by_ratings and (self.ratings is None or self.movieIds is None):
            raise ValueError("ratings and movieIds go together")
        return self


class ReloadIn(_Request):
    run_dir: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="A run folder inside the allowed root (relative to it, or absolute); default: the current one.",
    )


# ----------------------------------------------------------------------------------------------- responses


class MovieOut(BaseModel):
    movieId: int
    title: str
    year: int | None
    genres: list[str]
    n_ratings: int = Field(description="Ratings in the training data.")
    mean_rating: float | None


class BecauseOut(BaseModel):
    """One of the person's own ratings that is a reason for a recommendation."""

    movieId: int
    title: str
    rating: float = Field(description="The person's stars for this movie.")
    contribution: float = Field(description="Stars this rating adds to the recommendation's taste term.")
    reason: Literal["liked", "disliked"] = Field(
        description="liked: rated above their own mean and in the upper half of the scale, and people who like "
        "this movie like the recommendation; disliked: rated below their own mean and under the top quarter of "
        "the scale, and people who dislike it like the recommendation."
    )
    liked: bool = Field(description='True when reason is "liked".')


class RecommendationOut(MovieOut):
    predicted_rating: float
    score: float = Field(description="What the list is sorted by.")
    kind: Literal["personal", "popular"]
    explanation: str = Field(description="Every part of the prediction and the score, and the reasons, in a line.")
    summary: str = Field(
        description='The short reason a list shows: "because you liked …; because you disliked …" for a personal '
        "pick (the prediction's terms when no rating stands out), or why a popular pick is there."
    )
    because: list[BecauseOut] = Field(description="At most three reasons, the strongest first.")


class RecommendationsOut(BaseModel):
    recommendations: list[RecommendationOut]
    ignored: list[int] = Field(description="Given movieIds the model does not know; they were not used.")
    fallback: bool = Field(description="True when no rating could be used: popular and well-rated movies.")


class UserRecommendationsOut(BaseModel):
    userId: int
    recommendations: list[RecommendationOut]


class SearchOut(BaseModel):
    query: str
    total: int = Field(description="How many movies matched; at most `limit` are listed.")
    movies: list[MovieOut]


class SimilarOut(MovieOut):
    similarity: float = Field(description="Cosine of the two movies' factors.")
    score: float
    explanation: str


class SimilarListOut(BaseModel):
    movie: MovieOut
    similar: list[SimilarOut]


class OnboardingOut(MovieOut):
    spread: float = Field(description="Standard deviation of the movie's ratings: how much people disagree.")
    reason: str


class OnboardingListOut(BaseModel):
    movies: list[OnboardingOut]


class PredictionOut(BaseModel):
    userId: int | None = Field(description="None for a new user's predictions.")
    movieId: int
    predicted_rating: float
    known_user: bool
    known_movie: bool


class PredictOut(BaseModel):
    predictions: list[PredictionOut]
    ignored: list[int] = Field(description="Rated movieIds the model does not know (new-user form).")


class HealthOut(BaseModel):
    status: Literal["ok"]
    model: str
    version: str
    run: str = Field(description="The run folder's name.")
    generation: int = Field(description="1 at start-up, one more per reload.")
    loaded_at: float = Field(description="Unix time the model was loaded.")
    catalog_size: int
    n_users: int
    dim: int
    scale_low: float
    scale_high: float
    genres: list[str]


class ReloadOut(BaseModel):
    model: str
    run: str
    generation: int
    previous_generation: int
    seconds: float


class FieldError(BaseModel):
    field: str = Field(description="Where the bad value is, e.g. body.ratings.3.rating or query.n.")
    message: str
    type: str


class ErrorOut(BaseModel):
    detail: str = Field(description="What is wrong and what would be valid, in one or more sentences.")
    errors: list[FieldError] | None = None
