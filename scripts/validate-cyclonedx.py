#!/usr/bin/env python3
"""Validates a CycloneDX JSON document against the official schema shipped with PyPI's
cyclonedx-python-lib (bom-<version>.SNAPSHOT.schema.json and the spdx/jsf schemas it references).
Usage: validate-cyclonedx.py FILE [SPEC_VERSION]. Exit 0 when valid; otherwise the errors on stderr."""
import json
import os
import sys

import cyclonedx.schema
import jsonschema
from referencing import Registry, Resource


def main() -> int:
    path = sys.argv[1]
    version = sys.argv[2] if len(sys.argv) > 2 else "1.5"
    resources = os.path.join(os.path.dirname(cyclonedx.schema.__file__), "_res")
    with open(os.path.join(resources, f"bom-{version}.SNAPSHOT.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    registry = Registry()
    for name in ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json", "cryptography-defs.SNAPSHOT.schema.json"):
        full = os.path.join(resources, name)
        if os.path.exists(full):
            with open(full, encoding="utf-8") as f:
                registry = registry.with_resource(name, Resource.from_contents(json.load(f)))
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    validator = jsonschema.Draft7Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    for error in errors[:20]:
        print(f"{'/'.join(str(p) for p in error.path)}: {error.message}", file=sys.stderr)
    if errors:
        return 1
    print(f"{path}: valid CycloneDX {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
