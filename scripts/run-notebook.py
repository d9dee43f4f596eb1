"""Executes examples/advmoe.ipynb headless on the Deno kernel and checks what it shows.

Run by scripts/check.sh after scripts/setup.sh installed nbclient into .venv and the Deno
kernelspec into .cache/jupyter (never the user's Jupyter folders). Fails (exit 1) when a cell
errors, when any output is an error or when the outputs lack:
  - a Vega-Lite chart (application/vnd.vegalite.v5+json),
  - the evaluation report's table (text/html holding the report's own accuracies),
  - a training display that was updated in place (update_display_data for the display_id
    of an earlier display_data) and ended in its final state.
Before that, the code cells are type-checked as one module with `deno check`, since the kernel
runs cells unchecked. The executed copy is written to runs/notebook/advmoe.ipynb (or --out).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
VEGA_LITE = "application/vnd.vegalite.v5+json"


class RecordingClient(NotebookClient):
    """Keeps every display message, since nbclient folds updates into the outputs they update.

    Also keeps a cell's outputs that reach iopub after the kernel reported the cell idle:
    Deno's kernel forwards console output and a cell's value on their own tasks, so under
    load a cell's last lines can arrive while the next cell runs, and nbclient drops
    messages of a cell it has moved on from. They go to the cell whose request they answer.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.displays: list[tuple[str, str, dict]] = []  # (msg_type, display_id, data)
        self.cells: dict[str, tuple[object, int]] = {}  # request msg_id -> (cell, index)
        self.late: list[tuple[int, str]] = []  # (cell index, msg_type) of late messages

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        self.cells[parent_msg_id] = (cell, cell_index)
        while True:
            msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=None))
            parent = msg["parent_header"].get("msg_id")
            if parent == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    return
            elif parent in self.cells and msg["msg_type"] != "status":
                earlier, index = self.cells[parent]
                self.late.append((index, msg["msg_type"]))
                try:
                    self.process_message(msg, earlier, index)
                except CellExecutionComplete:
                    pass

    def process_message(self, msg, cell, cell_index):
        msg_type = msg["msg_type"]
        if msg_type in ("display_data", "update_display_data"):
            display_id = msg["content"].get("transient", {}).get("display_id")
            if display_id:
                self.displays.append((msg_type, display_id, msg["content"].get("data", {})))
        return super().process_message(msg, cell, cell_index)


def pct(x: float) -> str:
    """The display module's percentage format (ts/display/html.ts)."""
    return f"{100 * x:.1f}%"


def js_fixed1(x: float) -> str:
    """JavaScript's toFixed(1) of 100*x, which rounds the binary value half away from zero."""
    from decimal import ROUND_HALF_UP, Decimal

    return f"{Decimal(100 * x).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def check(nb, client: RecordingClient) -> list[str]:
    problems: list[str] = []
    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.get("outputs", [])]

    for i, o in outputs:
        if o.output_type == "error":
            problems.append(f"cell {i}: {o.ename}: {o.evalue}")

    bundles = [(i, o.data) for i, o in outputs if o.output_type in ("display_data", "execute_result")]
    charts = [d[VEGA_LITE] for _, d in bundles if VEGA_LITE in d]
    if not charts:
        problems.append(f"no {VEGA_LITE} output")

    # The report: an HTML table beside a chart whose "Accuracy per attack" data it must show.
    reports = []
    for _, d in bundles:
        html, chart = d.get("text/html", ""), d.get(VEGA_LITE)
        if not (isinstance(chart, dict) and "<table" in html):
            continue
        for part in chart.get("hconcat", chart.get("vconcat", [chart])):
            if part.get("title") == "Accuracy per attack":
                reports.append((html, part["data"]["values"]))
    if not reports:
        problems.append("no evaluation report (an HTML table with an 'Accuracy per attack' chart)")
    for html, values in reports:
        inputs = {v["input"] for v in values}
        for name in ("clean", "pgd", "router", "pathway"):
            if not any(name in label for label in inputs):
                problems.append(f"report: no row for {name!r} (rows: {sorted(inputs)})")
        for v in values:
            if pct(v["accuracy"]) not in html and js_fixed1(v["accuracy"]) not in html:
                problems.append(f"report table lacks {v['input']}'s accuracy {pct(v['accuracy'])}")

    # The training display: shown once, then updated in place under the same display_id.
    shown = {d for t, d, _ in client.displays if t == "display_data"}
    updates = [(d, data) for t, d, data in client.displays if t == "update_display_data" and d in shown]
    if not updates:
        problems.append(
            f"no update_display_data for a shown display (display messages: {len(client.displays)})"
        )
    else:
        display_id, last = updates[-1]
        html = last.get("text/html", "")
        if "done" not in html or VEGA_LITE not in last:
            problems.append(f"the last update of {display_id} is not a finished run with its chart")
        # nbclient applies updates to the output they name: its final state is the last update.
        if not any(o.output_type == "display_data" and o.data.get("text/html") == html for _, o in outputs):
            problems.append(f"no output holds the final state of display {display_id}")

    # What the cells print: the learning rate change took effect, the resumed trainer's next
    # step is the one the original trainer takes.
    stdout = "".join(o.text for _, o in outputs if o.output_type == "stream" and o.name == "stdout")
    if not re.search(r"ran with learning rates \{ router: 0\.05, expert: 0\.05 \}", stdout):
        problems.append("no step ran with the learning rate set mid-run (0.05)")
    steps = dict(re.findall(r"next step, (original|resumed): +(step \d+, loss \S+)", stdout))
    if len(steps) != 2 or steps["original"] != steps["resumed"]:
        problems.append(f"the resumed trainer's next step differs from the original's: {steps}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebook", nargs="?", default=str(ROOT / "examples" / "advmoe.ipynb"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "notebook" / "advmoe.ipynb"))
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    args = parser.parse_args()

    jupyter = ROOT / ".cache" / "jupyter"
    if not (jupyter / "kernels" / "deno" / "kernel.json").is_file():
        print(f"run-notebook: no Deno kernelspec in {jupyter}; run scripts/setup.sh", file=sys.stderr)
        return 1
    # Only the private kernelspec folder: the user's Jupyter set-up plays no part.
    os.environ["JUPYTER_PATH"] = str(jupyter)
    os.environ["JUPYTER_DATA_DIR"] = str(jupyter)
    os.environ["JUPYTER_CONFIG_DIR"] = str(ROOT / ".cache" / "jupyter-config")
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"

    nb = nbformat.read(args.notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("outputs"):
            print(f"run-notebook: {args.notebook} is committed with outputs; clear them", file=sys.stderr)
            return 1
    # Deno's kernel runs cells without type-checking them: check them first, as one module.
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Inside the checkout, so that "advmoe" resolves to it as it does for the notebook.
    module = ROOT / "runs" / "notebook" / (Path(args.notebook).stem + ".ts")
    module.parent.mkdir(parents=True, exist_ok=True)
    sources = [c.source.rstrip() + ";" for c in nb.cells if c.cell_type == "code"]
    module.write_text("\n\n".join(sources) + "\nexport {};\n")
    deno = ROOT / "node_modules" / ".bin" / "deno"
    if subprocess.run([str(deno), "check", "--quiet", str(module)], cwd=ROOT).returncode != 0:
        print(f"run-notebook: the notebook's cells do not type-check ({module})", file=sys.stderr)
        return 1

    client = RecordingClient(
        nb,
        kernel_name="deno",
        timeout=args.timeout,
        resources={"metadata": {"path": str(ROOT / "examples")}},
    )
    failed = None
    try:
        client.execute()
    except CellExecutionError as err:
        failed = str(err)
    nbformat.write(nb, out)
    print(f"run-notebook: executed copy in {out}")
    if failed:
        print(f"run-notebook: a cell failed:\n{failed}", file=sys.stderr)
        return 1
    if client.late:
        print(f"run-notebook: {len(client.late)} message(s) arrived after their cell was idle: {client.late}")
    problems = check(nb, client)
    for p in problems:
        print(f"run-notebook: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"run-notebook: ok ({len(client.displays)} display messages, all assertions hold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
