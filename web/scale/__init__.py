"""Chongqing-scale data (``laowu demo --scale chongqing``): see ``web/scale/generate.py``
and docs/operations.md, "Chongqing-scale data"."""
