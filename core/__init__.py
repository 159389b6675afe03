"""BlankLogo bots: the job model, store, queue, worker, ops and CLI."""

__version__ = "0.1.0"
