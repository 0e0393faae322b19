"""Generates the gRPC stubs of the test agents from tests/python/echo.proto
and proto/peerd/agent/v1/agent.proto (with grpcio-tools) into a cache
directory, and imports them."""

import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load():
    out = os.environ.get("PEERD_STUBS_DIR") or os.path.join(ROOT, "target", "python-stubs")
    os.makedirs(out, exist_ok=True)
    from grpc_tools import protoc

    protos = [
        (HERE, os.path.join(HERE, "echo.proto")),
        (os.path.join(ROOT, "proto"), os.path.join(ROOT, "proto", "peerd", "agent", "v1", "agent.proto")),
    ]
    for include, proto in protos:
        args = ["protoc", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", proto]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")
    sys.path.insert(0, out)
    return (
        importlib.import_module("echo_pb2"),
        importlib.import_module("echo_pb2_grpc"),
        importlib.import_module("peerd.agent.v1.agent_pb2"),
        importlib.import_module("peerd.agent.v1.agent_pb2_grpc"),
    )
