#!/usr/bin/env bash
# Puts Redis 7.0.15's own Tcl test suite (tests/ and runtest) into tests/.redis-suite, ignored by
# git. It comes from Debian's source package of redis, the same version as the redis-server the
# tests install, with Debian's patches applied (they fix tests along with the code). apt-get gets
# its own sources and lists folders, with deb-src entries derived from the machine's deb
# entries, so the machine's apt configuration and package lists stay as they are. A cached
# copy is reused once its version checks out.
set -euo pipefail
cd "$(dirname "$0")/../.."

want=7.0.15
dest=tests/.redis-suite

# What unpacking and running the suite needs (tests/run.sh installs these too).
missing=()
command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
command -v tclsh >/dev/null || missing+=(tcl)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "== installing ${missing[*]}"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [ -f "$dest/VERSION" ] && [ "$(head -n1 "$dest/VERSION")" = "$want" ] &&
   [ -f "$dest/tests/test_helper.tcl" ] && [ -f "$dest/runtest" ] && [ -x "$dest/src/redis-cli" ]; then
  echo "Redis test suite $want in $dest (cached: $(sed -n 2p "$dest/VERSION"))"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sources.list.d" "$work/lists/partial" "$work/cache/archives/partial" "$work/src"

# deb-src twins of the machine's enabled deb entries, in both of apt's formats.
for f in /etc/apt/sources.list.d/*.sources; do
  [ -e "$f" ] || continue
  sed -E 's/^Types:.*/Types: deb-src/' "$f"
  echo
done >"$work/sources.list.d/derived.sources"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -e "$f" ] || continue
  sed -nE 's/^[[:space:]]*deb([[:space:]])/deb-src\1/p' "$f"
done >"$work/sources.list.d/derived.list"

apt_opts=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$work/sources.list.d"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  # The download folder is root's temporary one: apt's unprivileged user cannot write there.
  -o "APT::Sandbox::User=root"
)
echo "== fetching the source package of redis $want (apt-get source --download-only)"
# A third-party source that has no deb-src index only warns here; the source line below is
# what must succeed.
apt-get "${apt_opts[@]}" update -qq || echo "apt-get update reported a problem; trying anyway" >&2
version=$(apt-cache "${apt_opts[@]}" showsrc redis 2>/dev/null |
  sed -n 's/^Version: //p' | grep -E "^([0-9]+:)?${want//./\\.}-" | sort -V | tail -n1 || true)
if [ -z "$version" ]; then
  echo "error: no source package of redis $want is known to apt (found:" \
    "$(apt-cache "${apt_opts[@]}" showsrc redis 2>/dev/null | sed -n 's/^Version: //p' | tr '\n' ' '))" >&2
  exit 1
fi
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq "redis=$version" >/dev/null)
dsc=$(ls "$work"/src/redis_*.dsc)
dpkg-source --no-check -x "$dsc" "$work/src/redis" >/dev/null

got=$(sed -n 's/^#define REDIS_VERSION "\(.*\)"$/\1/p' "$work/src/redis/src/version.h")
if [ "$got" != "$want" ]; then
  echo "error: the source package $version unpacks Redis '$got', not $want" >&2
  exit 1
fi

rm -rf "$dest"
mkdir -p "$dest/src"
cp -a "$work/src/redis/tests" "$work/src/redis/runtest" "$dest/"
# The suite runs the tools of a build tree (src/redis-cli); the machine's redis-tools are the
# same version.
for tool in redis-cli redis-benchmark; do
  ln -s "$(command -v "$tool")" "$dest/src/$tool"
done
printf '%s\n%s\n' "$want" "debian source package redis $version" >"$dest/VERSION"
echo "Redis test suite $want in $dest (from the source package redis $version)"
