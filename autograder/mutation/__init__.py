"""Mutation analysis of the reference's student regions (``python -m autograder mutation``).

``analysis`` runs Cosmic Ray over the regions with ``oracle`` as its test command;
``cosmic-ray.toml`` is Cosmic Ray's configuration and ``equivalent.toml`` lists the mutants that
change nothing a student could be marked down for, each with its reason.
"""


def register(subparsers) -> None:
    # Imported here, so that running the oracle (a module of this package) stays light.
    from autograder.mutation.analysis import register as register_command

    register_command(subparsers)
