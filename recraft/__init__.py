"""recraft."""
