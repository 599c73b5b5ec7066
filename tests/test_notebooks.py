"""The scenario studies in examples/*.ipynb run top to bottom from a clean kernel.

Each notebook is executed with nbclient in a fresh ``python3`` kernel (this interpreter's
ipykernel), working directory ``examples/``; any cell error fails the test. The notebooks are
committed without outputs, so this is the only place they are run in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import ipykernel  # noqa: F401  (the kernel the notebooks run in; the test extra installs it)
import nbclient
import nbformat

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_there_are_at_least_four_studies():
    assert len(NOTEBOOKS) >= 4, [p.name for p in NOTEBOOKS]


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, f"{path.name}: cells {dirty} hold outputs; strip them before committing"


# jupyter_core warns (DeprecationWarning) on every kernel start until JUPYTER_PLATFORM_DIRS is
# set; zmq/jupyter_client may warn about the event loop policy on some Python versions. Neither
# concerns trafficsim.
@pytest.mark.filterwarnings("ignore:Jupyter is migrating its paths:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:jupyter_client")
@pytest.mark.filterwarnings("ignore::DeprecationWarning:zmq")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_from_a_clean_kernel(path: Path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
        extra_arguments=["--HistoryManager.enabled=False"],
    )
    client.execute()      # raises CellExecutionError naming the cell on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    warnings = [o["text"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "stream" and o.name == "stderr" and "Warning" in o["text"]]
    assert not warnings, f"{path.name} printed warnings:\n" + "\n".join(warnings)
