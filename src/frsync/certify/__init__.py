"""`frsync certify`: grade a connector, in any language, against the API's bad days (SPEC §11).

It runs the connector once per scenario against a fresh tenant of a sandbox, then judges what
the connector did from the sandbox's journal and the tenant's final state alone:

- `scenarios`  the seven scenarios: each one's faults and pass conditions
- `checks`     the pass conditions, pure functions over journal entries and FR state
- `journal`    journal entries as the judge reads them
- `admin`      the sandbox's admin API and the tenant's reads, over HTTP only
- `process`    the connector's process: environment, time limit, process-group kill
- `run`        `run_certification`: the scenarios, concurrently
- `report`, `html`  the JSON report and the HTML page drawn from it
"""

from frsync.certify.admin import CertifyError
from frsync.certify.run import run_certification, scenario_names
from frsync.certify.scenarios import SCENARIOS

__all__ = ["SCENARIOS", "CertifyError", "run_certification", "scenario_names"]
