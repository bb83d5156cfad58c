"""Cosmic Ray operators for the mutation analysis, offered under the provider name ``dropout-lab``.

There is one: Cosmic Ray's own variable replacer (``core/VariableReplacer``), unchanged except that
it no longer stops ``cosmic-ray init`` with an AttributeError on an assignment whose right-hand side
is a bare name, such as the reference's ``out = x``. Cosmic Ray 8.7 reads the children of that side
without checking that it has any. pyproject.toml registers the provider under Cosmic Ray's entry
point ``cosmic_ray.operator_providers``.
"""

from __future__ import annotations

from cosmic_ray.operators.variable_replacer import VariableReplacer as CoreVariableReplacer


class VariableReplacer(CoreVariableReplacer):
    """Replaces each use of a variable in an assignment (to another given variable) by a constant."""

    def _get_causes_from_expr_node(self, expr_node):
        rhs = expr_node.get_rhs()
        # A bare name (a leaf) is its own only part.
        return self._flatten_expr(getattr(rhs, "children", [rhs]))


class OperatorProvider:
    """The provider Cosmic Ray finds through its entry point: operator names to operator classes."""

    _OPERATORS = {"VariableReplacer": VariableReplacer}

    def __iter__(self):
        return iter(self._OPERATORS)

    def __getitem__(self, name):
        return self._OPERATORS[name]
