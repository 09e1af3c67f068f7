"""CSV from files we did not write: every reader of the package goes through `reader` /
`dict_reader`, so a field over the size limit (or any other malformed CSV) is a clear error
naming the file and line, never a traceback."""
from __future__ import annotations

import csv
from typing import Iterable, Iterator, List, Optional

#: longest field accepted (characters); Python's own default limit, stated once here
MAX_FIELD = 131072


class CsvError(ValueError):
    """Malformed CSV or a field over MAX_FIELD; the message names the file and the line."""


def _error(exc: csv.Error, name: Optional[str], line: int) -> CsvError:
    where = f"{name or 'CSV'}:{line}"
    text = str(exc)
    if "field larger than field limit" in text:
        return CsvError(f"{where}: a field is longer than {MAX_FIELD} characters (the limit for "
                        "one CSV field); is this the right file?")
    return CsvError(f"{where}: not valid CSV ({text})")


def reader(lines: Iterable[str], name: Optional[str] = None, **fmt) -> Iterator[List[str]]:
    """`csv.reader(lines, **fmt)` with the field limit; `name` (the file) goes in errors."""
    csv.field_size_limit(MAX_FIELD)
    rows = csv.reader(lines, **fmt)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _error(exc, name, rows.line_num) from None
        yield row


class dict_reader(csv.DictReader):  # noqa: N801 - used like csv.DictReader
    """`csv.DictReader(lines, **fmt)` with the field limit; `name` (the file) goes in errors."""

    def __init__(self, lines, name: Optional[str] = None, **fmt):
        csv.field_size_limit(MAX_FIELD)
        super().__init__(lines, **fmt)
        self._name = name

    @property
    def fieldnames(self):
        try:
            return super().fieldnames
        except csv.Error as exc:
            raise _error(exc, self._name, self.reader.line_num) from None

    @fieldnames.setter
    def fieldnames(self, value):
        csv.DictReader.fieldnames.fset(self, value)

    def __next__(self):
        try:
            return super().__next__()
        except csv.Error as exc:
            raise _error(exc, self._name, self.reader.line_num) from None
