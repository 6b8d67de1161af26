"""The SOQL subset the Salesforce emulator answers, parsed by recursive descent.

``SELECT a, b.c FROM T [WHERE ...] [ORDER BY f [ASC|DESC]] [LIMIT n]`` where
the WHERE clause combines ``AND``/``OR``/parentheses over ``f = v``,
``f != v``, ``f IN (v, ...)`` and, on dateTime fields only, ``<``, ``<=``,
``>``, ``>=``. Literals are quoted strings, numbers, ``true``/``false``/``null``
and dateTime literals as Salesforce documents them (``2024-01-02T10:00:00Z``
or ``...+01:00``, no quotes, no fractional seconds). Anything else is refused
the way Salesforce refuses it: HTTP 400 with an error code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

R = TypeVar("R")

RANGE_OPERATORS = (">=", "<=", ">", "<")
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    ">": lambda a, b: a is not None and bool(a > b),
    ">=": lambda a, b: a is not None and bool(a >= b),
    "<": lambda a, b: a is not None and bool(a < b),
    "<=": lambda a, b: a is not None and bool(a <= b),
}


class Refused(Exception):  # noqa: N818 - a control-flow signal inside the emulator
    """Salesforce's answer to a bad request: an HTTP status and an error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Query(Generic[R]):
    type: str
    fields: list[str]
    where: Callable[[R], bool] | None = None
    order: tuple[str, bool] | None = None
    limit: int | None = None
    touched: list[str] = field(default_factory=list)


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')"
                    r"|(?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?"
                    r"(?:Z|[+-]\d{2}:\d{2})?)"
                    r"|(?P<num>\d+(?:\.\d+)?)"
                    r"|(?P<word>[A-Za-z_][\w.]*)|(?P<op>!=|>=|<=|=|<|>|\(|\)|,))")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def fold(value: Any) -> Any:
    """SOQL compares text case-insensitively."""
    return value.lower() if isinstance(value, str) else value


def _datetime_literal(raw: str) -> datetime:
    if _DATETIME.fullmatch(raw) is None:
        raise Refused(400, "MALFORMED_QUERY", f"invalid dateTime literal {raw}: expecting "
                      "YYYY-MM-DDThh:mm:ssZ or YYYY-MM-DDThh:mm:ss+hh:mm")
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise Refused(400, "MALFORMED_QUERY", f"unexpected token at position {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "str":
            out.append(("value", re.sub(r"\\(.)", lambda e: _UNESCAPE.get(e[1], e[1]), raw[1:-1])))
        elif kind == "dt":
            out.append(("value", _datetime_literal(raw)))
        elif kind == "num":
            out.append(("value", float(raw) if "." in raw else int(raw)))
        elif kind == "word" and raw.lower() in {"true", "false", "null"}:
            out.append(("value", {"true": True, "false": False, "null": None}[raw.lower()]))
        else:
            out.append((kind, raw))
    return out


class Parser(Generic[R]):
    """Recursive descent over the SOQL subset; raises Refused(400) on anything else.

    ``lookup(record, column)`` reads a (possibly dotted) column of a record;
    ``is_datetime(column)`` says whether a column holds dateTimes.
    """

    def __init__(self, text: str, lookup: Callable[[R, str], Any],
                 is_datetime: Callable[[str], bool]) -> None:
        self.toks, self.i = tokens(text), 0
        self.lookup, self.is_datetime = lookup, is_datetime

    def peek(self, word: str) -> bool:
        kind, raw = self.toks[self.i] if self.i < len(self.toks) else ("", "")
        return kind in {"word", "op"} and str(raw).upper() == word

    def take(self, word: str | None = None) -> tuple[str, Any]:
        if self.i >= len(self.toks) or (word is not None and not self.peek(word)):
            raise Refused(400, "MALFORMED_QUERY", f"expecting {word or 'more'} in query")
        self.i += 1
        return self.toks[self.i - 1]

    def name(self, query: Query[R] | None = None) -> str:
        kind, raw = self.take()
        if kind != "word":
            raise Refused(400, "MALFORMED_QUERY", "expecting a field name")
        if query is not None:
            query.touched.append(str(raw))
        return str(raw)

    def parse(self) -> Query[R]:
        self.take("SELECT")
        fields = [self.name()]
        while self.peek(","):
            self.take(",")
            fields.append(self.name())
        self.take("FROM")
        query: Query[R] = Query(type=self.name(), fields=fields, touched=list(fields))
        if self.peek("WHERE"):
            self.take("WHERE")
            query.where = self.disjunction(query)
        if self.peek("ORDER"):
            self.take("ORDER")
            self.take("BY")
            column = self.name(query)
            descending = self.peek("DESC")
            if descending or self.peek("ASC"):
                self.take()
            query.order = (column, descending)
        if self.peek("LIMIT"):
            self.take("LIMIT")
            kind, raw = self.take()
            if kind != "value" or not isinstance(raw, int) or isinstance(raw, bool):
                raise Refused(400, "MALFORMED_QUERY", "LIMIT needs a number")
            query.limit = raw
        if self.i != len(self.toks):
            raise Refused(400, "MALFORMED_QUERY", "unexpected text at the end of the query")
        return query

    def disjunction(self, query: Query[R]) -> Callable[[R], bool]:
        terms = [self.conjunction(query)]
        while self.peek("OR"):
            self.take("OR")
            terms.append(self.conjunction(query))
        return lambda rec: any(t(rec) for t in terms)

    def conjunction(self, query: Query[R]) -> Callable[[R], bool]:
        terms = [self.atom(query)]
        while self.peek("AND"):
            self.take("AND")
            terms.append(self.atom(query))
        return lambda rec: all(t(rec) for t in terms)

    def atom(self, query: Query[R]) -> Callable[[R], bool]:
        if self.peek("("):
            self.take("(")
            inner = self.disjunction(query)
            self.take(")")
            return inner
        column = self.name(query)
        if self.peek("IN"):
            self.take("IN")
            self.take("(")
            wanted = [self.literal(column)]
            while self.peek(","):
                self.take(",")
                wanted.append(self.literal(column))
            self.take(")")
            keys = {fold(v) for v in wanted}
            return lambda rec: fold(self.lookup(rec, column)) in keys
        operator = next((op for op in (*RANGE_OPERATORS, "!=", "=") if self.peek(op)), "=")
        self.take(operator)
        if operator in RANGE_OPERATORS and not self.is_datetime(column):
            raise Refused(400, "MALFORMED_QUERY",
                          f"this emulator compares only dateTime fields with {operator}")
        key = fold(self.literal(column, nullable=operator not in RANGE_OPERATORS))
        compare = COMPARISONS[operator]
        return lambda rec: compare(fold(self.lookup(rec, column)), key)

    def literal(self, column: str, *, nullable: bool = True) -> Any:
        """A value for ``column``: a dateTime literal exactly when the column is one."""
        kind, raw = self.take()
        if kind != "value":
            raise Refused(400, "MALFORMED_QUERY", "expecting a literal value")
        if raw is None and nullable:
            return raw
        if self.is_datetime(column) != isinstance(raw, datetime):
            wanted = ("of type dateTime and should not be enclosed in quotes"
                      if self.is_datetime(column) else "a value of the field's own type")
            raise Refused(400, "INVALID_FIELD",
                          f"value of filter criterion for field '{column}' must be {wanted}")
        return raw
