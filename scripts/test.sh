#!/usr/bin/env bash
# The project's test command (README): installs what the tests need, then runs them all.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# A real core network for the operator-systems suite: Osmocom's HLR (3G Milenage, CTRL, GSUP).
command -v osmo-hlr >/dev/null 2>&1 || need_apt+=(osmo-hlr)
# A real load balancer for the many-nodes test (three `smdpp serve` behind haproxy).
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
# A software PKCS#11 token for the HSM key-custody tests (rsp-hsm, smdpp hsm_process).
command -v softhsm2-util >/dev/null 2>&1 || need_apt+=(softhsm2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# A second, independent ASN.1 implementation for the codec interop suite.
if ! python3 -c 'import asn1tools' >/dev/null 2>&1; then
  echo "== installing asn1tools (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check 'asn1tools==0.169.0' \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages 'asn1tools==0.169.0'
fi
export SMDPP_REQUIRE_INTEROP=1
export SMDPP_REQUIRE_OSMO_HLR=1
export SMDPP_REQUIRE_HAPROXY=1
export SMDPP_REQUIRE_SOFTHSM=1

# The web console's browser tests: Debian's Chromium, zbarimg and Playwright for Python.
echo "== browser test dependencies"
./scripts/browser-deps.sh
export SMDPP_REQUIRE_BROWSER=1

# A throwaway PostgreSQL (temp dir, run as the postgres user) so the storage suite runs on
# both backends; stopped again when this script exits.
# shellcheck source=scripts/pg-test.sh
source scripts/pg-test.sh
trap pg_test_stop EXIT
export SMDPP_REQUIRE_PG=1

echo "== cargo test --workspace"
cargo test --workspace --locked "$@"

# The download suites again with DPauth/DPpb/DPtls on a throwaway SoftHSM2 token, both
# curves (crates/smdpp-service/tests/common/hsm.rs, docs/SECURITY-DESIGN.md). One test at a
# time: concurrent key imports (C_CreateObject) into one SoftHSM2 token from parallel tests
# failed with CKR_GENERAL_ERROR in CI.
echo "== download suites with the keys on SoftHSM2"
softhsm_dir=$(mktemp -d)
SMDPP_TEST_KEY_CUSTODY=softhsm SOFTHSM2_CONF="$softhsm_dir/softhsm2.conf" \
  cargo test -p smdpp-service --locked --test es9 --test lpa --test conformance_es9 -- --test-threads=1
rm -rf "$softhsm_dir"

# Every fuzz target builds and runs briefly without a finding (docs/FUZZING.md has the
# campaign); SMDPP_SKIP_FUZZ_SMOKE=1 skips it when iterating on the tests.
if [ "${SMDPP_SKIP_FUZZ_SMOKE:-0}" != 1 ]; then
  echo "== fuzz smoke"
  FUZZ_SMOKE_SECONDS="${FUZZ_SMOKE_SECONDS:-5}" ./scripts/fuzz-smoke.sh
fi
