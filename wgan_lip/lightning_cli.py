"""``wgan-lip fit|validate|test --config FILE``: LightningCLI over any wgan_lip module.

Configs name the module and datamodule by ``class_path`` (see ``configs/``), so one entry
point serves the W1 critic, the WGAN and the robust classifier.

Everything a run writes follows ``trainer.default_root_dir`` (``ROOT``): the logger's
``save_dir`` is linked to it, and a ``ModelCheckpoint`` without a ``dirpath`` saves into
``ROOT/checkpoints``. A run that fails leaves no new files behind unless it got as far as
writing a checkpoint; user mistakes (bad options, a damaged or mismatched checkpoint) are
one-line :class:`InputError`\\ s.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
import warnings
from pathlib import Path

import lightning as L
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from .checkpoints import verify_checkpoint_file
from .errors import InputError
from .paths import check_writable_folder

CHECKPOINT_FOLDER = "checkpoints"


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, with a one-line error for a missing, truncated or corrupt
    checkpoint (a run killed while writing one, a copy cut short) instead of a traceback
    from deep inside ``torch.load``. Saving is Lightning's: written whole, then moved."""

    def load_checkpoint(self, path, *args, **kwargs):
        if not os.path.isfile(path):
            raise InputError(f"checkpoint {str(path)!r} not found")
        verify_checkpoint_file(path)  # torch.load does not check the zip CRCs
        try:
            return super().load_checkpoint(path, *args, **kwargs)
        except Exception as e:
            raise InputError(
                f"checkpoint {str(path)!r} is truncated or corrupt ({type(e).__name__}: "
                f"{first_sentence(str(e))}); delete it to resume from an earlier checkpoint, "
                "or start again without --ckpt_path"
            ) from None


def first_sentence(text: str, limit: int = 200) -> str:
    """The first sentence of the first line of ``text``, at most ``limit`` characters."""
    line = (text.strip().splitlines() or [""])[0]
    line = line.split(". ")[0].rstrip(".")
    return line if len(line) <= limit else line[: limit - 3] + "..."


_PARSER_NOISE = (
    "Does not validate against",
    "Subtypes:",
    "Errors:",
    "Given value",
    "Problem with given class_path",
    "Parser key",
    "Expected a <class 'NoneType'>",
)


_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def condense_parser_error(message: str) -> str:
    """jsonargparse's nested, many-line validation message as one line: the dotted key, the
    class it was given to, and the innermost reason
    (``model (wgan_lip.w1.W1Critic): option 'bogus' is not accepted``)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    keys = [m.group(1) for line in lines if (m := re.match(r'Parser key "([^"]+)":', line))]
    reasons = [line.removeprefix("- ") for line in lines]
    reasons = [line for line in reasons if not line.startswith(_PARSER_NOISE)]
    reason = reasons[0] if reasons else (lines[0] if lines else "invalid arguments")
    reason = re.sub(
        r"a <class '(?:\w+\.)*(\w+)'>",
        lambda m: _TYPE_WORDS.get(m.group(1), "a " + m.group(1)),
        reason,
    )
    reason = re.sub(r"a typing\.Literal\[(.*)\]\. Got value:", r"one of \1, got", reason)
    reason = reason[0].lower() + reason[1:] if reason[:1].isupper() else reason
    where = ".".join(keys)
    if m := re.search(r"Problem with given class_path '([^']+)'", message):
        reason += _moved_option_hint(m.group(1), reason, where)
        where += f" ({m.group(1)})"
    return f"{where}: {reason}" if where else reason


def _moved_option_hint(class_path: str, reason: str, key: str) -> str:
    """Where an option of an older config went, or nothing: a module may declare
    ``MOVED_OPTIONS`` (old option -> its new dotted place under ``init_args``, e.g.
    ``{"lr_critic": "optimizer.lr"}``); an old option inside a section is keyed by its dotted
    path (``{"architecture.critic_widths": "architecture.critic.widths"}``)."""
    m = re.search(r"option '(\w+)' is not accepted", reason)
    if not m:
        return ""
    moved = getattr(_loaded_class(class_path), "MOVED_OPTIONS", None)
    if not isinstance(moved, dict):
        return ""
    head, _, section = (key or "model").partition(".")
    section = ".".join(p for p in section.split(".") if p != "init_args")
    old = f"{section}.{m.group(1)}" if section else m.group(1)
    new = moved.get(old)
    if not isinstance(new, str):
        return ""
    parent, _, leaf = new.rpartition(".")
    under = ".".join(part for part in (head, "init_args", parent) if part)
    return f"; it moved: write it under {under} ({leaf}: ...)"


def _loaded_class(class_path: str) -> type | None:
    """The class a config's ``class_path`` names (its module is already imported by the
    parser that reports on it), or None."""
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except Exception:  # a class_path the parser could not resolve either
        return None


class OneLineArgumentParser(LightningArgumentParser):
    """LightningCLI's parser, with a one-line :class:`InputError` for a bad option or config
    key instead of a 50-line usage dump."""

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        if not self.exit_on_error:  # a nested parser: jsonargparse catches and reports it
            super().error(message, ex)
        prog = self.prog.replace(" [options]", "")
        raise InputError(f"{condense_parser_error(message)} (see {prog} --help)") from None


class _RunWatch(Callback):
    """Remembers a Ctrl-C seen by the trainer (which then exits 1 on its own), and lets
    Lightning's held-back startup messages out once a run has really started."""

    interrupted = False

    def __init__(self, held: HeldLightningLogs) -> None:
        self.held = held

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            type(self).interrupted = True

    def _started(self, *_) -> None:
        self.held.let_out()

    on_fit_start = on_validation_start = on_test_start = on_predict_start = _started


class _Quiet(logging.Filter):
    """Drops Lightning's advertisement and its multi-line Ctrl-C notice (the CLI says it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return "Detected KeyboardInterrupt" not in text and "litlogger" not in text


class HeldLightningLogs(logging.Handler):
    """Holds Lightning's log records (``Seed set``, ``GPU available``, ``Restoring states``)
    until a run starts: a run refused at setup (missing data, a damaged or mismatched
    checkpoint) then prints its one-line error alone."""

    LOGGERS = ("lightning.pytorch", "lightning.fabric")

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_Quiet())
        self.records: list[logging.LogRecord] = []
        self.saved: dict[str, list[logging.Handler]] | None = None
        self.propagate: dict[str, bool] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def hold(self) -> None:
        self.saved = {}
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self.saved[name] = logger.handlers[:]
            # held, not passed up to the ``lightning`` logger's console handler either
            # (Lightning lets them propagate when the root logger has handlers)
            self.propagate[name] = logger.propagate
            logger.propagate = False
            for handler in self.saved[name]:  # handler filters also see child loggers' records
                if not any(isinstance(f, _Quiet) for f in handler.filters):
                    handler.addFilter(_Quiet())
            logger.handlers = [self]

    def _restore(self) -> None:
        if self.saved is not None:
            for name, handlers in self.saved.items():
                logging.getLogger(name).handlers = handlers
                logging.getLogger(name).propagate = self.propagate.get(name, True)
            self.saved = None

    def let_out(self) -> None:
        """Print what was held, and stop holding."""
        if self.saved is None:
            return
        self._restore()
        for record in self.records:
            logging.getLogger(record.name).handle(record)
        self.records = []

    def drop(self) -> None:
        self._restore()
        self.records = []


class RunFolderGuard:
    """Remembers which files a run's folders held before it started, so that a failed run
    can remove what it created (a run folder, ``lightning_logs/version_N``, ``config.yaml``)."""

    def __init__(self) -> None:
        self.before: dict[Path, set[str] | None] = {}
        self.loggers: list = []
        self.checkpoint_dirs: list[Path] = []

    def watch(self, folders: list[Path], checkpoint_dirs: list[Path]) -> None:
        for folder in [*folders, *checkpoint_dirs]:
            folder = folder.absolute()
            while not folder.parent.exists():  # runs/w1/x when runs/ is new: watch runs/
                folder = folder.parent
            if folder not in self.before:
                self.before[folder] = set(os.listdir(folder)) if folder.is_dir() else None
        self.checkpoint_dirs = [d.absolute() for d in checkpoint_dirs]

    def wrote_checkpoint(self) -> bool:
        for folder in self.checkpoint_dirs:
            old = self.before.get(folder) or set()
            if folder.is_dir() and any(n.endswith(".ckpt") for n in set(os.listdir(folder)) - old):
                return True
        return False

    def remove_new(self) -> None:
        # Deepest first, so that a folder emptied by the cleanup is removed as well. In a
        # folder that existed before (the working directory, say) only run artifacts go.
        for folder in sorted(self.before, key=lambda p: len(p.parts), reverse=True):
            old = self.before[folder]
            if not folder.exists():
                continue
            if old is None:
                shutil.rmtree(folder, ignore_errors=True)
                continue
            for name in set(os.listdir(folder)) - old:
                if not _RUN_ARTIFACT.fullmatch(name):
                    continue
                path = folder / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


_RUN_ARTIFACT = re.compile(
    r"version_\d+|lightning_logs|wandb|checkpoints|images|config\.yaml|hparams\.yaml"
    r"|.*\.ckpt|(offline-)?run-.*|latest-run|debug(-internal)?\.log"
)


def _state_dict_mismatch(e: RuntimeError) -> str:
    """The first concrete line of torch's ``Error(s) in loading state_dict`` message."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    detail = lines[1] if len(lines) > 1 else lines[0] if lines else type(e).__name__
    detail = re.sub(r"torch\.Size\((\[[^\]]*\])\)", r"\1", detail)
    return detail[:240] + ("..." if len(detail) > 240 else "")


class WganLipCLI(LightningCLI):
    """LightningCLI where the config is the source of truth and paths follow the root dir.

    Stock LightningCLI silently replaces the model's config with the hyperparameters stored
    in a ``--ckpt_path`` file; here the config stands and a checkpoint that does not fit the
    configured model is a one-line error, not a traceback or a different model.
    """

    def __init__(self, *args, guard: RunFolderGuard, held: HeldLightningLogs, **kwargs) -> None:
        self.guard = guard
        self.held = held
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "trainer.default_root_dir",
            "trainer.logger.init_args.save_dir",
            compute_fn=lambda root: "." if root is None else root,
        )

    def _parse_ckpt_path(self) -> None:
        return None

    def instantiate_classes(self) -> None:
        ckpt_path = self.config[self.subcommand].get("ckpt_path") if self.subcommand else None
        _refuse_an_untrained_evaluation(self.subcommand, ckpt_path)
        super().instantiate_classes()
        trainer = self.trainer
        root = Path(trainer.default_root_dir)
        checkpoint_dirs = []
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint):
                if callback.dirpath is None:
                    callback.dirpath = str((root / CHECKPOINT_FOLDER).absolute())
                checkpoint_dirs.append(Path(callback.dirpath))
        logger_dirs = [Path(lg.save_dir) for lg in trainer.loggers if lg.save_dir is not None]
        self.guard.watch(
            [root, root / "lightning_logs", root / "wandb", *logger_dirs], checkpoint_dirs
        )
        self.guard.loggers = trainer.loggers
        _check_output_folders(root, checkpoint_dirs, logger_dirs)
        if ckpt_path in ("last", "best"):
            _check_named_checkpoint(trainer, ckpt_path)
        if callable(getattr(self.datamodule, "load", None)):
            # Read the data now: a missing dataset is refused before a logger starts a run.
            self.datamodule.load()
        if self.subcommand == "fit" and ckpt_path is None:
            _refuse_a_second_fresh_run(checkpoint_dirs)
        strategy = trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:  # keep a user's own plugin
            strategy.checkpoint_io = SafeCheckpointIO()
        _one_line_state_dict_errors(strategy)
        trainer.callbacks.append(_RunWatch(self.held))


def _refuse_an_untrained_evaluation(subcommand: str | None, ckpt_path: str | None) -> None:
    """``validate`` and ``test`` without ``--ckpt_path`` would report a freshly initialized
    (untrained) model as if it were a result."""
    if subcommand in ("validate", "test") and ckpt_path is None:
        raise InputError(
            f"{subcommand} needs the trained model: pass --ckpt_path CKPT (a checkpoint of "
            "wgan-lip fit, e.g. ROOT/checkpoints/last.ckpt)"
        )


def _check_output_folders(root: Path, checkpoint_dirs: list[Path], logger_dirs: list[Path]) -> None:
    """Every folder the run writes to must be writable, checked before any work (a run
    that could not write its checkpoints would lose its training)."""
    check_writable_folder(root, "trainer.default_root_dir (default: the working directory)")
    for folder in checkpoint_dirs:
        check_writable_folder(folder, "checkpoint folder (ModelCheckpoint dirpath)")
    for folder in logger_dirs:
        check_writable_folder(folder, "logger save_dir")


def _check_named_checkpoint(trainer: L.Trainer, ckpt_path: str) -> None:
    """``--ckpt_path last`` must find a ``last*.ckpt`` in a checkpoint folder (Lightning would
    warn and start fresh, or evaluate an untrained model); ``best`` exists only within the
    process of a fit (Lightning would raise a ``ValueError``)."""
    callbacks = [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    if ckpt_path == "best":
        raise InputError(
            "--ckpt_path best names the best checkpoint of a fit in the same process; pass "
            "the file instead (e.g. ROOT/checkpoints/best.ckpt)"
        )
    found = set().union(*(cb._find_last_checkpoints(trainer) for cb in callbacks))
    if not found:
        where = ", ".join(sorted({str(cb.dirpath) for cb in callbacks})) or "(no ModelCheckpoint)"
        raise InputError(
            f"--ckpt_path last: no last checkpoint in {where}; start a new run without "
            "--ckpt_path, or pass the checkpoint file"
        )


def _refuse_a_second_fresh_run(checkpoint_dirs: list[Path]) -> None:
    """A new run must not mix its checkpoints with an earlier run's (``best.ckpt`` of one
    run beside ``last.ckpt`` of another)."""
    for folder in checkpoint_dirs:
        if folder.is_dir() and any(name.endswith(".ckpt") for name in os.listdir(folder)):
            raise InputError(
                f"{folder} already holds checkpoints of an earlier run: resume it with "
                "--ckpt_path last, or give this run its own folder with "
                "--trainer.default_root_dir DIR"
            )


def _one_line_state_dict_errors(strategy) -> None:
    """A checkpoint of another model (another config, another kind of module) is a user
    mistake: torch's many-line ``load_state_dict`` error becomes one line."""
    load = strategy.load_model_state_dict

    def checked_load(checkpoint, *args, **kwargs):
        try:
            return load(checkpoint, *args, **kwargs)
        except RuntimeError as e:
            if "state_dict" not in str(e):
                raise
            detail = _state_dict_mismatch(e)
            raise InputError(
                f"the checkpoint does not fit the model of this config ({detail}); use the "
                "config it was trained with"
            ) from None

    strategy.load_model_state_dict = checked_load


def main(argv: list[str]) -> int:
    """Run LightningCLI on ``argv`` (e.g. ``["fit", "--config", "configs/w1/x.yaml"]``).

    Returns 0, or 130 after Ctrl-C; raises :class:`InputError` for user mistakes. A run that
    fails before writing a checkpoint leaves no new files behind."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv) and not os.path.isfile(argv[i + 1]):
            raise InputError(f"config file {argv[i + 1]!r} not found")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")  # its banner would bury a one-line error
    # ``args=`` is how a console script hands LightningCLI its arguments; its warning about
    # also seeing them in sys.argv is meant for notebooks.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    guard, held = RunFolderGuard(), HeldLightningLogs()
    _RunWatch.interrupted = False
    held.hold()
    try:
        WganLipCLI(
            L.LightningModule,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=argv,
            parser_class=OneLineArgumentParser,
            parser_kwargs={"prog": "wgan-lip"},
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            guard=guard,
            held=held,
        )
    except SystemExit as e:
        held.let_out()
        if _RunWatch.interrupted:  # Lightning's own exit after a graceful Ctrl-C
            _finish_wandb_runs(guard, exit_code=130)
            return 130
        if e.code not in (0, None):
            _clean_up_after_failure(guard)
        raise
    except KeyboardInterrupt:
        held.drop()
        return 130
    except InputError:
        held.drop()  # the one-line error says it all
        _clean_up_after_failure(guard)
        raise
    except MisconfigurationException as e:  # e.g. `test` on a module without test_step
        held.drop()
        _clean_up_after_failure(guard)
        raise InputError(f"{first_sentence(str(e), limit=300)} (Lightning)") from None
    except BaseException as e:
        user_error = _input_error_inside(e)
        if user_error is not None:  # e.g. a module's __init__ refusing an option, wrapped
            held.drop()  # by jsonargparse in a multi-line "Union subtypes" report
            _clean_up_after_failure(guard)
            raise InputError(str(user_error)) from None
        held.let_out()  # a bug or a diverged run: keep every clue
        _clean_up_after_failure(guard)
        raise
    held.let_out()
    _finish_wandb_runs(guard, exit_code=0)
    return 0


def _input_error_inside(e: BaseException) -> InputError | None:
    """The :class:`InputError` among the causes of ``e`` (jsonargparse wraps the errors of
    the classes it instantiates), or None."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, InputError):
            return e
        seen.add(id(e))
        # an explicit cause, or the error being handled when this one was raised (unless
        # the raise suppressed it: `from None` means it is not the story)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return None


def _finish_wandb_runs(guard: RunFolderGuard, exit_code: int) -> None:
    """Finish the W&B runs this command started: a run left open keeps writing after a
    failure, and the next ``WandbLogger`` in the same process (a second ``main()`` call in a
    notebook or a test) would silently log into it, in the first run's folder."""
    for logger in guard.loggers:
        run = getattr(logger, "_experiment", None)
        if run is not None and hasattr(run, "finish"):
            try:
                run.finish(exit_code=exit_code)
            except Exception:  # finishing must not hide the error that brought us here
                pass


def _clean_up_after_failure(guard: RunFolderGuard) -> None:
    _finish_wandb_runs(guard, exit_code=1)
    if not guard.wrote_checkpoint():
        guard.remove_new()
