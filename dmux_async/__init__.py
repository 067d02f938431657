"""dmux: throw-away Docker containers in tmux panes, frozen with ``docker pause``."""

__version__ = "0.1.0"
