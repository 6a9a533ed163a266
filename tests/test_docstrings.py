"""Every public function and class has a complete Google-style docstring.

"Public" is what a module exports in ``__all__`` (the packages, and any module that has one)
and, in every other module of ``wgan_lip`` (except the command-line modules in ``EXCLUDED`` and
private ``_``-named modules), each function and class it defines (not imports) whose name does
not start with ``_``. Each needs a one-line summary (a first paragraph of one line), an
``Args:`` section naming every parameter (a class's constructor parameters, in the class
docstring or in its own ``__init__``'s; dataclasses and NamedTuples may use ``Attributes:``
instead), a ``Returns:`` (or ``Yields:``) section when the return annotation is not None, and
an ``Example:`` section with a ``>>>`` doctest (run by ``tests/test_doctests.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re

PACKAGES = [
    "wgan_lip",
    "wgan_lip.ot",
    "wgan_lip.w1",
    "wgan_lip.layers",
    "wgan_lip.models",
    "wgan_lip.constraints",
    "wgan_lip.critic",
    "wgan_lip.gan",
    "wgan_lip.robust",
    "wgan_lip.data",
    "wgan_lip.penalties",
    "wgan_lip.checkpoints",
    "wgan_lip.plotting",
]
# command-line internals: not a library API, and not walked for public names
EXCLUDED = {"wgan_lip.cli", "wgan_lip.lightning_cli", "wgan_lip.__main__", "wgan_lip._lazy"}

SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Attributes|Returns|Return|Yields|Yield|Raises|Example|"
    r"Examples|Note|Notes|Warning|Warnings|See Also|Todo|References):[ \t]*$",
    re.M,
)
# an entry of an Args/Attributes section: "name:", "name (type):" or "a, b, c:" (several
# parameters described together), indented one level (4 spaces) under the header
ENTRY = re.compile(r"^[ ]{4}(\*{0,2}\w+(?:,[ ]*\*{0,2}\w+)*)[ ]*(?:\([^)]*\))?:", re.M)
NO_RETURN = (None, "None", inspect.Signature.empty)


def library_modules() -> list[str]:
    """Every module of ``wgan_lip`` but the ``EXCLUDED`` ones and private (``_``-named) ones."""
    import wgan_lip

    names = [
        info.name
        for info in pkgutil.walk_packages(wgan_lip.__path__, "wgan_lip.")
        if info.name not in EXCLUDED
        and not any(part.startswith("_") for part in info.name.split(".")[1:])
    ]
    return sorted(set(PACKAGES) | set(names))


def public_objects() -> dict[str, object]:
    """``module.name`` -> every public function and class (see the module docstring).

    A module with ``__all__`` contributes the functions and classes it lists; one without, the
    functions and classes it defines itself whose names do not start with ``_``.
    """
    found: dict[str, object] = {}
    for module_name in library_modules():
        module = importlib.import_module(module_name)
        if hasattr(module, "__all__"):
            objs = [getattr(module, name) for name in module.__all__]
        else:
            objs = [
                obj
                for name, obj in vars(module).items()
                if not name.startswith("_") and getattr(obj, "__module__", None) == module_name
            ]
        for obj in objs:
            if inspect.isfunction(obj) or inspect.isclass(obj):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return found


def sections(doc: str) -> dict[str, str]:
    """The Google-style sections of a cleaned docstring: header -> body."""
    heads = list(SECTION.finditer(doc))
    return {
        h.group(1): doc[h.end() : heads[i + 1].start() if i + 1 < len(heads) else len(doc)]
        for i, h in enumerate(heads)
    }


def _is_record(cls: type) -> bool:
    """A dataclass or a NamedTuple: its fields may be documented as ``Attributes``."""
    return dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))


def problems(obj) -> list[str]:
    """What the docstring of ``obj`` (a function or a class) lacks; empty when complete."""
    doc = inspect.getdoc(obj) or ""
    if not doc.strip():
        return ["no docstring"]
    docs = [doc]
    if inspect.isclass(obj) and "__init__" in vars(obj):
        docs.append(inspect.getdoc(obj.__init__) or "")
    parts: dict[str, str] = {}
    for d in docs:
        for head, body in sections(d).items():
            parts[head] = parts.get(head, "") + body
    out = []
    if "\n" in doc.split("\n\n")[0]:
        out.append("the summary (first paragraph) is not one line")
    try:
        params = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.name not in ("self", "cls", "args", "kwargs")
        ]
    except (TypeError, ValueError):
        params = []
    if params:
        names = ("Args", "Arguments", "Parameters")
        if inspect.isclass(obj) and _is_record(obj):
            names += ("Attributes",)
        body = "".join(parts.get(n, "") for n in names)
        if not body:
            out.append("no Args section")
        else:
            described = {
                name.strip().lstrip("*") for m in ENTRY.finditer(body) for name in m[1].split(",")
            }
            missing = [p.name for p in params if p.name not in described]
            if missing:
                out.append(f"Args does not describe {', '.join(missing)}")
    if inspect.isfunction(obj):
        if inspect.signature(obj).return_annotation not in NO_RETURN and not (
            "Returns" in parts or "Return" in parts or "Yields" in parts or "Yield" in parts
        ):
            out.append("no Returns section")
    example = parts.get("Example", "") + parts.get("Examples", "")
    if ">>>" not in example:
        out.append("no Example section with a >>> doctest")
    return out


def test_public_names_are_found():
    objects = public_objects()
    assert len(objects) >= 170, sorted(objects)
    for name in (
        "wgan_lip.w1.estimate.estimate_w1",
        "wgan_lip.layers.conv.BCOPConv2d",
        "wgan_lip.gan.module.WGAN",
        "wgan_lip.data.synthetic.Translation",
        # modules without __all__: what they define, not what they import
        "wgan_lip.models.mlp_generator",
        "wgan_lip.ot.as_samples",
        "wgan_lip.constraints.get_constraint",
        "wgan_lip.critic.fit_shift_scale",
        "wgan_lip.penalties.gradient_penalty",
        "wgan_lip.plotting.critic_figure",
        "wgan_lip.checkpoints.verify_checkpoint_file",
        "wgan_lip.errors.InputError",
        "wgan_lip.w1.family.parse_member",
        "wgan_lip.data.vision.read_mnist",
    ):
        assert name in objects, name
    modules = library_modules()
    assert not EXCLUDED & set(modules)
    assert not [m for m in modules if m.split(".")[-1].startswith("_")], modules
    # an imported name is listed under its defining module only (models imports GroupSort)
    assert "wgan_lip.models.GroupSort" not in objects
    assert "wgan_lip.layers.activations.GroupSort" in objects


def test_every_public_name_has_a_complete_docstring():
    bad = {name: p for name, obj in sorted(public_objects().items()) if (p := problems(obj))}
    listing = "\n".join(f"  {name}: {'; '.join(p)}" for name, p in bad.items())
    assert not bad, f"{len(bad)} public names with incomplete docstrings:\n{listing}"


def test_every_example_is_run_as_a_doctest():
    from tests.test_doctests import MODULES

    modules = {obj.__module__ for obj in public_objects().values()}
    assert not modules - set(MODULES), (
        f"add these modules to tests/test_doctests.py MODULES: {sorted(modules - set(MODULES))}"
    )


def test_the_check_flags_an_incomplete_docstring():
    def undocumented(x: int, y: int) -> int:
        """Add two numbers, a summary
        that runs onto a second line.

        Args:
            x: a number.
        """
        return x + y

    def complete(x: int) -> int:
        """Double.

        Args:
            x: a number.

        Returns:
            ``2 x``.

        Example:
            >>> complete(2)
            4
        """
        return 2 * x

    @dataclasses.dataclass
    class Record:
        """A record.

        Attributes:
            value: a number.

        Example:
            >>> Record(1).value
            1
        """

        value: int

    assert problems(undocumented) == [
        "the summary (first paragraph) is not one line",
        "Args does not describe y",
        "no Returns section",
        "no Example section with a >>> doctest",
    ]
    assert problems(complete) == []
    assert problems(Record) == []
