"""Pointing at lines of the user's source: where a function computes its value, where a
parameter is created.

A finding is most useful when it names the line to change. The profile hook knows a
function's `def` line; the line that is wrong is usually its `return`. Initialisation
findings (ND4xx) need the line that draws the weights, which no profile event shows,
so it is found in the source by the parameter's name.
"""

from __future__ import annotations

import ast
import linecache
import re
from functools import lru_cache
from typing import Iterable

from ..types import Location

SOURCE_LINES = 8  # lines shown around an initialisation site

# Calls that create a parameter array with values (not an empty container).
_CREATORS = re.compile(
    r"\b(rand|randn|random|random_sample|normal|uniform|standard_normal|zeros|ones|full|"
    r"zeros_like|ones_like|full_like|array|asarray|eye|empty|integers|xavier|glorot|he_)\w*\s*\("
)


@lru_cache(maxsize=64)
def _tree(filename: str) -> ast.Module | None:
    source = "".join(linecache.getlines(filename))
    if not source:
        return None
    try:
        return ast.parse(source, filename=filename)
    except (SyntaxError, ValueError):
        return None


def _functions(tree: ast.Module):
    """(qualified name, node) of every function, classes included in the name."""
    stack: list[tuple[str, ast.AST]] = [("", tree)]
    while stack:
        prefix, node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield name, child
                stack.append((name + ".", child))


def return_line(filename: str, def_line: int) -> int | None:
    """The line of the first `return <value>` of the function defined at `def_line`."""
    tree = _tree(filename)
    if tree is None:
        return None
    for _, node in _functions(tree):
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        if def_line not in (node.lineno, first):
            continue
        returns = [  # `return None` is an early exit, not the computation
            n for n in ast.walk(node)
            if isinstance(n, ast.Return) and n.value is not None
            and not (isinstance(n.value, ast.Constant) and n.value.value is None)
        ]
        return min(r.lineno for r in returns) if returns else None
    return None


def _enclosing_function(tree: ast.Module, line: int) -> str | None:
    best: tuple[int, str] | None = None
    for name, node in _functions(tree):
        end = getattr(node, "end_lineno", None) or node.lineno
        if node.lineno <= line <= end and (best is None or node.lineno > best[0]):
            best = (node.lineno, name)
    return None if best is None else best[1]


def _base_name(param_name: str) -> str | None:
    """'self.weights_dict[1]' -> 'weights_dict'; 'W1' -> 'W1'; 'params[0]' -> 'params'."""
    match = re.match(r"^(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*)", param_name.strip())
    return match.group(1) if match else None


def init_site(param_name: str, files: Iterable[str]) -> Location | None:
    """The first line in the user's files that assigns a created array to `param_name`.

    Matches `name = np.random.randn(...)`, `self.name[i] = rnd.rand(...)`,
    `name.append(np.zeros(...))`; returns None when nothing matches (never a guess
    at some other line).
    """
    base = _base_name(param_name)
    if not base:
        return None
    assign = re.compile(
        rf"(?<![\w.])(?:self\.)?{re.escape(base)}\s*(?:\[[^\]]*\]\s*)?(?:=(?!=)|\.append\s*\()"
    )
    for filename in files:
        lines = linecache.getlines(filename)
        for number, text in enumerate(lines, start=1):
            code = text.split("#", 1)[0]
            match = assign.search(code)
            if match is None or not _CREATORS.search(code[match.end():]):
                continue
            tree = _tree(filename)
            function = _enclosing_function(tree, number) if tree is not None else None
            start = max(1, number - 2)
            source = tuple(
                (k, lines[k - 1].rstrip("\n")) for k in range(start, min(len(lines), start + SOURCE_LINES) + 1)
            )
            return Location(file=filename, line=number, function=function, source=source)
    return None
