#!/usr/bin/env bash
# The gate step of the oomgate GitHub Action (action.yml): runs `oomgate run`, keeps its exit code,
# sets the step outputs (verdict, exit-code, report-dir), appends summary.md to the job's step
# summary, turns the report's findings into ::error / ::warning annotations, and exits with
# oomgate's exit code.
#
# Environment (set by action.yml):
#   OOMGATE_ACTION_SCENARIO    scenario file (required)
#   OOMGATE_ACTION_ARGS        extra arguments, split like a shell would (quotes group words), never executed
#   OOMGATE_ACTION_REPORT_DIR  report directory (default oomgate-report)
#   OOMGATE_ACTION_BASELINE    an earlier report.json (or its directory) for --baseline; empty: none
#   OOMGATE_ACTION_JSON        jq | python3: which tool reads report.json (default: jq when present)
#   OOMGATE_ACTION_COMMENT     true: post summary.md on the pull request (`oomgate report comment`,
#                              token in OOMGATE_GITHUB_TOKEN); a failure only warns
# and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY, set by the runner (either may be missing).
# Written for bash 3.2 and up (macOS runners included).
set -uo pipefail

scenario="${OOMGATE_ACTION_SCENARIO:?the scenario input is required}"
out="${OOMGATE_ACTION_REPORT_DIR:-oomgate-report}"
json_tool="${OOMGATE_ACTION_JSON:-}"
if [ -z "$json_tool" ]; then
  if command -v jq >/dev/null 2>&1; then json_tool=jq; else json_tool=python3; fi
fi

set_output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then printf '%s=%s\n' "$1" "$2" >> "$GITHUB_OUTPUT"; fi
}

# --- arguments: xargs splits them with quote handling and executes nothing -----------------------
args=()
split=$(mktemp)
trap 'rm -f "$split"' EXIT
case "${OOMGATE_ACTION_ARGS:-}" in
  *[![:space:]]*)
    if ! printf '%s' "$OOMGATE_ACTION_ARGS" | xargs printf '%s\0' > "$split"; then
      echo "::error title=oomgate::cannot parse the args input (unbalanced quotes?): $OOMGATE_ACTION_ARGS"
      set_output verdict error
      set_output exit-code 2
      exit 2
    fi
    ;;
esac
while IFS= read -r -d '' a; do args+=("$a"); done < "$split"

# --- baseline: an earlier report to compare with; one that is not there is only noted -----------
baseline="${OOMGATE_ACTION_BASELINE:-}"
case "$baseline" in
  *[![:space:]]*)
    if [ -e "$baseline" ]; then
      echo "oomgate: comparing with the baseline $baseline"
      args=(--baseline "$baseline" ${args[@]+"${args[@]}"})
    else
      shown=${baseline//%/%25}
      shown=${shown//$'\r'/%0D}
      shown=${shown//$'\n'/%0A}
      echo "::notice title=oomgate::no baseline at $shown: the gate runs without one"
    fi
    ;;
esac

# --- run -----------------------------------------------------------------------------------------
# Reports of an earlier run in the same directory must not pass for this run's.
for f in report.json summary.md junit.xml metrics.txt memory.svg report.html; do
  rm -f "$out/$f"
done

printf 'oomgate run %q --out %q' "$scenario" "$out"
if [ ${#args[@]} -gt 0 ]; then printf ' %q' "${args[@]}"; fi
printf '\n'
oomgate run "$scenario" --out "$out" ${args[@]+"${args[@]}"}
code=$?

case "$code" in
  0) verdict=pass ;;
  1) verdict=fail ;;
  3) verdict=inconclusive ;;
  *) verdict=error ;;
esac
case "$out" in
  /*) report_dir="$out" ;;
  *) report_dir="$PWD/$out" ;;
esac
if [ -d "$report_dir" ]; then report_dir=$(cd "$report_dir" && pwd -P); fi

set_output verdict "$verdict"
set_output exit-code "$code"
set_output report-dir "$report_dir"
echo "oomgate: verdict $verdict (exit code $code), reports in $report_dir"

# --- report.json readers: jq, or python3 where jq is missing -------------------------------------
report="$out/report.json"

# Workflow-command annotations, one per finding that is not a pass. GitHub requires `%`, CR and LF
# to be escaped in the message, and additionally `:` and `,` in property values such as title.
annotations() {
  if [ "$json_tool" = jq ]; then
    jq -r '
      def data: gsub("%"; "%25") | gsub("\r"; "%0D") | gsub("\n"; "%0A");
      def prop: data | gsub(":"; "%3A") | gsub(","; "%2C");
      .findings[]?
      | select(.severity == "fail" or .severity == "inconclusive" or .severity == "warn")
      | (if .severity == "warn" then "warning" else "error" end) as $level
      | "::\($level) title=\(("oomgate " + (.rule // "finding")) | prop)::\((.message // "") | data)"
    ' "$report"
  else
    python3 - "$report" <<'PY'
import json, sys

def data(s):
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

def prop(s):
    return data(s).replace(":", "%3A").replace(",", "%2C")

with open(sys.argv[1], encoding="utf-8") as f:
    report = json.load(f)
for finding in report.get("findings") or []:
    severity = finding.get("severity")
    if severity not in ("fail", "inconclusive", "warn"):
        continue
    level = "warning" if severity == "warn" else "error"
    title = prop("oomgate " + str(finding.get("rule") or "finding"))
    print(f"::{level} title={title}::{data(str(finding.get('message') or ''))}")
PY
  fi
}

# A short summary for when summary.md is missing (an older oomgate, or no verdict at all).
fallback_summary() {
  printf '## oomgate: %s (exit code %s)\n\n' "$verdict" "$code"
  if [ ! -f "$report" ]; then
    printf 'No report was written: see the job log for the error.\n'
    return
  fi
  if [ "$json_tool" = jq ]; then
    jq -r '.findings[]? | select(.severity != "pass")
      | "- **\(.severity)** `\(.rule)`: \((.message // "") | gsub("\\s*[\r\n]+\\s*"; " "))"' "$report"
  else
    python3 - "$report" <<'PY'
import json, re, sys
with open(sys.argv[1], encoding="utf-8") as f:
    report = json.load(f)
for finding in report.get("findings") or []:
    if finding.get("severity") != "pass":
        message = re.sub(r"\s*[\r\n]+\s*", " ", str(finding.get("message") or ""))
        print(f"- **{finding.get('severity')}** `{finding.get('rule')}`: {message}")
PY
  fi
}

# --- step summary and annotations ----------------------------------------------------------------
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  if [ -f "$out/summary.md" ]; then
    cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"
  else
    fallback_summary >> "$GITHUB_STEP_SUMMARY" || echo "oomgate: could not write the step summary" >&2
  fi
fi

if [ -f "$report" ]; then
  annotations || echo "::warning title=oomgate::could not read the findings from $report"
elif [ "$verdict" = error ]; then
  echo "::error title=oomgate::oomgate exited with code $code before writing a report: see the log of this step"
fi

# --- pull-request comment: opt-in, never changes the exit code ---------------------------------
case "${OOMGATE_ACTION_COMMENT:-false}" in
  true)
    if [ -f "$out/summary.md" ]; then
      comment_log=$(oomgate report comment "$out" --comment-to github 2>&1)
      comment_rc=$?
      printf '%s\n' "$comment_log"
      warning=$(printf '%s\n' "$comment_log" | sed -n 's/^oomgate: warning: //p' | head -n 1)
      if [ -n "$warning" ] || [ "$comment_rc" != 0 ]; then
        warning=${warning:-oomgate report comment exited with code $comment_rc}
        warning=${warning//%/%25}
        echo "::warning title=oomgate comment::${warning}"
      fi
    else
      echo "::warning title=oomgate comment::no summary.md was written: no pull-request comment"
    fi
    ;;
  false | '') ;;
  *) echo "::warning title=oomgate comment::input comment must be true or false, got '${OOMGATE_ACTION_COMMENT}'" ;;
esac

exit "$code"
