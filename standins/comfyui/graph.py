"""Execution order and cache keys, following ComfyUI's observable behaviour.

* Order: a "topological dissolve" started from the output nodes; among the ready nodes an
  output node is preferred, then a node feeding an output, then one two hops away from an
  output, else the first ready node in discovery order. This reproduces the order seen in
  the transcripts (e.g. LoadImage, ImageScale, PreviewImage, GetImageSize, ...).
* Cache keys: a node's key is its class, its "is changed" value (file hash for LoadImage),
  its constant inputs and, recursively, the keys of its ancestors; node ids take part only
  for nodes with a hidden UNIQUE_ID input. Keys not used by the current prompt are dropped
  when the next prompt starts (the classic cache).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from standins.comfyui.catalog import NodeCatalog

__all__ = ["ExecutionOrder", "Uncacheable", "is_link", "node_signatures"]


def is_link(obj: Any) -> bool:
    return (
        isinstance(obj, list)
        and len(obj) == 2
        and isinstance(obj[0], str)
        and isinstance(obj[1], int | float)
        and not isinstance(obj[1], bool)
    )


class ExecutionOrder:
    def __init__(
        self,
        prompt: dict[str, Any],
        catalog: NodeCatalog,
        is_cached: Callable[[str], bool],
    ) -> None:
        self.prompt = prompt
        self.catalog = catalog
        self.is_cached = is_cached
        self.pending: dict[str, None] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, set[Any]]] = {}

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links: list[tuple[str, Any, str]] = []
        while stack:
            unique_id = stack.pop()
            if unique_id in self.pending:
                continue
            self.pending[unique_id] = None
            self.block_count[unique_id] = 0
            self.blocking[unique_id] = {}
            for value in self.prompt[unique_id]["inputs"].values():
                if is_link(value):
                    from_id, socket = value
                    if not self.is_cached(from_id):
                        stack.append(from_id)
                    links.append((from_id, socket, unique_id))
        for from_id, socket, to_id in links:
            if not self.is_cached(from_id):
                self.add_node(from_id)
                if to_id not in self.blocking[from_id]:
                    self.blocking[from_id][to_id] = set()
                    self.block_count[to_id] += 1
                self.blocking[from_id][to_id].add(socket)

    def is_empty(self) -> bool:
        return not self.pending

    def _is_output(self, node_id: str) -> bool:
        node = self.catalog.get(self.prompt[node_id]["class_type"])
        return node is not None and node.output_node

    def next_node(self) -> str | None:
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            return None
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for blocked in self.blocking[node_id]:
                if any(self._is_output(b) for b in self.blocking[blocked]):
                    return node_id
        return ready[0]

    def complete(self, node_id: str) -> None:
        del self.pending[node_id]
        for blocked in self.blocking[node_id]:
            self.block_count[blocked] -= 1
        del self.blocking[node_id]


class Uncacheable:
    """Stands for an "is changed" value that never equals itself (NaN in ComfyUI)."""

    _n = 0

    def __init__(self) -> None:
        Uncacheable._n += 1
        self.token = f"<uncacheable {Uncacheable._n}>"


def _ancestry(prompt: dict[str, Any], node_id: str) -> tuple[list[str], dict[str, int]]:
    ancestors: list[str] = []
    order: dict[str, int] = {}

    def visit(nid: str) -> None:
        if nid not in prompt:
            return
        inputs = prompt[nid]["inputs"]
        for key in sorted(inputs):
            if is_link(inputs[key]):
                ancestor = inputs[key][0]
                if ancestor not in order:
                    ancestors.append(ancestor)
                    order[ancestor] = len(ancestors) - 1
                    visit(ancestor)

    visit(node_id)
    return ancestors, order


def node_signatures(
    prompt: dict[str, Any],
    catalog: NodeCatalog,
    is_changed: Callable[[str], Any],
) -> dict[str, str]:
    """Cache key of every node of the prompt."""
    changed_memo: dict[str, Any] = {}

    def changed(nid: str) -> Any:
        if nid not in changed_memo:
            value = is_changed(nid)
            changed_memo[nid] = value.token if isinstance(value, Uncacheable) else value
        return changed_memo[nid]

    def immediate(nid: str, order: dict[str, int]) -> list[Any]:
        if nid not in prompt:
            return [Uncacheable().token]
        node = prompt[nid]
        class_type = node["class_type"]
        sig: list[Any] = [class_type, changed(nid)]
        node_def = catalog.get(class_type)
        if node_def is not None and node_def.unique_id_hidden:
            sig.append(nid)
        inputs = node["inputs"]
        for key in sorted(inputs):
            value = inputs[key]
            if is_link(value):
                sig.append([key, ["ANCESTOR", order[value[0]], value[1]]])
            else:
                sig.append([key, value])
        return sig

    keys: dict[str, str] = {}
    for nid in prompt:
        ancestors, order = _ancestry(prompt, nid)
        signature = [immediate(nid, order)] + [immediate(a, order) for a in ancestors]
        keys[nid] = json.dumps(signature, sort_keys=True, default=repr)
    return keys
