"""Search and matching: taxonomy, normalisation, search backends, ranking.

Built by the jobs-and-matching issue; may import ``marketplace``, never ``web``.
"""
