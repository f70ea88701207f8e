"""gRPC plumbing shared by every service: health checking, reflection, and error mapping.

Servicers stay small: they validate, delegate to core, and let `grpc_errors` turn the project's
error types into status codes, so no client ever sees a bare traceback.
"""

from __future__ import annotations

import functools
import inspect
import logging
import signal
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Callable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from conceptfreq.adapters.grpc_security import ServerSecurity
from conceptfreq.adapters.metrics import GRPC_REQUESTS, GRPC_SECONDS
from conceptfreq.errors import NotFoundError, UnavailableError, UserError

log = logging.getLogger(__name__)

# Most specific first: NotFoundError is a UserError.
_STATUS = [
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (UserError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
]


def status_for(error: BaseException) -> grpc.StatusCode:
    for kind, code in _STATUS:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def grpc_errors(method: Callable) -> Callable:
    """Decorate a servicer method (unary or streaming) to abort with the error's status code."""

    def abort(context, error: Exception):
        code = status_for(error)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("internal error in %s", method.__qualname__)
            context.abort(code, f"internal error: {type(error).__name__}: {error}")
        context.abort(code, str(error))

    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def stream(self, request, context):
            try:
                yield from method(self, request, context)
            except Exception as error:  # noqa: BLE001 - mapped to a status code
                abort(context, error)
        return stream

    @functools.wraps(method)
    def unary(self, request, context):
        try:
            return method(self, request, context)
        except Exception as error:  # noqa: BLE001 - mapped to a status code
            abort(context, error)
    return unary


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message."""

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserializer):
    def decode(data: bytes):
        try:
            return deserializer(data) if deserializer else data
        except Exception as error:  # noqa: BLE001 - protobuf raises DecodeError or others
            return _Undecodable(error)
    return decode


class MalformedRequest(UserError):
    """A request message (of a streaming call) whose bytes do not decode."""


def _checked(requests, method: str):
    """A request stream that raises MalformedRequest at the first message that did not decode."""
    for request in requests:
        if isinstance(request, _Undecodable):
            raise MalformedRequest(f"malformed {method} request: {request.error}")
        yield request


def _streaming(handler, method: str):
    """The handler of a streaming RPC with its requests decoded tolerantly: a malformed one ends the
    call with INVALID_ARGUMENT, whether or not the servicer maps errors itself."""
    deserializer = _tolerant(handler.request_deserializer)
    serializer = handler.response_serializer

    def invalid(context, error: MalformedRequest):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))

    if handler.unary_stream is not None:
        behaviour = handler.unary_stream

        def unary_stream(request, context):
            if isinstance(request, _Undecodable):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {method} request: {request.error}")
            yield from behaviour(request, context)
        return grpc.unary_stream_rpc_method_handler(unary_stream, request_deserializer=deserializer, response_serializer=serializer)
    if handler.stream_unary is not None:
        behaviour = handler.stream_unary

        def stream_unary(requests, context):
            try:
                return behaviour(_checked(requests, method), context)
            except MalformedRequest as error:
                invalid(context, error)
        return grpc.stream_unary_rpc_method_handler(stream_unary, request_deserializer=deserializer, response_serializer=serializer)
    behaviour = handler.stream_stream

    def stream_stream(requests, context):
        try:
            yield from behaviour(_checked(requests, method), context)
        except MalformedRequest as error:
            invalid(context, error)
    return grpc.stream_stream_rpc_method_handler(stream_stream, request_deserializer=deserializer, response_serializer=serializer)


class CallInterceptor(grpc.ServerInterceptor):
    """Counts and times every unary gRPC call by service, method and status code, and answers
    malformed request bytes with INVALID_ARGUMENT on every kind of call, unary or streaming
    (grpc's own answer would be INTERNAL)."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        service, _, method = handler_call_details.method.strip("/").rpartition("/")
        if handler.unary_unary is None:
            return _streaming(handler, method)
        behaviour = handler.unary_unary

        def timed(request, context):
            started = time.perf_counter()
            try:
                if isinstance(request, _Undecodable):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {method} request: {request.error}")
                response = behaviour(request, context)
                code = context.code() or grpc.StatusCode.OK
                return response
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                GRPC_SECONDS.labels(service, method, code.name).observe(time.perf_counter() - started)
                GRPC_REQUESTS.labels(service, method, code.name).inc()

        return grpc.unary_unary_rpc_method_handler(timed, request_deserializer=_tolerant(handler.request_deserializer),
                                                   response_serializer=handler.response_serializer)


@dataclass
class Registration:
    """One servicer: its generated `add_XServicer_to_server`, the instance, and the full service name."""

    add: Callable[[Any, grpc.Server], None]
    servicer: Any
    name: str  # e.g. "conceptfreq.v1.FrequencyService"


class _WithHealthPort:
    """A server plus its plaintext health-only server (ServerSecurity.health_port): stopping one
    stops both; everything else is the main server's."""

    def __init__(self, server: grpc.Server, health_server: grpc.Server):
        self._server, self._health = server, health_server

    def stop(self, grace):
        self._health.stop(grace)
        return self._server.stop(grace)

    def __getattr__(self, name):
        return getattr(self._server, name)


def serve(registrations: list[Registration], port: int, host: str = "0.0.0.0", max_workers: int = 8,
          security: ServerSecurity | None = None) -> tuple[grpc.Server, int]:
    """Start a server with health checking and reflection on; returns (server, bound port).
    `security`: TLS, mutual TLS and a bearer token (adapters/grpc_security.py); none: plaintext."""
    security = security or ServerSecurity()
    auth = security.interceptor()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         interceptors=[CallInterceptor()] + ([auth] if auth else []))
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for registration in registrations:
        registration.add(registration.servicer, server)
        health_servicer.set(registration.name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    # The readiness probe's service: bus workers turn it off while stalled (adapters/bus/liveness.py).
    health_servicer.set("readiness", health_pb2.HealthCheckResponse.SERVING)
    server.health = health_servicer
    names = [r.name for r in registrations] + [health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    address = f"{host}:{port}"
    try:
        bound = server.add_secure_port(address, security.credentials()) if security.tls else server.add_insecure_port(address)
    except RuntimeError:  # grpc raises RuntimeError for an address it cannot bind
        bound = 0
    if not bound:
        raise UserError(f"cannot listen on {host}:{port}: the port is in use or the address is invalid")
    health_server = None
    if security.tls and security.health_port:
        health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        if not health_server.add_insecure_port(f"{host}:{security.health_port}"):
            raise UserError(f"cannot listen on {host}:{security.health_port} for health checks: the port is in use")
        health_server.start()
    server.start()
    log.info("gRPC server listening on %s:%d (%s%s)", host, bound, "mutual TLS" if security.client_ca_file else "TLS" if security.tls else "plaintext",
             ", bearer token" if auth else "")
    return (_WithHealthPort(server, health_server) if health_server else server), bound


def wait_for_termination(server: grpc.Server, grace: float = 10.0, on_stop: Callable[[], None] | None = None) -> None:
    """Block until SIGTERM or SIGINT, then stop accepting calls and let in-flight ones finish."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    if on_stop:
        on_stop()
    server.stop(grace).wait()
