#!/usr/bin/env python3
"""The JSON Schema of job files (`scraperd schema`) against the files the project has:

- it is a valid draft 2020-12 schema;
- every job file in examples/ and systemd/, and every ```yaml block of README.md and docs/,
  validates (the blocks must also load with `scraperd check`, so they are real job files);
- every file of tests/config/bad/ that is a type or key error fails it, and every other bad
  file is listed as one the schema cannot see (a new bad file must be put in one list).

Usage: schema_test.py SCRAPERD_BINARY SOURCE_DIR
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import jsonschema
import yaml

# Mistakes of type or key: the schema rejects them as the loader does.
TYPE_OR_KEY_ERRORS = {
    "bad-bool.yaml", "bad-duration.yaml", "bad-method.yaml", "bad-robots.yaml",
    "bad-size.yaml", "bad-store.yaml", "bad-url-scheme.yaml", "bad-json-pointer.yaml",
    "duration-no-unit.yaml", "every-and-cron.yaml", "jobs-not-list.yaml", "missing-name.yaml",
    "missing-url.yaml", "notify-no-webhook.yaml", "proxy-scheme.yaml",
    "retries-out-of-range.yaml", "tls-not-mapping.yaml", "tls-unknown-key.yaml",
    "two-sources.yaml", "unknown-default-key.yaml", "unknown-key.yaml",
    "wrong-type-concurrency.yaml", "zero-burst.yaml", "zero-duration.yaml", "zero-rate.yaml",
    "bad-listen.yaml", "empty.yaml", "namespaces-field-scalar.yaml",
    "namespaces-not-mapping.yaml",
}
# Mistakes a schema cannot see: what values mean (CSS, XPath, regex, cron, time zones, ranges
# in URLs), relations between keys and files, and text that is not YAML.
BEYOND_A_SCHEMA = {
    "backwards-range.yaml", "bad-css-of-type.yaml", "bad-css-pseudo.yaml", "bad-css-syntax.yaml",
    "namespaces-undeclared.yaml",
    "bad-follow-css.yaml", "bad-regex.yaml", "bad-timezone.yaml", "bad-xpath.yaml",
    "binary-garbage.yaml", "body-with-get.yaml", "ca-file-missing.yaml", "connect-longer.yaml",
    "cron-bad-name.yaml", "cron-four-fields.yaml", "cron-minute-range.yaml",
    "cron-zero-step.yaml", "deep-nesting.yaml", "duplicate-job.yaml", "duplicate-key.yaml",
    "include-loop.yaml", "include-missing.yaml", "latin1.yaml", "missing-env.yaml",
    "missing-schedule.yaml", "tab-indent.yaml", "unterminated-quote.yaml",
}


def main():
    binary, source = sys.argv[1], sys.argv[2]
    schema = json.loads(subprocess.run([binary, "schema"], check=True, capture_output=True,
                                       text=True).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failures = []

    def errors(doc):
        return sorted(validator.iter_errors(doc), key=lambda e: list(e.path))

    # Examples: whole job files.
    examples = sorted(glob.glob(os.path.join(source, "examples", "*.yaml")) +
                      glob.glob(os.path.join(source, "systemd", "*.yaml")))
    if not examples:
        failures.append("no example job files found")
    for path in examples:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for e in errors(doc):
            failures.append(f"{path}: {'/'.join(map(str, e.path))}: {e.message}")

    # Blocks of the docs: each valid against the schema, and those with `jobs` (whole job files
# rather than fragments) load with scraperd check.
    blocks = 0
    env = dict(os.environ, SHOP_TOKEN="t0ken", REPORT_TOKEN="t0ken", API_TOKEN="t0ken",
               SCRAPERD_API_TOKEN="t0ken")
    for doc_path in [os.path.join(source, "README.md")] + sorted(
            glob.glob(os.path.join(source, "docs", "*.md"))):
        with open(doc_path, encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"^```ya?ml\n(.*?)^```", text, re.S | re.M):
            line = text[:m.start()].count("\n") + 1
            where = f"{os.path.relpath(doc_path, source)}:{line}"
            blocks += 1
            doc = yaml.safe_load(m.group(1))
            for e in errors(doc):
                failures.append(f"{where}: {'/'.join(map(str, e.path))}: {e.message}")
            if not isinstance(doc, dict) or "jobs" not in doc:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                job_file = os.path.join(tmp, "jobs.yaml")
                with open(job_file, "w", encoding="utf-8") as f:
                    f.write(m.group(1))
                os.makedirs(os.path.join(tmp, "jobs.d"))  # `include: jobs.d`
                with open(os.path.join(tmp, "jobs.d", "more.yaml"), "w") as f:
                    f.write("jobs: []\n")
                check = subprocess.run([binary, "check", "--config", job_file], env=env,
                                       capture_output=True, text=True)
                if check.returncode != 0:
                    failures.append(f"{where}: scraperd check fails: {check.stdout.strip()} {check.stderr.strip()}")
    if blocks < 4:
        failures.append(f"only {blocks} yaml blocks found in README.md and docs/")

    # The bad-file corpus.
    bad_dir = os.path.join(source, "tests", "config", "bad")
    bad = {os.path.basename(p) for p in glob.glob(os.path.join(bad_dir, "*.yaml"))}
    for name in sorted(bad - TYPE_OR_KEY_ERRORS - BEYOND_A_SCHEMA):
        failures.append(f"tests/config/bad/{name}: in neither list of {sys.argv[0]}")
    for name in sorted((TYPE_OR_KEY_ERRORS | BEYOND_A_SCHEMA) - bad):
        failures.append(f"tests/config/bad/{name}: listed but not in the corpus")
    for name in sorted(TYPE_OR_KEY_ERRORS & bad):
        with open(os.path.join(bad_dir, name), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        if not errors(doc):
            failures.append(f"tests/config/bad/{name}: a type/key error the schema accepts")

    for f in failures:
        print("FAIL:", f)
    print(f"{len(examples)} example files, {blocks} doc blocks, "
          f"{len(TYPE_OR_KEY_ERRORS & bad)} bad files rejected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
