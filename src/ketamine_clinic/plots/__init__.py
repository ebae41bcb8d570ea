"""Presentation: figures built from core results (matplotlib PNGs for the command line,
plotly figures for the web). Not part of the pure core."""
