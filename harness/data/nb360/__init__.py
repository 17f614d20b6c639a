"""NAS-Bench-360 data: catalog, readers for the published formats, synthetic stand-ins, checks."""
