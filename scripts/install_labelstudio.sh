#!/usr/bin/env bash
# Install Label Studio into a virtualenv of its own, for `skcal serve`'s integration tests and
# docs/labelstudio.md. Its many exact pins (Django, boto3, ...) never touch the project's venv. Idempotent.
#
#   scripts/install_labelstudio.sh [LS_VENV] [PYTHON]   (defaults: .venv-labelstudio, python3)
#
# - Does nothing when LS_VENV already has label-studio at $LABEL_STUDIO_VERSION.
# - Otherwise creates LS_VENV with PYTHON (Python 3.10-3.13) if missing, and pip-installs
#   label-studio==$LABEL_STUDIO_VERSION into it from the package index (about 1.5-2.5 minutes, 1 GB).
# - Then, once, migrates an empty SQLite database into LS_VENV/skcal-empty-database (about a minute),
#   which scripts/labelstudio_local.py copies so that a test server starts in seconds.
# SKCAL_NO_LABEL_STUDIO=1 skips it (the integration tests then skip, or fail under SKCAL_REQUIRE_DATA=1).
set -euo pipefail

LS_VENV=${1:-.venv-labelstudio}
PYTHON=${2:-python3}
LABEL_STUDIO_VERSION=1.23.2
EMPTY_DATABASE=skcal-empty-database

say() { echo "install_labelstudio: $*"; }

if [ -n "${SKCAL_NO_LABEL_STUDIO:-}" ]; then
    say "skipped (SKCAL_NO_LABEL_STUDIO=$SKCAL_NO_LABEL_STUDIO)."
    exit 0
fi
installed_version() {
    "$LS_VENV/bin/python" -c "import importlib.metadata as m; print(m.version('label-studio'))" 2>/dev/null || true
}
if [ -x "$LS_VENV/bin/python" ] && [ "$(installed_version)" = "$LABEL_STUDIO_VERSION" ]; then
    say "Label Studio $LABEL_STUDIO_VERSION already in $LS_VENV."
else
    if [ ! -x "$LS_VENV/bin/python" ]; then
        say "creating $LS_VENV with $PYTHON"
        "$PYTHON" -m venv "$LS_VENV"
    fi
    say "installing label-studio==$LABEL_STUDIO_VERSION into $LS_VENV"
    start=$(date +%s)
    "$LS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "label-studio==$LABEL_STUDIO_VERSION"
    if [ "$(installed_version)" != "$LABEL_STUDIO_VERSION" ]; then
        say "label-studio $LABEL_STUDIO_VERSION did not install into $LS_VENV." >&2
        exit 1
    fi
    rm -rf "$LS_VENV/$EMPTY_DATABASE"
    say "installed in $(( $(date +%s) - start )) s: $LS_VENV/bin/label-studio"
fi

# An empty database with every migration applied (no user, no project): a test server copies it and starts in
# seconds instead of migrating for a minute.
if [ ! -f "$LS_VENV/$EMPTY_DATABASE/label_studio.sqlite3" ]; then
    say "migrating an empty database into $LS_VENV/$EMPTY_DATABASE"
    start=$(date +%s)
    rm -rf "$LS_VENV/$EMPTY_DATABASE.tmp"
    mkdir -p "$LS_VENV/$EMPTY_DATABASE.tmp"
    LABEL_STUDIO_BASE_DATA_DIR="$LS_VENV/$EMPTY_DATABASE.tmp" LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false \
        SENTRY_DSN= FRONTEND_SENTRY_DSN= \
        "$LS_VENV/bin/label-studio" version --data-dir "$LS_VENV/$EMPTY_DATABASE.tmp" >"$LS_VENV/$EMPTY_DATABASE.log" 2>&1 \
        || { cat "$LS_VENV/$EMPTY_DATABASE.log" >&2; exit 1; }
    mkdir -p "$LS_VENV/$EMPTY_DATABASE"
    mv "$LS_VENV/$EMPTY_DATABASE.tmp/label_studio.sqlite3" "$LS_VENV/$EMPTY_DATABASE/label_studio.sqlite3"
    rm -rf "$LS_VENV/$EMPTY_DATABASE.tmp"
    say "migrated in $(( $(date +%s) - start )) s."
fi
