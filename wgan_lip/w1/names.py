"""The names of the W1 critics, importable without torch (the CLI's ``--help`` lists them)."""

CRITICS = ("family", "groupsort", "bcop", "gp", "lp", "sn", "clip")
CERTIFIED = frozenset({"groupsort", "bcop", "family"})
