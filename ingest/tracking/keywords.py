"""Wrong arguments to a public ingest method are a ValidationError, like any bad input.

`check_keywords(cls)` wraps every public method of a class: a call that Python refuses
(an unknown keyword such as a misspelt or read-only column, a missing argument, too many
positional ones) raises `ValidationError` naming the argument and the allowed keywords
instead of a bare TypeError. The check costs nothing on a good call: the signature is
consulted only after the call failed with TypeError.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ingest.errors import ValidationError

T = TypeVar("T", bound=type)


def check_keywords(cls: T) -> T:
    """Wrap the public methods of `cls` (defined on it or its bases) as described above."""
    for name in dir(cls):
        method = getattr(cls, name)
        if name.startswith("_") or not inspect.isfunction(method):
            continue
        setattr(cls, name, _checked(cls.__name__, method))
    return cls


def _checked(owner: str, method: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(method)
    keywords = [
        p.name
        for p in list(signature.parameters.values())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except TypeError:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as refused:
                unknown = [k for k in kwargs if k not in signature.parameters]
                field = unknown[0] if unknown else "arguments"
                problem = (
                    f"is not a keyword of {owner}.{method.__name__}"
                    if unknown
                    else f"{owner}.{method.__name__}: {refused}"
                )
                raise ValidationError(field, problem, keywords) from None
            raise

    return call
