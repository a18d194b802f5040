#!/usr/bin/env bash
# The install step of the oomgate GitHub Action (action.yml): downloads the release tarball of
# the runner's platform, verifies its sha256 before anything of it is unpacked or run, and
# installs the binary as $OOMGATE_ROOT/bin/oomgate (the directory the action caches).
#
#   <download-url>/v<version>/SHA256SUMS
#   <download-url>/v<version>/oomgate-<version>-<target>.tar.gz
#
# A checksum that does not match (SHA256SUMS's line, or the `sha256` input when pinned) fails the
# step with an ::error and installs nothing. Only when no artifact exists for the platform (a
# runner OS/arch without a release target, no SHA256SUMS at the URL, or no line for this target
# in it) does it build the version with `cargo install` instead. Any other download failure
# fails the step: it is not a reason to build from source behind the user's back.
#
# Environment (set by action.yml):
#   OOMGATE_VERSION       release number, e.g. 0.1.0 (checked by the locate step)
#   OOMGATE_TARGET        release target of this runner, empty when none is built for it
#   OOMGATE_ROOT          install root: the binary goes to $OOMGATE_ROOT/bin/oomgate
#   OOMGATE_DOWNLOAD_URL  base URL of the releases (default https://github.com/oomgate/oomgate/releases/download)
#   OOMGATE_SHA256        expected sha256 of the tarball (optional pin; hex)
#   OOMGATE_REPOSITORY    git repository for the cargo fallback
set -euo pipefail

version=${OOMGATE_VERSION:?}
root=${OOMGATE_ROOT:?}
target=${OOMGATE_TARGET:-}
base=${OOMGATE_DOWNLOAD_URL:-}
[ -n "$base" ] || base=https://github.com/oomgate/oomgate/releases/download
base=${base%/}
repository=${OOMGATE_REPOSITORY:-https://github.com/oomgate/oomgate}
pin=$(printf '%s' "${OOMGATE_SHA256:-}" | tr -d '[:space:]' | tr 'A-F' 'a-f')
start=${EPOCHREALTIME:-}

error() {
  echo "::error title=oomgate install::$*"
  exit 1
}

case "$pin" in
  '' | [0-9a-f][0-9a-f][0-9a-f][0-9a-f]*) ;;
  *) error "input sha256 must be the tarball's sha256 in hex, got '$OOMGATE_SHA256'" ;;
esac
if [ -n "$pin" ] && [ ${#pin} != 64 ]; then
  error "input sha256 must be 64 hex digits, got ${#pin}"
fi

cargo_fallback() {
  echo "oomgate: $1: building v$version from $repository with cargo instead (cached for later runs)"
  if ! command -v cargo > /dev/null 2>&1; then
    error "$1, and cargo is not on PATH: add a Rust toolchain step (e.g. dtolnay/rust-toolchain) or put oomgate on PATH before this action"
  fi
  cargo install --locked --git "$repository" --tag "v$version" --root "$root" oomgate
  exit 0
}

[ -n "$target" ] || cargo_fallback "no release artifact is built for ${RUNNER_OS:-$(uname -s)}/${RUNNER_ARCH:-$(uname -m)}"
command -v curl > /dev/null 2>&1 || error "curl is needed to download oomgate"
if command -v sha256sum > /dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum > /dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
else
  error "neither sha256sum nor shasum is on PATH: cannot verify the download"
fi

name="oomgate-$version-$target"
dir="$base/v$version"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch URL FILE: the HTTP status (000: no answer); redirects (GitHub's release CDN) followed.
fetch() {
  curl --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 300 \
    --output "$2" --write-out '%{http_code}' "$1" 2> "$tmp/curl.err" || true
}

expected=$pin
code=$(fetch "$dir/SHA256SUMS" "$tmp/SHA256SUMS")
case "$code" in
  2??)
    listed=$(awk -v f="$name.tar.gz" '$2 == f || $2 == "*" f { print tolower($1); exit }' "$tmp/SHA256SUMS")
    if [ -z "$listed" ]; then
      [ -n "$pin" ] || cargo_fallback "$dir/SHA256SUMS lists no $name.tar.gz (no release artifact for $target)"
    elif [ -n "$pin" ] && [ "$listed" != "$pin" ]; then
      error "checksum mismatch: SHA256SUMS at $dir lists $listed for $name.tar.gz, the pinned sha256 input is $pin; nothing installed"
    else
      expected=$listed
    fi
    ;;
  404)
    [ -n "$pin" ] || cargo_fallback "no SHA256SUMS at $dir (no release artifacts for v$version there)"
    ;;
  000) error "cannot download $dir/SHA256SUMS: $(head -c 300 "$tmp/curl.err")" ;;
  *) error "cannot download $dir/SHA256SUMS: HTTP $code" ;;
esac

code=$(fetch "$dir/$name.tar.gz" "$tmp/$name.tar.gz")
case "$code" in
  2??) ;;
  000) error "cannot download $dir/$name.tar.gz: $(head -c 300 "$tmp/curl.err")" ;;
  *) error "cannot download $dir/$name.tar.gz: HTTP $code" ;;
esac
actual=$(sha256 "$tmp/$name.tar.gz")
if [ "$actual" != "$expected" ]; then
  from="SHA256SUMS"
  [ "$expected" = "$pin" ] && from="the pinned sha256 input"
  error "checksum mismatch for $name.tar.gz from $dir: expected $expected ($from), got $actual. The download was discarded: nothing installed, nothing run"
fi

mkdir "$tmp/unpacked"
tar -xzf "$tmp/$name.tar.gz" -C "$tmp/unpacked"
[ -f "$tmp/unpacked/$name/oomgate" ] || error "$name.tar.gz holds no $name/oomgate"
mkdir -p "$root/bin"
install -m 0755 "$tmp/unpacked/$name/oomgate" "$root/bin/oomgate"
took=
if [ -n "$start" ] && [ -n "${EPOCHREALTIME:-}" ]; then
  took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf " in %.2fs", b - a }')
fi
size=$(wc -c < "$tmp/$name.tar.gz" | tr -d ' ')
echo "oomgate v$version ($target) downloaded from $dir, sha256 $actual verified, installed$took ($((size / 1024)) KiB)"
