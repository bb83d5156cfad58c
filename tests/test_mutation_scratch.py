"""The mutation analysis of the scratch flavour (python -m autograder mutation --flavour scratch): its
equivalence list, and a fixed sample of mutants that the grader must keep killing, among them
mutants of code that only one dropout style runs, which only the grade in that style can catch."""

from __future__ import annotations

import pytest

pytest.importorskip("cosmic_ray", reason="Cosmic Ray is in the lock files; bash setup.sh installs it")

from autograder.mutation import analysis  # noqa: E402

LAYERS, NETWORK = "nnlab/layers.py", "nnlab/multi_layer_net.py"
TRAIN_SCALING = "out = out / (1.0 - self.dropout_ratio)"  # run by the inverted style only
TEST_LINE = 'out = x * (1.0 - self.dropout_ratio) if self.style == "vanilla" else x'
BACKWARD_SCALING = "dx = dx / (1.0 - self.dropout_ratio)"  # inverted only

KILLED_SAMPLE = [
    (LAYERS, "Dropout.forward.train", TRAIN_SCALING, "core/ReplaceBinaryOperator_Div_Mul", 0),
    (LAYERS, "Dropout.forward.test", TEST_LINE, "core/ReplaceBinaryOperator_Sub_Add", 0),  # the vanilla style's test factor
    (LAYERS, "Dropout.backward", "dx = dout * self.mask", "core/ReplaceBinaryOperator_Mul_Add", 0),
    (LAYERS, "Dropout.backward", BACKWARD_SCALING, "core/ReplaceBinaryOperator_Div_Mul", 0),
    (NETWORK, "multi_layer_net.predict.dropout", "out = self.dropout_layers[i].forward(x, train_flg)",
     "dropout-lab/VariableReplacer(cause_variable=x, effect_variable=out)", 0),
]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    workspace = analysis.prepare(tmp_path_factory.mktemp("mutation-scratch"), flavour="scratch")
    analysis.init_session(workspace)
    mutants = {mutant.key: mutant for mutant in analysis.session_mutants(workspace).values()}
    return workspace, mutants


def equivalents():
    return analysis.load_equivalents(analysis.EQUIVALENTS_FILES["scratch"])


def test_equivalence_list_names_only_mutants_that_exist(session):
    _, mutants = session
    listed = equivalents()
    assert listed and len({entry.key for entry in listed}) == len(listed)
    for entry in listed:
        assert entry.key in mutants, f"equivalent_scratch.toml lists a mutant that does not exist: {entry}"
        assert (entry.region, entry.mutated) == (mutants[entry.key].region, mutants[entry.key].mutated), entry
    assert set(KILLED_SAMPLE) <= set(mutants)


@pytest.mark.slow
def test_a_fixed_sample_of_mutants_is_killed_in_the_style_that_runs_them(session):
    workspace, _ = session
    equivalent = {entry.key for entry in equivalents()}
    report = analysis.grade_session(workspace, sample=set(KILLED_SAMPLE) | equivalent)
    verdicts = {outcome.mutant.key: outcome for outcome in report.outcomes}
    survived = [verdicts[key].mutant.describe() for key in KILLED_SAMPLE if not verdicts[key].killed]
    assert not survived, "mutants the grader no longer kills:\n" + "\n".join(survived)
    assert not report.equivalent_killed, [o.summary for o in report.equivalent_killed]
    # Mutants of inverted-only code lose points in the inverted grade (and pass the vanilla one).
    for key in ((LAYERS, "Dropout.forward.train", TRAIN_SCALING, "core/ReplaceBinaryOperator_Div_Mul", 0),
                (LAYERS, "Dropout.backward", BACKWARD_SCALING, "core/ReplaceBinaryOperator_Div_Mul", 0)):
        assert verdicts[key].summary.endswith("(inverted)"), verdicts[key].summary
    assert verdicts[(LAYERS, "Dropout.forward.test", TEST_LINE, "core/ReplaceBinaryOperator_Sub_Add", 0)].summary.endswith("(vanilla)")
