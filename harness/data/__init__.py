"""Data layer: PDEBench file catalog, readers, synthetic generators, downloader, checks."""
