"""`python -m nngraph`: the same as the `nngraph` command."""
from nngraph.cli import program

program()
