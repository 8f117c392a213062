#!/bin/sh
# examples/grafana/test_dashboard.sh - `make check`'s judge of the Grafana
# dashboard outboxd.json (and of the metric names in the alert rules).
# Prints TAP (automake's tap-driver.sh reads it):
#   1 the dashboard is JSON, with the variables and panels it promises
#   2 checks modelled on Grafana's dashboard-linter's rules (a templated
#     datasource; job, instance and sink variables; every query filtered by
#     job and instance; counters only under rate/increase; ranges of
#     $__rate_interval; titles, descriptions and units)
#   3 every outboxd_* name in the dashboard is one of examples/metric-names.txt
#   4 every outboxd_* name in examples/prometheus/ is one of them too
#   5 Prometheus's promtool parses every PromQL expression of the dashboard
#     (its panels' queries and its variables'), with the Grafana variables
#     replaced by valid values
#   6 Grafana's dashboard model, as Grafana Labs' Grafana Foundation SDK
#     has it (Go types generated from Grafana's schemas): outboxd.json
#     decoded strictly, every panel's options and field config by its panel
#     type and every query as a Prometheus query, then the SDK's Validate
#   7 Grafana's dashboard-linter (`dashboard-linter lint --strict`), where
#     installed
# A check whose tool is missing is skipped, saying which (python3 and
# promtool: scripts/deps.sh installs them; the SDK: scripts/deps.sh fetches
# it with the Go on PATH, which the machine provides (Go >= 1.21);
# dashboard-linter: see examples/grafana/README.md), never passed.
here=$(cd "$(dirname "$0")" && pwd)
examples=$(dirname "$here")
dashboard=$here/outboxd.json
names=$examples/metric-names.txt

if ! command -v python3 >/dev/null 2>&1; then
    echo "1..0 # SKIP python3 is not on PATH (scripts/deps.sh installs it)"
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_dashboard.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
echo "1..7"

# Tests 1 to 4 in Python; it also writes the expressions, as recording
# rules, into $tmp/exprs.rules.yml for promtool (test 5).
python3 - "$dashboard" "$names" "$tmp/exprs.rules.yml" \
    "$examples/prometheus/outboxd.rules.yml" "$examples/prometheus/outboxd.rules.test.yml" <<'PY'
import json, re, sys

dashboard_path, names_path, rules_out = sys.argv[1:4]
rule_files = sys.argv[4:]
results = []          # (name, [problems])

def report(n, name, problems):
    if problems:
        print(f"not ok {n} - {name}")
        for p in problems:
            print(f"# {p}")
    else:
        print(f"ok {n} - {name}")

# --- 1: JSON and structure -------------------------------------------------
problems = []
try:
    with open(dashboard_path, encoding="utf-8") as f:
        d = json.load(f)
except (OSError, ValueError) as e:
    report(1, "outboxd.json is a dashboard", [f"cannot read it as JSON: {e}"])
    for n, what in ((2, "dashboard-linter's rules"), (3, "metric names in the dashboard"),
                    (4, "metric names in examples/prometheus/")):
        print(f"not ok {n} - {what}: not checked, outboxd.json is not JSON")
    sys.exit(0)

variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 39:
    problems.append(f"schemaVersion {d.get('schemaVersion')!r}: want 39 or newer (Grafana 11+)")
for key in ("title", "uid"):
    if not d.get(key):
        problems.append(f"no {key}")
ds = variables.get("datasource")
if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
    problems.append("no variable 'datasource' of type datasource for Prometheus")
sink = variables.get("sink")
def var_query(v):
    q = v.get("query", "")
    return q.get("query", "") if isinstance(q, dict) else q
if not sink or not re.match(r"label_values\(.*,\s*sink\s*\)$", var_query(sink)):
    problems.append("no variable 'sink' from label_values(..., sink)")

panels = []
def walk(ps):
    for p in ps:
        panels.append(p)
        walk(p.get("panels", []))
walk(d.get("panels", []))
ids = [p.get("id") for p in panels]
if len(ids) != len(set(ids)):
    problems.append(f"panel ids not unique: {ids}")
targets = []          # (where, expr)
for p in panels:
    if p.get("type") == "row":
        continue
    where = f"panel {p.get('id')} {p.get('title')!r}"
    if "gridPos" not in p:
        problems.append(f"{where}: no gridPos")
    if not p.get("targets"):
        problems.append(f"{where}: no targets")
    for t in p.get("targets", []):
        if not t.get("expr"):
            problems.append(f"{where} {t.get('refId')}: no expr")
            continue
        targets.append((f"{where} {t.get('refId')}", t["expr"]))
var_exprs = []        # (where, expr) of the query variables
for name, v in variables.items():
    if v.get("type") != "query":
        continue
    m = re.match(r"label_values\((.*),\s*\w+\s*\)$", var_query(v))
    if not m:
        problems.append(f"variable {name}: query {var_query(v)!r} is not label_values(EXPR, LABEL)")
    else:
        var_exprs.append((f"variable {name}", m.group(1)))
want = ["Events acked/s per sink", "Lag (events)", "Lag (seconds)", "Log headroom",
        "Latency p50 / p99", "Sink state", "Sink ready", "Events failed/s by reason",
        "Log size vs capped size", "Pending", "Plugin call seconds", "Thread heartbeat ages"]
titles = [p.get("title", "") for p in panels]
for w in want:
    if not any(t.startswith(w) for t in titles):
        problems.append(f"no panel titled {w!r}...")
report(1, f"outboxd.json is a dashboard ({len(panels)} panels, {len(targets)} queries)", problems)

# --- 2: checks modelled on dashboard-linter's rules --------------------------
problems = []
if d.get("editable"):
    problems.append("uneditable-dashboard: editable is true")
if ds and ds.get("label") != "Data source":
    problems.append("template-datasource-rule: the datasource variable's label should be 'Data source'")
for name in ("job", "instance", "sink"):
    v = variables.get(name)
    if not v:
        problems.append(f"template-{name}-rule: no variable {name}")
        continue
    if v.get("type") != "query":
        problems.append(f"template-{name}-rule: {name} is not a query variable")
    if (v.get("datasource") or {}).get("uid") not in ("$datasource", "${datasource}"):
        problems.append(f"template-{name}-rule: {name} does not use $datasource")
    if not v.get("multi") or v.get("allValue") != ".+":
        problems.append(f"template-{name}-rule: {name} should be multi-select with allValue '.+'")
    if v.get("label") != name.capitalize():
        problems.append(f"template-{name}-rule: {name}'s label should be {name.capitalize()!r}")
for name, v in variables.items():
    if v.get("type") == "query" and v.get("refresh") != 2:
        problems.append(f"template-on-time-change-reload-rule: variable {name} has refresh {v.get('refresh')!r}, want 2")
UNITS = {"none", "short", "percent", "percentunit", "bytes", "decbytes", "s", "ms", "ns",
         "ops", "reqps", "cps", "bool", "bool_yes_no", "bool_on_off", "dateTimeAsIso", "dtdurations"}
for p in panels:
    kind = p.get("type")
    where = f"panel {p.get('id')} {p.get('title')!r}"
    if kind == "row":
        continue
    if (p.get("datasource") or {}).get("uid") not in ("$datasource", "${datasource}"):
        problems.append(f"panel-datasource-rule: {where} does not use $datasource")
    for t in p.get("targets", []):
        if (t.get("datasource") or {}).get("uid") not in (None, "$datasource", "${datasource}"):
            problems.append(f"panel-datasource-rule: {where} {t.get('refId')} does not use $datasource")
    if not p.get("title") or not p.get("description"):
        problems.append(f"panel-title-description-rule: {where} lacks a title or description")
    fc = p.get("fieldConfig", {})
    unit = fc.get("defaults", {}).get("unit")
    if unit not in UNITS:
        problems.append(f"panel-units-rule: {where} has unit {unit!r}")
    for o in fc.get("overrides", []):
        for prop in o.get("properties", []):
            if prop.get("id") == "unit" and prop.get("value") not in UNITS:
                problems.append(f"panel-units-rule: {where} has an override's unit {prop.get('value')!r}")
SELECTOR = re.compile(r"((?:[a-zA-Z_:][a-zA-Z0-9_:]*)?)\{([^{}]*)\}")
for where, expr in targets:
    # Every selector filtered by job and instance (target-job-rule,
    # target-instance-rule); every metric name has a selector.
    for m in SELECTOR.finditer(expr):
        for label in ("job", "instance"):
            if not re.search(label + r'\s*=~\s*"\$' + label + '"', m.group(2)):
                problems.append(f"target-{label}-rule: {where}: selector {m.group(0)!r} has no {label}=~\"${label}\"")
    bare = re.findall(r"\boutboxd_\w+\b(?!\s*\{)", re.sub(r'"[^"]*"', '""', expr))
    if bare:
        problems.append(f"target-job-rule: {where}: {bare} without a selector")
    # Ranges are $__rate_interval (target-rate-interval-rule).
    for r in re.findall(r"\[([^\]]*)\]", expr):
        if r != "$__rate_interval":
            problems.append(f"target-rate-interval-rule: {where}: range [{r}], want [$__rate_interval]")
    # Counters only under rate/irate/increase over a range (target-counter-agg-rule).
    wrapped = len(re.findall(r"\b(?:rate|irate|increase)\(\s*\w+_total\s*\{[^{}]*\}\s*\[[^\]]*\]\s*\)", expr))
    counters = len(re.findall(r"\b\w+_total\b", expr))
    if wrapped != counters:
        problems.append(f"target-counter-agg-rule: {where}: a counter not under rate, irate or increase: {expr}")
report(2, "checks modelled on dashboard-linter's rules", problems)

# --- expressions for promtool (test 5) ----------------------------------------
GLOBAL = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
          "__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000"}
def substitute(expr, where, problems):
    def one(m):
        name = m.group(1) or m.group(2)
        if name in GLOBAL:
            return GLOBAL[name]
        if name in variables:
            return ".+"        # a multi-value variable in a =~ matcher
        problems.append(f"{where}: unknown variable ${name}")
        return m.group(0)
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)
problems = []
with open(rules_out, "w", encoding="utf-8") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (where, expr) in enumerate(targets + var_exprs):
        out.write(f"      # {where}\n")
        out.write(f"      - record: dashboard_expr_{i}\n")
        out.write(f"        expr: {json.dumps(substitute(expr, where, problems))}\n")
with open(rules_out + ".problems", "w", encoding="utf-8") as f:
    f.write("".join(p + "\n" for p in problems))

# --- 3, 4: metric names ----------------------------------------------------------
known, prefixes, histograms = set(), [], set()
with open(names_path, encoding="utf-8") as f:
    for line in f:
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name = words[0]
        if name.endswith("*"):
            prefixes.append(name[:-1])
        else:
            known.add(name)
            if len(words) > 1 and words[1] == "histogram":
                histograms.add(name)
def unknown_names(text):
    bad = set()
    for name in re.findall(r"\boutboxd_[A-Za-z0-9_]*", text):
        if name in known or any(name.startswith(p) for p in prefixes):
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base in histograms:
            continue
        bad.add(name)
    return sorted(bad)
with open(dashboard_path, encoding="utf-8") as f:
    bad = unknown_names(f.read())
report(3, f"every outboxd_* name in outboxd.json is in metric-names.txt ({len(known)} names)",
       [f"{n} is not in examples/metric-names.txt" for n in bad])
problems = []
for path in rule_files:
    with open(path, encoding="utf-8") as f:
        problems += [f"{path.rsplit('/', 2)[-2]}/{path.rsplit('/', 1)[-1]}: {n} is not in examples/metric-names.txt"
                     for n in unknown_names(f.read())]
report(4, "every outboxd_* name in examples/prometheus/ is in metric-names.txt", problems)
PY

# 5: promtool parses the expressions.
if [ ! -s "$tmp/exprs.rules.yml" ]; then
    echo "not ok 5 - promtool parses the dashboard's PromQL # no expressions were extracted"
elif ! command -v promtool >/dev/null 2>&1; then
    echo "ok 5 - promtool parses the dashboard's PromQL # SKIP promtool is not on PATH (Debian's prometheus package; scripts/deps.sh installs it)"
elif [ -s "$tmp/exprs.rules.yml.problems" ]; then
    echo "not ok 5 - promtool parses the dashboard's PromQL"
    sed 's/^/# /' "$tmp/exprs.rules.yml.problems"
elif out=$(promtool check rules "$tmp/exprs.rules.yml" 2>&1); then
    echo "ok 5 - promtool parses the dashboard's PromQL ($(grep -c 'record:' "$tmp/exprs.rules.yml") expressions)"
else
    echo "not ok 5 - promtool parses the dashboard's PromQL"
    printf '%s\n' "$out" | sed 's/^/# /'
fi

# 6: Grafana's dashboard model, as Grafana Labs' Grafana Foundation SDK has
# it (Go types generated from Grafana's own schemas): a small Go program,
# below, built in $tmp against the SDK in Go's module cache (scripts/deps.sh
# puts it there, at the version of the go.mod below, which go.sum pins;
# where the cache lacks it, go downloads it). Go is looked for in
# /usr/local/go/bin too, where this kind of machine has it.
sdk_check="Grafana's dashboard model (Grafana Foundation SDK, strict decoding)"
PATH=$PATH:/usr/local/go/bin
if ! command -v go >/dev/null 2>&1; then
    echo "ok 6 - $sdk_check # SKIP go is not on PATH (Go 1.21 or newer builds this check)"
else
    mkdir "$tmp/sdk"
    cat >"$tmp/sdk/go.mod" <<'EOF'
module outboxd.example/dashboardcheck

go 1.21

require github.com/grafana/grafana-foundation-sdk/go v0.0.22
EOF
    cat >"$tmp/sdk/go.sum" <<'EOF'
github.com/grafana/grafana-foundation-sdk/go v0.0.22 h1:bE+NJ+nE/ouwQaXtPQTz98yIzevuXlyZ4L5pdPLyiC4=
github.com/grafana/grafana-foundation-sdk/go v0.0.22/go.mod h1:48EA8jF85SrReYflLa39Sk34b6NpxwJPBwjF3TJgRpE=
EOF
    cat >"$tmp/sdk/main.go" <<'EOF'
// Judges Grafana dashboards (JSON files named on the command line) by the
// Grafana Foundation SDK's types of Grafana's dashboard model. The SDK's
// strict decoding fails on an unexpected field, a value of the wrong type
// and a required field that is missing, in the dashboard, its variables,
// annotations and links, its panels, each panel's options and custom field
// config as its panel type has them, and each query as its data source's
// type has it; then the SDK's Validate. Two gaps of the SDK (v0.0.22) are
// filled here with its own decoders: a panel's fieldConfig is decoded
// leniently there, and the panels that a strict decoding of the dashboard
// returns are empty (a nil error list returned as an error), so each panel
// is decoded again on its own, strictly, to check its fieldConfig and to
// validate it. A panel type or a query type that the SDK does not know
// would go unchecked, so it fails too. Prints one line per problem; exits 1
// if there was one.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func messages(where string, err error) []string {
	var errs cog.BuildErrors
	var out []string
	if errors.As(err, &errs) { // the SDK returns an empty list for none
		for _, e := range errs {
			out = append(out, where+e.Error())
		}
	} else if err != nil {
		out = append(out, where+err.Error())
	}
	return out
}

type rawPanel struct {
	Type        string            `json:"type"`
	FieldConfig json.RawMessage   `json:"fieldConfig"`
	Panels      []json.RawMessage `json:"panels"`
}

// panel checks one panel (not a row) beyond what the dashboard's decoding did.
func panel(where string, raw json.RawMessage) []string {
	var r rawPanel
	if err := json.Unmarshal(raw, &r); err != nil {
		return []string{where + ": " + err.Error()}
	}
	var problems []string
	if _, known := cog.ConfigForPanelcfgVariant(r.Type); !known {
		problems = append(problems, fmt.Sprintf("%s: panel type %q is not one the SDK knows (its options go unchecked)", where, r.Type))
	}
	if r.FieldConfig != nil && string(r.FieldConfig) != "null" {
		var fc dashboard.FieldConfigSource
		problems = append(problems, messages(where+".fieldConfig.", fc.UnmarshalJSONStrict(r.FieldConfig))...)
	}
	var p dashboard.Panel
	if len(messages("", p.UnmarshalJSONStrict(raw))) > 0 {
		return problems // the dashboard's decoding reported them
	}
	problems = append(problems, messages(where+".", p.Validate())...)
	for i, t := range p.Targets {
		if t.DataqueryType() == "unknown" {
			problems = append(problems, fmt.Sprintf("%s.targets[%d]: no data source type that the SDK knows (the query goes unchecked)", where, i))
		}
	}
	return problems
}

func check(path string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	var d dashboard.Dashboard
	problems := messages("", d.UnmarshalJSONStrict(raw))
	problems = append(problems, messages("", d.Validate())...)
	var top struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return append(problems, err.Error())
	}
	for i, pr := range top.Panels {
		where := "panels[" + strconv.Itoa(i) + "]"
		var r rawPanel
		if err := json.Unmarshal(pr, &r); err != nil {
			continue // the dashboard's decoding reported it
		}
		if r.Type != "row" {
			problems = append(problems, panel(where, pr)...)
			continue
		}
		for j, q := range r.Panels {
			problems = append(problems, panel(where+".panels["+strconv.Itoa(j)+"]", q)...)
		}
	}
	return problems
}

func main() {
	plugins.RegisterDefaultPlugins()
	status := 0
	for _, path := range os.Args[1:] {
		problems := check(path)
		for _, p := range problems {
			fmt.Printf("%s: %s\n", path, p)
		}
		if len(problems) > 0 {
			status = 1
		}
	}
	os.Exit(status)
}
EOF
    if ! out=$(cd "$tmp/sdk" && go mod download 2>&1); then
        echo "ok 6 - $sdk_check # SKIP the Grafana Foundation SDK is not in Go's module cache and could not be downloaded (scripts/deps.sh fetches it)"
        printf '%s\n' "$out" | sed 's/^/# /'
    elif ! out=$(cd "$tmp/sdk" && go build -o check . 2>&1); then
        echo "not ok 6 - $sdk_check: the check does not build"
        printf '%s\n' "$out" | sed 's/^/# /'
    elif out=$("$tmp/sdk/check" "$dashboard" 2>&1); then
        echo "ok 6 - $sdk_check"
    else
        echo "not ok 6 - $sdk_check"
        printf '%s\n' "$out" | sed "s|^$dashboard: |# |"
    fi
fi

# 7: Grafana's dashboard-linter, where installed (not from Debian; see README.md).
linter=${DASHBOARD_LINTER:-$(command -v dashboard-linter 2>/dev/null)}
if [ -z "$linter" ] || [ ! -x "$linter" ]; then
    echo "ok 7 - dashboard-linter lint --strict # SKIP dashboard-linter is not installed (examples/grafana/README.md says why and how)"
elif out=$("$linter" lint --strict "$dashboard" 2>&1); then
    echo "ok 7 - dashboard-linter lint --strict"
    printf '%s\n' "$out" | sed 's/^/# /'
else
    echo "not ok 7 - dashboard-linter lint --strict"
    printf '%s\n' "$out" | sed 's/^/# /'
fi
