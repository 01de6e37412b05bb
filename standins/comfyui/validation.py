"""Prompt validation with the behaviour (and the gaps) of ComfyUI 0.3.64's ``validate_prompt``.

Same error bodies, same order of checks, same gaps: no INT ``step`` check, V3 ``COMBO`` lists
unchecked, partial acceptance, numeric strings coerced in place, and a dangling link reached
through another node reported on the node *holding* it (``exception_during_inner_validation``).
Python exceptions come from the same kinds of expressions the real server evaluates, so
malformed graphs fail the same way (a list as ``class_type`` ends in HTTP 500).
"""

from __future__ import annotations

import os
from typing import Any

from standins.comfyui.catalog import FILE_VALIDATORS, FileResolver, NodeCatalog

__all__ = ["NO_PROMPT_ERROR", "PromptValidator", "Validation", "full_type_name"]

Result = tuple[bool, list[dict[str, Any]], Any]
Validation = tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]
"""(valid, error, outputs to run, node_errors), as ``execution.validate_prompt`` returns."""

NO_PROMPT_ERROR = {
    "type": "no_prompt",
    "message": "No prompt provided",
    "details": "No prompt provided",
    "extra_info": {},
}


def _frame(line: int, code: str, func: str = "validate_inputs") -> str:
    return f'  File "/opt/ComfyUI/execution.py", line {line}, in {func}\n    {code}\n'


_FRAME_LOOKUP = _frame(
    788, "o_class_type = prompt[o_id]['class_type']\n" + " " * 19 + "~" * 6 + "^" * 6
)
_FRAME_RETURN_TYPE = _frame(790, "received_type = r[val[1]]\n" + " " * 20 + "~" + "^" * 8)
_FRAME_INPUTS = _frame(
    741, "inputs = prompt[unique_id]['inputs']\n" + " " * 13 + "~" * 17 + "^" * 10
)
_FRAME_INNER = _frame(
    808, "r = await validate_inputs(prompt_id, prompt, o_id, validated)\n" + " " * 8 + "^" * 57
)
_FRAME_OUTER = _frame(
    1010,
    "m = await validate_inputs(prompt_id, prompt, o, validated)\n" + " " * 8 + "^" * 54,
    "validate_prompt",
)
_FRAME_CUSTOM = _frame(
    902,
    "ret = await _async_map_node_over_list(prompt_id, unique_id, obj_class, input_filtered, "
    "validate_function_name, hidden_inputs=hidden_inputs)",
)
_FRAME_GENERIC = _frame(760, "...")


_CONVERT: dict[str, type] = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


def full_type_name(klass: type) -> str:
    """``module.Class`` as ComfyUI reports an exception type (builtins without module)."""
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def _tag(ex: BaseException, frame: str) -> BaseException:
    if not hasattr(ex, "comfy_frames"):
        ex.comfy_frames = [frame]  # type: ignore[attr-defined]
    return ex


def _error(kind: str, message: str, details: str, **extra_info: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def _prompt_error(kind: str, message: str, details: str = "") -> Validation:
    return False, _error(kind, message, details), [], {}


def types_match(received: Any, wanted: Any) -> bool:
    """ComfyUI's non-strict type check ("A,B" unions intersect; "*" matches anything)."""
    if received == wanted:
        return True
    if not isinstance(received, str) or not isinstance(wanted, str):
        return False
    got, want = ({t.strip() for t in s.split(",")} for s in (received, wanted))
    return "*" in got or "*" in want or bool(got & want)


class PromptValidator:
    """Validates a submitted graph against the catalog, as ``execution.validate_prompt``."""

    def __init__(self, catalog: NodeCatalog, files: FileResolver) -> None:
        self.catalog = catalog
        self.files = files

    def _check_file(self, class_type: str, inputs: dict[str, Any]) -> list[dict[str, Any]]:
        # get_input_data without an execution list: links become None.
        input_name, message = FILE_VALIDATORS[class_type]
        value = inputs.get(input_name)
        value = None if isinstance(value, list) else value
        try:
            exists = os.path.exists(self.files.path(value))  # type: ignore[arg-type]
        except Exception as ex:
            raise _tag(ex, _FRAME_CUSTOM) from None
        if exists:
            return []
        return [
            _error(
                "custom_validation_failed",
                "Custom validation failed for node",
                f"{input_name} - {message}: {value}",
                input_name=input_name,
            )
        ]

    def _check_link(
        self, prompt: dict[str, Any], x: str, val: list[Any], info: list[Any], state: _Walk
    ) -> dict[str, Any] | bool | None:
        """An error, ``False`` when the linked node is invalid, ``None`` when fine."""
        if len(val) != 2:
            return _error(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                x,
                input_name=x,
                input_config=info,
                received_value=val,
            )
        o_id = val[0]
        try:
            o_class_type = prompt[o_id]["class_type"]
        except Exception as ex:
            raise _tag(ex, _FRAME_LOOKUP) from None
        try:
            received = self.catalog[o_class_type].return_types[val[1]]
        except Exception as ex:
            raise _tag(ex, _FRAME_RETURN_TYPE) from None
        if not types_match(received, info[0]):
            return _error(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                f"{x}, received_type({received}) mismatch input_type({info[0]})",
                input_name=x,
                input_config=info,
                received_type=received,
                linked_node=val,
            )
        try:
            if o_id in state.visiting:  # the real server has no cycle check: it recurses
                raise _tag(RecursionError("maximum recursion depth exceeded"), _FRAME_INNER)
            state.visiting.append(o_id)
            try:
                return None if self.validate_inputs(prompt, o_id, state)[0] else False
            finally:
                state.visiting.pop()
        except Exception as ex:
            frames = getattr(ex, "comfy_frames", None) or [_FRAME_GENERIC]
            inner = _error(
                "exception_during_inner_validation",
                "Exception when validating inner node",
                str(ex),
                input_name=x,
                input_config=info,
                exception_message=str(ex),
                exception_type=full_type_name(type(ex)),
                traceback=[_FRAME_INNER, *frames],
                linked_node=val,
            )
            state.validated[o_id] = (False, [inner], o_id)
            return False

    def _check_value(
        self, inputs: dict[str, Any], x: str, info: list[Any], checked: bool
    ) -> dict[str, Any] | None:
        input_type, extra = info
        val = inputs[x]
        try:
            if isinstance(val, dict) and "__value__" in val:
                val = inputs[x] = val["__value__"]
            convert = _CONVERT.get(input_type) if isinstance(input_type, str) else None
            if convert is not None:
                val = inputs[x] = convert(val)
        except Exception as ex:
            return _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {input_type} value",
                f"{x}, {val}, {ex}",
                input_name=x,
                input_config=info,
                received_value=val,
                exception_message=str(ex),
            )
        if not checked:
            return None
        for bound, word in (("min", "smaller"), ("max", "bigger")):
            if bound in extra and (val < extra[bound] if bound == "min" else val > extra[bound]):
                return _error(
                    f"value_{word}_than_{bound}",
                    f"Value {val} {word} than {bound} of {extra[bound]}",
                    x,
                    input_name=x,
                    input_config=info,
                    received_value=val,
                )
        # Only classic combos ([options], {...}) are checked; V3 "COMBO" lists are not.
        if isinstance(input_type, list) and val not in input_type:
            short = len(input_type) <= 20
            listed = str(input_type) if short else f"(list of length {len(input_type)})"
            return _error(
                "value_not_in_list",
                "Value not in list",
                f"{x}: '{val}' not in {listed}",
                input_name=x,
                input_config=info if short else None,
                received_value=val,
            )
        return None

    def validate_inputs(self, prompt: dict[str, Any], unique_id: Any, state: _Walk) -> Result:
        """``validate_inputs`` of one node and, recursively, of the nodes it links to."""
        if unique_id in state.validated:
            return state.validated[unique_id]
        try:
            inputs = prompt[unique_id]["inputs"]
        except Exception as ex:
            raise _tag(ex, _FRAME_INPUTS) from None
        class_type = prompt[unique_id]["class_type"]
        node = self.catalog[class_type]
        errors: list[dict[str, Any]] = []
        valid = True
        file_input = FILE_VALIDATORS.get(class_type, ("",))[0]
        for x in [*node.required, *node.optional]:
            spec = node.input_spec(x)
            assert spec is not None
            input_type, category, extra = spec
            info = [input_type, extra]
            if x not in inputs:
                if category == "required":
                    errors.append(
                        _error(
                            "required_input_missing", "Required input is missing", x, input_name=x
                        )
                    )
                continue
            if isinstance(inputs[x], list):
                problem = self._check_link(prompt, x, inputs[x], info, state)
            else:
                problem = self._check_value(inputs, x, info, checked=x != file_input)
            if problem is False:
                valid = False
            elif isinstance(problem, dict):
                errors.append(problem)
        if file_input:
            errors.extend(self._check_file(class_type, inputs))
        result: Result = (not errors and valid, errors, unique_id)
        state.validated[unique_id] = result
        return result

    def validate_prompt(self, prompt: Any, partial: list[str] | None) -> Validation:
        """The whole graph: which outputs run, the error body and ``node_errors``."""
        outputs: list[Any] = []
        for x in prompt:
            if "class_type" not in prompt[x]:
                return _prompt_error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{x}'",
                )
            class_type = prompt[x]["class_type"]
            node = self.catalog.get(class_type)
            if node is None:
                return _prompt_error(
                    "invalid_prompt",
                    f"Cannot execute because node {class_type} does not exist.",
                    f"Node ID '#{x}'",
                )
            if node.output_node and (partial is None or x in partial) and x not in outputs:
                outputs.append(x)
        if not outputs:
            return _prompt_error("prompt_no_outputs", "Prompt has no outputs")

        good: list[str] = []
        failed: list[list[dict[str, Any]]] = []
        node_errors: dict[str, Any] = {}
        state = _Walk()
        for o in outputs:
            state.visiting = [o]
            try:
                valid, reasons, _ = self.validate_inputs(prompt, o, state)
            except Exception as ex:
                frames = getattr(ex, "comfy_frames", None) or [_FRAME_GENERIC]
                valid, reasons = (
                    False,
                    [
                        _error(
                            "exception_during_validation",
                            "Exception when validating node",
                            str(ex),
                            exception_type=full_type_name(type(ex)),
                            traceback=[_FRAME_OUTER, *frames],
                        )
                    ],
                )
                state.validated[o] = (False, reasons, o)
            if valid:
                good.append(o)
                continue
            failed.append(reasons)
            for node_id, (ok, errors, _) in state.validated.items():
                if not ok and errors:
                    entry = node_errors.setdefault(
                        node_id,
                        {
                            "errors": errors,
                            "dependent_outputs": [],
                            "class_type": prompt[node_id]["class_type"],
                        },
                    )
                    entry["dependent_outputs"].append(o)
        if not good:
            lines = [f"{e['message']}: {e['details']}" for reasons in failed for e in reasons]
            error = _error(
                "prompt_outputs_failed_validation",
                "Prompt outputs failed validation",
                "\n".join(lines),
            )
            return False, error, good, node_errors
        return True, None, good, node_errors


class _Walk:
    """Results by node id and the current link path of one ``validate_prompt``."""

    def __init__(self) -> None:
        self.validated: dict[Any, Result] = {}
        self.visiting: list[Any] = []
