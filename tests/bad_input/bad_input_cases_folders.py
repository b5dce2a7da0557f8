"""Bad-input rows: experiment folders in the wrong state, exp_configs, --root_config_folder."""

from __future__ import annotations

from bad_input_case import (
    EXP,
    MINE,
    NEW,
    SAVED,
    run,
    saved_experiment,
)

CASES = [
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
]
