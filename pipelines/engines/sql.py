"""The one place where text becomes part of SQL. Values from data travel as bound parameters (``?`` or
``$name``); only what SQL cannot take as a parameter is quoted here: identifiers (schema, table, column
names) and the literals of statements that take no parameters (``ATTACH``, ``COPY ... TO``, ``COMMENT ON``).
"""

from __future__ import annotations

from pathlib import Path


def _text(value: str | Path) -> str:
    text = str(value)
    if "\x00" in text:
        raise ValueError(f"a NUL character cannot be part of SQL text: {text!r}")
    return text


def ident(name: str) -> str:
    """A quoted identifier, its double quotes doubled: ``a"b`` becomes ``"a""b"``."""
    return '"' + _text(name).replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    """A quoted, dotted name: ``qualified("marts", "whale_curve")`` -> ``"marts"."whale_curve"``."""
    return ".".join(ident(part) for part in parts)


def literal(value: str | Path) -> str:
    """A quoted string literal, for a statement that takes no parameters (a path in ``ATTACH`` or ``COPY``,
    the text of ``COMMENT ON``)."""
    return "'" + _text(value).replace("'", "''") + "'"


def spark_ident(name: str) -> str:
    """A Spark SQL identifier, backquoted, its backquotes doubled: ``a`b`` becomes ```a``b```."""
    return "`" + _text(name).replace("`", "``") + "`"


def spark_literal(value: str | Path) -> str:
    """A quoted Spark SQL string literal (a path in ``ALTER TABLE ... LOCATION``), its backslashes and quotes
    escaped: Spark's parser reads backslash escapes in string literals."""
    return "'" + _text(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def spark_qualified(*parts: str) -> str:
    """A backquoted, dotted Spark SQL name: ``spark_qualified("marts", "whale_curve")``."""
    return ".".join(spark_ident(part) for part in parts)
