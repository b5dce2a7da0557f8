"""The bad-input catalogue: every row is a command a user could type (with the files it needs),
and each must end with exit code 2 (the data CLI: 1 for a data problem, as documented in
``python -m dmlbench.data --help``), exactly one ``error:`` line on stderr, no traceback, and
nothing left behind (no experiment folder, no search lock; a download keeps only its archive).

Placeholders: {tmp} this case's folder, {demo} a shared generated demo data root, {repo} the
repository. Every case fails before any training starts.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dmlbench.cli import main as run_main
from dmlbench.data.__main__ import main as data_main
from dmlbench.data.cub import CUB200
from dmlbench.data.demo import DemoShapes
from dmlbench.data.download import RemoteFile

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    id: str
    expect: str  # a piece of the one error line
    argv: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    cli: str = "run"  # run: run.py | data: python -m dmlbench.data
    code: int = 2
    archive: tuple[str, bytes] | None = None  # (file name, bytes) served to `data download CUB200`
    links: dict[str, str] = field(default_factory=dict)  # symbolic link -> its target (relative to {tmp})
    folders: tuple[str, ...] = ()  # empty folders made before the command


def run(id: str, expect: str, *argv: str, files: dict | None = None, **made: Any) -> Case:
    return Case(id, expect, ("--root_experiment_folder", "{tmp}/logs", *argv), files or {}, **made)


NEW = ("--experiment_name", "x", "--dataset_root", "{tmp}/no_data")
DEMO = (
    "--experiment_name",
    "x",
    "--dataset_root",
    "{demo}",
    "--reproduce_results",
    "{repo}/exp_configs/demo",
    "--merge_argparse_when_resuming",
    "--dataset~OVERRIDE~",
    "{DemoShapes: {num_classes: 16, images_per_class: 4}}",
    "--split_manager~APPLY~2",
    "{num_training_partitions: 2, num_training_sets: 2}",
)
SEARCH = (*DEMO, "--loss_funcs~APPLY~3", "{alpha~BAYESIAN~: [1, 4]}", "--bayes_opt_iters", "2")
EXP = ("--reproduce_results", "{tmp}/exp", "--dataset_root", "{tmp}/no_data")


def saved_experiment(general: str = "batch_size: 8\n") -> dict[str, str]:
    """A folder as a run leaves it after its first checkpoint: configs with their sha256 file."""
    digest = hashlib.sha256(general.encode()).hexdigest()
    return {
        "logs/x/configs/config_general.yaml": general,
        "logs/x/configs/command_line.txt": "x\n",
        "logs/x/configs/config_sha256.json": f'{{"config_general": "{digest}"}}\n',
        "logs/x/Test50_50_Partitions4_0/checkpoints/latest.pt": "x",
    }


SAVED = saved_experiment()
MINE = ("--experiment_name", "x", "--dataset_root", "{tmp}/no_data", "--root_config_folder", "{tmp}/cfg")


def tar_bytes(members: list[tuple[str, str, str]]) -> bytes:
    """(name, file|dir|symlink, payload or link target) -> an uncompressed tar archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as bundle:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload.encode())
                bundle.addfile(info, io.BytesIO(payload.encode()))
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                bundle.addfile(info)
            else:
                info.type, info.linkname = tarfile.SYMTYPE, payload
                bundle.addfile(info)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in entries.items():
            bundle.writestr(name, text)
    return buffer.getvalue()


GOOD_TAR = tar_bytes([(f"CUB_200_2011/f{i}.txt", "file", "y" * 4000) for i in range(3)])


def data(
    id: str,
    expect: str,
    *argv: str,
    code: int = 2,
    archive: tuple[str, bytes] | None = None,
    files: dict | None = None,
) -> Case:
    return Case(id, expect, argv, files or {}, cli="data", code=code, archive=archive)


def download(id: str, expect: str, archive: tuple[str, bytes], files: dict | None = None) -> Case:
    return data(
        id,
        expect,
        "download",
        "CUB200",
        "--root",
        "{tmp}/data",
        "--no-progress",
        code=1,
        archive=archive,
        files=files,
    )


CASES = [
    # ---------------------------------------------------------------- command line: flags
    run("no_name", "--experiment_name is required"),
    run(
        "typo_flag",
        "unknown flag or config key 'batch_sise'; did you mean --batch_size",
        *NEW,
        "--batch_sise",
        "8",
    ),
    run("typo_flag_far", "unknown flag or config key 'zzz'", *NEW, "--zzz", "1"),
    run(
        "bad_choice_flag",
        "argument --resume_training: invalid choice: 'newest'",
        *NEW,
        "--resume_training",
        "newest",
    ),
    run(
        "bad_int_flag",
        "argument --bayes_opt_iters: invalid int value: 'many'",
        *NEW,
        "--bayes_opt_iters",
        "many",
    ),
    run(
        "glued_colon",
        "looks like 'key:value' without a space",
        *NEW,
        "--loss_funcs~APPLY~3",
        "{pos_margin:0}",
    ),
    run("unparsable_value", "--batch_size: cannot parse", *NEW, "--batch_size", "[8"),
    run("empty_value", "--batch_size: no value given", *NEW, "--batch_size", " "),
    # ---------------------------------------------------------------- values: type and range
    run(
        "epochs_bool",
        "num_epochs_train: expected a positive integer, got True",
        *NEW,
        "--num_epochs_train",
        "true",
    ),
    run(
        "epochs_zero", "num_epochs_train: expected a positive integer, got 0", *NEW, "--num_epochs_train", "0"
    ),
    run(
        "epochs_float",
        "num_epochs_train: expected a positive integer, got 2.5",
        *NEW,
        "--num_epochs_train",
        "2.5",
    ),
    run("batch_negative", "batch_size: expected a positive integer, got -1", *NEW, "--batch_size", "-1"),
    run("batch_word", "batch_size: expected a positive integer, got 'abc'", *NEW, "--batch_size", "abc"),
    run(
        "eval_batch_zero",
        "eval_batch_size: expected a positive integer, got 0",
        *NEW,
        "--eval_batch_size",
        "0",
    ),
    run(
        "iterations_zero",
        "iterations_per_epoch: expected a positive integer",
        *NEW,
        "--iterations_per_epoch",
        "0",
    ),
    run(
        "save_interval_bool",
        "save_interval: expected a positive integer, got False",
        *NEW,
        "--save_interval",
        "false",
    ),
    run("patience_negative", "patience: expected an integer >= 0, got -1", *NEW, "--patience", "-1"),
    run(
        "workers_negative",
        "dataloader_num_workers: expected an integer >= 0",
        *NEW,
        "--dataloader_num_workers",
        "-2",
    ),
    run("seed_negative", "seed: expected an integer >= 0, got -1", *NEW, "--seed", "-1"),
    run("seed_word", "seed: expected an integer >= 0, got 'random'", *NEW, "--seed", "random"),
    run(
        "mixed_precision",
        "mixed_precision: expected null, bf16 or fp16, got 'fp32'",
        *NEW,
        "--mixed_precision",
        "fp32",
    ),
    run("metric_typo", "'map' is not a validation metric", *NEW, "--eval_metric_for_best_epoch", "map"),
    run(
        "metric_recall_missing",
        "'recall_at_4' is not a validation metric",
        *NEW,
        "--eval_metric_for_best_epoch",
        "recall_at_4",
    ),
    run(
        "recall_at_zero",
        "eval_recall_at: expected a list of positive integers",
        *NEW,
        "--eval_recall_at",
        "[0]",
    ),
    run("chunk_zero", "eval_chunk_size: expected a positive integer, got 0", *NEW, "--eval_chunk_size", "0"),
    run("switch_int", "channels_last: expected true or false, got 1", *NEW, "--channels_last", "1"),
    run(
        "switch_word",
        "eval_normalize_embeddings: expected true or false, got 'yes'",
        *NEW,
        "--eval_normalize_embeddings",
        "yes",
    ),
    run("device_name", "device: 'gpu' is not a device", *NEW, "--device", "gpu"),
    run("device_missing_cuda", "device: 'cuda:7' does not exist here", *NEW, "--device", "cuda:7"),
    run(
        "config_splits",
        "splits_to_eval: expected a non-empty list of train, val, test",
        *NEW,
        "--splits_to_eval~OVERRIDE~",
        "[valid]",
    ),
    run(
        "layer_size_zero",
        "models.embedder.MLP.layer_sizes: expected positive integer(s)",
        *NEW,
        "--models~OVERRIDE~",
        "{trunk: {SmallConvNet: {}}, embedder: {MLP: {layer_sizes: [8, 0]}}}",
    ),
    # ---------------------------------------------------------------- flags without effect in this mode
    run(
        "reproductions_no_search",
        "--reproductions has no effect without a search",
        *NEW,
        "--reproductions",
        "2",
    ),
    run(
        "executor_no_search",
        "--trial_executor has no effect without a search",
        *NEW,
        "--trial_executor",
        "slurm",
    ),
    run(
        "trials_per_gpu_no_search",
        "--trials_per_gpu has no effect without a search",
        *NEW,
        "--trials_per_gpu",
        "2",
    ),
    run("sobol_no_search", "--sobol_trials has no effect without a search", *NEW, "--sobol_trials", "2"),
    run("parallel_no_search", "--max_parallel_trials has no effect", *NEW, "--max_parallel_trials", "2"),
    run(
        "merge_alone", "--merge_argparse_when_resuming has no effect", *NEW, "--merge_argparse_when_resuming"
    ),
    # ---------------------------------------------------------------- class names and their arguments
    run("loss_typo", "ContrastivLoss", *NEW, "--loss_funcs~OVERRIDE~", "{metric_loss: {ContrastivLoss: {}}}"),
    run("loss_kwarg_typo", "pos_margn", *NEW, "--loss_funcs~APPLY~3", "{pos_margn: 0}"),
    run("sampler_typo", "MPerClassSamplr", *NEW, "--sampler~OVERRIDE~", "{MPerClassSamplr: {m: 4}}"),
    run("optimizer_typo", "Adamm", *NEW, "--optimizers~OVERRIDE~", "{trunk_optimizer: {Adamm: {lr: 0.1}}}"),
    run("transform_typo", "Resise", *NEW, "--transforms~OVERRIDE~", "{train: {Resise: {size: 4}}, eval: {}}"),
    run("dataset_typo", "CUB201", *NEW, "--dataset~OVERRIDE~", "{CUB201: {}}"),
    run(
        "not_a_mapping", "loss_funcs: expected a mapping", *NEW, "--loss_funcs~OVERRIDE~", "[ContrastiveLoss]"
    ),
    # ---------------------------------------------------------------- config file lists
    run(
        "unknown_config_name", "no config named 'with_cars'", *NEW, "--config_general", "[default, with_cars]"
    ),
    run("config_name_path", "is not a config name", *NEW, "--config_models", "../../etc/passwd"),
    run("empty_config_list", "the list of config names is empty", *NEW, "--config_eval", "[]"),
    # ---------------------------------------------------------------- experiment folders in the wrong state
    run("resume_missing", "does not exist: nothing to resume", *NEW, "--resume_training", "latest"),
    run("evaluate_missing", "does not exist: nothing to resume or evaluate", *NEW, "--evaluate"),
    run("exists_already", "already holds an experiment", *NEW, files=SAVED),
    run(
        "resume_with_overrides",
        "has a saved config; add --merge_argparse_when_resuming",
        *NEW,
        "--resume_training",
        "latest",
        "--batch_size",
        "4",
        files=SAVED,
    ),
    run(
        "saved_config_typo",
        "logs/x/configs/config_general.yaml:2: unknown config key 'num_epoch_train'",
        *NEW,
        "--resume_training",
        "latest",
        files=saved_experiment("batch_size: 8\nnum_epoch_train: 3\n"),
    ),
    run(
        "evaluate_bad_split",
        "'validation' is not a split",
        *NEW,
        "--evaluate",
        "--splits_to_eval",
        "validation",
        files=SAVED,
    ),
    # ---------------------------------------------------------------- exp_configs (--reproduce_results DIR)
    run("exp_no_configs", "no configs/ folder there", *EXP, files={"exp/readme.txt": "x"}),
    run(
        "exp_key_typo",
        "exp/configs/config_general.yaml:3: unknown config key 'num_epoch_train'; did you mean "
        "num_epochs_train?",
        *EXP,
        files={"exp/configs/config_general.yaml": "# mine\nseed: 1\nnum_epoch_train: 3\n"},
    ),
    run(
        "exp_wrong_category",
        "config_models.yaml:1: key 'batch_size' belongs in config_general files",
        *EXP,
        files={"exp/configs/config_models.yaml": "batch_size: 8\n"},
    ),
    run(
        "exp_nested_typo",
        "config_transforms.yaml:2: transforms: unknown part 'trian'; did you mean train?",
        *EXP,
        files={"exp/configs/config_transforms.yaml": "transforms~OVERRIDE~:\n  trian: {}\n  eval: {}\n"},
    ),
    run(
        "exp_yaml_syntax",
        "config_general.yaml:3:1: expected ',' or ']'",
        *EXP,
        files={"exp/configs/config_general.yaml": "a: 1\nb: [8\n"},
    ),
    run(
        "exp_duplicate_key",
        "duplicate key 'seed'",
        *EXP,
        files={"exp/configs/config_general.yaml": "seed: 1\nseed: 2\n"},
    ),
    run(
        "exp_top_level_list",
        "the top level must be a mapping",
        *EXP,
        files={"exp/configs/config_general.yaml": "- 32\n"},
    ),
    run("exp_not_utf8", "not UTF-8 text", *EXP, files={"exp/configs/config_general.yaml": b"seed: \xff\n"}),
    run(
        "exp_bad_value",
        "batch_size: expected a positive integer, got True",
        *EXP,
        files={"exp/configs/config_general.yaml": "batch_size: true\n"},
    ),
    run(
        "exp_bad_metric",
        "'precision_at_one' is not a validation metric; did you mean precision_at_1?",
        *EXP,
        files={"exp/configs/config_eval.yaml": "eval_metric_for_best_epoch: precision_at_one\n"},
    ),
    run(
        "exp_lists_unknown_category",
        "unknown config category 'config_dataset_x'",
        *EXP,
        files={"exp/configs/config_files.yaml": "config_dataset_x: [default]\n"},
    ),
    run(
        "exp_lists_missing_file",
        "no config named 'with_cub2000'",
        *EXP,
        files={"exp/configs/config_files.yaml": "config_dataset: [default, with_cub2000]\n"},
    ),
    run(
        "exp_unknown_class",
        "MultiSimilarityLos",
        *EXP,
        files={
            "exp/configs/config_loss_and_miners.yaml": "loss_funcs~OVERRIDE~:\n  metric_loss:\n    MultiSimilarityLos: {}\n"
        },
    ),
    run(
        "exp_overrides_without_merge",
        "takes its config from DIR; add --merge_argparse_when_resuming",
        *EXP,
        "--batch_size",
        "4",
        files={"exp/configs/config_general.yaml": "seed: 1\n"},
    ),
    # ---------------------------------------------------------------- --root_config_folder files
    run(
        "mine_key_typo",
        "cfg/config_general/mine.yaml:2: unknown config key 'pateince'; did you mean patience?",
        *MINE,
        "--config_general",
        "default",
        "mine",
        files={"cfg/config_general/mine.yaml": "seed: 2\npateince: 3\n"},
    ),
    run(
        "mine_bad_value",
        "patience: expected an integer >= 0, got -3",
        *MINE,
        "--config_general",
        "[default, mine]",
        files={"cfg/config_general/mine.yaml": "patience: -3\n"},
    ),
    # ---------------------------------------------------------------- issue 24: collisions, consent, links, bounds
    run(
        "yaml_alias_bomb_flag",
        "--loss_funcs: cannot parse",
        *NEW,
        "--loss_funcs",
        "{a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}",
    ),
    run(
        "yaml_alias_bomb_file",
        "mine.yaml:1:1: its aliases (*name) expand to",
        *MINE,
        "--config_general",
        "[default, mine]",
        files={
            "cfg/config_general/mine.yaml": "batch_size: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        },
    ),
    run(
        "yaml_recursive_alias", "refers to the value that contains it", *NEW, "--eval_recall_at", "&a [1, *a]"
    ),
    run(
        "yaml_nested_5000_deep",
        "--eval_recall_at: lists and mappings nested more than 64 levels deep",
        *NEW,
        "--eval_recall_at",
        "[" * 5000 + "1" + "]" * 5000,
    ),
    run(
        "nested_recall_at",
        "eval_recall_at: expected a list of positive integers",
        *NEW,
        "--eval_recall_at",
        "[[[[5]]]]",
    ),
    run("num_threads_huge", "num_threads: 100000 is over 1024", *NEW, "--num_threads", "100000"),
    run(
        "resize_huge",
        "transforms.train.Resize.size: expected sizes from 1 to 8192 pixels, got 100000",
        *NEW,
        "--transforms~OVERRIDE~",
        "{train: {Resize: {size: 100000}}, eval: {Resize: {size: 256}}}",
    ),
    run(
        "mlp_layer_huge",
        "models.embedder.MLP.layer_sizes: 1000000000000 is over the largest size allowed, 65536",
        *NEW,
        "--models~OVERRIDE~",
        "{trunk: {BNInception: {}}, embedder: {MLP: {layer_sizes: [1000000000000]}}}",
    ),
    run("name_too_long", "bytes long; a folder name may have at most 255", "--experiment_name", "n" * 300),
    run(
        "root_folder_is_a_file",
        "is a file, not a folder",
        *NEW,
        "--root_experiment_folder",
        "{tmp}/afile",
        files={"afile": "not a folder\n"},
    ),
    run(
        "experiment_folder_is_a_file",
        "is a file, not an experiment folder",
        *NEW,
        files={"logs/x": "not a folder\n"},
    ),
    run(
        "root_config_folder_missing",
        "nowhere: does not exist; give a folder of config_<category>",
        *NEW,
        "--root_config_folder",
        "{tmp}/nowhere",
    ),
    run(
        "plugin_in_exp_config",
        "comes from a config file, and dmlbench imports code only when the command line asks",
        *EXP,
        files={
            "exp/configs/config_general.yaml": "plugin_paths: [evil.py]\n",
            "evil.py": "open('PWNED', 'w')\n",
        },
    ),
    run(
        "plugin_in_root_config_folder",
        "add --plugin_paths [",
        *MINE,
        "--config_general",
        "[default, mine]",
        files={
            "cfg/config_general/mine.yaml": "plugin_paths: [evil.py]\n",
            "evil.py": "open('PWNED', 'w')\n",
        },
    ),
    run(
        "plugin_in_received_folder",
        "comes from a config file",
        "--experiment_name",
        "x",
        "--dataset_root",
        "{tmp}/no_data",
        "--evaluate",
        files={**saved_experiment("plugin_paths: [evil.py]\n"), "evil.py": "open('PWNED', 'w')\n"},
    ),
    run(
        "plugin_consent_names_other_paths",
        "--plugin_paths: the saved config imports [",
        *EXP,
        "--plugin_paths",
        "[other.py]",
        files={
            "exp/configs/config_general.yaml": "plugin_paths: [evil.py]\n",
            "evil.py": "open('PWNED', 'w')\n",
        },
    ),
    run(
        "plugin_calls_sys_exit",
        "called sys.exit(0); a plugin file must only define and register classes",
        *NEW,
        "--plugin_paths",
        "[exits.py]",
        files={"exits.py": "import sys\nsys.exit(0)\n"},
    ),
    run(
        "linked_lock_file",
        ".dmlbench.lock is a symbolic link",
        *NEW,
        "--resume_training",
        "latest",
        files={**SAVED, "precious.txt": "keep\n"},
        links={"logs/x/.dmlbench.lock": "precious.txt"},
    ),
    run(
        "linked_records_db",
        "meta/records.db is a symbolic link",
        *NEW,
        "--evaluate",
        files={**SAVED, "precious.db": "keep\n"},
        links={"logs/x/meta/records.db": "precious.db"},
    ),
    run(
        "linked_tensorboard_folder",
        "tensorboard is a symbolic link",
        *NEW,
        "--resume_training",
        "latest",
        files={**SAVED, "elsewhere/keep.txt": "keep\n"},
        links={"logs/x/Test50_50_Partitions4_0/tensorboard": "elsewhere"},
    ),
    run(
        "linked_search_lock",
        "trials/.search.lock is a symbolic link",
        *SEARCH,
        files={"precious.txt": "keep\n", "logs/x/trials/search.json": "{}\n"},
        links={"logs/x/trials/.search.lock": "precious.txt"},
    ),
    run(
        "experiment_folder_is_a_link_early_failure",
        "images.txt",
        *NEW,
        folders=("real",),
        links={"logs/x": "real"},
    ),
    run("empty_experiment_folder_early_failure", "images.txt", *NEW, folders=("logs/x",)),
    run(
        "experiment_folder_is_a_link_failure_after_configs",
        "MLRCSplitManager",
        *DEMO,
        "--split_manager~APPLY~2",
        "{num_training_sets: 40}",
        folders=("real",),
        links={"logs/x": "real"},
    ),
    run(
        "empty_experiment_folder_failure_after_configs",
        "MLRCSplitManager",
        *DEMO,
        "--split_manager~APPLY~2",
        "{num_training_sets: 40}",
        folders=("logs/x",),
    ),
    run("empty_root_folder_early_failure", "images.txt", *NEW, folders=("logs",)),
    # ---------------------------------------------------------------- data sets, splits, weights (after loading)
    run(
        "missing_dataset",
        "images.txt",
        "--experiment_name",
        "x",
        "--dataset_root",
        "{tmp}/nowhere",
        "--config_dataset",
        "[default, with_cub200]",
    ),
    run("impossible_split", "MLRCSplitManager", *DEMO, "--split_manager~APPLY~2", "{num_training_sets: 40}"),
    run("dataset_kwarg_typo", "num_clases", *DEMO, "--dataset~OVERRIDE~", "{DemoShapes: {num_clases: 8}}"),
    run(
        "pretrained_offline",
        "bn_inception-52deb4733.pth not found",
        *DEMO,
        "--models~OVERRIDE~",
        "{trunk: {BNInception: {}}, embedder: {MLP: {layer_sizes: [8]}}}",
        "--transforms~OVERRIDE~",
        "{train: {}, eval: {}}",
    ),
    # ---------------------------------------------------------------- searches: refused before any state
    run(
        "search_key_without_iters",
        "is a search range (~BAYESIAN~ key) but --bayes_opt_iters is not set",
        *DEMO,
        "--loss_funcs~APPLY~3",
        "{alpha~BAYESIAN~: [1, 4]}",
    ),
    run("search_iters_without_key", "the config has no search key", *DEMO, "--bayes_opt_iters", "2"),
    run("search_iters_zero", "--bayes_opt_iters must be >= 1, got 0", *SEARCH[:-1], "0"),
    run(
        "search_executor_typo",
        "--trial_executor 'locale' is unknown; did you mean local?",
        *SEARCH,
        "--trial_executor",
        "locale",
    ),
    run(
        "search_parallel_zero",
        "--max_parallel_trials must be >= 1, got 0",
        *SEARCH,
        "--trial_executor",
        "local_parallel",
        "--max_parallel_trials",
        "0",
    ),
    run(
        "search_local_parallel",
        "--trial_executor local runs one trial at a time",
        *SEARCH,
        "--max_parallel_trials",
        "3",
    ),
    run(
        "search_sobol_too_many",
        "--sobol_trials must be between 1 and --bayes_opt_iters (2), got 5",
        *SEARCH,
        "--sobol_trials",
        "5",
    ),
    run(
        "search_reproductions_negative",
        "--reproductions must be >= 0, got -1",
        *SEARCH,
        "--reproductions",
        "-1",
    ),
    run(
        "search_slurm_processes_zero",
        "slurm.processes: expected an integer >= 1, got 0",
        *SEARCH,
        "--trial_executor",
        "slurm",
        "--slurm",
        "{cluster: local, processes: 0}",
    ),
    run(
        "search_slurm_option_twice",
        "slurm: time and timeout_min are the same option, given twice",
        *SEARCH,
        "--trial_executor",
        "slurm",
        "--slurm",
        "{cluster: local, time: 10, timeout_min: 20}",
    ),
    run(
        "search_bad_sample_class",
        "MultiSimilarityLos",
        *SEARCH,
        "--loss_funcs~OVERRIDE~",
        "{metric_loss: {MultiSimilarityLos: {alpha~BAYESIAN~: [1, 4]}}}",
    ),
    run(
        "search_over_an_experiment",
        "already holds an experiment that is not a search",
        *SEARCH,
        files={"logs/x/configs/config_general.yaml": "batch_size: 8\n"},
    ),
    # ---------------------------------------------------------------- python -m dmlbench.data
    data("data_unknown_command", "invalid choice: 'fetch'", "fetch", "CUB200"),
    data("data_no_root", "the following arguments are required: --root", "download", "CUB200"),
    data("data_unknown_name", "CUB201", "download", "CUB201", "--root", "{tmp}/data"),
    data(
        "data_unknown_option",
        "--option csv_file: CUB200 has no such option",
        "check",
        "CUB200",
        "--root",
        "{tmp}/data",
        "--option",
        "csv_file=x.csv",
    ),
    data(
        "data_option_without_value",
        "expected KEY=VALUE",
        "check",
        "CUB200",
        "--root",
        "{tmp}/data",
        "--option",
        "split",
    ),
    data(
        "data_bad_workers",
        "argument --workers: invalid int value",
        "check",
        "CUB200",
        "--root",
        "{tmp}/data",
        "--workers",
        "many",
    ),
    data("data_missing_tree", "images.txt", "check", "CUB200", "--root", "{tmp}/data", code=1),
    download(
        "archive_absolute_link",
        "points outside",
        (
            "CUB_200_2011.tgz",
            tar_bytes([("CUB_200_2011/a.txt", "file", "x"), ("CUB_200_2011/evil", "symlink", "/etc/passwd")]),
        ),
    ),
    download(
        "archive_filter_refused_link",
        "refused by tarfile's data filter",
        (
            "CUB_200_2011.tgz",
            tar_bytes(
                [
                    ("d", "dir", ""),
                    ("d/f.txt", "file", "x"),
                    ("d/s", "symlink", ".."),
                    ("d/s/s2", "symlink", ".."),
                ]
            ),
        ),
    ),
    download(
        "archive_dotdot",
        "unsafe path '../escape.txt'",
        ("CUB_200_2011.tgz", tar_bytes([("ok.txt", "file", "x"), ("../escape.txt", "file", "x")])),
    ),
    download("archive_truncated", "is corrupt", ("CUB_200_2011.tgz", GOOD_TAR[: len(GOOD_TAR) // 2])),
    download("archive_not_an_archive", "is corrupt", ("CUB_200_2011.tgz", b"<html>Not Found</html>" * 40)),
    download(
        "archive_file_over_folder",
        "collides with the folder",
        ("CUB_200_2011.tgz", tar_bytes([("CUB_200_2011", "file", "not a folder")])),
        files={"data/CUB_200_2011/keep.txt": "mine"},
    ),
    download(
        "archive_file_and_folder",
        "is both a file and a folder",
        ("CUB_200_2011.zip", zip_bytes({"x": "file", "x/y.txt": "inside"})),
    ),
]


def test_the_catalogue_is_large_and_unique() -> None:
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo_data")
    DemoShapes(root, num_classes=16, images_per_class=4)
    return root


def snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, tmp_path, demo_root, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no pretrained weights anywhere
    monkeypatch.chdir(tmp_path)
    for relative, content in case.files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    for relative in case.folders:
        (tmp_path / relative).mkdir(parents=True)
    for relative, target in case.links.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).symlink_to(tmp_path / target)
    allowed, demo_before = snapshot(tmp_path), snapshot(demo_root)
    contents = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    if case.archive is not None:
        name, payload = case.archive
        served = tmp_path.parent / f"{tmp_path.name}_served_{name}"
        served.write_bytes(payload)
        spec = RemoteFile(name, (served.as_uri(),), sha256=hashlib.sha256(payload).hexdigest())
        monkeypatch.setattr(CUB200, "remote_files", (spec,))
        allowed |= {"data", f"data/{name}"}  # the verified download is kept (it resumes nothing twice)
    places = {"{tmp}": str(tmp_path), "{demo}": str(demo_root), "{repo}": str(REPO)}
    argv = list(case.argv)
    for mark, value in places.items():
        argv = [arg.replace(mark, value) for arg in argv]
    capsys.readouterr()

    code = (run_main if case.cli == "run" else data_main)(argv)

    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == case.code, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert case.expect in lines[0], lines[0]
    left = snapshot(tmp_path) - allowed
    assert not left, f"left behind: {sorted(left)}"
    assert allowed <= snapshot(tmp_path), f"removed: {sorted(allowed - snapshot(tmp_path))}"
    changed = [str(path) for path, data in contents.items() if path.read_bytes() != data]
    assert not changed, f"written into: {changed}"
    assert snapshot(demo_root) == demo_before
