"""Language-model backends behind one protocol (:class:`LLM`)."""

from companion.llm.base import LLM
from companion.llm.fake import FakeLLM

__all__ = ["LLM", "FakeLLM"]
