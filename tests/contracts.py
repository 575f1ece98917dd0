"""An import-linter contract the library does not ship: surfaces reach the library only through its public API.

import-linter's ``protected`` contract says who may import a module; this one says the reverse, which is what the
design states: a surface (the CLI, the HTTP service, MCP, doctor) may import, of the library, only the modules named
public, so a new internal module is internal without anyone listing it. Imports between surfaces are not checked
(the CLI starts the service). Configured in pyproject.toml ([tool.importlinter]), run by ``lint-imports``.
"""

from __future__ import annotations

from typing import cast

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.helpers import module_expressions_to_modules
from importlinter.domain.imports import ModuleExpression


class PublicApiContract(Contract):
    """``surfaces`` (with their descendants) import, of ``library`` (with its descendants), only ``public``."""

    type_name = "public_api"

    surfaces = fields.ListField(subfield=fields.ModuleExpressionField())
    library = fields.ListField(subfield=fields.ModuleExpressionField())
    public = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        def names(field: object, as_packages: bool) -> set[str]:
            # Typed as the class's field object, the attribute holds the parsed value on an instance.
            expressions = cast("list[ModuleExpression]", field)
            found = module_expressions_to_modules(graph, expressions, as_packages, raise_if_unmatched=True)
            return {module.name for module in found}

        surfaces = names(self.surfaces, as_packages=True)
        internal = names(self.library, as_packages=True) - surfaces - names(self.public, as_packages=False)
        illegal = [
            (
                importer,
                imported,
                sorted({d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)}),
            )
            for importer in sorted(surfaces)
            for imported in sorted(graph.find_modules_directly_imported_by(importer) & internal)
        ]
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["illegal"]:
            where = ", ".join(map(str, lines))
            output.print_error(f"- {importer} -> {imported} (l.{where}): not public API", bold=False)
            output.new_line()
        output.print_error("Import it through a public module, or make the module public in pyproject.toml.")
        output.new_line()
