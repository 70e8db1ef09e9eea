#!/usr/bin/env bash
# The package as users get it: build the sdist and the wheel, check them with twine, install the wheel (not
# editable) into a fresh virtual environment, and from outside the source tree run the README's Python quick start
# as written (one epoch on the embedded data, a list with explanations), recommend from the run it wrote, start
# `movierec serve` on it on a free port and GET /health. This proves the embedded data and the
# web page's static files are inside the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE="$PWD"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/movierec-wheel-smoke.XXXXXX")"
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# the sdist, then the wheel built from it (so the sdist is complete, and no build/ is left in the source tree)
python3 -m build --outdir "$WORK/dist" "$SOURCE" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
python3 -m twine check --strict "$WORK"/dist/*
WHEEL="$(ls "$WORK"/dist/movierec-*.whl)"

python3 -m venv "$WORK/venv"
PY="$WORK/venv/bin/python"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q torch==2.13.0
"$PY" -m pip install -q "$WHEEL"

cd "$WORK"  # outside the source tree: only the installed wheel can be imported
# The README's quick start in Python, exactly as written (between its quickstart markers).
python3 - "$SOURCE/README.md" >"$WORK/quickstart.py" <<'PY'
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
section = text.split("[start:quickstart]")[1].split("[end:quickstart]")[0]
print(re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1))
PY
"$PY" "$WORK/quickstart.py"
"$PY" - <<'PY'
import pathlib
import movierec

assert "site-packages" in movierec.__file__, movierec.__file__
(run_dir,) = pathlib.Path("runs").iterdir()  # the quick start's one run folder
pathlib.Path("smoke-run").symlink_to(run_dir.resolve())
run = movierec.load_run(run_dir)
picks = movierec.load(run).recommend(ratings={318: 5, 296: 4.5, 2571: 5}, n=10)
assert len(picks) == 10 and all(p.explanation.text for p in picks), picks
print(f"movierec {movierec.__version__}: trained {run.path}, test RMSE {run.metric('rmse'):.4f}; "
      f"first pick {picks[0].title}")
static = pathlib.Path(movierec.__file__).parent / "serve" / "static" / "index.html"
assert static.is_file(), static
PY

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$WORK/venv/bin/movierec" serve smoke-run --port "$PORT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
"$PY" - "$PORT" <<'PY'
import sys
import time

import httpx

import movierec

url = f"http://127.0.0.1:{sys.argv[1]}"
for _ in range(120):
    try:
        health = httpx.get(f"{url}/health", timeout=2)
        break
    except httpx.TransportError:
        time.sleep(0.5)
else:
    sys.exit("the server did not answer /health within a minute")
assert health.status_code == 200, health.text
assert health.json()["model"] == "hybrid" and health.json()["version"] == movierec.__version__, health.text
page = httpx.get(url, timeout=5)
assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:200]
print(f"GET /health: {health.json()}")
PY
echo "wheel smoke test passed: $(basename "$WHEEL")"
