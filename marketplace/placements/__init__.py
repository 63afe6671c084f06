"""Recommendations, placements and the first-wage follow-up."""
