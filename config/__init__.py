"""What operators edit: settings and the scoring model, validated into frozen typed models."""
