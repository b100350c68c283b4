"""The training loop: learning, seeding, stacking, divergence, metrics records."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_textbook_epochs, settings, textbook_mlp

from optreg.records import MetricsError, read_run, validate_record
from optreg.training.job import run_job
from optreg.training.loop import train_runs, train_seeds, train_stack
from optreg.training.memory import STACK_SHARE, bytes_per_run, max_stack
from optreg.training.models import StackedMLP
from optreg.training.penalties import PENALTIES
from optreg.training.registry import OPTIMIZERS

CPU = torch.device("cpu")


def test_a_few_epochs_reduce_the_loss(digits):
    (result,) = train_seeds(digits, settings(epochs=5), [0], CPU)
    losses = [h["train_loss"] for h in result["history"]]
    assert losses[-1] < 0.5 * losses[0]
    assert result["final"]["test_accuracy"] > 0.8


def test_cnn_learns_and_stacks_like_one_at_a_time(digits):
    cfg = settings(model={"model": "cnn", "channels": [4, 8]}, epochs=2)
    stacked = train_seeds(digits, cfg, [0, 1], CPU)
    (alone,) = train_seeds(digits, cfg, [1], CPU)
    assert stacked[0]["final"]["test_accuracy"] > 0.5
    assert alone["final"]["val_loss"] == pytest.approx(stacked[1]["final"]["val_loss"], rel=1e-5)


def test_runs_at_different_rates_in_one_stack_equal_separate_runs(digits):
    lrs, seeds = [0.001, 0.1, 0.001], [0, 0, 1]
    together = train_runs(digits, settings(optimizer="momentum"), lrs, seeds, CPU)
    for lr, seed, result in zip(lrs, seeds, together, strict=True):
        (alone,) = train_runs(digits, settings(optimizer="momentum"), [lr], [seed], CPU)
        assert alone["final"]["val_loss"] == pytest.approx(result["final"]["val_loss"], rel=1e-5)
    assert together[0]["final"]["val_loss"] != together[1]["final"]["val_loss"]


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("hidden", [[], [6], [6, 5, 4]])
@pytest.mark.parametrize("kind", ["none", "l1", "l2"])
def test_mlp_backward_by_hand_equals_autograd(activation, hidden, kind):
    """StackedMLP.loss_and_gradients (the training loop's path for the MLP) gives the losses,
    predictions and gradients that autograd gives for the same batch, penalty included."""
    from optreg.training.penalties import add_penalty_gradients, penalty

    model = StackedMLP(7, hidden, 4, activation, seeds=[0, 1, 2])
    x, y = torch.randn(3, 5, 7), torch.randint(0, 4, (3, 5))
    logits = model(x)
    expected = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
    (expected.sum() / 5 + torch.as_tensor(penalty(model.weights, kind, 0.3)).sum()).backward()
    wanted = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    losses, predicted = model.loss_and_gradients(x, y)
    add_penalty_gradients(model.weights, kind, 0.3)
    torch.testing.assert_close(losses, expected.detach())
    assert torch.equal(predicted, logits.argmax(-1))
    for grad, want in zip((p.grad for p in model.parameters()), wanted, strict=True):
        torch.testing.assert_close(grad, want, rtol=1e-5, atol=1e-7)


def test_initialization_depends_on_seed_not_on_stack_mates():
    alone = StackedMLP(4, [3], 2, "tanh", seeds=[7])
    stacked = StackedMLP(4, [3], 2, "tanh", seeds=[1, 7, 9])
    for a, b in zip(alone.weights, stacked.weights, strict=True):
        assert torch.equal(a[0], b[1])
        assert not torch.equal(b[0], b[1])


HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
FINAL_KEYS = ("test_loss", "test_accuracy")


def assert_same_run(a: dict, b: dict, params_a=None, params_b=None, params_atol=1e-6) -> None:
    """Two results of one run agree within float32 tolerance: every epoch, finals, weights."""
    assert a["diverged"] == b["diverged"] and len(a["history"]) == len(b["history"])
    for ha, hb in zip(a["history"], b["history"], strict=True):
        for key in HISTORY_KEYS:
            assert ha[key] == pytest.approx(hb[key], rel=1e-5, abs=1e-6), key
    for key in FINAL_KEYS:
        assert a["final"][key] == pytest.approx(b["final"][key], rel=1e-5, abs=1e-6), key
    for pa, pb in zip(params_a or [], params_b or [], strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=params_atol)


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_stacked_runs_equal_one_at_a_time(digits, optimizer, penalty):
    # Two seeds, and one seed at two rates: every way runs differ inside one stack.
    lrs, seeds = [0.01, 0.03, 0.01], [0, 0, 1]
    cfg = settings(
        optimizer=optimizer,
        penalty=penalty,
        strength=0.0 if penalty == "none" else 1e-3,
        epochs=2,
        model={"model": "mlp", "hidden": [8]},
    )
    stacked, stacked_params = train_stack(digits, cfg, lrs, seeds, CPU)
    for lr, seed, together, together_params in zip(
        lrs, seeds, stacked, stacked_params, strict=True
    ):
        (alone,), (alone_params,) = train_stack(digits, cfg, [lr], [seed], CPU)
        assert_same_run(alone, together, alone_params, together_params)
    if penalty != "none":  # the penalty acted: without it the weights end elsewhere
        (_,), (plain,) = train_stack(digits, {**cfg, "penalty": "none"}, lrs[:1], seeds[:1], CPU)
        assert not torch.allclose(plain[0], stacked_params[0][0], rtol=1e-4, atol=1e-5)


CNN1D = {"model": "cnn", "channels": [4, 6, 5], "kernel": [5, 3, 3]}


@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_stacked_1d_cnn_runs_equal_one_at_a_time(mnist1d, optimizer, penalty):
    lrs, seeds = [0.01, 0.03, 0.01], [0, 0, 1]
    cfg = settings(
        optimizer=optimizer,
        penalty=penalty,
        strength=0.0 if penalty == "none" else 1e-3,
        epochs=2,
        model={**CNN1D, "dense": [7]},
    )
    stacked, stacked_params = train_stack(mnist1d, cfg, lrs, seeds, CPU)
    for lr, seed, together, together_params in zip(
        lrs, seeds, stacked, stacked_params, strict=True
    ):
        (alone,), (alone_params,) = train_stack(mnist1d, cfg, [lr], [seed], CPU)
        # A grouped convolution sums a run's gradient in another order than a plain one, and
        # RMSprop and Adam divide by the root of a small second moment: a rare weight ends a
        # few 1e-6 apart. Metrics still agree to float32 precision.
        assert_same_run(alone, together, alone_params, together_params, params_atol=2e-5)


def test_1d_cnn_is_the_papers_strided_cnn_and_learns(mnist1d):
    """One slice is conv1d(stride 2, padding 1) + activation per layer, then a linear layer:
    the layout of the MNIST-1D paper's reference CNN, checked against torch's own layers."""
    from optreg.training.models import StackedCNN1d, build_model

    model = build_model(CNN1D, mnist1d.meta, "relu", [3, 4])
    assert isinstance(model, StackedCNN1d)
    x = mnist1d.x["val"][:9]
    h = x.reshape(9, 1, 40)
    for w, b in zip(model.weights[:3], model.biases[:3], strict=True):
        h = F.conv1d(h, w[1], b[1], stride=2, padding=1).relu()
    expected = F.linear(h.flatten(1), model.weights[3][1], model.biases[3][1, :, 0])
    torch.testing.assert_close(model(x)[1], expected, rtol=1e-5, atol=1e-6)
    assert model.weights[3].shape[2] == 5 * 5  # length 40 -> 19 -> 10 -> 5, 5 channels
    (result,) = train_seeds(mnist1d, settings(model=CNN1D, epochs=8), [0], CPU)
    history = result["history"]
    assert history[-1]["train_loss"] < 0.9 * history[0]["train_loss"]


def test_one_run_equals_a_plain_module_with_torch_optim(digits):
    """The whole loop (init, data order, loss, update, metrics) as a textbook PyTorch loop."""
    cfg = settings(optimizer="momentum", epochs=2, lr=0.05, model={"model": "mlp", "hidden": [8]})
    (result,), (params,) = train_stack(digits, cfg, [cfg["lr"]], [4], CPU)
    plain = textbook_mlp(4)
    optimizer = torch.optim.SGD(plain.parameters(), lr=cfg["lr"], momentum=0.9)
    assert_textbook_epochs(plain, optimizer, 4, digits, result["history"], cfg["batch_size"])
    ours = [params[0], params[2][:, 0], params[1], params[3][:, 0]]  # weights, then biases
    for mine, theirs in zip(ours, plain.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-5, atol=1e-6)


def test_runs_in_consecutive_stacks_equal_one_stack(digits):
    lrs, seeds = [0.01, 0.03, 0.01, 0.03, 0.01], [0, 0, 1, 1, 2]
    cfg = settings(epochs=2, model={"model": "mlp", "hidden": [8]})
    whole = train_runs(digits, cfg, lrs, seeds, CPU)
    chunked = train_runs(digits, cfg, lrs, seeds, CPU, max_stack=2)
    for a, b in zip(whole, chunked, strict=True):
        assert_same_run(a, b)
        assert a["weights"]["l2_norm"] == pytest.approx(b["weights"]["l2_norm"], rel=1e-5)


def test_the_stack_limit_follows_the_memory_a_run_needs(digits):
    small = settings(model={"model": "mlp", "hidden": [8]})
    per_run = bytes_per_run(digits, small, CPU)
    assert per_run > 2 * 64 * 64 * 4  # at least the input batch autograd keeps, doubled
    assert bytes_per_run(digits, {**small, "batch_size": 256}, CPU) > per_run
    assert bytes_per_run(digits, {**small, "model": {"model": "mlp", "hidden": [256]}}, CPU) > (
        per_run
    )
    assert max_stack(digits, small, CPU, free_bytes=int(10 * per_run / STACK_SHARE)) == 10
    assert max_stack(digits, small, CPU, free_bytes=1) == 1


def test_a_job_too_big_for_the_memory_trains_in_stacks_with_the_same_results(
    digits_file, digits, tmp_path, monkeypatch
):
    import optreg.training.memory as memory

    cfg = settings(epochs=2)
    common = dict(
        data_path=digits_file, study="s", combination="c", factors={}, settings=cfg,
        phase="tune", seeds=[0, 1], lr_grid=[0.001, 0.03], default_lr=0.001,
    )  # fmt: skip
    whole = [read_run(f) for f in run_job(out_dir=tmp_path / "whole", **common)]
    room_for_two = int(2.5 * bytes_per_run(digits, cfg, CPU) / STACK_SHARE)
    monkeypatch.setattr(memory, "free_memory", lambda device: room_for_two)
    chunked = [read_run(f) for f in run_job(out_dir=tmp_path / "chunked", **common)]
    assert [r["provenance"]["stacked_seeds"] for r in whole] == [4] * 4
    assert [r["provenance"]["stacked_seeds"] for r in chunked] == [2] * 4
    for a, b in zip(whole, chunked, strict=True):
        assert (a["seed"], a["settings"]["lr"]) == (b["seed"], b["settings"]["lr"])
        assert_same_run(a, b)


def test_same_seed_same_numbers(digits):
    a = train_seeds(digits, settings(), [3], CPU)[0]
    b = train_seeds(digits, settings(), [3], CPU)[0]
    strip = lambda r: [{k: v for k, v in h.items() if k != "elapsed_s"} for h in r["history"]]  # noqa: E731
    assert strip(a) == strip(b) and a["final"] == b["final"]


def test_a_diverging_run_stops_alone_and_the_others_are_unaffected(digits, monkeypatch):
    # Blow up seed 1 only: scale its first-layer weights to overflow float32 after one epoch.
    import optreg.training.loop as train_mod

    real = train_mod.build_model

    def exploding(*args, **kwargs):
        model = real(*args, **kwargs)
        with torch.no_grad():
            model.weights[0][1].mul_(1e38)
        return model

    monkeypatch.setattr(train_mod, "build_model", exploding)
    results, params = train_stack(digits, settings(epochs=3), [0.01] * 3, [0, 1, 2], CPU)
    assert [r["diverged"] for r in results] == [False, True, False]
    assert results[1]["diverged_epoch"] == 1 and results[1]["history"] == []
    assert results[1]["final"]["test_accuracy"] is None and params[1] is None
    assert results[1]["weights"]["count"] == results[0]["weights"]["count"] > 0
    monkeypatch.undo()
    # The survivors match a stack that never held seed 1, to the last epoch and weight.
    without, without_params = train_stack(digits, settings(epochs=3), [0.01] * 2, [0, 2], CPU)
    for slot, pos in enumerate([0, 2]):
        assert len(results[pos]["history"]) == 3
        assert_same_run(results[pos], without[slot], params[pos], without_params[slot])


def test_huge_learning_rate_diverges_instead_of_crashing(digits):
    results = train_seeds(digits, settings(optimizer="sgd", lr=1e6, epochs=3), [0, 1], CPU)
    assert all(r["diverged"] for r in results)


def job_arguments(digits_file) -> dict:
    """What every job of one small cell is given."""
    return dict(
        data_path=digits_file,
        study="s",
        combination="optimizer-adam",
        factors={"optimizer": "adam"},
        settings=settings(epochs=2),
        lr_grid=[0.001, 0.03],
        default_lr=0.001,
        lr_limits=[0.001, 0.03],  # the grid's own ends: no extension (see the test of it)
    )


def tune_and_evaluate(digits_file, out):
    common = job_arguments(digits_file)
    tuning = run_job(out_dir=out / "tune", phase="tune", seeds=[0, 1], **common)
    evaluation = run_job(
        out_dir=out / "eval", phase="eval", seeds=[5, 6], tuning_files=tuning, **common
    )
    return tuning, evaluation


def test_tune_and_eval_jobs_write_valid_records(digits_file, tmp_path):
    tuning, evaluation = tune_and_evaluate(digits_file, tmp_path)
    assert sorted(p.name for p in tuning) == [
        "lr-0.001_seed-0.json",
        "lr-0.001_seed-1.json",
        "lr-0.03_seed-0.json",
        "lr-0.03_seed-1.json",
    ]
    assert [p.name for p in evaluation] == [
        "tuned_seed-5.json",
        "tuned_seed-6.json",
        "oneshot_seed-5.json",
        "oneshot_seed-6.json",
    ]
    tuned = read_run(evaluation[0])
    assert tuned["phase"] == "eval" and tuned["protocol"] == "tuned"
    assert tuned["selection"]["grid"] == [0.001, 0.03]
    assert tuned["settings"]["lr"] == tuned["selection"]["lr"]
    oneshot = read_run(evaluation[2])
    assert oneshot["settings"]["lr"] == 0.001 and oneshot["selection"] is None
    assert tuned["provenance"]["stacked_seeds"] == 4
    assert read_run(tuning[0])["protocol"] is None
    assert len(tuned["provenance"]["settings_hash"]) == 64


def test_a_fused_job_writes_what_a_tune_job_and_an_eval_job_write(digits_file, tmp_path):
    tuning, evaluation = tune_and_evaluate(digits_file, tmp_path)
    fused = run_job(
        out_dir=tmp_path / "fused",
        phase="tune-eval",
        seeds=[5, 6],
        tuning_seeds=[0, 1],
        **job_arguments(digits_file),
    )
    assert [p.name for p in fused] == [p.name for p in [*tuning, *evaluation]]

    def comparable(record):
        history = [{k: v for k, v in h.items() if k != "elapsed_s"} for h in record["history"]]
        provenance = {k: v for k, v in record["provenance"].items() if k != "host"}
        return {**record, "history": history, "wall_time_s": None, "provenance": provenance}

    for a, b in zip(fused, [*tuning, *evaluation], strict=True):
        assert comparable(read_run(a)) == comparable(read_run(b)), a.name
    assert {read_run(p)["phase"] for p in fused} == {"tune", "eval"}


def test_schema_rejects_malformed_records(digits_file, tmp_path):
    _, evaluation = tune_and_evaluate(digits_file, tmp_path)
    path = evaluation[0]
    validate_record(json.loads(path.read_text()))
    breakages = [
        lambda r: r.pop("diverged"),
        lambda r: r["final"].update(test_accuracy=1.5),
        lambda r: r["history"][0].update(val_loss=-1),
        lambda r: r.update(diverged_epoch=2),  # not diverged but has an epoch
        lambda r: r["provenance"].update(settings_hash="xyz"),
        lambda r: r.update(extra=1),
        lambda r: r["final"].update(test_accuracy=None),  # only diverged runs lack finals
        lambda r: r.update(phase="tune"),  # a tuning run has no protocol
        lambda r: r.update(selection=None),  # a tuned run records its selection
        lambda r: r.update(protocol="best"),
    ]
    for breakage in breakages:
        bad = json.loads(path.read_text())
        breakage(bad)
        with pytest.raises(MetricsError):
            validate_record(bad)


def _mutations(record: dict):
    """Copies of `record` with one field broken: each value (the first two items of a list)
    replaced by a string, None, -1, 1.5, True and an empty object, each key removed, and an
    unknown key added to each object."""
    import copy

    def paths(value, path=()):
        if isinstance(value, dict):
            yield path, value
            for key, item in value.items():
                yield from paths(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value[:2]):
                yield from paths(item, (*path, i))
        else:
            yield path, value

    def at(broken, path):
        for key in path[:-1]:
            broken = broken[key]
        return broken

    for path, value in list(paths(record)):
        if isinstance(value, dict):
            broken = copy.deepcopy(record)
            at(broken, (*path, None))["unknown_key"] = 1
            yield broken
        if not path:
            continue
        for replacement in ("x", None, -1, 1.5, True, {}):
            broken = copy.deepcopy(record)
            at(broken, path)[path[-1]] = replacement
            yield broken
        if isinstance(path[-1], str):
            broken = copy.deepcopy(record)
            del at(broken, path)[path[-1]]
            yield broken


def test_the_compiled_check_and_jsonschema_agree_on_every_broken_field(digits_file, tmp_path):
    # validate_record decides with the schema compiled by fastjsonschema (read as draft 7) and
    # names problems with jsonschema (2020-12): the two must accept and reject the same records.
    import fastjsonschema

    from optreg.records import _check, _validator

    tuning, evaluation = tune_and_evaluate(digits_file, tmp_path)
    checked = 0
    for path in (tuning[0], evaluation[0]):
        record = json.loads(path.read_text())
        for broken in [record, *_mutations(record)]:
            valid = not any(True for _ in _validator().iter_errors(broken))
            try:
                _check()(broken)
                compiled = True
            except fastjsonschema.JsonSchemaException:
                compiled = False
            assert compiled == valid, broken
            checked += 1
    assert checked > 500  # every field of both records, broken six ways or more


def test_reading_a_corrupt_file_names_it(tmp_path):
    bad = tmp_path / "seed-0.json"
    bad.write_text('{"schema_version": 1, ')
    with pytest.raises(MetricsError, match="seed-0.json"):
        read_run(bad)
    with pytest.raises(MetricsError, match="missing"):
        read_run(tmp_path / "nope.json")


def test_a_best_rate_on_the_grid_edge_extends_the_grid_on_tuning_seeds_only(digits_file, tmp_path):
    # Two epochs of Adam at tiny rates: the larger rate wins, on the top edge of the grid.
    common = {**job_arguments(digits_file), "lr_grid": [0.0001, 0.0003], "lr_limits": [1e-4, 0.01]}
    files = run_job(
        out_dir=tmp_path / "fused", phase="tune-eval", seeds=[5], tuning_seeds=[0, 1], **common
    )
    records = {p.name: read_run(p) for p in files}
    tuned = records["tuned_seed-5.json"]["selection"]
    assert tuned["extended"], "the best rate lay on the top edge: the grid must grow"
    assert tuned["extended"][0] == pytest.approx(0.0009)  # 0.0003 * (0.0003 / 0.0001)
    assert tuned["grid"] == sorted([0.0001, 0.0003, *tuned["extended"]])
    assert tuned["lr_limits"] == [1e-4, 0.01] and max(tuned["grid"]) <= 0.01
    # Stops once the best rate is interior, or when the next step would pass the limit.
    assert tuned["lr"] != tuned["grid"][-1] or tuned["stopped_at_limit"]
    added = [r for r in records.values() if r["phase"] == "tune" and r["settings"]["lr"] > 0.0003]
    assert {r["seed"] for r in added} == {0, 1}  # tuning seeds only, never evaluation seeds
    assert len(added) == 2 * len(tuned["extended"])
    # A separate eval job extends the same way from the tune job's files.
    tuning = run_job(out_dir=tmp_path / "tune", phase="tune", seeds=[0, 1], **common)
    evaluation = run_job(
        out_dir=tmp_path / "eval", phase="eval", seeds=[5], tuning_files=tuning, **common
    )
    split = {p.name: read_run(p) for p in evaluation}
    assert split["tuned_seed-5.json"]["selection"] == tuned
    assert split["tuned_seed-5.json"]["final"] == records["tuned_seed-5.json"]["final"]


def test_an_interior_best_rate_adds_nothing(digits_file, tmp_path):
    common = {**job_arguments(digits_file), "lr_grid": [1e-4, 0.003, 10.0], "lr_limits": [1e-5, 10]}
    files = run_job(
        out_dir=tmp_path / "j", phase="tune-eval", seeds=[5], tuning_seeds=[0], **common
    )
    tuned = read_run(next(p for p in files if p.name == "tuned_seed-5.json"))["selection"]
    assert tuned["extended"] == [] and tuned["grid"] == [1e-4, 0.003, 10.0]
    assert len(files) == 3 + 2


def test_a_tuned_run_equal_to_the_default_run_is_trained_once(digits_file, tmp_path, monkeypatch):
    import optreg.training.job as train_module

    trained = []
    real = train_module.train_runs

    def counting(data, settings, lrs, seeds, *args, **kwargs):
        trained.extend(zip(lrs, seeds, strict=True))
        return real(data, settings, lrs, seeds, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_runs", counting)
    common = {**job_arguments(digits_file), "lr_grid": [0.001], "lr_limits": [0.001, 0.001]}
    files = run_job(
        out_dir=tmp_path / "j", phase="tune-eval", seeds=[5, 6], tuning_seeds=[0], **common
    )
    records = {p.name: read_run(p) for p in files}
    # Tuned at 0.001, the default rate: 1 tuning run + 2 evaluation runs, not 1 + 4.
    assert sorted(trained) == [(0.001, 0), (0.001, 5), (0.001, 6)]
    for seed in (5, 6):
        tuned, oneshot = records[f"tuned_seed-{seed}.json"], records[f"oneshot_seed-{seed}.json"]
        assert tuned["final"] == oneshot["final"] and tuned["protocol"] != oneshot["protocol"]
        assert tuned["provenance"]["settings_hash"] == oneshot["provenance"]["settings_hash"]


def test_a_retuning_chooses_on_its_own_seeds_and_trains_each_distinct_rate_once(
    digits_file, tmp_path, monkeypatch
):
    import optreg.training.job as train_module

    trained = []
    real = train_module.train_runs

    def counting(data, settings, lrs, seeds, *args, **kwargs):
        trained.append(list(zip(lrs, seeds, strict=True)))
        return real(data, settings, lrs, seeds, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_runs", counting)
    grid = [0.0003, 0.001, 0.003, 0.01]
    common = {**job_arguments(digits_file), "lr_grid": grid, "lr_limits": [0.0003, 0.01]}
    fused = run_job(
        out_dir=tmp_path / "fused",
        phase="tune-eval",
        seeds=[5, 6],
        tuning_seeds=[0, 1, 2, 3],
        retuning_seeds=[2, 3],
        **common,
    )
    records = {p.name: read_run(p) for p in fused}
    assert [n for n in records if not n.startswith("lr-")] == [
        f"{p}_seed-{s}.json" for p in ("tuned", "oneshot", "small", "retuned") for s in (5, 6)
    ]
    tuned, small, retuned = (records[f"{p}_seed-5.json"] for p in ("tuned", "small", "retuned"))
    assert tuned["selection"]["tuning_seeds"] == [0, 1]
    assert retuned["selection"]["tuning_seeds"] == [2, 3]
    assert small["selection"]["grid"] == [0.0003, 0.001, 0.003]  # default 0.001 and neighbours
    assert records["oneshot_seed-5.json"]["selection"] is None
    for name, record in records.items():
        chosen = record["selection"]
        assert chosen is None or record["settings"]["lr"] == chosen["lr"], name
    # The evaluation stack trains each distinct (rate, seed) once, whatever protocols share it.
    evaluation = trained[-1]
    rates = {r["settings"]["lr"] for n, r in records.items() if not n.startswith("lr-")}
    assert sorted(evaluation) == sorted((lr, s) for lr in rates for s in (5, 6))
    # A tune job, then an eval job that reads its files: the same choices.
    tuning = run_job(out_dir=tmp_path / "t", phase="tune", seeds=[0, 1, 2, 3], **common)
    split = run_job(
        out_dir=tmp_path / "e",
        phase="eval",
        seeds=[5, 6],
        tuning_files=tuning,
        retuning_seeds=[2, 3],
        **common,
    )
    for path in split:
        assert read_run(path)["selection"] == records[path.name]["selection"], path.name
