#!/usr/bin/env bash
# k8s-check.sh - the offline Kubernetes checks of CI: install what `STRICT_TOOLS=1
# k8s/validate.sh` needs where it is missing, then run it (every check must run and pass: no
# skip, no failure).
#
#   bash tests/scripts/k8s-check.sh          (make k8s-check)
#
# Tools, each installed only when missing:
#   kubernetes-validate, checkov   PyPI, pinned below, in a virtualenv of their own under
#                                  $K8S_TOOLS_DIR (default ~/.cache/chat-k8s-tools); rebuilt
#                                  when the pins change. kubernetes-validate carries the API
#                                  schemas itself: validating needs no network.
#   promtool                       Debian's `prometheus` package (apt-get, as root or with
#                                  sudo). The package's maintainer scripts would start a
#                                  Prometheus server: a policy-rc.d that refuses every start is
#                                  in place while it installs, and a server the install started
#                                  anyway is stopped (by its pid).
#   kubectl (its kustomize)        not installed here: kubectl comes from Kubernetes' own
#                                  packages (pkgs.k8s.io) or the cloud SDK, Debian's
#                                  kubernetes-client is too old for these kustomizations. A
#                                  standalone `kustomize` works too, and with Go at hand it is
#                                  built from its module (KUSTOMIZE_VERSION). Otherwise this
#                                  fails and says so.
#   python3 with PyYAML            the virtualenv has it (a dependency of both PyPI tools).
#
# Exit status: validate.sh's (0 when every check ran and passed), or 1 when a tool could not
# be installed.
set -euo pipefail
cd "$(dirname "$0")/../.."

KUBERNETES_VALIDATE_VERSION=1.37.0
CHECKOV_VERSION=3.3.30
KUSTOMIZE_VERSION=v5.5.0
K8S_TOOLS_DIR="${K8S_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-k8s-tools}"
VENV="$K8S_TOOLS_DIR/venv"
PINS="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION checkov==$CHECKOV_VERSION"

log() { printf '[k8s-check] %s\n' "$*"; }
die() {
  printf '[k8s-check] ERROR: %s\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    die "need root (or sudo) for: $*"
  fi
}

# --- PyPI tools -----------------------------------------------------------------------------
python_tools() {
  if [ -x "$VENV/bin/kubernetes-validate" ] && [ -x "$VENV/bin/checkov" ] &&
    [ "$(cat "$VENV/.pins" 2>/dev/null)" = "$PINS" ]; then
    return 0
  fi
  have python3 || die "python3 is missing (apt-get install python3 python3-venv)"
  log "installing $PINS into $VENV"
  rm -rf "$VENV"
  mkdir -p "$K8S_TOOLS_DIR"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  # shellcheck disable=SC2086  # PINS is a list of requirements
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS pyyaml ||
    die "pip install $PINS failed"
  echo "$PINS" >"$VENV/.pins"
}

# --- promtool (Debian's prometheus) ---------------------------------------------------------
promtool_tool() {
  if have promtool; then
    return 0
  fi
  have apt-get || die "promtool is missing and there is no apt-get: install Prometheus' promtool"
  log "installing promtool (Debian package prometheus, no recommends, no service start)"
  local policy=/usr/sbin/policy-rc.d backup="" before
  before="$(pidof prometheus 2>/dev/null || true)"
  if [ -e "$policy" ]; then
    backup="$(mktemp)"
    as_root cp -p "$policy" "$backup"
  fi
  # invoke-rc.d asks policy-rc.d first: 101 = "action forbidden", nothing is started.
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
  as_root chmod 755 "$policy"
  local status=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
    >"${TMPDIR:-/tmp}/k8s-check-apt.log" 2>&1 || status=$?
  if [ "$status" != 0 ]; then
    # A stale package index: update once and try again.
    as_root apt-get update >>"${TMPDIR:-/tmp}/k8s-check-apt.log" 2>&1 || true
    status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
      >>"${TMPDIR:-/tmp}/k8s-check-apt.log" 2>&1 || status=$?
  fi
  if [ -n "$backup" ]; then
    as_root cp -p "$backup" "$policy"
    rm -f "$backup"
  else
    as_root rm -f "$policy"
  fi
  # A server the install started anyway (systemd does not ask policy-rc.d): stop it.
  if have systemctl && [ -d /run/systemd/system ]; then
    as_root systemctl stop prometheus.service >/dev/null 2>&1 || true
    as_root systemctl disable prometheus.service >/dev/null 2>&1 || true
  fi
  local pid
  for pid in $(pidof prometheus 2>/dev/null || true); do
    case " $before " in
      *" $pid "*) ;;
      *)
        log "stopping the Prometheus server the package started (pid $pid)"
        as_root kill "$pid" || true
        ;;
    esac
  done
  [ "$status" = 0 ] || {
    tail -n 20 "${TMPDIR:-/tmp}/k8s-check-apt.log" >&2
    die "apt-get install prometheus failed"
  }
  have promtool || die "the prometheus package did not provide promtool"
}

# --- a kustomize renderer -------------------------------------------------------------------
renderer() {
  if have kubectl && kubectl kustomize --help >/dev/null 2>&1; then
    return 0
  fi
  if have kustomize; then
    return 0
  fi
  if have go; then
    log "building kustomize $KUSTOMIZE_VERSION with go install"
    mkdir -p "$K8S_TOOLS_DIR/bin"
    GOBIN="$K8S_TOOLS_DIR/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" ||
      die "go install kustomize failed"
    return 0
  fi
  die "neither kubectl (with kustomize) nor kustomize is installed: install kubectl from \
https://pkgs.k8s.io (apt) or a kustomize release, then run this again"
}

start=$SECONDS
python_tools
promtool_tool
renderer
export PATH="$VENV/bin:$K8S_TOOLS_DIR/bin:$PATH"
log "tools ready in $((SECONDS - start)) s: kubernetes-validate $KUBERNETES_VALIDATE_VERSION, checkov $CHECKOV_VERSION, $(promtool --version 2>&1 | head -n 1)"

start=$SECONDS
status=0
STRICT_TOOLS=1 bash k8s/validate.sh || status=$?
log "k8s/validate.sh took $((SECONDS - start)) s (exit $status)"
exit "$status"
