"""Print a composite action (action.yml) as a reusable workflow, for actionlint.

actionlint lints workflows only. Its checks of expressions (contexts, step ids and outputs,
input names), `if:` conditions, `uses:` references and step syntax apply to a composite action's
steps unchanged when they are the steps of one workflow_call job whose inputs are the action's
inputs and whose outputs are the action's outputs. The output is JSON, which is YAML.

usage: python3 action_as_workflow.py ci-templates/github/action.yml > action-as-workflow.yml
"""

import json
import sys

from ruamel.yaml import YAML


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        action = YAML(typ="safe").load(f)
    runs = action.get("runs") or {}
    if runs.get("using") != "composite":
        sys.exit(f"{path}: runs.using is {runs.get('using')!r}, not composite")
    inputs = {}
    for name, spec in (action.get("inputs") or {}).items():
        spec = spec or {}
        entry = {"type": "string", "required": bool(spec.get("required", False))}
        if "default" in spec:
            entry["default"] = str(spec["default"])
        inputs[name] = entry
    workflow = {
        "name": f"composite action {action.get('name', path)}",
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {
            "action": {
                "runs-on": "ubuntu-latest",
                "outputs": {
                    name: spec["value"] for name, spec in (action.get("outputs") or {}).items()
                },
                "steps": runs.get("steps") or [],
            }
        },
    }
    json.dump(workflow, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
