"""Work x unit costs = projected seconds per phase (pure arithmetic), and how it is printed."""

from __future__ import annotations

from dataclasses import dataclass, field

from dmlbench.estimate.probe import UnitCosts
from dmlbench.estimate.workload import Workload

#: The report's own cost (figures and files), measured on the demo: ~0.4 s of retrieval figures
#: and ~1.5 s of writing on a 2-core CPU (bench/results/demo_profile_cpu.md).
REPORT_S = 2.0


@dataclass
class Projection:
    phases: dict[str, float]
    assumptions: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return sum(self.phases.values())


def project(work: Workload, costs: UnitCosts, startup_s: float) -> Projection:
    """Seconds per phase: start-up of every process, fold set-up, training steps, validation
    (embedding + scoring), test (embedding + scoring), reports (files, figures and the retrieval
    examples' k-NN)."""
    phases = {
        "start-up": work.jobs * (startup_s + costs.dataset_s),
        "fold set-up": work.fold_trainings * costs.fold_setup_s,
        "training steps": work.training_steps * costs.step_s,
    }
    for split, name in (("val", "validation"), ("test", "test")):
        embedding = sum(costs.embedding(images) for images in work.passes[split])
        scoring = sum(costs.scoring(q, r) for q, r in work.scorings[split])
        phases[name] = embedding + scoring
    examples = sum(costs.example_search(q, r) for q, r in work.example_searches)
    phases["report"] = work.reports * REPORT_S + examples
    return Projection(phases)


def duration(seconds: float) -> str:
    """``2.5 s``, ``42 s``, ``7.5 min``, ``3.2 h``, ``2.1 days``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def format_projection(projection: Projection, costs: UnitCosts, work: Workload, device: str) -> str:
    """The lines --estimate prints: the phases, the measured unit costs, the assumptions, and
    the one-line total last."""
    lines = [f"estimate on {device}: probe measured"]
    lines.append(
        f"  training step {1000 * costs.step_s:.0f} ms, fold set-up {costs.fold_setup_s:.1f} s, "
        f"embedding {1000 * costs.embed_per_image_s:.2f} ms/image (+{costs.embed_fixed_s:.2f} s a pass), "
        f"scoring {1e9 * costs.score_per_pair_s:.2f} ns/pair (+{costs.score_fixed_s:.2f} s)"
    )
    lines.append(
        f"  work: {work.jobs} process(es), {work.fold_trainings} fold training(s), "
        f"{work.training_steps:,} steps, {len(work.passes['val'])} validation and "
        f"{len(work.passes['test'])} test embedding passes"
    )
    width = max(len(name) for name in projection.phases)
    for name, seconds in projection.phases.items():
        share = 100 * seconds / projection.total_s if projection.total_s else 0.0
        lines.append(f"  {name:<{width}}  {duration(seconds):>10}  {share:5.1f}%")
    lines += [f"  assumes {assumption}" for assumption in projection.assumptions]
    lines.append(f"estimate: {duration(projection.total_s)} in total on {device}")
    return "\n".join(lines)
