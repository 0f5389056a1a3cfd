# Sourced by scripts/*: create .venv on first use and install the project into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-test}"
STAMP="$VENV/.installed-${EXTRAS//,/-}"
# Reinstall when the metadata or the C extension's sources changed (pip rebuilds it).
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$ROOT/setup.py" -nt "$STAMP" ] \
    || [ "$ROOT/ttxt_mp/_ccodec.c" -nt "$STAMP" ] || [ "$ROOT/ttxt_mp/_cbook.c" -nt "$STAMP" ]; then
    echo "ttxt-mp: setting up $VENV ($EXTRAS); the first run takes a minute or two ..." >&2
    LOG="$(mktemp)"
    if ! { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } >"$LOG" 2>&1 \
        || ! "$VENV/bin/python" -m pip install --upgrade pip >>"$LOG" 2>&1 \
        || ! "$VENV/bin/python" -m pip install -e "$ROOT[$EXTRAS]" >>"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "ttxt-mp: setting up $VENV failed (pip output above)" >&2
        exit 1
    fi
    rm -f "$LOG"
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
