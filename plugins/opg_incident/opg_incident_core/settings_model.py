"""The settings' frozen models and their validation: what settings.py used Pydantic for, without importing
Pydantic at every start (it and what it imports were ~80 ms of CPU of each start here: issue 17, P5).

A model declares its fields as annotated class attributes, with a default or a Field (default and
constraints: pattern, min_length, max_length, ge, le); `field_validator` and `model_validator` check more.
Validation is as lenient as Pydantic's lax mode for what YAML gives (an integer from "5" or 5.0, a boolean
from "yes", a tuple from a list) and reports every problem as Pydantic did (type, location, message,
context), so that settings_file.py names the file, line and field alike. Models are immutable: assigning a
field raises pydantic's ValidationError ("Instance is frozen"), as it always did.
"""
from __future__ import annotations

import copy
import math
import re
import typing

_MISSING = object()
_BAD = object()  # a value that failed: its problem is in the list of errors
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
# An integer as Pydantic reads one: "5", "-5", "1_000", "5.0", inside Unicode's white space; not "5." nor "٣"
_INTEGER = re.compile(r"([+-]?[0-9]+(?:_[0-9]+)*)(?:\.0+)?", re.ASCII)
_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
         "\u2028\u2029\u202f\u205f\u3000"  # Unicode's White_Space (str.strip() also takes \x1c-\x1f)
_IMMUTABLE = (str, int, float, bool, type(None), tuple, frozenset)


class Field:
    """A field's default and constraints."""

    def __init__(self, default=_MISSING, *, pattern: str | None = None, min_length: int | None = None,
                 max_length: int | None = None, ge: int | None = None, le: int | None = None):
        self.default, self.pattern, self.min_length, self.max_length, self.ge, self.le = (
            default, pattern, min_length, max_length, ge, le)
        self.regex = re.compile(pattern) if pattern is not None else None


class FieldInfo:
    def __init__(self, annotation, default):
        self.annotation, self.default = annotation, default


class ValidationError(ValueError):
    """Every problem found in one validation, each a dict: type, loc, msg, input and (some) ctx."""

    def __init__(self, title: str, errors: list[dict]):
        self.title, self._errors = title, errors
        lines = [f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in errors]
        super().__init__(f"{len(errors)} validation error(s) for {title}\n" + "\n".join(lines))

    def errors(self) -> list[dict]:
        return list(self._errors)

    def error_count(self) -> int:
        return len(self._errors)


def field_validator(*fields: str, mode: str = "after"):
    """On a classmethod: checks (and may change) the named fields' values, before or after their type."""
    def mark(method):
        method.__settings_validator__ = (fields, mode)
        return method
    return mark


def model_validator(*, mode: str = "after"):
    """On a method: checks the whole model once its fields are valid; returns the model."""
    def mark(method):
        method.__settings_model_validator__ = mode
        return method
    return mark


class Model:
    """An immutable model whose fields are validated from a mapping (model_validate) or keywords."""

    model_fields: dict[str, FieldInfo] = {}
    _checks, _before, _after, _whole = {}, {}, {}, []  # set for each model by __init_subclass__

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls, include_extras=True)
        fields, checks, before, after, whole = {}, {}, {}, {}, []
        for name, annotation in hints.items():
            if name.startswith("_") or typing.get_origin(annotation) is typing.ClassVar or name == "model_fields":
                continue
            declared = cls.__dict__.get(name, _MISSING)
            spec = declared if isinstance(declared, Field) else Field(declared)
            fields[name] = FieldInfo(annotation, spec.default)
            checks[name] = _checker(annotation, spec)
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                function = getattr(value, "__func__", value)
                fields_of, mode = getattr(value, "__settings_validator__", None) or getattr(
                    function, "__settings_validator__", ((), ""))
                for field in fields_of:  # a classmethod: bound to this class
                    (before if mode == "before" else after).setdefault(field, []).append(value.__get__(None, cls))
                if getattr(function, "__settings_model_validator__", None):
                    whole.append(function)
        cls.model_fields, cls._checks, cls._before, cls._after, cls._whole = fields, checks, before, after, whole

    def __init__(self, **data):
        errors: list[dict] = []
        model = self._build(data, (), errors)
        if errors:
            raise ValidationError(type(self).__name__, errors)
        object.__setattr__(self, "__dict__", model.__dict__)

    @classmethod
    def model_validate(cls, data):
        errors: list[dict] = []
        model = _check_model(cls, data, (), errors)
        if errors:
            raise ValidationError(cls.__name__, errors)
        return model

    @classmethod
    def _build(cls, data: dict, loc: tuple, errors: list[dict]):
        """The model from a mapping, or _BAD with every problem appended to errors."""
        values, failed = {}, len(errors)
        for name, info in cls.model_fields.items():
            if name not in data:
                if info.default is _MISSING:
                    errors.append(_error("missing", loc + (name,), "Field required", data))
                default = info.default  # a copy of a dict or a model holding one: no parse shares it with another
                values[name] = default if isinstance(default, _IMMUTABLE) else copy.deepcopy(default)
                continue
            value = data[name]
            for function in cls._before.get(name, ()):
                value = _run(function, value, loc + (name,), errors)
            if value is not _BAD:
                value = cls._checks[name](value, loc + (name,), errors)
            for function in cls._after.get(name, ()) if value is not _BAD else ():
                value = _run(function, value, loc + (name,), errors)
            values[name] = value
        for key in data:
            if key not in cls.model_fields:
                errors.append(_error("extra_forbidden", loc + (key,), "Extra inputs are not permitted", data[key]))
        if len(errors) > failed:
            return _BAD
        model = object.__new__(cls)
        object.__setattr__(model, "__dict__", values)
        for function in cls._whole:  # once every field is valid
            model = _run(function, model, loc, errors)
            if model is _BAD:
                break
        return model

    def model_copy(self, update: dict | None = None):
        """A copy with some fields changed (not validated, as with Pydantic)."""
        copy = object.__new__(type(self))
        object.__setattr__(copy, "__dict__", {**self.__dict__, **(update or {})})
        return copy

    def __setattr__(self, name, value):
        from pydantic_core import ValidationError as Frozen  # only here: Pydantic's error, as before

        raise Frozen.from_exception_data(type(self).__name__, [
            {"type": "frozen_instance", "loc": (name,), "input": value}])

    __delattr__ = __setattr__

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self):
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


def _check_model(cls, value, loc: tuple, errors: list[dict]):
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        errors.append(_error("model_type", loc, f"Input should be a valid dictionary or instance of {cls.__name__}",
                             value, {"class_name": cls.__name__}))
        return _BAD
    return cls._build(value, loc, errors)


def _run(function, value, loc: tuple, errors: list[dict]):
    try:
        return function(value)
    except (ValueError, AssertionError) as exc:
        errors.append(_error("value_error", loc, f"Value error, {exc}", value, {"error": exc}))
        return _BAD


def _error(kind: str, loc: tuple, msg: str, value, ctx: dict | None = None) -> dict:
    error = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        error["ctx"] = ctx
    return error


def _checker(annotation, spec: Field):
    """A function (value, loc, errors) -> the valid value, or _BAD with its problem in errors."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _checker(args[0], next((a for a in args[1:] if isinstance(a, Field)), spec))
    if annotation is str:
        return lambda value, loc, errors: _check_str(value, spec, loc, errors)
    if annotation is bool:
        return _check_bool
    if annotation is int:
        return lambda value, loc, errors: _check_int(value, spec, loc, errors)
    if origin is typing.Literal:
        return lambda value, loc, errors: _check_literal(value, args, loc, errors)
    if origin is tuple:
        item = _checker(args[0], Field())
        return lambda value, loc, errors: _check_tuple(value, item, spec, loc, errors)
    if origin is dict:
        key, item = _checker(args[0], Field()), _checker(args[1], Field())
        return lambda value, loc, errors: _check_dict(value, key, item, loc, errors)
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return lambda value, loc, errors: _check_model(annotation, value, loc, errors)
    raise TypeError(f"settings fields cannot be {annotation!r}")


def _check_str(value, spec: Field, loc, errors):
    if not isinstance(value, str):
        errors.append(_error("string_type", loc, "Input should be a valid string", value))
        return _BAD
    if spec.min_length is not None and len(value) < spec.min_length:
        n = spec.min_length
        errors.append(_error("string_too_short", loc, f"String should have at least {n} character{'s' * (n != 1)}",
                             value, {"min_length": n}))
        return _BAD
    if spec.max_length is not None and len(value) > spec.max_length:
        n = spec.max_length
        errors.append(_error("string_too_long", loc, f"String should have at most {n} character{'s' * (n != 1)}",
                             value, {"max_length": n}))
        return _BAD
    if spec.regex is None:
        return value
    match = spec.regex.search(value)
    if not match or (spec.pattern.endswith("$") and match.end() != len(value)):  # `$`: the end, not a last \n
        errors.append(_error("string_pattern_mismatch", loc, f"String should match pattern '{spec.pattern}'", value,
                             {"pattern": spec.pattern}))
        return _BAD
    return value


def _check_bool(value, loc, errors):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:  # " yes " is not a boolean (nor was it)
        return value.lower() in _TRUE
    if isinstance(value, (int, str)):
        errors.append(_error("bool_parsing", loc, "Input should be a valid boolean, unable to interpret input", value))
    else:
        errors.append(_error("bool_type", loc, "Input should be a valid boolean", value))
    return _BAD


def _check_int(value, spec: Field, loc, errors):
    number = value
    if isinstance(value, float):
        if not math.isfinite(value):
            errors.append(_error("finite_number", loc, "Input should be a finite number", value))
            return _BAD
        if not value.is_integer():
            errors.append(_error("int_from_float", loc, "Input should be a valid integer, got a number with a "
                                                        "fractional part", value))
            return _BAD
        if abs(value) >= 2 ** 63:
            errors.append(_error("int_parsing_size", loc, "Unable to parse input string as an integer, exceeded "
                                                          "maximum size", value))
            return _BAD
        number = int(value)
    elif isinstance(value, str):
        whole = _INTEGER.fullmatch(value.strip(_SPACE))
        if whole is None:
            errors.append(_error("int_parsing", loc, "Input should be a valid integer, unable to parse string as an "
                                                     "integer", value))
            return _BAD
        try:
            number = int(whole.group(1))
        except ValueError:  # more digits than Python converts
            errors.append(_error("int_parsing_size", loc, "Unable to parse input string as an integer, exceeded "
                                                          "maximum size", value))
            return _BAD
    elif not isinstance(value, int):
        errors.append(_error("int_type", loc, "Input should be a valid integer", value))
        return _BAD
    number = int(number)
    if spec.ge is not None and number < spec.ge:
        errors.append(_error("greater_than_equal", loc, f"Input should be greater than or equal to {spec.ge}", value,
                             {"ge": spec.ge}))
        return _BAD
    if spec.le is not None and number > spec.le:
        errors.append(_error("less_than_equal", loc, f"Input should be less than or equal to {spec.le}", value,
                             {"le": spec.le}))
        return _BAD
    return number


def _check_literal(value, choices: tuple, loc, errors):
    if any(type(value) is type(choice) and value == choice for choice in choices):
        return value
    names = [repr(c) for c in choices]
    expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    errors.append(_error("literal_error", loc, f"Input should be {expected}", value, {"expected": expected}))
    return _BAD


def _check_tuple(value, item, spec: Field, loc, errors):
    if not isinstance(value, (list, tuple, set, frozenset)):
        errors.append(_error("tuple_type", loc, "Input should be a valid tuple", value))
        return _BAD
    failed = len(errors)
    items = tuple(v for v in (item(v, loc + (i,), errors) for i, v in enumerate(value)) if v is not _BAD)
    if spec.min_length is not None and len(items) < spec.min_length:  # counting only the valid items
        n = spec.min_length
        errors.append(_error("too_short", loc, f"Tuple should have at least {n} item{'s' * (n != 1)} after validation, "
                                               f"not {len(items)}", value,
                             {"field_type": "Tuple", "min_length": n, "actual_length": len(items)}))
    return _BAD if len(errors) > failed else items


def _check_dict(value, key, item, loc, errors):
    if not isinstance(value, dict):
        errors.append(_error("dict_type", loc, "Input should be a valid dictionary", value))
        return _BAD
    failed, out = len(errors), {}
    for k, v in value.items():
        checked_key = key(k, loc + (k, "[key]"), errors)
        checked = item(v, loc + (k,), errors)
        if checked_key is not _BAD and checked is not _BAD:
            out[checked_key] = checked
    return _BAD if len(errors) > failed else out
