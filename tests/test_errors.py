"""Every exception class of the package survives ``pickle`` with its attributes.

The classes are found, not listed: every exception class defined in ``relay_anyio``
(any module, public or private, ``relay_anyio.testing`` included). An instance of
each is built from its constructor's signature with a non-default value for every
parameter (so a default cannot hide an attribute lost on the way), and compared after
the round trip on type, ``str()``, ``repr()``, ``args`` and every instance attribute.
A new exception class is covered without touching this file.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import types
import typing
from typing import Any

import anyio
import anyio.to_process
import pytest

import relay_anyio
from relay_anyio import RelayError


def _subclasses(cls: type[BaseException]) -> list[type[BaseException]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in relay_anyio, once all its modules are imported.

    Walking the subclass tree of ``BaseException`` (rather than the modules' globals)
    also finds classes nested in other classes.
    """
    for info in pkgutil.walk_packages(relay_anyio.__path__, "relay_anyio."):
        importlib.import_module(info.name)
    found = {
        cls: None
        for cls in _subclasses(BaseException)
        if cls.__module__ == "relay_anyio" or cls.__module__.startswith("relay_anyio.")
    }
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def _sample(name: str, annotation: Any) -> Any:
    """A value of ``annotation`` that no parameter has as its default."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    if options:
        annotation = next(option for option in options if option is not type(None))
    if annotation is bool:
        return True
    if annotation is int:
        return 4321
    if annotation is float:
        return 2.5
    if annotation is str:
        return f"sample {name}"
    if annotation is Any:
        return {"sample": name, "nested": [1, "two", None]}
    raise AssertionError(f"no sample value for {name}: {annotation!r}; extend _sample()")


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` with a sample value for every constructor parameter."""
    if not inspect.isfunction(cls.__init__):
        # No constructor written in Python: the built-in ``Exception(*args)``.
        return cls(f"sample {cls.__name__}")
    hints = typing.get_type_hints(cls.__init__)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self":
            continue
        assert parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY), (
            f"{cls.__name__}.__init__({name}): extend _instance() for this kind of parameter"
        )
        value = _sample(name, hints[name])
        assert value != parameter.default, name
        if parameter.kind is parameter.KEYWORD_ONLY:
            kwargs[name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


EXCEPTIONS = _exception_classes()


def test_the_discovery_finds_the_exception_tree() -> None:
    """A guard on the discovery itself: it must not quietly find nothing."""
    names = {cls.__name__ for cls in EXCEPTIONS}
    assert names >= {
        "RelayError",
        "AuthenticationError",
        "RequestTimeout",
        "ConnectionLost",
        "TransportError",
        "ProtocolError",
        "CallEnded",
        "EventOverflow",
        "MessageExpired",
        "DialTimeout",
        "JsonRpcError",
        "ResultCodeError",
        "FrameError",
        "CliError",
    }
    public = {
        value
        for value in vars(relay_anyio).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert public <= set(EXCEPTIONS)
    assert {cls for cls in EXCEPTIONS if issubclass(cls, RelayError)} <= public


def _assert_same(copy: BaseException, original: BaseException) -> None:
    assert type(copy) is type(original)
    assert str(copy) == str(original)
    assert repr(copy) == repr(original)
    assert copy.args == original.args
    assert vars(copy) == vars(original)
    if isinstance(original, OSError):  # the TimeoutError subclasses
        assert isinstance(copy, OSError)
        assert (copy.errno, copy.strerror) == (original.errno, original.strerror)


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_keeps_every_attribute(cls: type[BaseException], protocol: int) -> None:
    original = _instance(cls)
    assert original.args or vars(original), f"{cls.__name__}: nothing to compare"
    copy = pickle.loads(pickle.dumps(original, protocol))
    _assert_same(copy, original)


def test_pickled_attributes_are_the_constructor_arguments() -> None:
    """Spot checks of the generic comparison, one per kind of constructor."""
    timeout = pickle.loads(pickle.dumps(relay_anyio.RequestTimeout("calling.play", 1.5)))
    assert (timeout.code, timeout.method, timeout.timeout) == (-1, "calling.play", 1.5)
    assert isinstance(timeout, TimeoutError)
    lost = pickle.loads(pickle.dumps(relay_anyio.ConnectionLost("gone", close_code=1011)))
    assert (lost.message, lost.close_code) == ("gone", 1011)
    assert str(lost) == "RELAY error -1: gone"
    error = pickle.loads(pickle.dumps(RelayError(409, "busy", {"code": "409", "extra": 1})))
    assert (error.code, error.message, error.data) == (409, "busy", {"code": "409", "extra": 1})
    refused = relay_anyio.TransportError("no", fatal=True, unresolved=True)
    refused.add_note("while connecting")
    copy = pickle.loads(pickle.dumps(refused))
    assert (copy.fatal, copy.unresolved, copy.__notes__) == (True, True, ["while connecting"])


def _raise_sample(cls: type[BaseException]) -> None:
    raise _instance(cls)


@pytest.mark.anyio
async def test_errors_raised_in_a_worker_process_arrive_whole() -> None:
    """A real process boundary: anyio pickles the worker's exception back to us."""
    with anyio.fail_after(60):
        for cls in EXCEPTIONS:
            with pytest.raises(cls) as info:
                await anyio.to_process.run_sync(_raise_sample, cls)
            _assert_same(info.value, _instance(cls))
