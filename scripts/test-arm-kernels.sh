#!/usr/bin/env bash
# The C kernels on arm64, tested from an x86-64 machine: cross-compiles Tests/kernels-c/test_kernels.c
# (which includes Sources/CMiniGPTKernels/*.c) with Debian's gcc-aarch64-linux-gnu and runs it under
# qemu-user, so the NEON and sdot INT8 paths are checked against the portable C on every CI run:
# INT8 products (matvec and the batched-prefill GEMM, bit for bit), the FP32 GEMM, and the KV block
# attention against the decode kernel token by token.
#
#   1. host build (x86-64): every x86 path this CPU has against portable; writes the checksums;
#      then the same binary under qemu-x86_64 as a Haswell (AVX2 only) and a Westmere (no AVX)
#   2. -march=armv8.2-a+dotprod, qemu -cpu max:        dotprod, neon, portable; checksums = x86's
#   3. -march=armv8-a (plain NEON baseline), -cpu max: sdot still found at run time (getauxval)
#   4. -march=armv8-a, qemu -cpu cortex-a57 (Armv8.0, no dot product): the NEON fallback
#
# Swift itself is not cross-built (no arm64 Swift SDK here): only the C kernels run on arm64.
# Installs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user with apt-get when missing
# (needs root). Last line: "N passed, N failed"; exit status 1 when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mgpt-arm-kernels.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=Tests/kernels-c/test_kernels.c
flags=(-O3 -ffp-contract=off -std=gnu11 -Wall -Wextra -Werror -I Sources/CMiniGPTKernels/include)

passed=0 failed=0
# run NAME EXPECTED_PATHS COMMAND...: runs one build, adds its "N passed, N failed", and checks
# that the kernel paths it found are the expected ones (so a missing fallback is noticed too).
run() {
    local name=$1 expect=$2
    shift 2
    local out
    out=$("$@" 2>&1) || true
    local last paths
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$out" | tail -1 || true)
    paths=$(sed -n 's/^kernel paths on this CPU: //p' <<<"$out")
    grep '^FAIL' <<<"$out" | sed "s/^/  [$name] /" || true
    if [[ -z $last ]]; then
        echo "  [$name] no result line; output:"; sed 's/^/    /' <<<"$out"
        failed=$((failed + 1))
    else
        passed=$((passed + ${last%% passed*}))
        local f=${last#*, }; failed=$((failed + ${f%% failed}))
    fi
    if [[ -n $expect && $paths != "$expect" ]]; then
        echo "  [$name] kernel paths '$paths', expected '$expect'"
        failed=$((failed + 1))
    fi
    printf '%-46s paths=%-27s %s\n' "$name" "$paths" "${last:-no result}"
}

host=$(uname -m)
[[ $host == x86_64 ]] || { echo "this script runs on an x86-64 host (found $host)"; exit 2; }
"${CC:-cc}" "${flags[@]}" -static "$src" -lm -o "$work/test-x86"
run "x86-64 (${CC:-cc}, no -march), this CPU" "" "$work/test-x86" --write "$work/sums.txt"
# The same x86 binary on emulated older CPUs: dispatch must pick what they have, and nothing outside
# the dispatched kernels may use AVX (a stray instruction would die with SIGILL here).
run "x86-64, qemu -cpu Haswell (AVX2, no AVX-512)" "avx2,portable" \
    qemu-x86_64 -cpu Haswell "$work/test-x86" --check "$work/sums.txt"
run "x86-64, qemu -cpu Westmere (SSE4.2 only)" "portable" \
    qemu-x86_64 -cpu Westmere "$work/test-x86" --check "$work/sums.txt"

for march in armv8.2-a+dotprod armv8-a; do
    aarch64-linux-gnu-gcc "${flags[@]}" -march="$march" -static "$src" -lm -o "$work/test-$march"
done
run "arm64 -march=armv8.2-a+dotprod, -cpu max" "dotprod,neon,portable" \
    qemu-aarch64 -cpu max "$work/test-armv8.2-a+dotprod" --check "$work/sums.txt"
run "arm64 -march=armv8-a, -cpu max" "dotprod,neon,portable" \
    qemu-aarch64 -cpu max "$work/test-armv8-a" --check "$work/sums.txt"
run "arm64 -march=armv8-a, -cpu cortex-a57" "neon,portable" \
    qemu-aarch64 -cpu cortex-a57 "$work/test-armv8-a" --check "$work/sums.txt"

echo "$passed passed, $failed failed"
((failed == 0))
