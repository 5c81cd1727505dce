# Sourced by scripts that need a Python client: `venv NAME` makes tests/.venv-NAME from
# tests/python/requirements-NAME.txt (pinned), rebuilding it only when that file changes.
venv() {
  local dir="tests/.venv-$1" req="tests/python/requirements-$1.txt"
  local pins; pins=$(sha256sum "$req" | cut -d' ' -f1)
  if [ "$(cat "$dir/.pins" 2>/dev/null)" != "$pins" ]; then
    echo "== venv $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$pins" > "$dir/.pins"
  fi
}
