"""The functional core: pure, synchronous, deterministic. No Kafka, Redis, faust, clock or env."""

from leadstream.scoring.engine import Decision, apply, mql_handoff_id, score
from leadstream.scoring.signals import CompiledModel, compile_model
from leadstream.scoring.state import ContactState, RuleState

__all__ = [
    "CompiledModel",
    "ContactState",
    "Decision",
    "RuleState",
    "apply",
    "compile_model",
    "mql_handoff_id",
    "score",
]
