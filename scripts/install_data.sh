#!/usr/bin/env bash
# Install the real data sets that skcal.datasets reads, offline afterwards. Idempotent.
#
#   scripts/install_data.sh [VENV]     (VENV: the virtualenv whose pip downloads; default .venv)
#
# - Debian packages dataset-fashion-mnist (Fashion-MNIST's four IDX files, /usr/share/datasets/fashion-mnist)
#   and wordnet-base (/usr/share/wordnet): installed with apt-get when run as root where apt-get exists,
#   `apt-get update` run once and only if one is missing. Elsewhere it says what to do and goes on.
# - The vaderSentiment 3.3.2 sdist (MIT), which carries Hutto & Gilbert's human-rated sentences:
#   downloaded with the venv's pip into the data cache, $SKCAL_DATA or ~/.cache/skcal, unless it is there.
# SKCAL_NO_APT=1 skips the Debian part (for users who get the files another way).
set -euo pipefail

VENV=${1:-.venv}
DATA_HOME=${SKCAL_DATA:-$HOME/.cache/skcal}
VADER_SDIST=vaderSentiment-3.3.2.tar.gz
VADER_SHA256=5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9
DEBIAN_PACKAGES=(dataset-fashion-mnist wordnet-base curl)

say() { echo "install_data: $*"; }

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages ${DEBIAN_PACKAGES[*]} already installed."
elif [ -n "${SKCAL_NO_APT:-}" ] || [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "NOT installing ${missing[*]} (needs root and apt-get; SKCAL_NO_APT=${SKCAL_NO_APT:-})."
    say "  On Debian/Ubuntu: sudo apt-get install ${missing[*]}"
    say "  Elsewhere: put Zalando's four Fashion-MNIST files (github.com/zalandoresearch/fashion-mnist,"
    say "  data/fashion) in $DATA_HOME/fashion-mnist, and WordNet 3.0's dict/ folder anywhere (pass its path)."
else
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

sdist="$DATA_HOME/$VADER_SDIST"
if [ -f "$sdist" ] && echo "$VADER_SHA256  $sdist" | sha256sum --check --status; then
    say "$sdist already there."
else
    if [ ! -x "$VENV/bin/python" ]; then
        say "no Python at $VENV/bin/python; pass the virtualenv as the first argument." >&2
        exit 1
    fi
    rm -f "$sdist"
    mkdir -p "$DATA_HOME"
    say "downloading $VADER_SDIST into $DATA_HOME"
    "$VENV/bin/python" -m pip download --quiet --no-deps --no-binary :all: vaderSentiment==3.3.2 -d "$DATA_HOME"
    if ! echo "$VADER_SHA256  $sdist" | sha256sum --check --status; then
        say "$sdist does not have the expected SHA-256; removed it." >&2
        rm -f "$sdist"
        exit 1
    fi
fi
