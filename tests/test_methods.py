"""Method names as values (meml/methods.py): the one place the grammar lives."""

import pytest

from meml.methods import Method

NAMES = ["Expert0-SFT", "Expert12-SFT", "MoE-SFT", "Expert1-SFT-GRPO", "MoE-SFT-Dr.GRPO", "Expert2-SFT-DAPO",
         "MEML-GRPO", "MEML-GRPO-noIML", "MEML-GRPO-noHSFT", "MEML-GRPO-noHSFT-noIML", "MEML-GRPO-Expert1-noHSFT-noIML",
         "MEML-GRPO-Expert0-noIML", "MEML-GRPO+lambda1=0.5+lambda2=0", "MoE-SFT-DAPO+DAPO.max_sampling_rounds=4"]


@pytest.mark.parametrize("name", NAMES)
def test_parse_and_str_round_trip(name):
    assert str(Method.parse(name)) == name


def test_parts_of_each_kind():
    assert Method.parse("Expert1-SFT") == Method("sft", 1)
    assert Method.parse("MoE-SFT-Dr.GRPO") == Method("rl", None, "Dr.GRPO")
    meml = Method.parse("MEML-GRPO-Expert1-noHSFT-noIML+lambda2=1")
    assert (meml.kind, meml.expert, meml.algorithm, meml.hsft, meml.iml) == ("meml", 1, "GRPO", False, False)
    assert meml.tags == (("lambda2", "1"),) and str(meml.base) == "MEML-GRPO-Expert1-noHSFT-noIML"
    assert str(meml.start) == "Expert1-SFT" and str(Method.parse("MEML-GRPO").start) == "MoE-SFT"
    assert str(Method.parse("Expert2-SFT-DAPO").start) == "Expert2-SFT"


def test_experts_a_method_trains_and_is_evaluated_under():
    assert Method.parse("MoE-SFT").experts(3) == (0, 1, 2)
    assert Method.parse("Expert2-SFT-GRPO").experts(3) == (2,)
    assert Method.parse("MEML-GRPO-noHSFT").experts(2) == (0, 1)
    with pytest.raises(ValueError, match="Expert3-SFT: only 3 experts are configured"):
        Method.parse("Expert3-SFT").experts(3)
    assert Method.parse("MoE-SFT").moe and not Method.parse("Expert0-SFT-GRPO").moe
    assert [Method.parse(n).trains_rl for n in ("MoE-SFT", "MoE-SFT-GRPO", "MEML-GRPO")] == [False, True, True]


@pytest.mark.parametrize("name, message", [
    ("MEML-GRPO-noIML-noHSFT", "unknown method"),  # switches in the grammar's order only
    ("MEML-GRPO-Expert1", "mutual learning \\(IML\\) needs several experts"),
    ("Expert-SFT", "unknown method"),
    ("MoE-SFT-PPO", "unknown method"),
    ("MoE-SFT-GRPO+lambda1", "sweep tag 'lambda1' is not <option>=<value>"),
    ("moe-sft", "unknown method"),
])
def test_bad_names_are_errors_that_name_them(name, message):
    with pytest.raises(ValueError, match=message):
        Method.parse(name)
