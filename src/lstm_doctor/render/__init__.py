"""Renderers: show a Report. They read report data only and compute nothing."""
