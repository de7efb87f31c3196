#!/usr/bin/env bash
# Installs what the project needs from the OS when it is missing (apt, as root), or says how to get it.
set -euo pipefail
need="${1:?usage: system-deps.sh python|node|chromium}"
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing: install $* (Debian/Ubuntu: sudo apt-get install $*)" >&2
    exit 1
  fi
}
case "$need" in
  python)
    python3 -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
    command -v redis-server >/dev/null || apt_install redis-server
    # Chinese text in ECG report PDFs (services/ecg/report_pdf.py finds it at run time)
    ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || apt_install fonts-noto-cjk
    # DCMTK's storescu/findscu/movescu: the DIMSE tests push with them like a modality (tests/imaging/test_dimse.py)
    command -v storescu >/dev/null || apt_install dcmtk
    ;;
  node)
    if ! command -v npm >/dev/null; then apt_install nodejs npm; fi
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("Node.js >= 20.19 is required to build web/ (found "+process.versions.node+")"); process.exit(1) }'
    ;;
  chromium)
    [ -x /usr/bin/chromium ] || apt_install chromium
    fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || apt_install fonts-noto-cjk
    ;;
esac
