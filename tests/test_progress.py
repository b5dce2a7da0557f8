"""The training bar moves with every batch: each redraw shows the count of steps done so far."""

import io
import re

from dmlbench.progress import advance, progress


def test_bar_shows_every_step_with_its_postfix() -> None:
    stream = io.StringIO()
    bar = progress(total=5, desc="epoch 1", file=stream, mininterval=0, miniters=1)
    for step in range(5):
        advance(bar, loss=f"{1.0 / (step + 1):.4f}")
    bar.close()
    frames = [f for f in re.split(r"[\r\n]", stream.getvalue()) if "epoch 1" in f]
    counts = [int(m.group(1)) for f in frames if (m := re.search(r"(\d)/5", f))]
    assert counts[-5:] == [1, 2, 3, 4, 5]
    assert "loss=0.2000" in frames[-1] or any("loss=0.2000" in f for f in frames)


def test_iterating_with_set_postfix_would_show_stale_counts() -> None:
    """The failure this guards against: ``for x in bar`` + ``set_postfix`` redraws 0/N."""
    stream = io.StringIO()
    bar = progress(range(5), desc="epoch 1", file=stream, mininterval=30)
    for step in bar:
        bar.set_postfix(loss=step)
    frames = [f for f in re.split(r"[\r\n]", stream.getvalue()) if "epoch 1" in f and "loss=3" in f]
    assert frames and all(" 0/5" in f for f in frames)
