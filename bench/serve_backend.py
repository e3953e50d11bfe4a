"""``python -m bench.serve_backend --host H --port P``: the gateway's test PredictionService server
(``kubevc.gateway.testing``, numpy models of the real shapes) bound to one address, in its own
process, so the benchmark client can reach it from another network namespace. Prints ``READY``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
from kubevc.gateway import testing
from kubevc.gateway._proto.inference import grpc_predict_v2_pb2_grpc as v2grpc
from kubevc.gateway._proto.tensorflow_serving import model_service_pb2_grpc, prediction_service_pb2_grpc


class BoundBackend(testing.TestBackend):
    """The test backend listening on a chosen host (the stock one binds 127.0.0.1)."""

    __test__ = False

    def __init__(self, host: str, max_message_bytes: int = 128 << 20) -> None:
        super().__init__(max_message_bytes=max_message_bytes)
        self.host = host

    async def start(self, port: int = 0) -> int:
        opts = [("grpc.max_send_message_length", self._max), ("grpc.max_receive_message_length", self._max)]
        server = grpc.aio.server(options=opts)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(testing._Prediction(self), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(testing._ModelStatus(self), server)
        v2grpc.add_GRPCInferenceServiceServicer_to_server(testing._V2(self), server)
        self.port = server.add_insecure_port(f"{self.host}:{port}")
        await server.start()
        self._server = server
        return self.port


async def _main(host: str, port: int) -> None:
    backend = BoundBackend(host)
    await backend.start(port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {host}:{backend.port}", flush=True)
    await stop.wait()
    await backend.stop(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_main(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
