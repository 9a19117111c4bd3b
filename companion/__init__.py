"""companion: an offline conversational companion."""

__all__: list[str] = []
