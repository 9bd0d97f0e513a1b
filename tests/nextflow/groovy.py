"""Groovy without the Nextflow engine: the runtime inside Nextflow's language server (the
jar ../shared/tools/nf-lint fetches) running tests/nextflow/harness.groovy."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NF_LINT = ROOT.parent / "shared" / "tools" / "nf-lint"
HARNESS = Path(__file__).with_name("harness.groovy")


def language_server_jar() -> Path | None:
    """The jar (it carries Groovy 4), fetched once with nf-lint's own code; None if it
    cannot be had or run here."""
    if shutil.which("java") is None:
        return None
    cache = Path(os.environ.get("NF_LINT_CACHE", Path.home() / ".cache" / "nf-lint"))
    jar = cache / "language-server-all.jar"
    if not jar.exists() and NF_LINT.is_file():
        loader = importlib.machinery.SourceFileLoader("nf_lint", str(NF_LINT))
        spec = importlib.util.spec_from_loader("nf_lint", loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        try:
            module.language_server_jar()
        except (OSError, subprocess.CalledProcessError):
            return None
    return jar if jar.exists() else None


def run_harness(jar: Path, request: dict[str, Any]) -> Any:
    """harness.groovy's JSON answer to `request`."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(request, handle)
        handle.flush()
        done = subprocess.run(["java", "-cp", str(jar), "groovy.ui.GroovyMain", str(HARNESS),
                               handle.name], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"harness.groovy failed:\n{done.stderr}")
    return json.loads(done.stdout)
