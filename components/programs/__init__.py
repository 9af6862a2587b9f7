"""Programs the platform runs in its pods, as files: the setup Jobs' (``mlflow_accounts``, ``milvus_accounts``), the
Grafana access CronJob's (``grafana_tenant_access``) and the pipeline's register step (``register_model``). Each is a
plain Python module with a ``main()`` (standard library only, but for the register step's MLflow client and boto3,
which its image has), linted and tested as such; components ship its text (``source``), never import it.

A Job runs one ``python -c`` text and the CronJob one mounted file, so the shared helper ``wait`` travels inside the
program: ``source`` puts ``wait.py``'s text in place of the program's line ``from .wait import ...``.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
HELPER_IMPORT = re.compile(r"^from \.wait import .*\n", re.MULTILINE)


def source(name: str) -> str:
    """The text that runs in the pod: ``<name>.py``, with ``wait.py`` inlined where it imports it."""
    helper = (HERE / "wait.py").read_text()
    return HELPER_IMPORT.sub(lambda _: helper, (HERE / f"{name}.py").read_text(), count=1)
