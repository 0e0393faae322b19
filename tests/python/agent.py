"""A test agent for tests/gateway.rs: a plain grpcio server and client that
reach other nodes only through a peerd daemon's agent gateway.

  agent.py serve SOCKET [--expose GATEWAY ALLOW]   serve peerd.test.Echo and
      .Private on unix:SOCKET; with --expose, expose Echo through the gateway
      for as long as this process lives. Prints JSON event lines.
  agent.py call GATEWAY NODE UNKNOWN DEAD           run the scenarios against
      NODE through the gateway (and calls to an unknown and a dead node);
      prints one JSON line per scenario.
  agent.py one GATEWAY NODE [TIMEOUT]               one Unary call.
  agent.py events GATEWAY                           print connection events.
  agent.py stall GATEWAY NODE                       read one message of an
      endless stream, then stop reading.
"""

import json
import os
import sys
import threading
import time
from concurrent import futures

import grpc

import stubs

echo_pb2, echo_grpc, agent_pb2, agent_grpc = stubs.load()


def gateway_channel(path):
    # gRPC C-core sends a unix socket's path, percent-encoded, as :authority,
    # which the gateway's HTTP/2 stack refuses: name any plain host instead.
    return grpc.insecure_channel(f"unix:{path}", options=[("grpc.default_authority", "localhost")])


def emit(**event):
    print(json.dumps(event), flush=True)


def caller_of(context):
    return dict(context.invocation_metadata()).get("peerd-caller", "")


class Echo(echo_grpc.EchoServicer):
    def Unary(self, request, context):
        emit(event="call", service="Echo", method="Unary", caller=caller_of(context))
        return echo_pb2.Note(text=f"{request.text}|caller={caller_of(context)}")

    def Split(self, request, context):
        for n in range(request.count):
            yield echo_pb2.Note(text=str(n))

    def Join(self, request_iterator, context):
        return echo_pb2.Note(text="+".join(note.text for note in request_iterator))

    def Chat(self, request_iterator, context):
        for note in request_iterator:
            yield echo_pb2.Note(text=note.text.upper())

    def Slow(self, request, context):
        ended = threading.Event()
        context.add_callback(ended.set)
        ended.wait(2.0)
        emit(event="slow-ended", cancelled=not context.is_active())
        return echo_pb2.Note(text="slow")

    def Fail(self, request, context):
        context.set_trailing_metadata((("x-why", "test"),))
        context.abort(grpc.StatusCode.NOT_FOUND, f"no note {request.text}")

    def Endless(self, request, context):
        ended = threading.Event()
        context.add_callback(ended.set)
        sent = 0
        try:
            while not ended.is_set():
                yield echo_pb2.Note(text="x" * request.count)
                sent += 1
        finally:
            # Also when grpc closes the generator on cancellation.
            emit(event="endless-ended", sent=sent, cancelled=not context.is_active())


class Private(echo_grpc.PrivateServicer):
    def Unary(self, request, context):
        emit(event="call", service="Private", method="Unary", caller=caller_of(context))
        return request


def serve(socket, expose):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    echo_grpc.add_EchoServicer_to_server(Echo(), server)
    echo_grpc.add_PrivateServicer_to_server(Private(), server)
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    if expose:
        gateway, allow = expose
        channel = gateway_channel(gateway)
        request = agent_pb2.ExposeRequest(
            service="peerd.test.Echo", target=f"unix:{socket}", allow=[allow]
        )
        held = agent_grpc.AgentStub(channel).Expose(request)
        emit(event="exposed", service=next(held).service)
    emit(event="ready")
    server.wait_for_termination()


def outcome(name, started, **fields):
    emit(scenario=name, elapsed_ms=round((time.monotonic() - started) * 1000), **fields)


def failure(name, started, error):
    trailers = dict(error.trailing_metadata() or ())
    outcome(name, started, code=error.code().name, details=error.details(), trailers=trailers)


def scenario(name, run):
    started = time.monotonic()
    try:
        outcome(name, started, code="OK", data=run())
    except grpc.RpcError as error:
        failure(name, started, error)


def call(gateway, node, unknown_node, dead_node):
    channel = gateway_channel(gateway)
    echo = echo_grpc.EchoStub(channel)
    target = (("peerd-node", node),)
    notes = lambda *texts: iter([echo_pb2.Note(text=t) for t in texts])
    scenario("unary", lambda: echo.Unary(echo_pb2.Note(text="hi"), metadata=target).text)
    by_service = (("peerd-service", "peerd.test.Echo"),)
    scenario("by_service", lambda: echo.Unary(echo_pb2.Note(text="found"), metadata=by_service, timeout=10).text)
    scenario("server_streaming", lambda: [n.text for n in echo.Split(echo_pb2.Note(count=3), metadata=target)])
    scenario("client_streaming", lambda: echo.Join(notes("a", "b", "c"), metadata=target).text)
    scenario("bidi_streaming", lambda: [n.text for n in echo.Chat(notes("x", "y"), metadata=target)])
    scenario("deadline", lambda: echo.Slow(echo_pb2.Note(), metadata=target, timeout=0.2).text)
    scenario("status", lambda: echo.Fail(echo_pb2.Note(text="42"), metadata=target).text)
    cancel_stream(echo, target)
    private = echo_grpc.PrivateStub(channel)
    scenario("not_allowed", lambda: private.Unary(echo_pb2.Note(), metadata=target).text)
    down = channel.unary_unary(
        "/peerd.test.Down/Unary",
        request_serializer=echo_pb2.Note.SerializeToString,
        response_deserializer=echo_pb2.Note.FromString,
    )
    scenario("backend_down", lambda: down(echo_pb2.Note(), metadata=target).text)
    unknown = (("peerd-node", unknown_node),)
    scenario("unknown_node", lambda: echo.Unary(echo_pb2.Note(), metadata=unknown, timeout=10).text)
    dead = (("peerd-node", dead_node),)
    scenario("dead_node", lambda: echo.Unary(echo_pb2.Note(), metadata=dead, timeout=10).text)
    big = echo_pb2.Note(text="x" * (2 << 20))
    scenario("too_large", lambda: echo.Unary(big, metadata=target, timeout=10).text)
    over_limit(echo, target)


def over_limit(echo, target):
    # The daemon allows 3 calls at once per connection (the test sets it).
    streams = [echo.Endless(echo_pb2.Note(count=10), metadata=target) for _ in range(3)]
    for stream in streams:
        next(stream)
    scenario("over_limit", lambda: echo.Unary(echo_pb2.Note(), metadata=target, timeout=10).text)
    for stream in streams:
        stream.cancel()


def events(gateway):
    stream = agent_grpc.AgentStub(gateway_channel(gateway)).Events(agent_pb2.EventsRequest())
    stream.initial_metadata()  # the daemon has subscribed once it answers
    emit(event="watching")
    for event in stream:
        emit(event="connection", kind=event.kind, node_id=event.node_id, direction=event.direction)


def stall(gateway, node):
    # Reads one message of an endless stream of 64 KiB messages, then stops
    # reading until killed.
    channel = gateway_channel(gateway)
    stream = echo_grpc.EchoStub(channel).Endless(
        echo_pb2.Note(count=64 * 1024), metadata=(("peerd-node", node),), timeout=30
    )
    next(stream)
    emit(event="stalled")
    time.sleep(30)


def cancel_stream(echo, target):
    started = time.monotonic()
    stream = echo.Endless(echo_pb2.Note(count=10), metadata=target)
    first = next(stream).text
    stream.cancel()
    outcome("cancel", started, code="CANCELLED", data=first)


def main():
    role = sys.argv[1]
    if role == "serve":
        expose = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 3 and sys.argv[3] == "--expose" else None
        serve(sys.argv[2], expose)
    elif role == "call":
        call(*sys.argv[2:6])
    elif role == "events":
        events(sys.argv[2])
    elif role == "stall":
        stall(sys.argv[2], sys.argv[3])
    elif role == "one":
        # agent.py one GATEWAY NODE [TIMEOUT]: one Unary call, for probes.
        started = time.monotonic()
        timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 10
        channel = gateway_channel(sys.argv[2])
        try:
            text = echo_grpc.EchoStub(channel).Unary(
                echo_pb2.Note(text="one"), metadata=(("peerd-node", sys.argv[3]),), timeout=timeout
            ).text
            outcome("one", started, code="OK", data=text)
        except grpc.RpcError as error:
            failure("one", started, error)


if __name__ == "__main__":
    main()
