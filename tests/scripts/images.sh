#!/usr/bin/env bash
# `make images`: one OCI image per service, built without a daemon.
#
# Each image is `FROM scratch` with one statically linked release binary (musl, rustls: no
# system library at all, no shell), run as user 65532:65532 (the manifests' runAsUser), its
# binary the entrypoint. Images are named as the manifests name them (chat/<service>:<version>,
# the workspace version) and exported as OCI archives to target/images/<service>.oci.tar; load
# one into a registry with e.g. `skopeo copy oci-archive:target/images/rooms.oci.tar
# docker://registry.example.com/chat/rooms:0.1.0`.
#
# Then each image is checked: its config runs the binary as a non-root user, and the
# standalone image is started (buildah, chroot isolation, as its own user) and must answer
# /health/ready with its embedded backends.
#
#   IMAGES="rooms authz" make images   only these (default: every service)
#   SKIP_RUN=1 make images             no standalone run
#
# Needs buildah (Debian package; installed when missing, with musl-tools for the C parts of
# ring, SQLite and mimalloc) and the Rust musl target (added with rustup when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGET=x86_64-unknown-linux-musl
ALL="rooms contacts line-gateway authz web standalone"
IMAGES=${IMAGES:-$ALL}
OUT=target/images
VERSION=$(awk -F'"' '/^\[workspace.package\]/{p=1} p && /^version/{print $2; exit}' Cargo.toml)
USER_ID=65532
STORAGE=(--storage-driver vfs --root "${BUILDAH_ROOT:-$PWD/target/buildah/storage}" --runroot "${BUILDAH_RUNROOT:-$PWD/target/buildah/run}")

# --- tools --------------------------------------------------------------------------------
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  echo "== adding the Rust target $TARGET"
  rustup target add "$TARGET"
fi

# --- binaries -----------------------------------------------------------------------------
packages=()
for image in $IMAGES; do
  case $image in
    web) packages+=(-p web-client) ;;
    rooms|contacts|line-gateway|authz|standalone) packages+=(-p "$image") ;;
    *) echo "unknown image '$image' (one of: $ALL)"; exit 1 ;;
  esac
done
echo "== building static binaries ($TARGET, profile image)"
# The C parts (ring, SQLite, mimalloc) are compiled with musl's gcc wrapper.
CC_x86_64_unknown_linux_musl=musl-gcc \
  cargo build --locked --profile image --target "$TARGET" "${packages[@]}" --bins
bindir=${CARGO_TARGET_DIR:-target}/$TARGET/image

# --- images -------------------------------------------------------------------------------
mkdir -p "$OUT" target/buildah
summary=()
for image in $IMAGES; do
  bin=$bindir/$image
  # Static: no shared library to load (ldd lists none).
  if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "FAIL  $image: $bin is dynamically linked"; ldd "$bin"; exit 1
  fi
  name="chat/$image:$VERSION"
  # The image of an earlier run goes (vfs keeps whole copies: storage would only grow).
  buildah "${STORAGE[@]}" rmi -f "$name" >/dev/null 2>&1 || true
  ctr=$(buildah "${STORAGE[@]}" from --quiet scratch)
  trap 'buildah "${STORAGE[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
  buildah "${STORAGE[@]}" copy --quiet --chmod 0555 "$ctr" "$bin" "/usr/local/bin/$image" >/dev/null
  # A writable working directory for the user (the standalone's SQLite files go to
  # /data/.run); on Kubernetes the root filesystem is read-only and volumes are mounted instead.
  empty=$(mktemp -d)
  buildah "${STORAGE[@]}" copy --quiet --chown "$USER_ID:$USER_ID" "$ctr" "$empty" /data >/dev/null
  buildah "${STORAGE[@]}" copy --quiet --chown "$USER_ID:$USER_ID" --chmod 1777 "$ctr" "$empty" /tmp >/dev/null
  rmdir "$empty"
  buildah "${STORAGE[@]}" config \
    --user "$USER_ID:$USER_ID" \
    --entrypoint "[\"/usr/local/bin/$image\"]" --cmd '' \
    --workingdir /data \
    --env CHAT__HTTP__HOST=0.0.0.0 \
    --port 8080 \
    --label "org.opencontainers.image.title=chat-$image" \
    --label "org.opencontainers.image.version=$VERSION" \
    --label "org.opencontainers.image.licenses=Apache-2.0" \
    --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    "$ctr"
  rm -f "$OUT/$image.oci.tar"
  buildah "${STORAGE[@]}" commit --quiet --rm --format oci "$ctr" "$name" >/dev/null
  trap - EXIT
  buildah "${STORAGE[@]}" push --quiet "$name" "oci-archive:$OUT/$image.oci.tar:$name"

  # The image as a runtime sees it: its user must not be root.
  user=$(buildah "${STORAGE[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$name")
  entry=$(buildah "${STORAGE[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$name")
  uid=${user%%:*}
  if [ -z "$uid" ] || [ "$uid" = 0 ] || [ "$uid" = root ]; then
    echo "FAIL  $name runs as '${user:-root}'"; exit 1
  fi
  size=$(du -h "$OUT/$image.oci.tar" | cut -f1)
  summary+=("$(printf '%-28s user %s  entrypoint %s  %s' "$name" "$user" "$entry" "$size")")
done

echo "== images (OCI archives in $OUT/)"
printf '  %s\n' "${summary[@]}"

# --- the standalone image answers /health/ready ----------------------------------------------
if [[ " $IMAGES " == *" standalone "* ]] && [ "${SKIP_RUN:-0}" != 1 ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ctr=$(buildah "${STORAGE[@]}" from --quiet "chat/standalone:$VERSION")
  log=$(mktemp)
  # chroot isolation: no runtime daemon; the host's network (the port is picked free above).
  buildah "${STORAGE[@]}" run --isolation chroot \
    --env CHAT__HTTP__HOST=127.0.0.1 --env CHAT__HTTP__PORT="$port" \
    "$ctr" -- /usr/local/bin/standalone >"$log" 2>&1 &
  runner=$!
  stop_run() {
    pkill -f "^/usr/local/bin/standalone" 2>/dev/null || true
    kill "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
    buildah "${STORAGE[@]}" rm "$ctr" >/dev/null 2>&1 || true
  }
  trap stop_run EXIT
  ready=""
  for _ in $(seq 1 60); do
    if ready=$(curl -fsS "http://127.0.0.1:$port/health/ready" 2>/dev/null); then break; fi
    if ! kill -0 "$runner" 2>/dev/null; then break; fi
    sleep 1
  done
  if [ -z "$ready" ]; then
    echo "FAIL  the standalone image did not answer /health/ready on :$port"; tail -n 30 "$log"; exit 1
  fi
  runs_as=$(ps -o user= -p "$(pgrep -f '^/usr/local/bin/standalone' | head -n 1)" 2>/dev/null || echo "?")
  echo "PASS  chat/standalone:$VERSION answers /health/ready ($ready), running as uid ${runs_as}"
  rm -f "$log"
fi
