"""The two ways an AWS IoT SQL statement fails: at parse time and at evaluation time."""

from __future__ import annotations


class SqlParseError(ValueError):
    """The statement (or a substitution template) is not valid AWS IoT SQL.

    `position` is the 0-based character offset of the problem when known,
    `line` / `column` are 1-based.
    """

    def __init__(self, message: str, position: int | None = None, text: str | None = None) -> None:
        self.position = position
        self.line: int | None = None
        self.column: int | None = None
        if position is not None and text is not None:
            self.line = text.count("\n", 0, position) + 1
            self.column = position - (text.rfind("\n", 0, position) + 1) + 1
            message = f"{message} (line {self.line}, column {self.column})"
        super().__init__(message)


class SqlEvaluationError(Exception):
    """Evaluating a rule failed (a hook is missing or failed, an unsupported
    function, a binary payload used where JSON is needed...).

    The rules engine reports these through the rule's errorAction.
    """


EvaluationError = SqlEvaluationError
