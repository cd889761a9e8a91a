"""What operators edit: settings and the scoring model, validated into frozen typed models."""

__all__: list[str] = []
