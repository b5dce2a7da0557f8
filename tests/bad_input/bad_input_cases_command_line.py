"""Bad-input rows: flags, values, flags without effect, class names, config file lists."""

from __future__ import annotations

from bad_input_case import (
    NEW,
    run,
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
]
