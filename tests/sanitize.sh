#!/usr/bin/env bash
# make test (thread, then address; so CI) and make test-sanitize: the whole unit and
# integration suite under each sanitizer in turn. `swift test --sanitize=X` builds every product
# with X, so the ds-lb and ds-server the integration tests start run sanitized too; their
# reports go to files (log_path) because the tests only read those processes' answers, and
# any report file fails the run. Usage: tests/sanitize.sh [address|thread]... (default: both).
# SANITIZE_FILTER (a `swift test --filter` pattern) limits the run, e.g. to the unit targets.
# SANITIZE_SKIP (a `swift test --skip` pattern) leaves suites out. By default: the browser tests
# and the three-host cluster tests. What they drive is other processes (Chromium, etcd members,
# nodes in network namespaces) against deadlines those processes set (a lease TTL, a heartbeat
# interval), which a sanitized ds-lb, several times slower, cannot keep; the code under them
# runs sanitized in the suites that stay (DashboardEventsTests and StreamSinkTests for the event
# stream, ClusterModeTests and ClusterSupervisorTests for cluster mode).
# TestSSLTests too: it runs testssl.sh, an outside scanner of the TLS configuration (protocols,
# ciphers, known attacks) whose verdicts do not depend on how ds-lb was built; the handshake
# and record code it drives runs sanitized in TLSTests and TLSReloadTests.
# Three more measure a figure over many runs rather than a code path: KeylessRoutingTests (the
# spread of thousands of keyless requests; routing runs sanitized in LoadBalancerRoutingTests),
# DSBenchTests (the load generator, not ds-lb) and EtcdClusterMembershipTests (waits out etcd
# lease TTLs; the membership code runs sanitized in ClusterModeTests and ClusterSupervisorTests).
# Per sanitizer: DSHashing starts no thread and shares nothing, so the thread sanitizer has
# nothing to find in its tests and skips them; the address sanitizer runs them (the tables are
# pointer code) except DeterminismTests, which rebuilds the same tables in other orders to
# compare routing, a property no sanitizer checks.
# Setting SANITIZE_SKIP replaces all of these, for both sanitizers. SANITIZE_BUILD_ONLY=1 builds
# and runs nothing.
common_skip='IntegrationTests\.(DashboardBrowserTests|ClusterTests|TestSSLTests|KeylessRoutingTests|DSBenchTests)/|DSEtcdTests\.EtcdClusterMembershipTests/'
declare -A kind_skip=(
    [thread]="$common_skip|DSHashingTests\."
    [address]="$common_skip|DSHashingTests\.DeterminismTests/"
)
set -uo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
KINDS=("$@")
[[ ${#KINDS[@]} -eq 0 ]] && KINDS=(address thread)
# Swift's backtracer would stop a crashing child until it has symbolicated; the sanitizer's
# own report is what we want.
export SWIFT_BACKTRACE=enable=no
status=0
for kind in "${KINDS[@]}"; do
    case $kind in
        address) scratch=.build-asan ;;
        thread) scratch=.build-tsan ;;
        *) echo "tests/sanitize.sh: unknown sanitizer '$kind' (address or thread)" >&2; exit 2 ;;
    esac
    build() { "$SWIFT" build --build-tests --sanitize="$kind" --scratch-path "$scratch"; }
    # SANITIZE_BUILD_ONLY=1: the builds alone (make test starts them early, see the Makefile).
    if [[ -n ${SANITIZE_BUILD_ONLY:-} ]]; then
        build || status=1
        continue
    fi
    reports=$PWD/$scratch/sanitizer-reports
    rm -rf "$reports" && mkdir -p "$reports"
    # LeakSanitizer stays off: the Swift runtime's metadata caches live until exit by design.
    export ASAN_OPTIONS="detect_leaks=0:log_path=$reports/asan"
    export TSAN_OPTIONS="log_path=$reports/tsan"
    # AllocationTests counts malloc calls, which the sanitizer's allocator replaces.
    export DSLB_SANITIZER=$kind
    skip=${SANITIZE_SKIP-${kind_skip[$kind]}}
    started=$(date +%s)
    build || { status=1; continue; }
    built=$(date +%s)
    "$SWIFT" test --skip-build --sanitize="$kind" --scratch-path "$scratch" ${SANITIZE_FILTER:+--filter "$SANITIZE_FILTER"} \
        ${skip:+--skip "$skip"} || status=1
    ended=$(date +%s)
    echo "sanitize=$kind: build $((built - started)) s, tests $((ended - built)) s"
    if compgen -G "$reports/*" >/dev/null; then
        status=1
        echo "sanitize=$kind: reports from $(ls "$reports" | wc -l) processes in $reports:"
        for f in "$reports"/*; do echo "== $f"; head -40 "$f"; done
    fi
done
exit $status
