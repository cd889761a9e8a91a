"""Kafka adapters: the faust and confluent-kafka engines, their feed of partition progress, sinks,
clients for the tools, topic creation, and the model registry on its compacted topic."""

__all__: list[str] = []
