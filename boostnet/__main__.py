"""``python -m boostnet``: the command line (see :mod:`boostnet._entry`)."""

from ._entry import main

main()
