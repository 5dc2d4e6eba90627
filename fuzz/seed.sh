#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds cut from samples/ and, when it sits beside the
# repository, the shared public corpus. The corpus directory is never committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=(samples)
[ -d ../shared/corpus ] && dirs+=(../shared/corpus)
cargo run --quiet --example fuzz_seeds -- fuzz/corpus "${dirs[@]}"
