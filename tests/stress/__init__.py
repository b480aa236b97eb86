"""Heavier reliability runs (faults under load, floods); ``benchmarks/soak.py`` runs the
same scenarios (``scenarios.py``) at full size."""
