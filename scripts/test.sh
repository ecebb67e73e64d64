#!/usr/bin/env bash
# The one test command (README, CI): formatting, lints, the infra check, then
# schemathesis over the OpenAPI document against a local `payloop serve`, then
# every test of the workspace — the DynamoDB/SQS adapter suites against a
# moto server this script installs (PyPI) and starts on 127.0.0.1, the Adyen
# connector against Prism (npm) serving Adyen's own OpenAPI files from
# ../shared/specs/adyen, the checkout and operator console tests in headless
# Chromium installed from Debian (apt-get), with axe-core (npm) for the
# accessibility pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }

# A clean run gains nothing from incremental caches; they only cost disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "infra: SAM transform + cfn-lint, OpenAPI"
scripts/check-infra.sh

step "moto (DynamoDB + SQS on 127.0.0.1)"
scripts/moto.sh start
trap 'scripts/moto.sh stop' EXIT
export PAYLOOP_TEST_AWS_ENDPOINT="http://127.0.0.1:${MOTO_PORT:-5005}"
# The DynamoDB/SQS suites fail (never skip) without that endpoint.
export PAYLOOP_REQUIRE_AWS=1

step "Prism (Adyen's own OpenAPI files, request validation, on 127.0.0.1)"
prism_urls="$(scripts/prism.sh start)"
trap 'scripts/prism.sh stop; scripts/moto.sh stop' EXIT
read -r PAYLOOP_TEST_PRISM_CHECKOUT PAYLOOP_TEST_PRISM_TRANSFERS PAYLOOP_TEST_PRISM_PAYOUT <<<"$prism_urls"
export PAYLOOP_TEST_PRISM_CHECKOUT PAYLOOP_TEST_PRISM_TRANSFERS PAYLOOP_TEST_PRISM_PAYOUT
# The Adyen contract tests fail (never skip) without Prism.
export PAYLOOP_REQUIRE_PRISM=1

step "chromium + chromedriver + axe-core (headless checkout and console tests)"
scripts/browser.sh
PAYLOOP_AXE_JS="$(scripts/axe.sh)"
export PAYLOOP_AXE_JS PAYLOOP_REQUIRE_BROWSER=1

step "schemathesis (infra/openapi.yaml against payloop serve)"
scripts/schemathesis.sh

step "cargo test --workspace"
mkdir -p target
log=target/test-output.log
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?

step "simulation: ${PAYLOOP_SIM_SEEDS:=500} seeded scenarios with faults (payloop bench simulate)"
# Bounded: the scenarios are fixed-size and the whole step is under a minute.
timeout 900 cargo run -q -p payloop-cli -- bench simulate --seeds "$PAYLOOP_SIM_SEEDS" || status=$?

# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\ntotal: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
