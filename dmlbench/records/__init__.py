"""Records (SQLite, CSV, TensorBoard), reports and plots.

The package imports nothing by itself: each module is imported where it is used, so that a
lower layer reading the record store does not load the report writers."""
