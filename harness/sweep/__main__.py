"""``python -m harness.sweep``."""
import sys

from harness.sweep.cli import main

sys.exit(main())
