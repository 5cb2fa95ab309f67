#!/usr/bin/env bash
# Installs what the console's headless-browser tests (tests/console/test_console.py, run by
# crates/smdpp/tests/console_browser.rs) need: Debian's Chromium, zbar-tools (zbarimg decodes
# the QR code) and Playwright for Python from PyPI. Idempotent and quiet: each part is skipped
# when it is already present. Playwright's own browser download (`playwright install`) is
# never run: the tests drive /usr/bin/chromium.
#
# Exit status: 0 when everything is present afterwards, 1 otherwise (with the reason on stderr).
set -u

log() { echo "browser-deps: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
fi

need_apt=()
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v zbarimg >/dev/null 2>&1 || need_apt+=(zbar-tools)
if ! command -v python3 >/dev/null 2>&1; then
    need_apt+=(python3 python3-pip)
elif ! python3 -c 'import playwright.sync_api' >/dev/null 2>&1 &&
    ! python3 -m pip --version >/dev/null 2>&1; then
    need_apt+=(python3-pip)
fi

if [ "${#need_apt[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        log "installing ${need_apt[*]} (apt)"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed"
        $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 ||
            log "apt-get install ${need_apt[*]} failed"
    else
        log "no apt-get: cannot install ${need_apt[*]}"
    fi
fi

PYTHON="${PYTHON:-python3}"
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c 'import playwright.sync_api' >/dev/null 2>&1; then
    log "installing playwright (pip)"
    # Debian's own python3 is "externally managed"; a pyenv/venv python is not.
    "$PYTHON" -m pip install -q --disable-pip-version-check 'playwright==1.*' >/dev/null 2>&1 ||
        "$PYTHON" -m pip install -q --disable-pip-version-check --break-system-packages 'playwright==1.*' >/dev/null 2>&1 ||
        log "pip install playwright failed"
fi

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbarimg)
"$PYTHON" -c 'import playwright.sync_api' >/dev/null 2>&1 || missing+=(playwright)
if [ "${#missing[@]}" -gt 0 ]; then
    log "missing after install: ${missing[*]}"
    exit 1
fi
exit 0
