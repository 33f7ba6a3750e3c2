"""Loading the WSGI app named on the ``fastserve`` command line.

``module``, ``module:name``, ``module:obj.attr`` or ``module:factory(args)``
(literal arguments only), with the current directory importable; the result
must be callable as ``app(environ, start_response)``. A mistake is a
:class:`~fastserve._cli_errors.CLIError`; an exception raised by the user's
module is an :class:`~fastserve._cli_errors.AppImportError` whose traceback is
shown trimmed to the user's frames.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from ._cli_errors import AppImportError, CLIError

__all__ = ["DEFAULT_APP_NAMES", "WSGIApp", "load_app"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Names tried, in order, when the app is given as a bare module name.
DEFAULT_APP_NAMES = ("app", "application")

_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")


def load_app(spec: str) -> WSGIApp:
    """Import ``module``, ``module:name`` or ``module:factory(args)`` and return the WSGI app.

    The current directory is put on :data:`sys.path` first. A ``module`` given
    as a file name (``hello.py``, ``pkg/app.py``) is turned into a module name.

    :param spec: the command line's ``module:app`` argument.
    :raise CLIError: a missing module, a missing or non-callable attribute.
    :raise AppImportError: the module or the factory raised an exception.
    """
    module_name, _, expression = spec.partition(":")
    module_name = _module_name(module_name.strip())
    module = _import(module_name)
    expression = expression.strip()
    if not expression:
        for name in DEFAULT_APP_NAMES:
            if hasattr(module, name):
                expression = name
                break
        else:
            raise CLIError(
                f"module {module_name!r} has no 'app' or 'application'; "
                f"give the name, as in '{module_name}:NAME'"
            )
    app: WSGIApp = _evaluate(module, module_name, expression)
    _check_wsgi_callable(app, f"{module_name}:{expression}")
    return app


def _module_name(text: str) -> str:
    if text.endswith(".py"):
        text = text[:-3].replace(os.sep, ".").replace("/", ".").lstrip(".")
    if not _MODULE_NAME.match(text):
        raise CLIError(f"{text!r} is not a module name (expected module:app, like hello:app)")
    return text


def _import(module_name: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CLIError(
                f"no module named {missing!r} (looked in {cwd} and on sys.path)"
            ) from None
        raise AppImportError(f"could not import {module_name!r} (traceback above)") from exc
    except Exception as exc:
        raise AppImportError(f"could not import {module_name!r} (traceback above)") from exc


def _evaluate(module: Any, module_name: str, expression: str) -> Any:
    """``name``, ``name.attr`` or a call of one with literal arguments, inside ``module``."""
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        node = None
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call is not None else node
    path = _dotted(target)
    if path is None:
        raise CLIError(
            f"cannot understand {expression!r}: expected a name or a call like create_app()"
        )
    obj = module
    for depth, name in enumerate(path):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            owner = module_name if depth == 0 else ".".join(path[:depth])
            raise CLIError(f"{owner!r} has no attribute {name!r}") from None
    if call is None:
        return obj
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        if len(kwargs) != len(call.keywords):
            raise ValueError
    except ValueError:
        raise CLIError(f"{expression!r}: factory arguments must be Python literals") from None
    if not callable(obj):
        raise CLIError(f"'{module_name}:{'.'.join(path)}' is not callable, so it cannot be called")
    try:
        return obj(*args, **kwargs)
    except Exception as exc:
        raise AppImportError(
            f"'{module_name}:{expression}' raised an error (traceback above)"
        ) from exc


def _dotted(node: ast.AST | None) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


def _check_wsgi_callable(app: Any, label: str) -> None:
    if not callable(app):
        raise CLIError(f"'{label}' is not a WSGI app: a {type(app).__name__} is not callable")
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__):
        raise CLIError(f"'{label}' is an async (ASGI) app; fastserve serves WSGI apps")
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        return  # no signature to check (some builtins): let it be
    try:
        signature.bind(object(), object())
    except TypeError:
        hint = ""
        if not inspect.isclass(app) and _binds(signature):
            hint = f" - is it a factory? then write it as a call, '{label}()'"
        raise CLIError(
            f"'{label}' cannot be called as app(environ, start_response){hint}"
        ) from None


def _binds(signature: inspect.Signature) -> bool:
    """Whether a call without arguments fits ``signature``."""
    try:
        signature.bind()
    except TypeError:
        return False
    return True


def _app_or_error_app(spec: str, in_reloader_child: bool) -> WSGIApp:
    """Load the app; in a reloader child, a broken app becomes one that raises its error."""
    try:
        return load_app(spec)
    except CLIError as exc:
        if not in_reloader_child:
            raise
        _report(exc)
        error: BaseException = exc
        if isinstance(exc, AppImportError) and exc.__cause__ is not None:
            error = exc.__cause__.with_traceback(_user_frames(exc.__cause__.__traceback__))
        print(
            " * Serving the error above until a change is saved and the app reloads",
            file=sys.stderr,
        )

        def broken_app(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            raise error

        return broken_app


def _report(exc: CLIError) -> None:
    cause = exc.__cause__
    if isinstance(exc, AppImportError) and cause is not None:
        traceback.print_exception(
            type(cause), cause, _user_frames(cause.__traceback__), file=sys.stderr
        )
    print(f"fastserve: error: {exc}", file=sys.stderr, flush=True)


def _user_frames(tb: Any) -> Any:
    """Skip the frames of this module and importlib: the traceback starts in the user's code."""
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__ or "importlib" in tb.tb_frame.f_code.co_filename
    ):
        tb = tb.tb_next
    return tb
