#!/usr/bin/env bash
# deny.sh - supply-chain checks of the workspace with cargo-deny (deny.toml): advisories,
# licenses, bans, sources; the advisories from a local RustSec advisory database, offline.
#
#   bash tests/scripts/deny.sh            (make deny)
#   bash tests/scripts/deny.sh licenses   (any arguments go to `cargo deny check`)
#
# The advisory database, first found of:
#   $ADVISORY_DB                      a copy of github.com/rustsec/advisory-db (its crates/
#                                     folder at least), a git clone or a plain folder
#   <repository>/../shared/advisory-db
#   /work/shared/advisory-db
# cargo-deny reads a database only as a git repository at <db-path>/<name>-<hash of its URL>
# and dates it by the repository (FETCH_HEAD, else HEAD's commit). So the database is copied
# to a temporary directory (the original is never touched): a git clone as it is, a plain
# folder committed there dated by its SNAPSHOT.md (the upstream commit's date), else by its
# newest advisory. The snapshot's date and age are printed on every run: an old snapshot is
# a finding, not a pass (deny.toml tolerates 180 days, see maximum-db-staleness).
#
# cargo-deny itself is installed with `cargo install --locked` when missing
# (CARGO_DENY_VERSION). `cargo metadata` needs every locked crate, for every platform, in
# cargo's cache: `cargo fetch --locked` gets the missing ones from crates.io first (nothing
# when they are there); everything after that runs with --offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$(pwd)"

CARGO_DENY_VERSION="${CARGO_DENY_VERSION:-0.20.2}"
CARGO="${CARGO:-cargo}"

log() { printf '[deny] %s\n' "$*"; }
die() {
  printf '[deny] ERROR: %s\n' "$*" >&2
  exit 1
}

# --- cargo-deny -----------------------------------------------------------------------------
if ! "$CARGO" deny --version >/dev/null 2>&1; then
  log "cargo-deny missing: cargo install cargo-deny --locked --version $CARGO_DENY_VERSION (a few minutes)"
  "$CARGO" install cargo-deny --locked --version "$CARGO_DENY_VERSION" ||
    die "installing cargo-deny failed"
fi
log "$("$CARGO" deny --version)"
command -v git >/dev/null 2>&1 || die "git is missing (apt-get install git): cargo-deny reads the database as a git repository"

# --- the advisory database ------------------------------------------------------------------
source_db=""
for candidate in "${ADVISORY_DB:-}" "$REPO/../shared/advisory-db" /work/shared/advisory-db; do
  if [ -n "$candidate" ] && [ -d "$candidate/crates" ]; then
    source_db="$(cd "$candidate" && pwd)"
    break
  fi
done
if [ -z "$source_db" ]; then
  die "no RustSec advisory database found: set ADVISORY_DB to a copy of \
github.com/rustsec/advisory-db (a folder with crates/), or put one at $REPO/../shared/advisory-db"
fi
if [ -n "${ADVISORY_DB:-}" ] && [ "$source_db" != "$(cd "$ADVISORY_DB" 2>/dev/null && pwd)" ]; then
  die "ADVISORY_DB=$ADVISORY_DB has no crates/ folder"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CHAT_ADVISORY_DBS="$work/dbs"
mkdir -p "$CHAT_ADVISORY_DBS"

# Crates of other platforms are not in the cache after a build; cargo metadata needs them.
if ! "$CARGO" fetch --locked --quiet >"$work/fetch.log" 2>&1; then
  log "cargo fetch --locked failed (offline?); going on with what is cached:"
  sed 's/^/    /' "$work/fetch.log" | tail -n 5
fi

# Where cargo-deny looks for the default database (the directory name hashes the URL): ask it.
# With nothing there yet it says so and stops; its debug log names the directory.
db_dir="$("$CARGO" deny --offline --locked --log-level debug check advisories 2>&1 |
  sed -n "s/.*Opening advisory database at '\\(.*\\)'.*/\\1/p" | head -n 1 || true)"
case "$db_dir" in
  "$CHAT_ADVISORY_DBS"/*) ;;
  *)
    # The name cargo-deny 0.16 to 0.20 use for https://github.com/RustSec/advisory-db.
    db_dir="$CHAT_ADVISORY_DBS/advisory-db-3157b0e258782691"
    log "could not read the database directory from cargo-deny's log; using $(basename "$db_dir")"
    ;;
esac

snapshot_date=""
if [ -d "$source_db/.git" ]; then
  cp -a "$source_db" "$db_dir"
  snapshot_commit="$(git -C "$db_dir" rev-parse HEAD)"
  snapshot_date="$(git -C "$db_dir" show -s --format=%cI HEAD)"
  if [ -f "$db_dir/.git/FETCH_HEAD" ]; then
    snapshot_date="$(date -u -r "$db_dir/.git/FETCH_HEAD" +%Y-%m-%dT%H:%M:%SZ) (last fetch)"
  fi
else
  mkdir -p "$db_dir"
  cp -R "$source_db/." "$db_dir/"
  chmod -R u+w "$db_dir"
  # The upstream commit and its date, as the snapshot records them:
  #   "... (github.com/rustsec/advisory-db), commit <sha> (YYYY-MM-DD)."
  snapshot_commit=""
  if [ -f "$source_db/SNAPSHOT.md" ]; then
    snapshot_commit="$(grep -oE 'commit [0-9a-f]{40}' "$source_db/SNAPSHOT.md" | head -n 1 | cut -d' ' -f2 || true)"
    snapshot_date="$(tr '\n' ' ' <"$source_db/SNAPSHOT.md" | grep -oE '\(([0-9]{4}-[0-9]{2}-[0-9]{2})\)' |
      head -n 1 | tr -d '()' || true)"
  fi
  if [ -z "$snapshot_date" ]; then
    # No record of when it was taken: its newest advisory's date, a lower bound.
    snapshot_date="$(grep -rhoE '^date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$source_db/crates" |
      cut -d'"' -f2 | sort | tail -n 1)"
    log "no SNAPSHOT.md date in $source_db: dating it by its newest advisory ($snapshot_date)"
  fi
  stamp="${snapshot_date}T00:00:00Z"
  (
    cd "$db_dir"
    git init --quiet -b main
    git add -A
    GIT_AUTHOR_DATE="$stamp" GIT_COMMITTER_DATE="$stamp" git -c user.name=advisory-db-snapshot \
      -c user.email=snapshot@localhost -c commit.gpgsign=false commit --quiet \
      -m "RustSec advisory database snapshot ${snapshot_commit:-unknown}"
    # cargo-deny takes the newer of HEAD's commit date and the HEAD file's time.
    touch -d "$stamp" .git/HEAD
  )
fi
age_days=$((($(date -u +%s) - $(date -u -d "${snapshot_date%% *}" +%s)) / 86400))
advisories=$(find "$db_dir/crates" -name 'RUSTSEC-*.md' | wc -l)
log "advisory database: $source_db"
log "  snapshot ${snapshot_commit:-(commit unknown)} of ${snapshot_date}: $age_days day(s) old, $advisories crate advisories"
if [ "$age_days" -gt 90 ]; then
  log "  WARNING: the snapshot is older than 90 days (cargo-deny's default limit): refresh it"
fi

# --- the check ------------------------------------------------------------------------------
status=0
"$CARGO" deny --offline --locked check "$@" >"$work/deny.log" 2>&1 || status=$?
# Errors in full; warnings (duplicate versions) counted.
grep -vE '^warning\[duplicate\]' "$work/deny.log" | awk '
  /^warning\[duplicate\]/ { next }
  /^(error|warning)\[/ { show = ($0 ~ /^error/) }
  /^(advisories|bans|licenses|sources) / { show = 1 }
  show' || true
if ! grep -qE '^(advisories|bans|licenses|sources) ' "$work/deny.log"; then
  # cargo-deny stopped before checking (cargo metadata, the database, the config): say why.
  grep -vE '^\s*$' "$work/deny.log" | tail -n 20
fi
duplicates=$(grep -c '^warning\[duplicate\]' "$work/deny.log" || true)
log "$duplicates crate(s) in more than one version (warnings; cargo deny check bans for details)"
log "result: $(grep -E '^(advisories|bans|licenses|sources) ' "$work/deny.log" | tail -n 1)"
exit "$status"
