"""The JSON Schema of suite files, with every installed plugin's typed parameters.

Editors (VS Code's YAML extension, JetBrains) complete and check a suite against it: put
``# yaml-language-server: $schema=suite.schema.json`` at the top of a suite file.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from skinbench.configuration.registry import Catalogue
from skinbench.configuration.suite import Suite
from skinbench.vocabulary import KINDS


def suite_schema(catalogue: Catalogue) -> dict[str, Any]:
    """A schema of :class:`~skinbench.configuration.suite.Suite` whose plugin entries are checked per plugin name."""
    fields = {key: (list[_entry_type(catalogue, kind)], Field(default=..., min_length=1)) for key, kind in KINDS.items()}
    fields["augmenters"] = (fields["augmenters"][0], Field(default=None, min_length=1))
    model = create_model("SkinbenchSuite", __base__=Suite, **fields)
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "skinbench suite"
    return schema


def _entry_type(catalogue: Catalogue, kind: str) -> Any:
    """A bare plugin name, or a mapping whose ``params`` follow that plugin's ``Params`` model."""
    names = catalogue.names(kind)
    if not names:
        return str
    models = [_entry_model(kind, name, catalogue.entries[kind][name].cls) for name in names]
    mapping = models[0] if len(models) == 1 else Annotated[Union[tuple(models)], Field(discriminator="name")]
    return Union[Literal[tuple(names)], mapping]


def _entry_model(kind: str, name: str, cls: type) -> type[BaseModel]:
    extra = {"tasks": (list[str] | None, None), "label": (str | None, None)} if kind == "dataset" else {}
    title = f"{kind}_{name}".replace("-", "_")
    return create_model(title, __config__=ConfigDict(extra="forbid", title=f"{kind} {name}"),
                        __doc__=(cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else None,
                        name=(Literal[name], ...), params=(cls.Params, None), **extra)
