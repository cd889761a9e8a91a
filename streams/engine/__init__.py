"""The batch engine, transport-neutral: records in, decode, contact and account stages, outbox out.

pipeline.py drives a batch; stages/ apply it to contacts and accounts; outbox.py names what a commit
decided until it is delivered; eventtime/ keeps stream time, watermarks and timers; input/ turns
bytes into events or dead letters; policy.py and guard.py decide what happens on errors; ports.py
is what the engine needs from outside (a batch processor, a sink); shadow.py runs a shadow model."""

__all__: list[str] = []
