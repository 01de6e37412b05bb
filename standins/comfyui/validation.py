"""Prompt validation as ComfyUI 0.3.64's ``validate_prompt``: same error bodies, order of
checks and gaps (the README's fidelity notes); Python exceptions come from the expressions the
real server evaluates, so malformed graphs fail the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from standins.comfyui.catalog import FILE_VALIDATORS, RECORDED, FileResolver, NodeCatalog

__all__ = ["NO_PROMPT_ERROR", "PromptValidator", "Validation", "frames", "full_type_name"]

Result = tuple[bool, list[dict[str, Any]], Any]
Validation = tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]
"""(valid, error, outputs to run, node_errors), as ``execution.validate_prompt`` returns."""


def frames(*names: str) -> list[str]:
    """Traceback lines in the recorded format, by frame name or ``"path:line:function:code"``."""
    lines = []
    for name in names:
        path, line, func, code = RECORDED["frames"].get(name, name).split(":", 3)
        lines.append(f'  File "/opt/ComfyUI/{path}", line {line}, in {func}\n    {code}\n')
    return lines


_CONVERT: dict[str, type] = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}


def full_type_name(klass: type) -> str:
    """``module.Class`` as ComfyUI reports an exception type (builtins without module)."""
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def _tag(ex: BaseException, frame: str) -> BaseException:
    if not hasattr(ex, "comfy_frame"):
        ex.comfy_frame = frame  # type: ignore[attr-defined]
    return ex


def _error(kind: str, details: str, message: str = "", **extra_info: Any) -> dict[str, Any]:
    message = message or RECORDED["messages"][kind]
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


NO_PROMPT_ERROR = _error("no_prompt", "No prompt provided")


def _prompt_error(kind: str, details: str = "", message: str = "") -> Validation:
    return False, _error(kind, details, message), [], {}


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
            raise _tag(ex, "custom") from None
        if exists:
            return []
        details = f"{input_name} - {message}: {value}"
        return [_error("custom_validation_failed", details, input_name=input_name)]

    def _check_link(
        self, prompt: dict[str, Any], x: str, val: list[Any], info: list[Any], state: _Walk
    ) -> dict[str, Any] | bool | None:
        """An error, ``False`` when the linked node is invalid, ``None`` when fine."""
        if len(val) != 2:
            return _error(
                "bad_linked_input", x, input_name=x, input_config=info, received_value=val
            )
        o_id = val[0]
        try:
            o_class_type = prompt[o_id]["class_type"]
        except Exception as ex:
            raise _tag(ex, "lookup") from None
        try:
            received = self.catalog[o_class_type].return_types[val[1]]
        except Exception as ex:
            raise _tag(ex, "return_type") from None
        if not types_match(received, info[0]):
            details = f"{x}, received_type({received}) mismatch input_type({info[0]})"
            extra = {"received_type": received, "linked_node": val}
            return _error("return_type_mismatch", details, input_name=x, input_config=info, **extra)
        try:
            if o_id in state.visiting:  # the real server has no cycle check: it recurses
                raise _tag(RecursionError("maximum recursion depth exceeded"), "inner")
            state.visiting.append(o_id)
            try:
                return None if self.validate_inputs(prompt, o_id, state)[0] else False
            finally:
                state.visiting.pop()
        except Exception as ex:
            trace = frames("inner", getattr(ex, "comfy_frame", "generic"))
            extra = {"exception_message": str(ex), "exception_type": full_type_name(type(ex))}
            extra |= {"traceback": trace, "linked_node": val}
            kind = "exception_during_inner_validation"
            inner = _error(kind, str(ex), input_name=x, input_config=info, **extra)
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
            message = f"Failed to convert an input value to a {input_type} value"
            extra = {"received_value": val, "exception_message": str(ex)}
            details = f"{x}, {val}, {ex}"
            return _error(
                "invalid_input_type", details, message, input_name=x, input_config=info, **extra
            )
        if not checked:
            return None
        for bound, word in (("min", "smaller"), ("max", "bigger")):
            if bound in extra and (val < extra[bound] if bound == "min" else val > extra[bound]):
                message = f"Value {val} {word} than {bound} of {extra[bound]}"
                kind = f"value_{word}_than_{bound}"
                return _error(kind, x, message, input_name=x, input_config=info, received_value=val)
        # Only classic combos ([options], {...}) are checked; V3 "COMBO" lists are not.
        if isinstance(input_type, list) and val not in input_type:
            short = len(input_type) <= 20
            listed = str(input_type) if short else f"(list of length {len(input_type)})"
            details = f"{x}: '{val}' not in {listed}"
            config = info if short else None
            return _error(
                "value_not_in_list", details, input_name=x, input_config=config, received_value=val
            )
        return None

    def validate_inputs(self, prompt: dict[str, Any], unique_id: Any, state: _Walk) -> Result:
        """``validate_inputs`` of one node and, recursively, of the nodes it links to."""
        if unique_id in state.validated:
            return state.validated[unique_id]
        try:
            inputs = prompt[unique_id]["inputs"]
        except Exception as ex:
            raise _tag(ex, "inputs") from None
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
                    errors.append(_error("required_input_missing", x, input_name=x))
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
                message = "Cannot execute because a node is missing the class_type property."
                return _prompt_error("invalid_prompt", f"Node ID '#{x}'", message)
            class_type = prompt[x]["class_type"]
            node = self.catalog.get(class_type)
            if node is None:
                message = f"Cannot execute because node {class_type} does not exist."
                return _prompt_error("invalid_prompt", f"Node ID '#{x}'", message)
            if node.output_node and (partial is None or x in partial) and x not in outputs:
                outputs.append(x)
        if not outputs:
            return _prompt_error("prompt_no_outputs")

        good: list[str] = []
        failed: list[list[dict[str, Any]]] = []
        node_errors: dict[str, Any] = {}
        state = _Walk()
        for o in outputs:
            state.visiting = [o]
            try:
                valid, reasons, _ = self.validate_inputs(prompt, o, state)
            except Exception as ex:
                extra = {"exception_type": full_type_name(type(ex))}
                reason = _error(
                    "exception_during_validation",
                    str(ex),
                    **extra,
                    traceback=frames("outer", getattr(ex, "comfy_frame", "generic")),
                )
                valid, reasons = False, [reason]
                state.validated[o] = (False, reasons, o)
            if valid:
                good.append(o)
                continue
            failed.append(reasons)
            for node_id, (ok, errors, _) in state.validated.items():
                if not ok and errors:
                    class_type = prompt[node_id]["class_type"]
                    entry = {"errors": errors, "dependent_outputs": [], "class_type": class_type}
                    node_errors.setdefault(node_id, entry)["dependent_outputs"].append(o)
        if not good:
            lines = [f"{e['message']}: {e['details']}" for reasons in failed for e in reasons]
            return (
                False,
                _error("prompt_outputs_failed_validation", "\n".join(lines)),
                good,
                node_errors,
            )
        return True, None, good, node_errors


@dataclass
class _Walk:
    """Results by node id and the current link path of one ``validate_prompt``."""

    validated: dict[Any, Result] = field(default_factory=dict)
    visiting: list[Any] = field(default_factory=list)
