"""The recipe protocol and registry: what every task's recipe implements, written once.

A recipe joins a task, the models that learn it, the trainer and the task's defaults. It names
its task (``name``, also ``attnkit train NAME``), declares its settings as one dataclass
(``settings``: each field a flag of ``attnkit train NAME``, with its help; the values a run
really uses when a flag is not given come from :meth:`Recipe.defaults`, which reads the same
presets training does), and implements the verbs that apply to it:

==============  ===========================================================================
``train``       settings + :class:`Job` -> a trained run (the best epoch, reloaded)
``load``        checkpoint directory -> run
``evaluate``    run + :class:`Options` -> scores (a dict; ``format_scores`` prints them)
``predict``     run + Options -> one :class:`Prediction` per input
``show``        run + Options -> picture written, lines to print (where it applies)
``explain``     run + Options -> lines to print (where it applies)
``serve_card``  run -> the explorer's model card; ``serve_predict``: the explorer's prediction
``export``      run + directory -> files written (where it applies)
==============  ===========================================================================

A verb a recipe does not implement raises :class:`NotApplicable`, which the command prints as
one line. ``recipe_for(checkpoint)`` finds a checkpoint's recipe from its config.json, so the
command line, the explorer and export dispatch through this registry and never through a chain
of checkpoint kinds. Adding a task is a task module, (a model module,) a recipe module and one
``register`` line each.

    >>> from attnkit.recipes import base
    >>> "times" in base.names() and base.get("times").name
    'times'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from .._kinds import count, fraction, path, positive_float, positive_int
from ..train import read_config
from ..train.checkpoint import CheckpointError
from ..train.loop import SettingsError, TrainConfig

__all__ = [  # the kinds of setting values (count ... positive_int) with the protocol
    "count",
    "fraction",
    "path",
    "positive_float",
    "positive_int",
    "Job",
    "NotApplicable",
    "Options",
    "Prediction",
    "Recipe",
    "SettingsError",
    "TrainSettings",
    "get",
    "merge_settings",
    "names",
    "recipe_for",
    "register",
    "saved_settings",
    "setting",
]

TRAIN_FIELDS = frozenset(f.name for f in fields(TrainConfig))


class NotApplicable(ValueError):
    """A verb or an option that does not apply to a checkpoint's recipe (one line, exit 2)."""


def setting(
    help: str,
    *,
    flag: str | None = None,
    choices: Iterable[Any] | None = None,
    kind: Callable[[str], Any] | None = None,
    metavar: str | None = None,
) -> Any:
    """A settings field: None (not given) by default, with its help text; ``flag`` spells it
    on the command line where the field's name (or :data:`SHORT_FLAGS`) would not,
    ``kind`` parses and checks a value (``cli.arguments.positive_int``...), ``choices`` lists
    the values allowed."""
    meta = {
        "help": help,
        "flag": flag,
        "choices": None if choices is None else tuple(choices),
        "kind": kind,
        "metavar": metavar,
    }
    return field(default=None, metadata=meta)


@dataclass
class TrainSettings:
    """The schedule every recipe's settings share (fields of TrainConfig; None = the recipe's
    default for its model)."""

    epochs: int | None = setting(
        "the learning-rate schedule's length and the most epochs", kind=positive_int
    )
    seed: int | None = setting("the seed of weights, data order and splits", kind=count)
    batch_size: int | None = setting("examples a training batch", kind=positive_int)
    lr: float | None = setting("Adam's peak learning rate", kind=positive_float)
    patience: int | None = setting("epochs without improvement before stopping", kind=positive_int)
    minutes: float | None = setting(
        "stop training after this many minutes (the learning rate decays over them)",
        kind=positive_float,
    )

    def given(self) -> dict[str, Any]:
        """The settings the user gave (not None), ``minutes`` as TrainConfig's ``time_limit``
        in seconds."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out = {k: v for k, v in out.items() if v is not None}
        if "minutes" in out:
            out["time_limit"] = out.pop("minutes") * 60
        return out


@dataclass
class Run:
    """A trained or loaded model, its task (vocabularies, classes, normalisation) and its
    config.json; each recipe's run is one of these, with what else it keeps."""

    model: Any  # an nn.Module, or an export's runtime model
    task: Any
    config: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """Where and how one training runs: what ``attnkit train`` asks of every task alike."""

    out: str | Path
    resume: bool = False
    overwrite: bool = False
    threads: int | None = None
    progress: bool = True
    log: Callable[[str], Any] = print

    @classmethod
    def take(cls, out: str | Path, settings: dict[str, Any]) -> tuple[Job, dict[str, Any]]:
        """Split a recipe module's ``train(out=..., **settings)`` keywords: the job (``resume``,
        ``overwrite``, ``threads``, ``progress``, ``log``; the defaults where not given) and the
        settings that remain."""
        names = {f.name for f in fields(cls)} - {"out"}
        job = cls(out, **{k: v for k, v in settings.items() if k in names})
        return job, {k: v for k, v in settings.items() if k not in names}

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments every recipe module's ``train`` function takes for these."""
        return {
            "out": self.out,
            "resume": self.resume,
            "overwrite": self.overwrite,
            "threads": self.threads,
            "progress": self.progress,
            "log": self.log,
        }


@dataclass
class Options:
    """A verb's options (``attnkit eval / predict / show / explain``): None or False when not
    given. ``given()`` names those that were, so a recipe can refuse the ones that do not
    apply to it in one place (:meth:`Recipe.check_options`)."""

    checkpoint: str = ""  # the directory the run was loaded from
    texts: list[str] = field(default_factory=list)
    data: str | None = None
    json: bool = False
    beam: int = 1
    save: str | None = None
    last: int | None = None
    plot: str | None = None
    out: str | None = None
    kind: str | None = None
    layer: int | None = None
    head: int | None = None
    html: str | None = None
    steps: int | None = None
    color: str = "auto"
    target: str | None = None  # export: a runtime the graph must suit ("mt5")

    def given(self) -> list[str]:
        defaults = Options()
        return [
            f.name
            for f in fields(self)
            if f.name not in ("json", "checkpoint")
            and getattr(self, f.name) != getattr(defaults, f.name)
        ]


@dataclass
class Prediction:
    """One input's prediction: a JSON record (``input``, ``output`` and what else the recipe
    gives, such as ``weights``) and the line ``predict`` prints without ``--json``."""

    record: dict[str, Any]
    line: str


OPTION_FLAGS = {
    "texts": "text",
    "data": "--data",
    "beam": "--beam",
    "save": "--save",
    "last": "--last",
    "plot": "--plot",
    "out": "--out",
    "kind": "--kind",
    "layer": "--layer",
    "head": "--head",
    "html": "--html",
    "steps": "--steps",
    "color": "--color",
    "target": "--target",
}


class Recipe:
    """The protocol of a recipe (see the module's docstring). Subclasses set the class
    attributes and override the verbs that apply."""

    name: ClassVar[str]  # the task: `attnkit train NAME`, config.json's task name
    help: ClassVar[str]  # one line for `attnkit train --help`
    what: ClassVar[str]  # the kind of model, for messages: "a language model"
    settings: ClassVar[type]  # the settings dataclass (fields default to None)
    models: ClassVar[tuple[str, ...]] = ()  # --model's choices; the first is the default
    # per verb: the options (fields of Options) that apply to this recipe's checkpoints
    options: ClassVar[dict[str, frozenset[str]]] = {}
    score_width: ClassVar[int] = 16  # the column of score names that eval prints
    other_verbs: ClassVar[tuple[str, ...]] = ()  # commands of this recipe's own (generate)

    # -- training -------------------------------------------------------------------------
    def defaults(self, model: str | None = None) -> dict[str, Any]:
        """The value of every setting a run of ``model`` (default: the first) uses when it is
        not given: what ``attnkit train NAME --help`` prints."""
        raise NotImplementedError

    def train(self, settings: Any, job: Job) -> Any:
        raise NotImplementedError

    def trained(self, run: Any, job: Job) -> list[str]:
        """The lines printed after training: the best epoch's scores, where the checkpoint is
        and what to try next."""
        return [f"checkpoint in {job.out}"]

    def owns(self, config: dict[str, Any]) -> bool:
        """Whether a checkpoint's config.json is one of this recipe's."""
        return (config.get("task") or {}).get("name") == self.name

    def check_given(self, settings: Any, model: str | None) -> None:
        """SettingsError naming the given settings that do not apply to ``model`` (those not
        among its :meth:`defaults`)."""
        model = model or (self.models[0] if self.models else None)
        applies = self.defaults(model)
        wrong = [
            flag_of(f)
            for f in fields(settings)
            if f.name != "model"
            and f.name not in applies
            and getattr(settings, f.name) not in (None, False)
        ]
        if wrong:
            raise SettingsError(
                f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not "
                f"apply to {model or self.name}"
            )

    # -- the verbs on a checkpoint --------------------------------------------------------
    def load(self, checkpoint: str | Path) -> Any:
        raise NotImplementedError

    def check_options(self, verb: str, options: Options) -> None:
        """NotApplicable naming the given options that do not apply to ``verb`` here."""
        wrong = [o for o in options.given() if o not in self.options.get(verb, frozenset())]
        if wrong:
            listed = ", ".join(OPTION_FLAGS[o] for o in wrong)
            raise NotApplicable(
                f"{listed} {'does' if len(wrong) == 1 else 'do'} not apply to {verb} on {self.what}"
            )

    def refuse(self, verb: str) -> NotApplicable:
        """The error for a verb this recipe's checkpoints do not take, naming those they do."""
        verbs = [v for v in ("eval", "predict", "show", "explain", "export") if self.implements(v)]
        verbs += self.other_verbs
        listed = ", ".join(f"attnkit {v}" for v in verbs) or "none"
        return NotApplicable(
            f"this checkpoint holds {self.what}: attnkit {verb} does not apply (use {listed})"
        )

    def implements(self, verb: str) -> bool:
        """Whether this recipe overrides the hook of ``verb`` (eval = ``evaluate``)."""
        hook = {"eval": "evaluate"}.get(verb, verb)
        mine = getattr(type(self), hook, None)
        return mine is not None and mine is not getattr(Recipe, hook, None)

    def evaluate(self, run: Any, options: Options) -> dict[str, Any]:
        raise self.refuse("eval")

    def format_scores(self, scores: dict[str, Any], options: Options) -> str:
        """The scores as ``eval`` prints them without ``--json``: a row per score, names in a
        column of ``score_width``."""
        w = self.score_width
        return "\n".join(
            f"{k:<{w}}{v:.4f}" if isinstance(v, float) else f"{k:<{w}}{v}"
            for k, v in scores.items()
        )

    def predict(self, run: Any, options: Options) -> list[Prediction]:
        raise self.refuse("predict")

    def show(self, run: Any, options: Options, png: Path) -> list[str]:
        raise self.refuse("show")

    def explain(self, run: Any, options: Options) -> list[str]:
        raise self.refuse("explain")

    def serve_card(self, run: Any) -> dict[str, Any]:
        """The explorer's model card: the checkpoint's config, task and metrics."""
        config = run.config
        return {
            "model": config.get("model"),
            "config": config.get("config"),
            "metrics": config.get("metrics"),
            "epoch": config.get("epoch"),
            "data": config.get("data"),
            "version": config.get("attnkit_version"),
            "parameters": sum(p.numel() for p in run.model.parameters()),
        }

    def serve_predict(self, run: Any, text: str, beam: int = 1) -> dict[str, Any]:
        raise NotApplicable(f"the explorer does not show {self.what}")

    def serves(self) -> bool:
        return self.implements("serve_predict")

    def export(self, run: Any, out: Path, **options: Any) -> list[Path]:
        raise self.refuse("export")

    def load_exported(self, directory: Path, meta: dict[str, Any]) -> Any:
        """A run whose model is the exported graphs in ``directory`` (``meta`` its
        model.json) run by onnxruntime, for the verbs that take ``--runtime onnx``."""
        raise NotApplicable(
            f"--runtime onnx does not run exported {self.what} yet "
            "(run the graph in onnxruntime as its model.json describes)"
        )


def task_of(where: str | Path, config: dict[str, Any], from_config: Callable[[Any], Any]) -> Any:
    """The task a checkpoint's config.json or an export's model.json (``config``, read from
    ``where``) describes, read by ``from_config``; CheckpointError naming the file where it is
    unusable."""
    try:
        return from_config(config.get("task") or {})
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{where}: {err}") from None


def rounded(t: Any, places: int = 5) -> list:
    """A tensor as nested lists of floats rounded to ``places`` (for JSON)."""
    import torch

    return torch.round(t.detach().float(), decimals=places).tolist()


# the short spellings every recipe's command uses for these model config fields
SHORT_FLAGS = {"hidden_dim": "--hidden", "num_heads": "--heads"}


def flag_of(f: dataclasses.Field) -> str:
    """The command-line spelling of a settings field: its ``flag``, else its short spelling
    (:data:`SHORT_FLAGS`: ``num_heads`` -> ``--heads``), else ``--`` and its name with dashes
    (``batch_size`` -> ``--batch-size``)."""
    return f.metadata.get("flag") or SHORT_FLAGS.get(f.name) or "--" + f.name.replace("_", "-")


_RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the registry under its name (which must be new)."""
    if recipe.name in _RECIPES:
        raise ValueError(f"a recipe named {recipe.name!r} is already registered")
    if not dataclasses.is_dataclass(recipe.settings):
        raise TypeError(f"{type(recipe).__name__}.settings must be a dataclass")
    _RECIPES[recipe.name] = recipe
    return recipe


def unregister(name: str) -> None:
    """Remove a recipe (for tests that register their own)."""
    _RECIPES.pop(name, None)


def names() -> list[str]:
    return list(_RECIPES)


def get(name: str) -> Recipe:
    try:
        return _RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(_RECIPES)}") from None


def recipe_for(checkpoint: str | Path) -> Recipe:
    """The recipe of the checkpoint in ``checkpoint``, from its config.json; CheckpointError
    where it holds none or one no recipe knows."""
    directory = Path(checkpoint)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint directory at {directory}")
    config = read_config(directory)
    if config is None:
        raise CheckpointError(f"{directory} is not a checkpoint: config.json is missing")
    return recipe_of(config, directory)


def recipe_for_export(directory: str | Path) -> tuple[Recipe, dict[str, Any]]:
    """(recipe, model.json) of the exported model in ``directory`` (``attnkit export``);
    a one-line error where it is not one."""
    from ..export.onnx import read_meta

    meta = read_meta(directory)
    name = meta.get("recipe")
    if name not in _RECIPES:
        raise CheckpointError(f"{directory}/model.json names no known recipe ({name!r})")
    return _RECIPES[name], meta


def recipe_of(config: dict[str, Any], where: str | Path = "config.json") -> Recipe:
    for recipe in _RECIPES.values():
        if recipe.owns(config):
            return recipe
    task = (config.get("task") or {}).get("name") if isinstance(config, dict) else None
    raise CheckpointError(f"{where}: no recipe reads a checkpoint of task {task!r}")


def begin(job: Job, task: str | None = None, what: str = "") -> tuple[bool, dict[str, Any] | None]:
    """The steps every training starts with: torch's threads, the checkpoint directory checked
    (:func:`~attnkit.train.loop.prepare_out`) and the run to resume read from it, refused
    unless its task is ``task``. Returns (whether there is a run to resume, its config.json
    or None)."""
    import torch

    from ..train.loop import prepare_out

    out = job.out
    if job.threads:
        torch.set_num_threads(job.threads)
    if not prepare_out(out, job.resume, job.overwrite, job.log):
        return False, None
    saved = read_config(out)
    if saved is not None and task is not None and (saved.get("task") or {}).get("name") != task:
        raise SettingsError(f"{out} holds no {what or task} run")
    if saved is not None:
        check_data_unchanged(saved.get("data"), out)
    return True, saved


DATA_FILE_KEYS = ("file", "path", "source")  # where a run's data description names a file


def with_digest(source: dict[str, Any]) -> dict[str, Any]:
    """A run's data description with the SHA-256 of the file it names (if it names one), so a
    resumed run can tell that the file changed."""
    for key in DATA_FILE_KEYS:
        value = source.get(key)
        if isinstance(value, str) and Path(value).is_file():
            return {**source, "sha256": file_digest(value)}
    return source


def file_digest(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_data_unchanged(source: Any, out: str | Path) -> None:
    """SettingsError if the data file a run was trained on has changed since (a resumed run
    would train on other rows than the epochs before)."""
    if not isinstance(source, dict) or "sha256" not in source:
        return
    path = next((source[k] for k in DATA_FILE_KEYS if isinstance(source.get(k), str)), None)
    if path is None:
        return
    if not Path(path).is_file():
        raise SettingsError(f"{out} was trained on {path}, which is no longer there")
    if file_digest(path) != source["sha256"]:
        raise SettingsError(
            f"{path} has changed since the run in {out} began (its SHA-256 differs): resume "
            "with the same file, or start afresh with --overwrite"
        )


def finish(load: Callable[[str | Path], Any], out: str | Path, state: dict[str, Any]) -> Any:
    """The steps every training ends with: the best epoch reloaded from ``out``, with the
    history of every epoch (the trainer's ``state``) in its config."""
    best = load(out)
    best.config["history"] = state["history"]
    return best


def add_layers(values: dict[str, Any]) -> None:
    """An encoder-decoder's ``layers`` setting (both stacks) in ``values``, from its encoder's
    and decoder's layers: their number, or both where they differ."""
    if "encoder_layers" in values:
        enc, dec = values["encoder_layers"], values["decoder_layers"]
        values["layers"] = enc if enc == dec else f"{enc} encoder, {dec} decoder"


def split_layers(given: dict[str, Any]) -> None:
    """``layers`` in ``given`` as the encoder's and the decoder's (``--layers`` sets both)."""
    layers = given.pop("layers", None)
    if layers is not None:
        given.update(encoder_layers=layers, decoder_layers=layers)


def merge_settings(
    settings: dict[str, Any],
    model: str,
    own: frozenset[str],
    from_data: frozenset[str],
    presets: dict[str, Any],
) -> tuple[dict[str, Any], TrainConfig]:
    """(model config overrides, TrainConfig): ``presets`` under the explicit ``settings``
    (None = not given); SettingsError for a setting that is neither a field of the model's
    config (``own``) nor of TrainConfig, or that the data decides (``from_data``)."""
    explicit = {k: v for k, v in settings.items() if v is not None}
    unknown = sorted(set(explicit) - own - TRAIN_FIELDS)
    if unknown:
        raise SettingsError(f"unknown settings for {model}: {', '.join(unknown)}")
    given = sorted(set(explicit) & from_data)
    if given:
        raise SettingsError(f"{', '.join(given)} come from the data, not from settings")
    merged = {**presets, **explicit}
    model_kw = {k: v for k, v in merged.items() if k in own}
    return model_kw, TrainConfig(**{k: v for k, v in merged.items() if k in TRAIN_FIELDS})


def resolved(config_cls: type, model_kw: dict[str, Any], tcfg: TrainConfig) -> dict[str, Any]:
    """Every setting of a model config class and TrainConfig as a run resolves it: the
    class's defaults under ``model_kw``, and ``tcfg``'s fields."""
    own = {f.name: f.default for f in fields(config_cls) if f.default is not dataclasses.MISSING}
    return {**own, **model_kw, **dataclasses.asdict(tcfg)}


def saved_settings(
    saved: dict, settings: dict[str, Any], from_data: frozenset[str]
) -> dict[str, Any]:
    """The settings a resumed run continues with: its own model config and TrainConfig, under
    the ones the user gave (not None), less those the data decides (``from_data``)."""
    given = {k: v for k, v in settings.items() if v is not None}
    merged = {**saved.get("train_config", {}), **saved["config"], **given}
    return {k: v for k, v in merged.items() if k not in from_data}
