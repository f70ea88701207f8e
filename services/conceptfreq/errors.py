"""Errors a user can act on. The CLI prints them as one line (exit 2); servicers map them to gRPC
status codes (see adapters/grpc_server.py). Anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """Bad input or configuration; the message says what to do."""


class NotFoundError(UserError):
    """A named thing (dataset, concept, vocabulary version) does not exist."""


class UnavailableError(Exception):
    """A backing service (store, broker, inference server) cannot be reached; retrying may help."""
