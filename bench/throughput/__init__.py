"""The modules of ``bench/train_throughput.py``, the training-throughput benchmark.

- ``images``: the synthetic CUB-like JPEG data set;
- ``paths``: the data paths compared (PIL DataLoader, fast loader, synthetic bound) and the fast
  loader's variants;
- ``timing``: the model and training step, timed runs, GPU time by CUDA stream;
- ``diagnostics``: side measurements of the fast path (pixel agreement, CPU cost per image);
- ``report``: the summary, the Markdown table and the results files.
"""
