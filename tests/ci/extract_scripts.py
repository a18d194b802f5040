"""Write the shell scripts embedded in CI files to DIR, for shellcheck.

  gitlab FILE DIR   every job's before_script + script, and after_script, as POSIX sh
                    ($[[ inputs.NAME ]] becomes ${INPUT_NAME})
  action FILE DIR   every `run:` step of a composite action, as bash
                    (${{ EXPRESSION }} becomes a placeholder word)

Prints the written file names, one a line.
"""

import re
import sys
from pathlib import Path

from ruamel.yaml import YAML


def lines(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def gitlab(path: Path, out: Path) -> None:
    text = re.sub(
        r"\$\[\[\s*inputs\.([\w-]+)[^\]]*\]\]",
        lambda m: "${INPUT_" + m.group(1).upper().replace("-", "_") + "}",
        path.read_text(),
    )
    for doc in YAML(typ="safe").load_all(text):
        if not isinstance(doc, dict) or "spec" in doc:
            continue
        for name, job in doc.items():
            if not isinstance(job, dict):
                continue
            parts = {
                "script": lines(job.get("before_script")) + lines(job.get("script")),
                "after_script": lines(job.get("after_script")),
            }
            for part, body in parts.items():
                if not body:
                    continue
                safe = re.sub(r"[^\w.-]+", "_", f"{name}.{part}")
                target = out / f"gitlab.{safe}.sh"
                # GitLab runs the lines in one shell with `set -e` (sh) or `set -eo pipefail` (bash).
                target.write_text("#!/bin/sh\nset -e\n" + "\n".join(body) + "\n")
                print(target)


def action(path: Path, out: Path) -> None:
    text = re.sub(r"\$\{\{[^}]*\}\}", "expr_placeholder", path.read_text())
    doc = YAML(typ="safe").load(text)
    for i, step in enumerate((doc.get("runs") or {}).get("steps") or []):
        if "run" not in step:
            continue
        shell = step.get("shell", "bash")
        if shell not in ("bash", "sh"):
            continue
        target = out / f"action.step{i}.{step.get('id', 'run')}.sh"
        target.write_text(f"#!/usr/bin/env {shell}\nset -e\n{step['run']}\n")
        print(target)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("gitlab", "action"):
        sys.exit(__doc__)
    {"gitlab": gitlab, "action": action}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
