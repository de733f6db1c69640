"""Developer scripts, run as files (``python scripts/cluster.py``, ``scripts/bench_quorum.py``).

A package only so that the tests can import the helpers they share with the scripts
(``from scripts.node_process import NodeProcess``); scripts never import ``tests``.
"""
