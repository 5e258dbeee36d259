"""Evaluation: Inception features, KID/KMMD/FID, scoring runs, and the research sweep."""
