"""`python -m nngraph`: the same as the `nngraph` command."""
import sys

from nngraph.cli import main

sys.exit(main())
