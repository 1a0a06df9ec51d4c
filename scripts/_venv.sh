# Sourced by the scripts: make sure .venv exists and matches the lock files, then use it.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_stamp="$_root/.venv/.locks.sha256"
_want="$(cat "$_root"/requirements/*.lock "$_root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$_root/.venv/bin/python" ] || [ "$(cat "$_stamp" 2>/dev/null)" != "$_want" ]; then
  "$_root/scripts/setup"
  echo "$_want" > "$_stamp"
fi
export PATH="$_root/.venv/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
cd "$_root"
