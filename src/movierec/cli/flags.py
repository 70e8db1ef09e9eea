"""Command-line flags made from settings dataclasses: one flag per field, the field's docstring as its help.

A command takes one parameter per settings object (``data: DataOptions``); ``with_flags`` shows typer that
object's flags in the parameter's place and hands the command the object they build, so a flag, its help and
its checks are declared once, on the field.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_type_hints

import typer

from movierec.checks import flag_of

Command = Callable[..., Any]


@dataclass(frozen=True)
class FlagGroup:
    """Flags typer shows in place of one command parameter, and how their values become that parameter."""

    flags: tuple[inspect.Parameter, ...]
    build: Callable[..., Any]
    """Called with every flag's value as a keyword argument."""


def flag(name: str, kind: Any, default: Any, help: str, *decls: str) -> inspect.Parameter:
    """A keyword-only command parameter typer shows as an option (``--name`` unless ``decls`` say otherwise)."""
    annotation = Annotated[kind, typer.Option(*decls, help=help)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def field_flags(
    settings: type,
    names: tuple[str, ...] | None = None,
    *,
    unset: bool = False,
    spelled: Mapping[str, str] | None = None,
    helps: Mapping[str, str] | None = None,
) -> tuple[inspect.Parameter, ...]:
    """One flag per field of the dataclass ``settings`` named in ``names`` (default: every field), in that order.

    Each defaults to its field's default, or with ``unset`` to None (so a command can tell the flags given from
    the rest); a bool field is ``--name/--no-name``. ``spelled`` renames flags (``{"use_tags": "--tags/--no-tags"}``)
    and ``helps`` replaces a field's docstring as help.
    """
    types = get_type_hints(settings)
    defaults = {field.name: field.default for field in dataclasses.fields(settings)}
    docs = field_help(settings)
    made = []
    for name in defaults if names is None else names:
        kind = types[name]
        decl = flag_of(name)
        decl = (spelled or {}).get(name, f"{decl}/--no-{decl[2:]}" if kind is bool else decl)
        help = (helps or {}).get(name, docs.get(name, ""))
        made.append(flag(name, kind | None if unset else kind, None if unset else defaults[name], help, decl))
    return tuple(made)


@functools.cache
def field_help(settings: type) -> dict[str, str]:
    """The first paragraph of each field's docstring (the string right under it in the class), on one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(settings)))
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef)).body
    docs = {}
    for node, after in itertools.pairwise(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split("\n\n")[0].split())
    return docs


def with_flags(**groups: FlagGroup) -> Callable[[Command], Command]:
    """Show typer each group's flags in place of the command parameter of the same name; call the command with
    the value the group builds from them there."""

    def decorate(command: Command) -> Command:
        shown: list[inspect.Parameter] = []
        for parameter in inspect.signature(command, eval_str=True).parameters.values():
            group = groups.get(parameter.name)
            shown.extend(group.flags if group else [parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)])
        taken = [parameter.name for parameter in shown]
        if len(set(taken)) != len(taken):
            raise ValueError(f"{command.__name__} has two flags of one name: {sorted(taken)}")

        def run(**values: Any) -> Any:
            for name, group in groups.items():
                values[name] = group.build(**{flag.name: values.pop(flag.name) for flag in group.flags})
            return command(**values)

        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):  # no __wrapped__: typer would
            setattr(run, attribute, getattr(command, attribute))  # read the command's own annotations through it
        run.__signature__ = inspect.Signature(shown)  # type: ignore[attr-defined]
        return run

    return decorate
