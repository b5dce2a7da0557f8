"""meta/phase_times.json (wall) and meta/phase_cpu_times.json (CPU) per phase: CPU counts this
process's threads and its finished child processes, not time spent waiting."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from dmlbench.records.environment import CPU_FILE, phase_times, timed_phase

BUSY = "import time\nstart = time.process_time()\nwhile time.process_time() - start < {0}: pass\n"


def test_wall_and_cpu_seconds_per_phase(tmp_path):
    meta = tmp_path / "meta"
    with timed_phase(meta, "waiting"):
        time.sleep(0.3)
    with timed_phase(meta, "working"):
        exec(BUSY.format(0.3))  # 0.3 s of this process's CPU
        subprocess.run([sys.executable, "-c", BUSY.format(0.3)], check=True)  # and a child's
    wall, cpu = phase_times(meta), phase_times(meta, CPU_FILE)
    assert wall["waiting"] >= 0.3 and cpu["waiting"] < 0.1
    assert cpu["working"] >= 0.6 and wall["working"] >= 0.6
    on_disk = json.loads((meta / "phase_cpu_times.json").read_text())
    assert on_disk == cpu
    with timed_phase(meta, "waiting"):  # a resumed phase adds up
        time.sleep(0.1)
    assert phase_times(meta)["waiting"] >= 0.4 and set(phase_times(meta, CPU_FILE)) == {"waiting", "working"}
