// movierec web page: search, rate with stars, see recommendations. No build step, no dependencies.
// Ratings (and the movies you have not seen) live in localStorage; every request goes to this page's own API.
"use strict";

const STORE_KEY = "movierec.ratings.v1";
const NOT_SEEN_KEY = "movierec.not-seen.v1";
const MIN_RATED = 3;        // recommendations appear from this many ratings
const N_RECS = 12;
const N_QUESTIONS = 6;      // suggestions to rate, chosen again after every answer
const MAX_ANSWERS = 100;    // the interview takes the latest answers up to this many (POST /onboarding/next)
const STARS = [1, 2, 3, 4, 5];

const state = {
  ratings: loadRatings(),   // movieId -> {rating, title, year, genres}
  notSeen: loadNotSeen(),   // movieIds answered "haven't seen it", oldest first
  scale: [0.5, 5],
  search: [],               // last search results
  genre: "",
  recsRequest: 0,           // to drop stale answers
  questionsRequest: 0,
  similarFor: null,
};
let widgetCount = 0;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------- storage

function loadRatings() {
  try {
    const raw = JSON.parse(localStorage.getItem(STORE_KEY) || "{}");
    const out = {};
    for (const [id, entry] of Object.entries(raw)) {
      if (/^\d+$/.test(id) && entry && typeof entry.rating === "number") out[id] = entry;
    }
    return out;
  } catch (_error) {
    return {};
  }
}

function loadNotSeen() {
  try {
    const raw = JSON.parse(localStorage.getItem(NOT_SEEN_KEY) || "[]");
    return Array.isArray(raw) ? raw.filter((id) => /^\d+$/.test(String(id))).map(String) : [];
  } catch (_error) {
    return [];
  }
}

function saveRatings() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(state.ratings));
    localStorage.setItem(NOT_SEEN_KEY, JSON.stringify(state.notSeen));
  } catch (_error) {
    setStatus("recs-status", "Your browser would not store the ratings; they last until you close the page.");
  }
}

// ------------------------------------------------------------------------------------------------- API

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Accept": "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) },
  });
  let body = null;
  try {
    body = await response.json();
  } catch (_error) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `The server answered ${response.status}.`;
    throw new Error(detail);
  }
  return body;
}

// ------------------------------------------------------------------------------------------- rendering

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function setStatus(id, text) {
  $(id).textContent = text || "";
}

function label(movie) {
  return movie.year ? `${displayTitle(movie.title)} (${movie.year})` : displayTitle(movie.title);
}

// "Matrix, The (1999)" -> "The Matrix": no year (shown apart), the article back in front.
function displayTitle(title) {
  const bare = title.replace(/\s*\(\d{4}(?:[-–]\d{0,4})?\)\s*$/, "");
  const moved = bare.match(/^(.*), (the|a|an|les|la|le|il|der|die|das|el)$/i);
  return moved ? `${moved[2]} ${moved[1]}` : bare;
}

function starsToScale(stars) {
  const [low, high] = state.scale;
  return Math.min(high, Math.max(low, stars));
}

// A star rating: five radio inputs with labels (Tab into the group, arrow keys to change) and a clear button.
function starWidget(movie, where) {
  const id = String(movie.movieId);
  const name = `rate-${where}-${id}-${++widgetCount}`;
  const current = state.ratings[id] ? Math.round(state.ratings[id].rating) : 0;
  const group = el("fieldset", { class: "stars", dataset: { movie: id } },
    el("legend", { class: "sr-only", text: `Your rating of ${label(movie)}` }));
  for (const value of STARS) {
    const inputId = `${name}-${value}`;
    const input = el("input", {
      type: "radio", name, id: inputId, value: String(value), class: "sr-only",
      dataset: { key: `${where}-${id}-${value}` },
      onchange: () => rate(movie, value),
    });
    input.checked = value === current;
    const star = el("label", { for: inputId, class: value <= current ? "star on" : "star", title: `${value} of 5` },
      el("span", { "aria-hidden": "true", text: "★" }),
      el("span", { class: "sr-only", text: `${value} star${value > 1 ? "s" : ""}` }));
    group.append(input, star);
  }
  group.append(el("button", {
    type: "button", class: "clear", hidden: !current, dataset: { key: `${where}-${id}-clear` },
    "aria-label": `Remove your rating of ${label(movie)}`, title: "Remove rating", text: "×",
    onclick: () => unrate(id),
  }));
  return group;
}

function genreChips(genres) {
  return el("ul", { class: "chips", "aria-label": "Genres" }, genres.map((g) => el("li", { text: g })));
}

function meta(movie) {
  const parts = [];
  if (movie.mean_rating !== null && movie.mean_rating !== undefined) {
    parts.push(`${movie.mean_rating.toFixed(1)}★ average`);
  }
  parts.push(`${movie.n_ratings.toLocaleString()} rating${movie.n_ratings === 1 ? "" : "s"}`);
  return el("p", { class: "meta", text: parts.join(" · ") });
}

function moreLikeButton(movie, where) {
  return el("button", {
    type: "button", class: "link more", dataset: { key: `${where}-${movie.movieId}-more` },
    "aria-label": `More like ${label(movie)}`, text: "More like this",
    onclick: () => showSimilar(movie),
  });
}

function movieCard(movie, where, extra = []) {
  return el("li", { class: "card", dataset: { movie: String(movie.movieId) } },
    el("div", { class: "card-head" },
      el("h3", { class: "title" }, displayTitle(movie.title), movie.year ? el("span", { class: "year", text: ` ${movie.year}` }) : null),
      starWidget(movie, where)),
    genreChips(movie.genres),
    extra,
    el("div", { class: "card-foot" }, meta(movie), moreLikeButton(movie, where)));
}

// The reasons grouped by feeling, in the order of each feeling's strongest reason: [["liked", [...]], ...].
function reasonGroups(because) {
  const groups = new Map();
  for (const b of because) {
    if (!groups.has(b.reason)) groups.set(b.reason, []);
    groups.get(b.reason).push(b);
  }
  return [...groups.entries()];
}

// "Because you liked Alien, Jaws · disliked Grease": words carry the meaning, colour only underlines it.
function reasonsLine(rec) {
  if (rec.kind === "popular") return el("p", { class: "reasons", text: "Popular and well rated." });
  const groups = reasonGroups(rec.because);
  if (!groups.length) return el("p", { class: "reasons", text: "Matches the taste your ratings show." });
  const parts = groups.map(([reason, items], i) => el("span", { class: `reason ${reason}` },
    i === 0 ? "Because you " : "",
    el("span", { class: "feeling", text: reason }), " ",
    items.map((b, j) => [j ? ", " : "", el("strong", { text: displayTitle(b.title) })])));
  const sep = () => [el("span", { class: "sep", "aria-hidden": "true", text: " · " }), el("span", { class: "sr-only", text: " and " })];
  return el("p", { class: "reasons" }, parts.map((part, i) => [i ? sep() : "", part]));
}

function reasonsDetail(rec) {
  const items = rec.because.map((b) => {
    const title = displayTitle(b.title);
    const who = b.reason === "liked" ? "like" : "dislike";
    return el("li", {},
      `You gave ${title} ${b.rating}★ (${b.reason}): `, el("strong", { text: `+${b.contribution.toFixed(2)}★` }),
      ` to this prediction. People who ${who} ${title} tend to like this one.`);
  });
  return [
    items.length ? el("ul", { class: "because" }, items) : null,
    el("p", { class: "numbers", text: rec.explanation }),
  ];
}

function recommendationCard(rec) {
  return movieCard(rec, "recs", [
    el("p", { class: "prediction" },
      el("strong", { text: `${rec.predicted_rating.toFixed(1)}★` }), " predicted for you."),
    reasonsLine(rec),
    el("details", { class: "why" },
      el("summary", { text: "Why this movie?" }),
      reasonsDetail(rec)),
  ]);
}

// A suggestion to rate, with a way to say "I haven't seen it" (an answer too: it picks the next suggestions).
function questionCard(movie) {
  return movieCard(movie, "onboard", [
    el("button", {
      type: "button", class: "link not-seen", dataset: { key: `onboard-${movie.movieId}-not-seen` },
      "aria-label": `Haven't seen ${label(movie)}`, text: "Haven't seen it",
      onclick: (event) => {
        event.currentTarget.closest("li.card").classList.add("answered");
        notSeen(movie);
      },
    }),
  ]);
}

function renderList(id, items, render) {
  const list = $(id);
  const focusKey = document.activeElement && list.contains(document.activeElement)
    ? document.activeElement.dataset.key : null;
  list.replaceChildren(...items.map(render));
  if (focusKey) {
    const again = list.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
    if (again) again.focus();
  }
}

function renderRated() {
  const entries = Object.entries(state.ratings).map(([id, r]) => ({
    movieId: Number(id), title: r.title, year: r.year, genres: r.genres || [],
    n_ratings: r.n_ratings || 0, mean_rating: r.mean_rating ?? null,
  })).reverse();
  $("rated-count").textContent = String(entries.length);
  $("clear-ratings").hidden = entries.length === 0 && state.notSeen.length === 0;
  renderList("rated-list", entries, (movie) => movieCard(movie, "rated"));
}

// Every star widget of a movie shows the same rating, wherever it is on the page.
function syncStars(id) {
  const current = state.ratings[id] ? Math.round(state.ratings[id].rating) : 0;
  for (const group of document.querySelectorAll(`fieldset.stars[data-movie="${id}"]`)) {
    for (const input of group.querySelectorAll("input")) {
      input.checked = Number(input.value) === current;
    }
    group.querySelectorAll("label.star").forEach((star, i) => star.classList.toggle("on", i < current));
    group.querySelector("button.clear").hidden = !current;
  }
}

// -------------------------------------------------------------------------------------------- actions

function rate(movie, stars) {
  const id = String(movie.movieId);
  state.notSeen = state.notSeen.filter((other) => other !== id);
  state.ratings[id] = {
    rating: starsToScale(stars), title: movie.title, year: movie.year, genres: movie.genres,
    n_ratings: movie.n_ratings, mean_rating: movie.mean_rating,
  };
  // Re-insert so the newest rating is listed first.
  const entry = state.ratings[id];
  delete state.ratings[id];
  state.ratings[id] = entry;
  saveRatings();
  syncStars(id);
  renderRated();
  scheduleRecommendations();
  scheduleQuestions();
}

function unrate(id) {
  delete state.ratings[id];
  saveRatings();
  syncStars(id);
  renderRated();
  scheduleRecommendations();
  scheduleQuestions();
}

function notSeen(movie) {
  const id = String(movie.movieId);
  state.notSeen = [...state.notSeen.filter((other) => other !== id), id];
  if (state.ratings[id]) {
    delete state.ratings[id];
    syncStars(id);
  }
  saveRatings();
  renderRated();
  scheduleRecommendations();  // "haven't seen it" shapes the list too
  scheduleQuestions();
}

// Every answer so far, the latest MAX_ANSWERS: stars, or null for "haven't seen it".
function answers() {
  const rated = Object.entries(state.ratings).map(([id, r]) => ({ movieId: Number(id), rating: r.rating }));
  const unseen = state.notSeen.map((id) => ({ movieId: Number(id), rating: null }));
  return [...rated, ...unseen].slice(-MAX_ANSWERS);
}

async function search(query) {
  setStatus("search-status", "Searching…");
  try {
    const params = new URLSearchParams({ query, limit: "10" });
    const body = await api(`/movies?${params}`);
    state.search = body.movies;
    renderList("search-results", body.movies, (movie) => movieCard(movie, "search"));
    const shown = body.movies.length;
    setStatus("search-status", shown
      ? `${body.total.toLocaleString()} match${body.total === 1 ? "" : "es"} for “${query}”${body.total > shown ? `, showing the ${shown} best` : ""}.`
      : `No title matches “${query}”. Try fewer words.`);
  } catch (error) {
    setStatus("search-status", error.message);
  }
}

let recsTimer = null;
function scheduleRecommendations() {
  clearTimeout(recsTimer);
  recsTimer = setTimeout(loadRecommendations, 150);
}

async function loadRecommendations() {
  const ratings = Object.entries(state.ratings).map(([id, r]) => ({ movieId: Number(id), rating: r.rating }));
  const missing = MIN_RATED - ratings.length;
  if (missing > 0) {
    $("recs-list").replaceChildren();
    setStatus("recs-status", ratings.length
      ? `Rate ${missing} more movie${missing > 1 ? "s" : ""} to see recommendations.`
      : `Rate at least ${MIN_RATED} movies to see recommendations: search above, or start with the suggestions below.`);
    return;
  }
  const request = ++state.recsRequest;
  setStatus("recs-status", "Finding movies for you…");
  try {
    const body = await recommendationsFor(ratings);
    if (request !== state.recsRequest) return;
    renderList("recs-list", body.recommendations, recommendationCard);
    const unseen = body.fromAnswers && state.notSeen.length ? ` and ${state.notSeen.length} not seen` : "";
    const notes = [`${body.recommendations.length} movies from your ${ratings.length} ratings${unseen}${state.genre ? ` (${state.genre} only)` : ""}.`];
    if (body.ignored.length) notes.push(`${body.ignored.length} rated movie(s) are unknown to this model and were left out.`);
    if (body.fallback) notes.push("None of your ratings could be used, so these are popular, well-rated movies.");
    if (!body.recommendations.length) notes.push("Nothing matches this filter; try another genre.");
    setStatus("recs-status", notes.join(" "));
  } catch (error) {
    if (request === state.recsRequest) setStatus("recs-status", error.message);
  }
}

// The list the answers lead to, "haven't seen it" included (POST /onboarding/recommendations); from the ratings
// alone when there are more answers than an interview takes or the service cannot use them (e.g. ratings kept
// from another model). fromAnswers: which it was.
async function recommendationsFor(ratings) {
  const genres = state.genre ? [state.genre] : [];
  if (ratings.length + state.notSeen.length <= MAX_ANSWERS) {
    try {
      const body = await api("/onboarding/recommendations", {
        method: "POST",
        body: JSON.stringify({ answers: answers(), n: N_RECS, genres }),
      });
      return { ...body, fromAnswers: true };
    } catch (_error) {
      // fall through to the ratings alone
    }
  }
  const body = await api("/recommendations", { method: "POST", body: JSON.stringify({ ratings, n: N_RECS, genres }) });
  return { ...body, fromAnswers: false };
}

async function showSimilar(movie) {
  const block = $("similar-block");
  block.hidden = false;
  state.similarFor = movie.movieId;
  $("similar-heading").textContent = `More like ${label(movie)}`;
  $("similar-list").replaceChildren(el("li", { class: "status", text: "Looking…" }));
  $("similar-heading").focus();
  try {
    const body = await api(`/movies/${encodeURIComponent(movie.movieId)}/similar?n=6`);
    if (state.similarFor !== movie.movieId) return;
    renderList("similar-list", body.similar, (s) => movieCard(s, "similar", [
      el("p", { class: "prediction", text: `Similarity ${(s.similarity * 100).toFixed(0)}%.` }),
    ]));
    if (!body.similar.length) $("similar-list").replaceChildren(el("li", { class: "status", text: "No similar movies found." }));
  } catch (error) {
    $("similar-list").replaceChildren(el("li", { class: "status", text: error.message }));
  }
}

let questionsTimer = null;
function scheduleQuestions() {
  clearTimeout(questionsTimer);
  questionsTimer = setTimeout(loadQuestions, 300);
}

// The suggestions to rate, chosen from the answers so far (the fixed list if the service cannot use them, e.g.
// ratings kept from another model). Focus inside the list, on a card that goes, moves to the heading.
async function loadQuestions() {
  const request = ++state.questionsRequest;
  const given = answers();
  let body;
  try {
    body = await api("/onboarding/next", { method: "POST", body: JSON.stringify({ answers: given, n: N_QUESTIONS }) });
  } catch (_error) {
    try {
      body = await api(`/onboarding?n=${N_QUESTIONS}`);
    } catch (_again) {
      if (request === state.questionsRequest) $("onboarding-block").hidden = true;
      return;
    }
  }
  if (request !== state.questionsRequest) return;
  const list = $("onboarding-list");
  const hadFocus = list.contains(document.activeElement);
  renderList("onboarding-list", body.movies, questionCard);
  $("onboarding-heading").textContent = Object.keys(state.ratings).length >= MIN_RATED
    ? "Rate some of these to sharpen your list"
    : "Not sure where to start? Rate some of these";
  $("onboarding-block").hidden = body.movies.length === 0;
  if (hadFocus && !list.contains(document.activeElement)) $("onboarding-heading").focus();
}

async function loadHealth() {
  try {
    const health = await api("/health");
    state.scale = [health.scale_low, health.scale_high];
    $("model-info").textContent =
      `${health.model} model · ${health.catalog_size.toLocaleString()} movies · ${health.n_users.toLocaleString()} users`;
    const select = $("genre-filter");
    for (const genre of health.genres) select.append(el("option", { value: genre, text: genre }));
  } catch (error) {
    $("model-info").textContent = `The service is not answering: ${error.message}`;
  }
}

// ---------------------------------------------------------------------------------------------- wiring

function init() {
  let searchTimer = null;
  const input = $("search-input");
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    if (input.value.trim()) search(input.value.trim());
  });
  input.addEventListener("input", () => {
    clearTimeout(searchTimer);
    const query = input.value.trim();
    if (query.length >= 2) searchTimer = setTimeout(() => search(query), 250);
  });
  $("genre-filter").addEventListener("change", (event) => {
    state.genre = event.target.value;
    scheduleRecommendations();
  });
  $("clear-ratings").addEventListener("click", () => {
    const ids = Object.keys(state.ratings);
    state.ratings = {};
    state.notSeen = [];
    saveRatings();
    ids.forEach(syncStars);
    renderRated();
    scheduleRecommendations();
    scheduleQuestions();
  });
  $("close-similar").addEventListener("click", () => {
    $("similar-block").hidden = true;
    state.similarFor = null;
    $("recs-heading").focus();
  });
  renderRated();
  loadHealth().then(loadRecommendations);
  loadQuestions();
}

document.addEventListener("DOMContentLoaded", init);
