"""What every backend object shares: its name, and equality by kind (a backend holds no state)."""

from __future__ import annotations

from typing import ClassVar


class Backend:
    """A place the estimators run (see pairmi.backends): CPU or Torch."""

    name: ClassVar[str] = ""

    def __repr__(self) -> str:
        return f"pairmi.backends.{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(self.name)
