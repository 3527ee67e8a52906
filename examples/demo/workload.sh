#!/bin/sh
# The workload `cargo xtask demo` records: a few everyday shell operations, the same on every
# run. It lists and reads files, runs a pipeline and a subshell, and cleans up after itself.
set -eu

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

printf 'gamma\nalpha\nbeta\nalpha\n' >"$dir/words"
ls -l "$dir" >/dev/null
head -n 1 /etc/passwd >/dev/null

# A pipeline: the distinct words, sorted, counted.
distinct=$(cat "$dir/words" | sort | uniq | wc -l)

# A subshell in another directory, copying and comparing a file.
(
    cd "$dir"
    cp words copy
    cmp -s words copy
)

mkdir "$dir/sub"
echo "demo: $distinct distinct words, $(ls "$dir" | wc -l) entries"
