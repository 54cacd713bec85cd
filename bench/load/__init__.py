"""Load test and fault drills (issue #6): `run_load.py`, `drills.py`; see docs/reliability.md."""
