"""The sweeper's error, in a private module: Hydra's plugin discovery re-executes the package's
public modules, and a class defined in one of them would then exist twice."""


class SweeperError(Exception):
    """The sweep cannot go on (bad search space, too many failed trials)."""
