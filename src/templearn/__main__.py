"""`python -m templearn` = the `templearn` command (how `templearn run` starts its tasks)."""

from templearn.cli import main

main()
