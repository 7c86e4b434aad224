# Shared by scripts/start and scripts/test: create .venv and install a lock file into it,
# skipping the install when neither the lock file nor pyproject.toml changed since last time.
ensure_venv() {
    local lock="$1"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
        .venv/bin/python -m pip install --quiet --upgrade pip
    fi
    local stamp=".venv/.installed-$(basename "$lock")"
    local digest
    digest="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
        .venv/bin/python -m pip install --quiet -r "$lock"
        .venv/bin/python -m pip install --quiet --no-deps -e .
        echo "$digest" > "$stamp"
    fi
}
