"""The ``wgan-lip`` command (placeholder until the W1 issue adds subcommands)."""


def main() -> int:
    print("wgan-lip: no subcommands yet")
    return 0
