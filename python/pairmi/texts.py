"""Text to stream through a model, read lazily and offline where possible: a file's lines or
paragraphs, a column of a Hugging Face dataset, or the docstrings of Python's standard library."""

from __future__ import annotations

import ast
import os
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Longest document read whole (the model cuts it into windows): reading stays bounded in memory
# on a file without line breaks.
MAX_DOCUMENT_CHARS = 16 << 20


def read_documents(path: str | os.PathLike, *, by: str = "line", encoding: str = "utf-8") -> Iterator[str]:
    """Documents of a text file, read lazily: one per line (``by='line'``) or per blank-line
    separated paragraph (``by='paragraph'``). Blank documents are skipped; a document of more
    than 16 Mi characters is a ValueError (memory stays bounded on a file without line breaks).

    Examples
    --------
    >>> from pairmi.texts import read_documents
    >>> docs = read_documents("corpus.txt", by="paragraph")  # doctest: +SKIP
    """
    if by not in ("line", "paragraph"):
        raise ValueError(f"by must be 'line' or 'paragraph', got {by!r}")
    path = Path(path)
    try:
        with open(path, encoding=encoding) as fh:
            lines: list[str] = []
            size = 0  # characters of the paragraph so far
            for number, line in enumerate(iter(lambda: fh.readline(MAX_DOCUMENT_CHARS + 1), ""), 1):
                chars = len(line.rstrip("\n"))
                size = size + chars if by == "paragraph" and line.strip() else chars
                if size > MAX_DOCUMENT_CHARS:
                    raise ValueError(
                        f"{path}: the document at line {number:,} is longer than {MAX_DOCUMENT_CHARS:,} characters "
                        f"(a file without {'line breaks' if by == 'line' else 'blank lines'}?): split it into documents"
                    )
                if by == "line":
                    if line.strip():
                        yield line.rstrip("\n")
                elif line.strip():
                    lines.append(line.rstrip("\n"))
                elif lines:
                    yield "\n".join(lines)
                    lines = []
            if lines:
                yield "\n".join(lines)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not valid {encoding} text (byte {exc.start}): pass its encoding") from None


def dataset_texts(dataset: Any, column: str = "text") -> Iterator[str]:
    """The `column` of a Hugging Face ``datasets`` dataset (or any iterable of dicts), lazily.

    Examples
    --------
    >>> from pairmi.texts import dataset_texts
    >>> list(dataset_texts([{"text": "a b"}, {"text": "c"}]))
    ['a b', 'c']
    """
    for k, row in enumerate(dataset):
        try:
            yield row[column]
        except (KeyError, TypeError):
            raise ValueError(f"row {k} of the dataset has no column {column!r}") from None


def python_docstrings() -> Iterator[str]:
    """Real English text that ships with Python, for offline runs: the docstrings of the standard
    library's modules, classes and functions, read from its source files (nothing is imported),
    in a fixed order. About 10^6 tokens.

    Examples
    --------
    >>> from pairmi.texts import python_docstrings
    >>> first = next(python_docstrings())
    >>> len(first) >= 80
    True
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if any(part in ("test", "tests", "idlelib", "site-packages", "lib2to3") for part in path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 80:
                    yield doc


__all__ = ["dataset_texts", "python_docstrings", "read_documents"]
