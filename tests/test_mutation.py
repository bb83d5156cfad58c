"""The mutation analysis (python -m autograder mutation): its equivalence list, and a fixed sample of
mutants, one or more from each student region, that the grader must keep killing."""

from __future__ import annotations

import pytest

pytest.importorskip("cosmic_ray", reason="Cosmic Ray is in the lock files; bash setup.sh installs it")

from autograder.mutation import analysis  # noqa: E402

LAYERS, FC_NET = "nnlab/layers.py", "nnlab/classifiers/fc_net.py"
TRAIN_LINE = "mask = (np.random.rand(*x.shape) < p) / p"
REPLACE = "dropout-lab/VariableReplacer"
ALL_REGIONS = {name for names in analysis.CS231N.region_names.values() for name in names}

# (file, region, line, operator, place): one mutant each, named as equivalent.toml names them.
KILLED_SAMPLE = [
    # forward, train branch: p taken as the drop probability; scaled by p instead of 1 / p; no scaling.
    (LAYERS, "dropout_forward.train", TRAIN_LINE, "core/ReplaceComparisonOperator_Lt_Gt", 0),
    (LAYERS, "dropout_forward.train", TRAIN_LINE, "core/ReplaceBinaryOperator_Div_Mul", 0),
    (LAYERS, "dropout_forward.train", TRAIN_LINE, "core/ReplaceBinaryOperator_Div_Pow", 0),
    # forward, test branch: a constant instead of x.
    (LAYERS, "dropout_forward.test", "out = x", f"{REPLACE}(cause_variable=x, effect_variable=out)", 0),
    # backward: the mask added instead of multiplied; a constant instead of the mask.
    (LAYERS, "dropout_backward.train", "dx = dout * mask", "core/ReplaceBinaryOperator_Mul_Add", 0),
    (LAYERS, "dropout_backward.train", "dx = dout * mask", f"{REPLACE}(cause_variable=mask, effect_variable=dx)", 0),
    # the network's forward pass: dropout of a constant instead of the ReLU's output.
    (FC_NET, "fc_net.loss.dropout_forward", "hidden, dropout_cache = dropout_forward(relu_out, self.dropout_param)",
     f"{REPLACE}(cause_variable=relu_out, effect_variable=hidden)", 0),
    # the network's backward pass: a constant instead of the layer's dropout cache.
    (FC_NET, "fc_net.loss.dropout_backward", "drelu_out = dropout_backward(dhidden, dropout_cache)",
     f"{REPLACE}(cause_variable=dropout_cache, effect_variable=drelu_out)", 0),
]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A Cosmic Ray session of the reference's student regions, and its mutants, listed before any runs."""
    workspace = analysis.prepare(tmp_path_factory.mktemp("mutation"))
    analysis.init_session(workspace)
    mutants = {mutant.key: mutant for mutant in analysis.session_mutants(workspace).values()}
    return workspace, mutants


def test_equivalence_list_names_only_mutants_that_exist(session):
    _, mutants = session
    equivalents = analysis.load_equivalents()
    assert len({entry.key for entry in equivalents}) == len(equivalents), "an equivalent mutant is listed twice"
    for entry in equivalents:
        assert entry.key in mutants, f"equivalent.toml lists a mutant that does not exist: {entry}"
        mutant = mutants[entry.key]
        assert (entry.region, entry.mutated) == (mutant.region, mutant.mutated), entry
        assert entry.reason.strip(), entry
    # The sample below names real mutants too, and every region has mutants.
    assert set(KILLED_SAMPLE) <= set(mutants)
    assert {mutant.region for mutant in mutants.values()} == ALL_REGIONS


@pytest.mark.slow
def test_a_fixed_sample_of_mutants_is_killed_and_the_equivalent_ones_are_not(session):
    workspace, _ = session
    equivalent = {entry.key for entry in analysis.load_equivalents()}
    report = analysis.grade_session(workspace, sample=set(KILLED_SAMPLE) | equivalent)
    verdicts = {outcome.mutant.key: outcome for outcome in report.outcomes}
    assert set(verdicts) == set(KILLED_SAMPLE) | equivalent
    survived = [verdicts[key].mutant.describe() for key in KILLED_SAMPLE if not verdicts[key].killed]
    assert not survived, "mutants the grader no longer kills:\n" + "\n".join(survived)
    marked_down = [f"{o.mutant.describe()}\n{o.summary}" for o in report.equivalent_killed]
    assert not marked_down, "equivalent (correct) mutants that lost points:\n" + "\n".join(marked_down)
    assert {o.mutant.region for o in report.outcomes} == ALL_REGIONS


def test_the_gradescope_zip_leaves_the_mutation_analysis_out():
    """equivalent.toml quotes the reference's lines, so it must not reach a grading image."""
    from autograder.gradescope import zip_contents
    from autograder.rubric import DEFAULT_RUBRIC

    names = zip_contents(DEFAULT_RUBRIC)
    assert not [name for name in names if "/mutation/" in name]
    assert any(name.endswith("autograder/grade.py") for name in names)
