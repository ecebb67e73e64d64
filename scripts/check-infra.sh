#!/usr/bin/env bash
# Validate infra/ offline: SAM transform + cfn-lint of infra/template.yaml,
# `sam validate --lint`, checkov (0 failed checks; every skip is justified inline
# in the template), and infra/openapi.yaml (OpenAPI 3.1 schema, routes identical
# to the template's). Needs only python3 and PyPI; never calls AWS. Exit status is
# non-zero on any error, cfn-lint warning or failed checkov check; the last line
# is a one-line summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv-infra
OUT=.infra-out
TEMPLATE=infra/template.yaml
OPENAPI=infra/openapi.yaml
REQUIREMENTS=(
  'aws-sam-translator>=1.94,<2'
  'cfn-lint>=1.20,<2'
  'openapi-spec-validator>=0.7,<0.8'
  'checkov>=3.2,<4'
  'aws-sam-cli>=1.130,<2'
)

# Offline and credential-free: a fixed region/partition, no instance metadata.
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# No telemetry or update checks (SAM CLI, checkov): nothing leaves the machine.
export SAM_CLI_TELEMETRY=0 CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false BC_SKIP_MAPPING=TRUE

step="setup"
trap 'rc=$?; if [ "$rc" -ne 0 ]; then echo "check-infra: FAILED at step: $step (exit $rc)"; fi' EXIT

# ----------------------------------------------------------------- venv
if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import samtranslator, cfnlint, openapi_spec_validator, checkov, samcli' 2>/dev/null; then
  step="pip install"
  "$PY" -m pip install -q "${REQUIREMENTS[@]}"
fi
versions=$("$PY" - <<'EOF'
from importlib.metadata import version
print(" ".join(f"{p}=={version(p)}" for p in ("aws-sam-translator", "cfn-lint", "openapi-spec-validator",
                                              "checkov", "aws-sam-cli")))
EOF
)
echo "== tools: $versions"

rm -rf "$OUT"
mkdir -p "$OUT"

# ------------------------------------------------------- SAM transform
step="sam transform"
echo "== sam transform $TEMPLATE -> $OUT/template.json"
"$PY" - "$TEMPLATE" "$OUT/template.json" <<'EOF'
import json
import sys

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

src, dst = sys.argv[1], sys.argv[2]


class OfflinePolicyLoader:
    """Stands in for ManagedPolicyLoader (which calls IAM ListPolicies).

    The template only uses SAM policy templates, which need no lookup."""

    def load(self):
        return {}


with open(src, encoding="utf-8") as f:
    template = yaml_parse(f.read())

# CodeUri points at the cargo-lambda output (../target/lambda/<name>/), which
# need not exist here; the translator only accepts s3:// URIs (that is what
# `sam deploy` rewrites them to), so transform a copy with placeholders.
for logical_id, res in template.get("Resources", {}).items():
    if res.get("Type") != "AWS::Serverless::Function":
        continue
    uri = res.get("Properties", {}).get("CodeUri")
    if isinstance(uri, str) and not uri.startswith("s3://"):
        res["Properties"]["CodeUri"] = f"s3://payloop-placeholder-artifacts/{logical_id}.zip"

try:
    out = transform(template, {}, OfflinePolicyLoader())
except InvalidDocumentException as e:
    for cause in e.causes:
        print(f"  {cause.message}", file=sys.stderr)
    sys.exit(f"SAM transform failed: {e.message}")

with open(dst, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=2, sort_keys=True)
types = {}
for res in out["Resources"].values():
    types[res["Type"]] = types.get(res["Type"], 0) + 1
print(f"   {len(out['Resources'])} CloudFormation resources: "
      + ", ".join(f"{n} {t}" for t, n in sorted(types.items())))
EOF

# ------------------------------------------------------------- cfn-lint
step="cfn-lint $OUT/template.json"
echo "== cfn-lint $OUT/template.json"
"$VENV/bin/cfn-lint" "$OUT/template.json"
step="cfn-lint $TEMPLATE"
echo "== cfn-lint $TEMPLATE"
"$VENV/bin/cfn-lint" "$TEMPLATE"

# ------------------------------------------------------ sam validate --lint
step="sam validate --lint"
echo "== sam validate --lint $TEMPLATE"
# No credentials needed (the template names no managed policy to look up). Its
# own config dir, with telemetry off and the weekly PyPI version check marked done.
export __SAM_CLI_APP_DIR="$PWD/$OUT/sam-cli"
mkdir -p "$__SAM_CLI_APP_DIR"
printf '{"telemetryEnabled": false, "lastVersionCheck": %s.0}\n' "$(date +%s)" >"$__SAM_CLI_APP_DIR/metadata.json"
"$VENV/bin/sam" validate --lint -t "$TEMPLATE" --region "$AWS_DEFAULT_REGION"

# ---------------------------------------------------------------- checkov
# As an operator runs it (`checkov -f infra/template.yaml`), and once more on a
# copy without the inline skips, to show what the skips account for. Gate: no
# failed check, and every skip gives its reason.
step="checkov"
echo "== checkov -f $TEMPLATE --framework cloudformation"
sed '/#checkov:skip=/d' "$TEMPLATE" >"$OUT/template-without-skips.yaml"
for f in "$OUT/template-without-skips.yaml" "$TEMPLATE"; do
  # Exit status 1 means failed checks; the JSON report is read below either way.
  "$VENV/bin/checkov" -f "$f" --framework cloudformation --skip-download -o json \
    >"$OUT/$(basename "$f" .yaml).checkov.json" 2>"$OUT/checkov.stderr" || [ $? -eq 1 ]
done
checkov_summary=$("$PY" - "$OUT/template-without-skips.checkov.json" "$OUT/template.checkov.json" <<'EOF'
import collections
import json
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    report = report[0] if isinstance(report, list) else report
    summary = report.get("summary", {})
    if summary.get("parsing_errors") or not summary.get("resource_count"):
        sys.exit(f"checkov could not evaluate {path}: {summary}")
    return report


def counts(report):
    s = report["summary"]
    return f"{s['passed']} passed, {s['failed']} failed, {s['skipped']} skipped"


raw, gated = load(sys.argv[1]), load(sys.argv[2])
by_check = collections.Counter(c["check_id"] for c in raw["results"]["failed_checks"])
print(f"   before the inline skips: {counts(raw)}"
      + (f" ({', '.join(f'{k} x{n}' for k, n in sorted(by_check.items()))})" if by_check else ""),
      file=sys.stderr)
print(f"   after the inline skips:  {counts(gated)}", file=sys.stderr)
problems = []
for c in gated["results"]["skipped_checks"]:
    reason = (c.get("check_result") or {}).get("suppress_comment") or ""
    print(f"   skip {c['check_id']} {c['resource'].split('.')[-1]}: {reason[:100]}", file=sys.stderr)
    if len(reason.strip()) < 20:
        problems.append(f"{c['check_id']} on {c['resource']} is skipped without a reason")
for c in gated["results"]["failed_checks"]:
    problems.append(f"FAILED {c['check_id']} {c['resource']} (lines {c['file_line_range']}): {c['check_name']}")
for p in problems:
    print(f"  {p}", file=sys.stderr)
if problems:
    sys.exit(f"checkov: {len(problems)} problem(s)")
print(f"checkov {counts(gated)}")
EOF
)

# ------------------------------------------- template invariants + OpenAPI
step="openapi / invariants"
echo "== openapi $OPENAPI + template invariants"
summary=$("$PY" - "$TEMPLATE" "$OPENAPI" <<'EOF'
import sys

import yaml
from openapi_spec_validator import validate
from samtranslator.yaml_helper import yaml_parse

template_path, openapi_path = sys.argv[1], sys.argv[2]
errors = []

# The endpoints payloop exposes; template and document must both have exactly these.
EXPECTED = {
    ("post", "/v1/payments/init"),
    ("get", "/v1/payments/{payment_id}"),
    ("get", "/v1/payments/{payment_id}/deliveries"),
    ("post", "/v1/payments/webhook"),
    ("post", "/v1/payments/webhook/{psp}"),
    ("post", "/v1/wallet/credit"),
    ("get", "/v1/wallet/{player_id}"),
    ("post", "/v1/ops/dlq/replay"),
    ("post", "/v1/wallet/debit"),
    ("post", "/v1/wallet/rollback"),
    ("get", "/v1/wallet/rounds/{round_id}"),
    ("get", "/v1/admin/routing"),
    ("put", "/v1/admin/degradation"),
    ("put", "/v1/admin/players/{player_id}/risk"),
    ("put", "/v1/admin/players/{player_id}/kyc"),
    ("put", "/v1/players/{player_id}/limits"),
    ("get", "/v1/players/{player_id}/limits"),
    ("post", "/v1/players/{player_id}/self-exclusion"),
    ("get", "/v1/players/{player_id}/self-exclusion"),
    ("get", "/v1/risk/decisions"),
    ("get", "/v1/risk/reviews"),
    ("get", "/v1/risk/reviews/{review_id}"),
    ("post", "/v1/risk/reviews/{review_id}/decide"),
    ("get", "/v1/risk/alerts"),
    ("get", "/v1/risk/alerts/{alert_id}"),
    ("get", "/v1/risk/alerts/{alert_id}/sar"),
    ("post", "/v1/risk/alerts/{alert_id}/close"),
    ("post", "/v1/payouts/init"),
    ("get", "/v1/payouts/{payout_id}"),
    ("post", "/v1/payments/{payment_id}/refund"),
    ("get", "/v1/reports/{kind}"),
    ("get", "/v1/recon/cases"),
    ("get", "/v1/recon/cases/{case_id}"),
    ("post", "/v1/recon/cases/{case_id}/resolve"),
    ("post", "/v1/recon/google-statements/{account}/{statement_id}/release"),
    ("get", "/v1/recon/reports/{psp}/{date}"),
    ("post", "/v1/cashier/sessions"),
    ("get", "/v1/cashier/options"),
    ("post", "/v1/cashier/deposits"),
    ("get", "/v1/cashier/payments/{payment_id}"),
    ("post", "/v1/cashier/withdrawals"),
    ("get", "/v1/cashier/withdrawals/{withdrawal_id}"),
    ("get", "/cashier"),
    ("get", "/cashier/cashier.js"),
    ("get", "/cashier/cashier.css"),
}
GOOGLE = {
    ("post", "/v1/echo"),
    ("post", "/v1/payment-integrator-redirect/generateRedirectPaymentUrl"),
    ("post", "/redirect-fop-v1/generateRedirectPaymentUrl"),
    ("post", "/v1/payment-integrator-redirect/getRedirectPaymentStatus"),
    ("post", "/redirect-fop-v1/getRedirectPaymentStatus"),
    ("post", "/v1/payment-integrator-redirect/asynchronousRefund"),
    ("post", "/redirect-fop-v1/asynchronousRefund"),
    ("post", "/v1/remittanceStatementNotification"),
    ("post", "/redirect-fop-v1/remittanceStatementNotification"),
}
EXPECTED |= GOOGLE
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}

# Which function (cargo-lambda binary) serves what. One Lambda serves one event
# shape: HttpApi routes, or the SQS queue, or the schedule - never a mix.
FUNCTIONS = {
    "IntentApiFunction": ("intent-api", {
        ("post", "/v1/cashier/sessions"),
        ("get", "/v1/cashier/options"),
        ("post", "/v1/cashier/deposits"),
        ("get", "/v1/cashier/payments/{payment_id}"),
        ("post", "/v1/cashier/withdrawals"),
        ("get", "/v1/cashier/withdrawals/{withdrawal_id}"),
        ("get", "/cashier"),
        ("get", "/cashier/cashier.js"),
        ("get", "/cashier/cashier.css"),
        ("post", "/v1/payments/init"),
        ("get", "/v1/payments/{payment_id}"),
        ("get", "/v1/payments/{payment_id}/deliveries"),
        ("get", "/v1/admin/routing"),
        ("put", "/v1/admin/degradation"),
        ("put", "/v1/admin/players/{player_id}/risk"),
        ("put", "/v1/admin/players/{player_id}/kyc"),
        ("put", "/v1/players/{player_id}/limits"),
        ("get", "/v1/players/{player_id}/limits"),
        ("post", "/v1/players/{player_id}/self-exclusion"),
        ("get", "/v1/players/{player_id}/self-exclusion"),
        ("get", "/v1/risk/decisions"),
        ("get", "/v1/risk/reviews"),
        ("get", "/v1/risk/reviews/{review_id}"),
        ("post", "/v1/risk/reviews/{review_id}/decide"),
        ("get", "/v1/risk/alerts"),
        ("get", "/v1/risk/alerts/{alert_id}"),
        ("get", "/v1/risk/alerts/{alert_id}/sar"),
        ("post", "/v1/risk/alerts/{alert_id}/close"),
        ("post", "/v1/payouts/init"),
        ("get", "/v1/payouts/{payout_id}"),
        ("post", "/v1/payments/{payment_id}/refund"),
    }),
    "WebhookIntakeFunction": ("webhook-intake", {
        ("post", "/v1/payments/webhook"),
        ("post", "/v1/payments/webhook/{psp}"),
    }),
    "WalletCreditFunction": ("wallet-credit", set()),
    "WalletApiFunction": ("wallet-api", {
        ("post", "/v1/wallet/credit"),
        ("get", "/v1/wallet/{player_id}"),
        ("post", "/v1/ops/dlq/replay"),
        ("post", "/v1/wallet/debit"),
        ("post", "/v1/wallet/rollback"),
        ("get", "/v1/wallet/rounds/{round_id}"),
        ("get", "/v1/reports/{kind}"),
        ("get", "/v1/recon/cases"),
        ("get", "/v1/recon/cases/{case_id}"),
        ("post", "/v1/recon/cases/{case_id}/resolve"),
        ("post", "/v1/recon/google-statements/{account}/{statement_id}/release"),
        ("get", "/v1/recon/reports/{psp}/{date}"),
    }),
    "GoogleFacadeFunction": ("google-facade", GOOGLE),
    "GoogleOutboundFunction": ("google-outbound", set()),
    "PayoutSweeperFunction": ("payout-sweeper", set()),
    "ReconciliationFunction": ("reconciliation", set()),
    "ReconShardFunction": ("reconciliation", set()),
}
SQS_CONSUMERS = {"WalletCreditFunction": "EventsQueue", "ReconShardFunction": "ReconQueue",
                 "GoogleOutboundFunction": "GoogleQueue"}
# Read at start-up by every function; missing -> start-up error. The keys come
# from the secret PAYLOOP_SECRETS_ARN names (read at cold start), never from here.
REQUIRED_ENV = {
    "PAYLOOP_STORE", "PAYLOOP_TABLE", "PAYLOOP_QUEUE_URL_EVENTS", "PAYLOOP_QUEUE_URL_EVENTS_DLQ",
    "PAYLOOP_QUEUE_URL_NOTIFICATIONS", "PAYLOOP_PUBLIC_URL", "PAYLOOP_PSP_ENDPOINTS",
    "PAYLOOP_SECRETS_ARN",
}
# Secret-valued: must never be an environment variable (nor any dynamic reference).
SECRET_ENV = {
    "PAYLOOP_CLIENT_KEYS", "PAYLOOP_PLATFORM_KEYS", "PAYLOOP_WEBHOOK_SECRETS", "PAYLOOP_PSP_API_KEY",
    "PAYLOOP_ADYEN_API_KEY", "PAYLOOP_ADYEN_HMAC_KEY", "PAYLOOP_ADYEN_HOOK_PASSWORD",
    "PAYLOOP_GSP_KEYS",
}
# Where calls to Google are queued (wallet-credit, google-facade), made
# (google-outbound), replayed (wallet-api) or counted (the sweep's dlq_depth):
# the code reads both URLs or neither.
GOOGLE_QUEUE_USERS = {"WalletCreditFunction", "GoogleFacadeFunction", "GoogleOutboundFunction",
                      "WalletApiFunction", "PayoutSweeperFunction"}
GOOGLE_QUEUE_ENV = {"PAYLOOP_QUEUE_URL_GOOGLE", "PAYLOOP_QUEUE_URL_GOOGLE_DLQ"}

with open(template_path, encoding="utf-8") as f:
    template = yaml_parse(f.read())
resources = template["Resources"]
globals_fn = template.get("Globals", {}).get("Function", {})

# Routes declared on the functions' HttpApi events.
routes = set()
functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
if len(functions) != len(FUNCTIONS) or set(functions) != set(FUNCTIONS):
    errors.append(f"template: expected {len(FUNCTIONS)} functions {sorted(FUNCTIONS)}, "
                  f"found {len(functions)} {sorted(functions)}")
globals_env = globals_fn.get("Environment", {}).get("Variables", {})
for logical_id, fn in functions.items():
    props = fn["Properties"]
    timeout = props.get("Timeout", globals_fn.get("Timeout", 3))
    binary, owned = FUNCTIONS.get(logical_id, (None, set()))
    fn_routes, sqs_queues = set(), set()
    event_types = {ev["Type"] for ev in props.get("Events", {}).values()}
    if len(event_types) > 1:
        errors.append(f"template: {logical_id} mixes event types {sorted(event_types)}; "
                      "one function serves one event shape")
    for ev_name, ev in props.get("Events", {}).items():
        ep = ev.get("Properties", {})
        if ev["Type"] == "HttpApi":
            route = (ep["Method"].lower(), ep["Path"])
            if route in routes:
                errors.append(f"template: route {route} declared twice")
            routes.add(route)
            fn_routes.add(route)
            if ep.get("PayloadFormatVersion") != "2.0":
                errors.append(f"template: {logical_id}.{ev_name} must use PayloadFormatVersion 2.0")
        elif ev["Type"] == "SQS":
            # AWS guidance: queue visibility >= 6 x function timeout + batching window.
            queue_id = ep["Queue"]["Fn::GetAtt"][0]
            sqs_queues.add(queue_id)
            if ep.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
                errors.append(f"template: {logical_id}.{ev_name} must report batch item failures")
            vis = resources[queue_id]["Properties"].get("VisibilityTimeout", 30)
            need = 6 * timeout + ep.get("MaximumBatchingWindowInSeconds", 0)
            if vis < need:
                errors.append(f"template: {queue_id}.VisibilityTimeout {vis} < 6 x {logical_id} "
                              f"timeout {timeout} + batching window = {need}")
    if binary is not None:
        for r in sorted(owned - fn_routes):
            errors.append(f"template: {logical_id} must serve {r[0].upper()} {r[1]}")
        for r in sorted(fn_routes - owned):
            errors.append(f"template: {logical_id} must not serve {r[0].upper()} {r[1]}")
        want = {SQS_CONSUMERS[logical_id]} if logical_id in SQS_CONSUMERS else set()
        if sqs_queues != want:
            errors.append(f"template: {logical_id} consumes {sorted(sqs_queues)}, expected {sorted(want)}")
        env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
        for name in sorted(REQUIRED_ENV - set(env)):
            errors.append(f"template: {logical_id} lacks environment variable {name}")
        for name in sorted(SECRET_ENV & set(env)):
            errors.append(f"template: {logical_id} has the secret {name} in its environment")
        for name, value in sorted(env.items()):
            if "{{resolve:" in str(value):
                errors.append(f"template: {logical_id} resolves a dynamic reference into {name}")
        # Asynchronous (scheduled) functions keep their failures in a DLQ; an SQS
        # consumer with reserved concurrency polls no faster than it may run.
        if "Schedule" in event_types:
            if "TargetArn" not in props.get("DeadLetterQueue", {}):
                errors.append(f"template: {logical_id} is scheduled but has no DeadLetterQueue")
            for ev_name, ev in props.get("Events", {}).items():
                if "Arn" not in ev.get("Properties", {}).get("DeadLetterConfig", {}):
                    errors.append(f"template: {logical_id}.{ev_name} has no DeadLetterConfig")
        if "SQS" in event_types and "ReservedConcurrentExecutions" in props:
            for ev_name, ev in props.get("Events", {}).items():
                if ev.get("Properties", {}).get("ScalingConfig", {}).get("MaximumConcurrency") \
                        != props["ReservedConcurrentExecutions"]:
                    errors.append(f"template: {logical_id}.{ev_name} needs ScalingConfig.MaximumConcurrency "
                                  "equal to the function's ReservedConcurrentExecutions")
        if binary == "reconciliation" and "PAYLOOP_QUEUE_URL_RECON" not in env:
            errors.append(f"template: {logical_id} lacks PAYLOOP_QUEUE_URL_RECON")
        if logical_id in GOOGLE_QUEUE_USERS:
            for name in sorted(GOOGLE_QUEUE_ENV - set(env)):
                errors.append(f"template: {logical_id} lacks {name}")
        if binary == "google-outbound" and "PAYLOOP_GSP_BASE_URL" not in env:
            errors.append(f"template: {logical_id} lacks PAYLOOP_GSP_BASE_URL")
        # Plaintext authenticates nothing: development stacks set it by hand.
        if "PAYLOOP_GSP_ALLOW_PLAINTEXT" in env:
            errors.append(f"template: {logical_id} sets PAYLOOP_GSP_ALLOW_PLAINTEXT")
    # scripts/package.sh builds these zips (it reads the binaries from these CodeUris).
    if binary is not None and props.get("CodeUri") != f"../target/lambda/{binary}/bootstrap.zip":
        errors.append(f"template: {logical_id}.CodeUri must be ../target/lambda/{binary}/bootstrap.zip")
    elif not str(props.get("CodeUri", "")).startswith("../target/lambda/"):
        errors.append(f"template: {logical_id}.CodeUri must be the cargo-lambda output dir")
    log_group = props.get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
    if log_group not in resources or resources[log_group]["Properties"].get("RetentionInDays") != 30:
        errors.append(f"template: {logical_id} needs LoggingConfig.LogGroup with RetentionInDays 30")
if routes != EXPECTED:
    for r in sorted(EXPECTED - routes):
        errors.append(f"template: missing route {r[0].upper()} {r[1]}")
    for r in sorted(routes - EXPECTED):
        errors.append(f"template: unexpected route {r[0].upper()} {r[1]}")

# OpenAPI: parses, is 3.x, validates against the 3.1 schema, has exactly the routes.
try:
    with open(openapi_path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
except yaml.YAMLError as e:
    sys.exit(f"{openapi_path}: not valid YAML: {e}")
if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3."):
    sys.exit(f"{openapi_path}: `openapi` must be a 3.x version string")
try:
    validate(doc)
except Exception as e:  # the validator raises several exception types
    errors.append(f"openapi: {type(e).__name__}: {str(e).splitlines()[0][:300]}")

ops = {(m, p) for p, item in doc.get("paths", {}).items() for m in item if m in HTTP_METHODS}
for r in sorted(EXPECTED - ops):
    errors.append(f"openapi: missing {r[0].upper()} {r[1]}")
for r in sorted(ops - EXPECTED):
    errors.append(f"openapi: undocumented route in template set: {r[0].upper()} {r[1]}")


def deref(node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


# Every response documents X-Trace-Id; every error response uses the Error schema.
for path, item in doc.get("paths", {}).items():
    for method, op in item.items():
        if method not in HTTP_METHODS:
            continue
        for code, resp in op.get("responses", {}).items():
            resp = deref(resp)
            where = f"{method.upper()} {path} {code}"
            if "X-Trace-Id" not in resp.get("headers", {}):
                errors.append(f"openapi: {where} lacks the X-Trace-Id header")
            if str(code)[0] in "45":
                schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
                # Google's methods answer Google's ErrorResponse (the edge's own
                # refusals, such as 413, are still Error).
                google = (method, path) in GOOGLE and str(code) != "413"
                if google and code == "503":
                    if not schema.get("properties", {}).get("responseHeader"):
                        errors.append(f"openapi: {where} must be a bare responseHeader")
                elif google:
                    if schema.get("$ref") != "#/components/schemas/GoogleErrorResponse":
                        errors.append(f"openapi: {where} must use the GoogleErrorResponse schema")
                elif schema.get("$ref") != "#/components/schemas/Error":
                    errors.append(f"openapi: {where} must use the Error schema")

for e in errors:
    print(f"  {e}", file=sys.stderr)
if errors:
    sys.exit(f"{len(errors)} problem(s) in template invariants / OpenAPI")
print(f"{len(functions)} functions, {len(routes)} routes; openapi {doc['openapi']}: "
      f"{len(doc['paths'])} paths, {len(ops)} operations")
EOF
)
echo "   $summary"

step="done"
echo "check-infra: OK - SAM transform clean, cfn-lint clean (transformed + source), sam validate --lint clean, $checkov_summary, $summary"
