"""Prompt validation with the behaviour (and the gaps) of ComfyUI 0.3.64's ``validate_prompt``.

Written after the reference notes: error bodies, the order in which checks run, which
checks are skipped (INT ``step``, V3 ``COMBO`` lists), partial acceptance, the in-place
coercion of numeric strings, and the odd attribution of a dangling link to the node
*holding* it when it is reached through another node (``exception_during_inner_validation``).
Python exceptions are raised by the same kinds of expressions the real server evaluates,
so malformed graphs fail the same way (e.g. a list as ``class_type`` ends in HTTP 500).
"""

from __future__ import annotations

import os
from typing import Any

from standins.comfyui.catalog import FILE_VALIDATORS, NodeCatalog, NodeDef

__all__ = [
    "NO_PROMPT_ERROR",
    "FileResolver",
    "PromptValidator",
    "full_type_name",
    "validate_node_input",
]

Validated = dict[str, tuple[bool, list[dict[str, Any]], str]]

_EXEC = '  File "/opt/ComfyUI/execution.py", line {line}, in {func}\n    {code}\n'
_FRAME_PROMPT_LOOKUP = _EXEC.format(
    line=788,
    func="validate_inputs",
    code="o_class_type = prompt[o_id]['class_type']\n                   ~~~~~~^^^^^^",
)
_FRAME_RETURN_TYPE = _EXEC.format(
    line=790,
    func="validate_inputs",
    code="received_type = r[val[1]]\n                    ~^^^^^^^^",
)
_FRAME_INPUTS = _EXEC.format(
    line=741,
    func="validate_inputs",
    code="inputs = prompt[unique_id]['inputs']\n             ~~~~~~~~~~~~~~~~~^^^^^^^^^^",
)
_FRAME_INNER_CALL = _EXEC.format(
    line=808,
    func="validate_inputs",
    code="r = await validate_inputs(prompt_id, prompt, o_id, validated)\n"
    "        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
)
_FRAME_OUTER_CALL = _EXEC.format(
    line=1010,
    func="validate_prompt",
    code="m = await validate_inputs(prompt_id, prompt, o, validated)\n"
    "        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
)
_FRAME_CUSTOM = _EXEC.format(
    line=902,
    func="validate_inputs",
    code="ret = await _async_map_node_over_list(prompt_id, unique_id, obj_class, input_filtered, "
    "validate_function_name, hidden_inputs=hidden_inputs)",
)
_FRAME_GENERIC = _EXEC.format(line=760, func="validate_inputs", code="...")

_PREFIX_DIRS = (("[output]", "output", 9), ("[input]", "input", 8), ("[temp]", "temp", 7))


def full_type_name(klass: type) -> str:
    module = klass.__module__
    if module == "builtins":
        return klass.__qualname__
    return module + "." + klass.__qualname__


def _tag(ex: BaseException, frame: str) -> BaseException:
    if not hasattr(ex, "comfy_frames"):
        ex.comfy_frames = [frame]  # type: ignore[attr-defined]
    return ex


def _frames(ex: BaseException) -> list[str]:
    frames = getattr(ex, "comfy_frames", None)
    return list(frames) if frames else [_FRAME_GENERIC]


def validate_node_input(received_type: Any, input_type: Any) -> bool:
    """ComfyUI's non-strict type check ("A,B" unions intersect; "*" is the Any type)."""
    if received_type == input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    wanted = {t.strip() for t in input_type.split(",")}
    if "*" in received or "*" in wanted:
        return True
    return len(received & wanted) > 0


class FileResolver:
    """``folder_paths.annotated_filepath`` semantics for input/output/temp."""

    def __init__(self, input_dir: str, output_dir: str, temp_dir: str) -> None:
        self.dirs = {"input": input_dir, "output": output_dir, "temp": temp_dir}

    def annotated(self, name: str) -> tuple[str, str | None]:
        for suffix, kind, cut in _PREFIX_DIRS:
            if name.endswith(suffix):
                return name[:-cut], self.dirs[kind]
        return name, None

    def path(self, name: str, default_dir: str | None = None) -> str:
        name, base = self.annotated(name)
        if base is None:
            base = default_dir if default_dir is not None else self.dirs["input"]
        return os.path.join(base, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path(name))


class PromptValidator:
    def __init__(self, catalog: NodeCatalog, files: FileResolver) -> None:
        self.catalog = catalog
        self.files = files

    # ------------------------------------------------------------------ per node
    def _custom_validation(self, node: NodeDef, inputs: dict[str, Any]) -> list[dict[str, Any]]:
        spec = FILE_VALIDATORS.get(node.name)
        if spec is None:
            return []
        input_name, message = spec
        # get_input_data without an execution list: links become None.
        value = inputs.get(input_name) if isinstance(inputs, dict) else None
        if isinstance(value, list):
            value = None
        try:
            ok = self.files.exists(value)  # type: ignore[arg-type]
        except Exception as ex:
            raise _tag(ex, _FRAME_CUSTOM) from None
        if ok:
            return []
        return [
            {
                "type": "custom_validation_failed",
                "message": "Custom validation failed for node",
                "details": f"{input_name} - {message}: {value}",
                "extra_info": {"input_name": input_name},
            }
        ]

    def validate_inputs(
        self,
        prompt: dict[str, Any],
        unique_id: Any,
        validated: Validated,
        visiting: list[Any] | None = None,
    ) -> tuple[bool, list[dict[str, Any]], str]:
        visiting = [unique_id] if visiting is None else visiting
        if unique_id in validated:
            return validated[unique_id]
        try:
            inputs = prompt[unique_id]["inputs"]
        except Exception as ex:
            raise _tag(ex, _FRAME_INPUTS) from None
        class_type = prompt[unique_id]["class_type"]
        node = self.catalog[class_type]

        errors: list[dict[str, Any]] = []
        valid = True
        validate_function_inputs = node.validate_inputs

        for x in node.input_names():
            spec = node.input_spec(x)
            assert spec is not None
            input_type, input_category, extra_info = spec
            if x not in inputs:
                if input_category == "required":
                    errors.append(
                        {
                            "type": "required_input_missing",
                            "message": "Required input is missing",
                            "details": f"{x}",
                            "extra_info": {"input_name": x},
                        }
                    )
                continue

            val = inputs[x]
            info = [input_type, extra_info]
            if isinstance(val, list):
                if len(val) != 2:
                    errors.append(
                        {
                            "type": "bad_linked_input",
                            "message": "Bad linked input, must be a length-2 list of "
                            "[node_id, slot_index]",
                            "details": f"{x}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                            },
                        }
                    )
                    continue
                o_id = val[0]
                try:
                    o_class_type = prompt[o_id]["class_type"]
                except Exception as ex:
                    raise _tag(ex, _FRAME_PROMPT_LOOKUP) from None
                try:
                    received_type = self.catalog[o_class_type].return_types[val[1]]
                except Exception as ex:
                    raise _tag(ex, _FRAME_RETURN_TYPE) from None
                if not validate_node_input(received_type, input_type):
                    errors.append(
                        {
                            "type": "return_type_mismatch",
                            "message": "Return type mismatch between linked nodes",
                            "details": f"{x}, received_type({received_type}) "
                            f"mismatch input_type({input_type})",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_type": received_type,
                                "linked_node": val,
                            },
                        }
                    )
                    continue
                try:
                    if o_id in visiting:
                        # The real server has no cycle check: it dies with RecursionError.
                        raise _tag(
                            RecursionError("maximum recursion depth exceeded"), _FRAME_INNER_CALL
                        )
                    visiting.append(o_id)
                    try:
                        r = self.validate_inputs(prompt, o_id, validated, visiting)
                    finally:
                        visiting.pop()
                    if r[0] is False:
                        valid = False
                        continue
                except Exception as ex:
                    valid = False
                    validated[o_id] = (
                        False,
                        [
                            {
                                "type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(ex),
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "exception_message": str(ex),
                                    "exception_type": full_type_name(type(ex)),
                                    "traceback": [_FRAME_INNER_CALL, *_frames(ex)],
                                    "linked_node": val,
                                },
                            }
                        ],
                        o_id,
                    )
                    continue
            else:
                try:
                    if isinstance(val, dict) and "__value__" in val:
                        val = val["__value__"]
                        inputs[x] = val
                    if input_type == "INT":
                        val = int(val)
                        inputs[x] = val
                    if input_type == "FLOAT":
                        val = float(val)
                        inputs[x] = val
                    if input_type == "STRING":
                        val = str(val)
                        inputs[x] = val
                    if input_type == "BOOLEAN":
                        val = bool(val)
                        inputs[x] = val
                except Exception as ex:
                    errors.append(
                        {
                            "type": "invalid_input_type",
                            "message": f"Failed to convert an input value to a {input_type} value",
                            "details": f"{x}, {val}, {ex}",
                            "extra_info": {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                                "exception_message": str(ex),
                            },
                        }
                    )
                    continue

                if x not in validate_function_inputs:
                    if "min" in extra_info and val < extra_info["min"]:
                        errors.append(
                            {
                                "type": "value_smaller_than_min",
                                "message": f"Value {val} smaller than min of {extra_info['min']}",
                                "details": f"{x}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "received_value": val,
                                },
                            }
                        )
                        continue
                    if "max" in extra_info and val > extra_info["max"]:
                        errors.append(
                            {
                                "type": "value_bigger_than_max",
                                "message": f"Value {val} bigger than max of {extra_info['max']}",
                                "details": f"{x}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": info,
                                    "received_value": val,
                                },
                            }
                        )
                        continue
                    # Only classic combos ([options], {...}) are checked; V3 "COMBO" is not.
                    if isinstance(input_type, list) and val not in input_type:
                        combo_options = input_type
                        input_config: Any = info
                        if len(combo_options) > 20:
                            list_info = f"(list of length {len(combo_options)})"
                            input_config = None
                        else:
                            list_info = str(combo_options)
                        errors.append(
                            {
                                "type": "value_not_in_list",
                                "message": "Value not in list",
                                "details": f"{x}: '{val}' not in {list_info}",
                                "extra_info": {
                                    "input_name": x,
                                    "input_config": input_config,
                                    "received_value": val,
                                },
                            }
                        )
                        continue

        if validate_function_inputs:
            errors.extend(self._custom_validation(node, inputs))

        ret = (False, errors, unique_id) if errors or valid is not True else (True, [], unique_id)
        validated[unique_id] = ret
        return ret

    # ------------------------------------------------------------------ prompt
    def validate_prompt(
        self, prompt: Any, partial_execution_list: list[str] | None
    ) -> tuple[bool, dict[str, Any] | None, list[str], dict[str, Any]]:
        outputs: list[Any] = []
        for x in prompt:
            if "class_type" not in prompt[x]:
                return (
                    False,
                    {
                        "type": "invalid_prompt",
                        "message": "Cannot execute because a node is missing the class_type "
                        "property.",
                        "details": f"Node ID '#{x}'",
                        "extra_info": {},
                    },
                    [],
                    {},
                )
            class_type = prompt[x]["class_type"]
            node = self.catalog.get(class_type)
            if node is None:
                return (
                    False,
                    {
                        "type": "invalid_prompt",
                        "message": f"Cannot execute because node {class_type} does not exist.",
                        "details": f"Node ID '#{x}'",
                        "extra_info": {},
                    },
                    [],
                    {},
                )
            wanted = partial_execution_list is None or x in partial_execution_list
            if node.output_node and wanted and x not in outputs:
                outputs.append(x)

        if len(outputs) == 0:
            return (
                False,
                {
                    "type": "prompt_no_outputs",
                    "message": "Prompt has no outputs",
                    "details": "",
                    "extra_info": {},
                },
                [],
                {},
            )

        good_outputs: list[Any] = []
        errors: list[tuple[Any, list[dict[str, Any]]]] = []
        node_errors: dict[str, Any] = {}
        validated: Validated = {}
        for o in outputs:
            try:
                m = self.validate_inputs(prompt, o, validated)
                valid, reasons = m[0], m[1]
            except Exception as ex:
                valid = False
                reasons = [
                    {
                        "type": "exception_during_validation",
                        "message": "Exception when validating node",
                        "details": str(ex),
                        "extra_info": {
                            "exception_type": full_type_name(type(ex)),
                            "traceback": [_FRAME_OUTER_CALL, *_frames(ex)],
                        },
                    }
                ]
                validated[o] = (False, reasons, o)

            if valid is True:
                good_outputs.append(o)
            else:
                errors.append((o, reasons))
                for node_id, result in validated.items():
                    if result[0] is not True and len(result[1]) > 0:
                        if node_id not in node_errors:
                            node_errors[node_id] = {
                                "errors": result[1],
                                "dependent_outputs": [],
                                "class_type": prompt[node_id]["class_type"],
                            }
                        node_errors[node_id]["dependent_outputs"].append(o)

        if len(good_outputs) == 0:
            lines = [f"{e['message']}: {e['details']}" for _, reasons in errors for e in reasons]
            return (
                False,
                {
                    "type": "prompt_outputs_failed_validation",
                    "message": "Prompt outputs failed validation",
                    "details": "\n".join(lines),
                    "extra_info": {},
                },
                good_outputs,
                node_errors,
            )
        return True, None, good_outputs, node_errors


NO_PROMPT_ERROR: dict[str, Any] = {
    "type": "no_prompt",
    "message": "No prompt provided",
    "details": "No prompt provided",
    "extra_info": {},
}
