"""Figures and the self-contained HTML run report."""
