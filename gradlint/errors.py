"""Why a target could not be analysed.  Each carries the JSON ``error.kind``."""


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for one-line error reports."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class GradlintError(Exception):
    kind = "internal"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class LoadError(GradlintError):
    kind = "import"


class NoModelError(LoadError):
    """The file imports fine and defines no model (a helper module)."""


class ConstructError(GradlintError):
    kind = "construct"


class InputError(GradlintError):
    kind = "input"


class UsageError(GradlintError):
    kind = "input"


class ProbeError(GradlintError):
    kind = "forward"
