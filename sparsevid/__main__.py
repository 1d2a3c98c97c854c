"""``python -m sparsevid ...`` = the ``sparsevid`` command."""
import sys

from sparsevid.cli import main

sys.exit(main())
