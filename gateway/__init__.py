"""kubevc.gateway: the Litestar edge inference gateway (media/JSON in, protobuf gRPC out)."""
