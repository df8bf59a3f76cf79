#!/usr/bin/env bash
# The fuzz targets of fuzz/ (cargo-fuzz, libFuzzer), each for a bounded time: installs
# cargo-fuzz when missing, builds the targets on the stable toolchain (RUSTC_BOOTSTRAP=1 lets it
# take the nightly-only flags cargo-fuzz passes), runs each one after the other on one core with
# its seeds (fuzz/seeds/<target>/) as the input corpus, and prints the executions of each.
# Fails if a target crashes (libFuzzer leaves the input in fuzz/artifacts/<target>/: keep it
# in fuzz/regressions/<target>/, where the owning crate's test replays it, then fix).
#
#   FUZZ_SECONDS  seconds per target (default 30; `make fuzz FUZZ_SECONDS=3600` for a long run)
#   FUZZ_TARGETS  the targets to run (default: all of them, from `cargo fuzz list`)
#   FUZZ_SANITIZER address (default) | none | memory | thread | leak
#
# The growing corpus is kept in fuzz/corpus/<target>/ (git-ignored): a later run starts from it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root/fuzz"

seconds="${FUZZ_SECONDS:-30}"
sanitizer="${FUZZ_SANITIZER:-address}"
# The stable toolchain takes the nightly-only flags cargo-fuzz passes with this.
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# --debug-assertions: the owning crates' debug_assert!s hold too.
options=(--sanitizer "$sanitizer" --debug-assertions)
started=$SECONDS
cargo fuzz build "${options[@]}"
echo "fuzz: built in $((SECONDS - started)) s"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi

logs="$root/fuzz/target/logs"
mkdir -p "$logs"
failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus" "artifacts/$target"
    log="$logs/$target.log"
    echo "fuzz: $target for ${seconds} s (log: ${log#"$root"/})"
    status=0
    # The corpus directory first (new inputs are written there), the seeds read only.
    # One process (no -jobs/-workers: libFuzzer would fork and log elsewhere).
    cargo fuzz run "${options[@]}" "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
    runs="$(awk '/^stat::number_of_executed_units:/ {print $NF}' "$log" | tail -n 1)"
    runs="${runs:-?}"
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        summary+=("$target: FAILED (exit $status) after $runs executions")
        grep -E "^(==[0-9]+==|SUMMARY|thread '.*' panicked|artifact_prefix|Test unit written)" "$log" | head -n 20 || true
        tail -n 20 "$log"
    else
        summary+=("$target: $runs executions in ${seconds} s, no crash")
    fi
done

printf 'fuzz: %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in ${failed[*]}; the inputs are in fuzz/artifacts/<target>/" >&2
    exit 1
fi
