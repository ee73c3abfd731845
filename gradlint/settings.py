"""Probe settings, each declared once: its configuration key and command-line option, its type and range,
its default and its help.  The command line (``gradlint.cli``), the configuration (``gradlint.config``),
the API (``gradlint.lint``) and docs/configuration.md all read these declarations, so a new setting is
its declaration here, the code that uses it, and the regenerated table of the docs
(``python -m gradlint.settings`` prints it).

Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .vocabulary import DTYPES


@dataclass(frozen=True)
class Spec:
    """How one setting is spelled, checked and documented."""

    help: str                          # one sentence, for --help and the docs
    kind: str = "text"                 # "integer", "text", "choice", "shape" or "shapes"
    default: Any = None                # the value when nobody sets it (None: decided per model)
    shown: str | None = None           # the default in words, where None is not "nothing"
    minimum: int | None = None         # for integers
    choices: tuple[str, ...] = ()      # for choices
    metavar: str | None = None         # the command line's placeholder
    option: bool = True                # a command-line option (and a gradlint.lint keyword) as well as a key
    lint: bool = True                  # a gradlint.lint keyword (the API probes the model where it is)

    def type_words(self) -> str:
        """The type as the docs spell it."""
        if self.kind == "integer":
            return "integer" + (f" >= {self.minimum}" if self.minimum is not None else "")
        if self.kind == "choice":
            return ", ".join(f'`"{c}"`' for c in self.choices[:-1]) + f' or `"{self.choices[-1]}"`'
        return {"text": "string", "shape": "list of positive integers",
                "shapes": "table: model → list of positive integers"}[self.kind]


def setting(**spec: Any) -> Any:
    """A field of ``Probe``: None until someone sets it."""
    return field(default=None, metadata={"spec": Spec(**spec)})


@dataclass(frozen=True)
class Probe:
    """What the probe runs with; None where nobody set a value (``resolved()`` fills in the defaults)."""

    batch_size: int | None = setting(
        kind="integer", minimum=2, shown="64, fewer for image-sized inputs", help="Probe batch size.")
    seed: int | None = setting(
        kind="integer", default=0, help="Seed for the model's construction, inputs, dropout and cotangents.")
    draws: int | None = setting(
        kind="integer", minimum=1, default=1, help="Gaussian cotangents averaged in the GSC estimate.")
    device: str | None = setting(
        shown="the model's device", lint=False,
        help='Move the model to this device before probing ("cuda", "cuda:1").')
    dtype: str | None = setting(kind="choice", choices=DTYPES, shown="the model's dtype", lint=False,
                                help="Probe dtype.")
    input_shape: tuple[int, ...] | None = setting(
        kind="shape", metavar="D1,D2,...", shown="example_inputs, else inferred",
        help="The probe input's shape without the batch.")
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] | None = setting(
        kind="shapes", shown="{}", option=False, help="input-shape for particular models.")
    data_input: str | None = setting(
        metavar="NAME", shown="example_inputs' data_input, else chosen from the graph: the input that meets "
                              "the others farthest from the output",
        help='The forward argument the data path starts from ("x" for model(x, t)).')
    model_output: str | None = setting(
        metavar="KEY", shown="example_inputs' model_output, else every floating output, together",
        help='Which output the GSC is relative to: a key ("logits"), an index ("0") or a dotted path '
             '("0.logits").')
    threads: int | None = setting(
        kind="integer", minimum=1, shown="torch's own",
        help="torch's intra-op threads while probing (the report's header shows them).")

    def under(self, cli: Probe) -> Probe:
        """These settings with the command line's on top; its --input-shape also beats input-shapes."""
        given = {f.name: getattr(cli, f.name) for f in fields(cli) if getattr(cli, f.name) is not None}
        if cli.input_shape is not None:
            given["input_shapes"] = None
        return replace(self, **given)

    def resolved(self) -> Probe:
        """Every unset setting at its default."""
        return replace(self, **{name: spec.default for name, spec in specs()
                                if getattr(self, name) is None and spec.default is not None})


def specs() -> list[tuple[str, Spec]]:
    """(field name, declaration) of every probe setting, in declaration order."""
    return [(f.name, f.metadata["spec"]) for f in fields(Probe)]


def key(name: str) -> str:
    """The configuration key and option name of a field: batch_size -> batch-size."""
    return name.replace("_", "-")


def parse_shape(value: Any) -> tuple[int, ...]:
    """A shape without the batch, from a list of integers or "3,32,32" ("3x32x32"); ValueError says how."""
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.replace("x", ",").split(",") if v.strip()]
        except ValueError:
            value = None
    if not (isinstance(value, (list, tuple)) and value
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in value)):
        raise ValueError("expected positive integers without the batch")
    return tuple(value)


def lint_settings(given: dict[str, Any]) -> Probe:
    """``gradlint.lint``'s keyword arguments as settings; a TypeError names any that is not one."""
    allowed = [name for name, spec in specs() if spec.option and spec.lint]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(f"lint() got an unexpected keyword argument {unknown[0]!r}; the probe settings are "
                        f"{', '.join(allowed)}")
    return Probe(**given)


def markdown_table() -> str:
    """The table of docs/configuration.md's [tool.gradlint.probe] section."""
    rows = ["| key | command line | type | default | meaning |", "|---|---|---|---|---|"]
    for name, spec in specs():
        option = f"`--{key(name)}`" if spec.option else ""
        default = spec.shown or (str(spec.default) if spec.default is not None else "none")
        rows.append(f"| `{key(name)}` | {option} | {spec.type_words()} | {default} | {spec.help} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
