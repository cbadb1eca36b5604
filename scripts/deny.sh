#!/usr/bin/env bash
# Checks dependencies against deny.toml: licenses, bans, sources, and RustSec
# advisories from an offline copy of the advisory database.
#
# cargo-deny is installed (cargo install --locked) when missing. The advisory
# database is read from the `db-path` that deny.toml names. When it is not
# there, the offline snapshot beside the clone (../shared/advisory-db) is
# installed into it by ../shared/tools/install-advisory-db. With neither, the advisories check is skipped with a notice,
# except under CI=true, where it fails and says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if ! command -v cargo-deny >/dev/null; then
  echo "deny: installing cargo-deny"
  cargo install --locked cargo-deny
fi

# cargo-deny reads metadata for every platform: fetch those crates first.
cargo fetch --locked --quiet
# A skipped duplicate that no longer occurs fails too, so deny.toml's skip
# list stays the list of duplicates that exist.
cargo deny --offline check --deny unmatched-skip bans licenses sources

# deny.toml's db-path, expanded the way cargo-deny expands it.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
db_path=$(sed -n 's/^db-path *= *"\(.*\)"/\1/p' deny.toml)
db_path=${db_path:-\$CARGO_HOME/advisory-dbs}
db_path=${db_path//\$CARGO_HOME/$cargo_home}
db_path=${db_path/#\~/$HOME}

snapshot=$root/../shared/advisory-db
installer=$root/../shared/tools/install-advisory-db

if ! compgen -G "$db_path/advisory-db-*/crates" >/dev/null && [ -d "$snapshot/crates" ]; then
  if [ -x "$installer" ]; then
    echo "deny: installing the advisory snapshot into $db_path"
    "$installer" "$db_path"
  else
    echo "deny: a snapshot is at $snapshot but its installer $installer is missing" >&2
  fi
fi

if compgen -G "$db_path/advisory-db-*/crates" >/dev/null; then
  cargo deny --offline check advisories
elif [ "${CI:-}" = "true" ]; then
  echo "deny: no advisory database under $db_path (deny.toml's db-path) and no snapshot at $snapshot to install from (CI=true: failing)" >&2
  exit 1
else
  echo "skipped: advisories (no advisory database under $db_path, no snapshot at $snapshot)"
fi
